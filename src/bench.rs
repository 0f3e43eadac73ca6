//! Synthetic scans for the load generator (`examples/loadgen/`, feature
//! `bench`; never part of a release build).
//!
//! A benchmark needs many scans live at once, which the one-running-scan
//! rule forbids, and real scans started beside them. So synthetic scans live
//! in a second, scratch SQLite database without that rule's index, behind
//! [`BenchStore`], which sends every call about a synthetic scan there and
//! everything else to the real store. Each synthetic scan is driven through
//! the real path: the progress writer stores every line, publishes it to the
//! scan's channel, and the streams serve it from there.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Mutex;

use crate::i18n::Texts;
use crate::scan::progress::Reporter;
use crate::state::AppState;
use crate::store::{
    Booking, Customer, EmailCounts, Lease, Locked, LogRow, NewScan, ResumeOutcome, ScanId, ScanRow,
    ScanStatus, ScanWrite, SqliteStore, StartOutcome, Store, StoreResult, Totals, Wakeup,
    WebhookImport, WebhookRow, WebhookSubscriptionRow,
};

/// Synthetic scan ids start so (and are valid scan ids).
const PREFIX: &str = "scan_bench";

fn is_synthetic(scan_id: &str) -> bool {
    scan_id.starts_with(PREFIX)
}

/// The real store, with synthetic scans kept apart in a scratch database.
#[derive(Debug)]
pub struct BenchStore {
    real: Arc<dyn Store>,
    synthetic: SqliteStore,
}

impl BenchStore {
    /// `scratch_url`: a SQLite database of its own for the synthetic scans.
    pub async fn new(real: Arc<dyn Store>, scratch_url: &str) -> anyhow::Result<Self> {
        let synthetic = SqliteStore::connect(scratch_url).await?;
        Ok(Self { real, synthetic })
    }

    fn of(&self, scan_id: &str) -> &dyn Store {
        if is_synthetic(scan_id) {
            &self.synthetic
        } else {
            self.real.as_ref()
        }
    }
}

#[async_trait]
impl Store for BenchStore {
    fn backend(&self) -> &'static str {
        self.real.backend()
    }
    fn single_process(&self) -> bool {
        self.real.single_process()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.real.ping().await
    }
    async fn start_scan(&self, scan: &NewScan) -> StoreResult<StartOutcome> {
        self.of(&scan.scan_id).start_scan(scan).await
    }
    async fn resume_scan(
        &self,
        scan_id: &ScanId,
        owner: &str,
        lease_until_ms: i64,
        logs: &[LogRow],
    ) -> StoreResult<ResumeOutcome> {
        self.of(scan_id)
            .resume_scan(scan_id, owner, lease_until_ms, logs)
            .await
    }
    async fn scan(&self, scan_id: &ScanId) -> StoreResult<Option<ScanRow>> {
        self.of(scan_id).scan(scan_id).await
    }
    async fn scans(&self, limit: i64) -> StoreResult<Vec<ScanRow>> {
        self.real.scans(limit).await
    }
    async fn last_completed(&self) -> StoreResult<Option<ScanRow>> {
        self.real.last_completed().await
    }
    async fn append_to_finished(
        &self,
        scan_id: &ScanId,
        message: &Texts,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.of(scan_id)
            .append_to_finished(scan_id, message, at)
            .await
    }
    async fn import_webhook(&self, import: &WebhookImport) -> StoreResult<bool> {
        self.real.import_webhook(import).await
    }
    async fn recent_webhooks(&self, limit: i64) -> StoreResult<Vec<WebhookRow>> {
        self.real.recent_webhooks(limit).await
    }
    async fn save_webhook_subscription(&self, row: &WebhookSubscriptionRow) -> StoreResult<()> {
        self.real.save_webhook_subscription(row).await
    }
    async fn webhook_subscriptions(&self) -> StoreResult<Vec<WebhookSubscriptionRow>> {
        self.real.webhook_subscriptions().await
    }
    async fn delete_webhook_subscription(&self, uri: &str) -> StoreResult<bool> {
        self.real.delete_webhook_subscription(uri).await
    }
    async fn totals(&self) -> StoreResult<Totals> {
        self.real.totals().await
    }
    async fn most_events_listed(&self) -> StoreResult<Option<i64>> {
        self.real.most_events_listed().await
    }
    async fn logs_after(
        &self,
        scan_id: &ScanId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>> {
        self.of(scan_id).logs_after(scan_id, after, limit).await
    }
    async fn write_scans(&self, writes: &[ScanWrite<'_>]) -> StoreResult<Vec<bool>> {
        let (synthetic, real): (Vec<ScanWrite<'_>>, Vec<ScanWrite<'_>>) =
            writes.iter().partition(|w| is_synthetic(w.scan_id));
        async fn write(store: &dyn Store, writes: &[ScanWrite<'_>]) -> StoreResult<Vec<bool>> {
            if writes.is_empty() {
                return Ok(Vec::new());
            }
            store.write_scans(writes).await
        }
        let mut from_synthetic = write(&self.synthetic, &synthetic).await?.into_iter();
        let mut from_real = write(self.real.as_ref(), &real).await?.into_iter();
        Ok(writes
            .iter()
            .map(|w| {
                let held = if is_synthetic(w.scan_id) {
                    from_synthetic.next()
                } else {
                    from_real.next()
                };
                held.unwrap_or(false)
            })
            .collect())
    }
    async fn record_event(
        &self,
        scan_id: &ScanId,
        owner: &str,
        event_uri: &str,
        bookings: &[Booking],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<EmailCounts>> {
        self.of(scan_id)
            .record_event(scan_id, owner, event_uri, bookings, now)
            .await
    }
    async fn email_counts(&self, scan_id: &ScanId) -> StoreResult<EmailCounts> {
        self.of(scan_id).email_counts(scan_id).await
    }
    async fn done_events(&self, scan_id: &ScanId) -> StoreResult<HashSet<String>> {
        self.of(scan_id).done_events(scan_id).await
    }
    async fn renew_lease(
        &self,
        scan_id: &ScanId,
        owner: &str,
        until_ms: i64,
    ) -> StoreResult<Lease> {
        self.of(scan_id).renew_lease(scan_id, owner, until_ms).await
    }
    async fn next_lease_end(&self) -> StoreResult<Option<i64>> {
        self.real.next_lease_end().await
    }
    async fn request_cancel(&self, scan_id: &ScanId) -> StoreResult<Option<ScanStatus>> {
        self.of(scan_id).request_cancel(scan_id).await
    }
    async fn interrupt_stale(
        &self,
        now_ms: i64,
        all: bool,
        alive: &[String],
        locked: Locked,
        message: &Texts,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<ScanRow>> {
        self.real
            .interrupt_stale(now_ms, all, alive, locked, message, at)
            .await
    }
    async fn known_customers(&self) -> StoreResult<crate::store::KnownCustomers> {
        self.real.known_customers().await
    }

    async fn customers_after(
        &self,
        known: &crate::store::KnownCustomers,
    ) -> StoreResult<crate::store::KnownCustomers> {
        self.real.customers_after(known).await
    }

    async fn customers(
        &self,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        self.real.customers(query, offset, limit).await
    }
    async fn create_session(
        &self,
        id_hash: &str,
        username: &str,
        expires_ms: i64,
        ends_ms: i64,
    ) -> StoreResult<()> {
        self.real
            .create_session(id_hash, username, expires_ms, ends_ms)
            .await
    }
    async fn touch_session(
        &self,
        id_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.real.touch_session(id_hash, now_ms, expires_ms).await
    }
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.real.delete_session(id_hash).await
    }
    async fn wakeups(&self) -> StoreResult<Option<BoxStream<'static, Wakeup>>> {
        self.real.wakeups().await
    }
}

/// The synthetic scans of one server.
#[derive(Debug)]
pub struct Synthetic {
    state: AppState,
    pool: SqlitePool,
    reporters: Mutex<HashMap<String, Reporter>>,
}

/// Microseconds since the Unix epoch: the clock probes carry.
pub fn unix_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// The text of probe line `n`, made now.
pub fn probe(n: usize) -> String {
    format!("probe {n} {}", unix_micros())
}

/// The number and creation time (µs) a probe line carries.
pub fn parse_probe(text: &str) -> Option<(usize, i64)> {
    let mut parts = text.strip_prefix("probe ")?.split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Synthetic {
    /// Synthetic scans of the server `state`, whose store is a
    /// [`BenchStore`] with its scratch database at `scratch_url`.
    pub async fn new(state: AppState, scratch_url: &str) -> anyhow::Result<Self> {
        // As the store opens it: the baseline writer must not differ in durability.
        let options = SqliteConnectOptions::from_str(scratch_url)?
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query("DROP INDEX IF EXISTS scan_progress_one_running")
            .execute(&pool)
            .await?;
        Ok(Self {
            state,
            pool,
            reporters: Mutex::new(HashMap::new()),
        })
    }

    /// Makes `n` running scans live; returns their ids.
    pub async fn create(&self, n: usize) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        let mut reporters = self.reporters.lock().await;
        for _ in 0..n {
            let scan_id = format!(
                "{PREFIX}{}",
                ulid::Ulid::generate().to_string().to_lowercase()
            );
            sqlx::query(
                "INSERT INTO scan_progress (scan_id, status, mode, progress, current_step, \
                 current_step_en, started_at, owner, lease_until_ms, last_event_id) \
                 VALUES (?, 'running', 'full', 0, 'Benchmark', 'Benchmark', ?, ?, ?, 0)",
            )
            .bind(&scan_id)
            .bind(crate::time::millis(Utc::now()))
            .bind(self.state.scans.instance())
            .bind(i64::MAX / 2)
            .execute(&self.pool)
            .await?;
            let row = self
                .state
                .store
                .scan(&ScanId::parse(scan_id.clone())?)
                .await?
                .context("the synthetic scan vanished")?;
            reporters.insert(scan_id.clone(), self.state.scans.adopt(row));
            ids.push(scan_id);
        }
        Ok(ids)
    }

    /// Appends `per_round` probe lines to every scan in `scan_ids`, once
    /// every `every`, for `rounds` rounds; probes are numbered from `first`.
    pub async fn emit(
        &self,
        scan_ids: &[String],
        first: usize,
        rounds: usize,
        per_round: usize,
        every: Duration,
    ) -> anyhow::Result<()> {
        let mut reporters = self.reporters.lock().await;
        let mut tick = tokio::time::interval(every.max(Duration::from_micros(1)));
        let mut n = first;
        for _ in 0..rounds {
            tick.tick().await;
            for scan_id in scan_ids {
                let reporter = reporters
                    .get_mut(scan_id)
                    .with_context(|| format!("no synthetic scan {scan_id}"))?;
                for i in 0..per_round {
                    reporter.line(Texts::same(probe(n + i)));
                }
            }
            n += per_round;
        }
        Ok(())
    }

    /// Ends the scans `completed`, once every line is written and published.
    pub async fn finish(&self, scan_ids: &[String]) -> anyhow::Result<()> {
        let mut reporters = self.reporters.lock().await;
        for scan_id in scan_ids {
            let reporter = reporters
                .remove(scan_id)
                .with_context(|| format!("no synthetic scan {scan_id}"))?;
            reporter.finish(ScanStatus::Completed, None).await;
        }
        Ok(())
    }

    /// The log lines the database holds for `scan_id`.
    pub async fn stored_lines(&self, scan_id: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM scan_logs WHERE scan_id = ?")
                .bind(scan_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The baseline for log throughput: `lines` lines written the plain way,
    /// one `INSERT` (one transaction) each, into a synthetic scan. Returns
    /// lines per second.
    pub async fn one_insert_per_line(&self, lines: usize) -> anyhow::Result<f64> {
        let scan_id = self.create(1).await?.remove(0);
        let started = std::time::Instant::now();
        for id in 1..=lines as i64 {
            let text = probe(id as usize);
            sqlx::query(
                "INSERT INTO scan_logs (scan_id, id, message, message_en, created_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&scan_id)
            .bind(id)
            .bind(&text)
            .bind(&text)
            .bind(crate::time::millis(Utc::now()))
            .execute(&self.pool)
            .await?;
        }
        let rate = lines as f64 / started.elapsed().as_secs_f64();
        self.finish(std::slice::from_ref(&scan_id)).await?;
        Ok(rate)
    }
}
