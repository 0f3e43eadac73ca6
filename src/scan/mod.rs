//! Scans: starting, resuming and cancelling them, the background task that
//! runs each, and where their live events come from.
//!
//! Data travels one way: a route calls [`Scans`], which writes through the
//! store; the scan task writes each change once, to the store and to the
//! scan's channel; streams and status requests only read.

mod follow;
pub(crate) mod progress;
pub mod registry;
mod runner;
pub mod status;
mod work;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::calendly::CalendlyClient;
use crate::i18n::{Msg, Texts};
use crate::metrics::Metrics;
use crate::store::{
    Locked, LogRow, NewScan, Progress, ResumeOutcome, ScanRow, ScanStatus, StartOutcome, Store,
    StoreResult, Wakeup,
};
pub use crate::store::{ScanId, ScanMode};
use crate::time::Zone;
pub use follow::{Following, LOG_LIMIT};
use registry::Registry;

/// How long a scan's lease holds without a heartbeat, unless
/// `CALSCAN_LEASE_S` says otherwise (`calscan scan` always uses this).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// [`ScanSettings::stream_buffer`] unless set.
pub const DEFAULT_STREAM_BUFFER: usize = 1024;
/// [`ScanSettings::lookback`] unless set.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(24 * 3600);
/// [`ScanSettings::db_outage`] unless set.
pub const DEFAULT_DB_OUTAGE: Duration = Duration::from_secs(60);

/// How scans run.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// `CALENDLY_ORG_URI`, if set.
    pub organization: Option<String>,
    /// How long a scan's lease holds without a heartbeat.
    pub lease: Duration,
    /// Events a watcher may fall behind before it is refilled from the database.
    pub stream_buffer: usize,
    /// How far before the last completed scan's start an incremental scan
    /// begins reading events.
    pub lookback: Duration,
    /// How long a scan waits for the database (`CALSCAN_DB_OUTAGE_S`)
    /// before it ends with an error.
    pub db_outage: Duration,
    /// Where a summary goes when a scan ends (`CALSCAN_NOTIFY_URL`).
    pub notify: Option<crate::notify::Notifier>,
    /// Run an incremental scan on this interval (`CALSCAN_SCAN_EVERY`).
    pub every: Option<Duration>,
    /// The zone log lines name times in (`CALSCAN_TIMEZONE`).
    pub zone: Zone,
}

impl Default for ScanSettings {
    /// What a setting not given is.
    fn default() -> Self {
        Self {
            organization: None,
            lease: DEFAULT_LEASE,
            stream_buffer: DEFAULT_STREAM_BUFFER,
            lookback: DEFAULT_LOOKBACK,
            db_outage: DEFAULT_DB_OUTAGE,
            notify: None,
            every: None,
            zone: Zone::default(),
        }
    }
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// The scan will record `cancelled` within a second.
    Requested,
    NotFound,
    /// It is not running.
    NotRunning(ScanStatus),
}

/// The scan service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Scans {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    store: Arc<dyn Store>,
    registry: Registry,
    /// The one writer of every scan's progress.
    journal: progress::Journal,
    calendly: Option<CalendlyClient>,
    settings: ScanSettings,
    /// This process, as the owner of the leases it holds.
    instance: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// The next scheduled scan and the interval, with `CALSCAN_SCAN_EVERY`.
    schedule: std::sync::Mutex<Option<(DateTime<Utc>, Duration)>>,
    /// Whether other instances' writes arrive as wake-ups (PostgreSQL);
    /// otherwise followers of scans running elsewhere re-read the database
    /// often.
    wakeups: std::sync::atomic::AtomicBool,
}

impl Scans {
    /// `calendly` is `None` when no token is configured: scans then end with
    /// an error saying what to set.
    pub fn new(
        store: Arc<dyn Store>,
        calendly: Option<CalendlyClient>,
        settings: ScanSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                journal: progress::Journal::start(store.clone(), metrics, settings.zone),
                store,
                registry: Registry::new(settings.stream_buffer),
                calendly,
                settings,
                instance: format!(
                    "calscan-{}",
                    ulid::Ulid::generate().to_string().to_lowercase()
                ),
                shutdown,
                tasks: TaskTracker::new(),
                schedule: std::sync::Mutex::new(None),
                wakeups: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The zone times are shown in (`CALSCAN_TIMEZONE`).
    pub fn zone(&self) -> Zone {
        self.inner.settings.zone
    }

    /// With [`ScanSettings::every`], starts an incremental scan on that
    /// interval, the first one interval from now. A tick while a scan runs,
    /// here or on another instance, is skipped: the database lets one scan
    /// run at a time.
    pub fn spawn_schedule(&self) {
        let Some(every) = self.inner.settings.every else {
            return;
        };
        let scans = self.clone();
        self.inner.tasks.spawn(async move {
            let step = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
            loop {
                let next = Utc::now().checked_add_signed(step);
                scans.set_schedule(next.map(|at| (at, every)));
                tokio::select! {
                    _ = scans.inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                match scans.start(ScanMode::Incremental).await {
                    Ok(StartOutcome::Started(row)) => {
                        tracing::info!(scan_id = %row.scan_id, "scheduled scan started");
                    }
                    Ok(StartOutcome::AlreadyRunning(running)) => {
                        tracing::info!(%running, "scheduled scan skipped: a scan is running");
                    }
                    Err(error) => tracing::warn!(%error, "scheduled scan could not start"),
                }
            }
        });
    }

    fn set_schedule(&self, next: Option<(DateTime<Utc>, Duration)>) {
        *self
            .inner
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// When the next scheduled scan starts, and the interval.
    pub fn next_scheduled(&self) -> Option<(DateTime<Utc>, Duration)> {
        *self
            .inner
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Whether Calendly is set up (`CALENDLY_TOKEN`): without it every scan
    /// ends with the "not configured" error.
    pub fn configured(&self) -> bool {
        self.inner.calendly.is_some()
    }

    /// What the Calendly client has sent and received since the start.
    pub fn calendly_stats(&self) -> Option<crate::calendly::CallStats> {
        self.inner.calendly.as_ref().map(CalendlyClient::stats)
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    fn lease_until(&self) -> i64 {
        crate::time::now_ms() + self.inner.settings.lease.as_millis() as i64
    }

    /// Marks scans left `running` by a dead process as `interrupted`: on a
    /// database only this process uses, all of them; elsewhere those whose
    /// lease ran out.
    pub async fn recover(&self) -> StoreResult<Vec<ScanRow>> {
        let all = self.inner.store.single_process();
        self.interrupt_stale(all, Locked::Wait).await
    }

    async fn interrupt_stale(&self, all: bool, locked: Locked) -> StoreResult<Vec<ScanRow>> {
        let message = Texts::of(&Msg::ProcessGone);
        let rows = self
            .inner
            .store
            .interrupt_stale(
                crate::time::now_ms(),
                all,
                &self.inner.registry.live(),
                locked,
                &message,
                Utc::now(),
            )
            .await?;
        for row in &rows {
            tracing::warn!(scan_id = %row.scan_id, "scan marked interrupted: its process is gone");
        }
        Ok(rows)
    }

    /// Sweeps expired leases until shutdown: just after the running scan's
    /// lease ends, and every half lease to notice scans started elsewhere.
    pub fn spawn_lease_sweeper(&self) {
        let scans = self.clone();
        let period = (self.inner.settings.lease / 2).max(Duration::from_millis(100));
        self.inner.tasks.spawn(async move {
            loop {
                if let Err(error) = scans.interrupt_stale(false, Locked::Skip).await {
                    tracing::warn!(%error, "cannot sweep scan leases");
                }
                let wait = match scans.inner.store.next_lease_end().await {
                    Ok(Some(end_ms)) => {
                        // A little after the end, so the lease has surely run out.
                        let left = end_ms + 20 - crate::time::now_ms();
                        Duration::from_millis(left.max(10) as u64).min(period)
                    }
                    Ok(None) => period,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read scan leases");
                        period
                    }
                };
                tokio::select! {
                    _ = scans.inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// Starts a scan in the background; answers before any Calendly call.
    #[tracing::instrument(skip_all)]
    pub async fn start(&self, mode: ScanMode) -> StoreResult<StartOutcome> {
        // A scan whose process died must not block this one.
        self.interrupt_stale(false, Locked::Wait).await?;
        let now = Utc::now();
        let scan = NewScan {
            scan_id: ScanId::generate(),
            mode,
            owner: self.inner.instance.clone(),
            lease_until_ms: self.lease_until(),
            started_at: now,
            figures: Progress {
                progress: 0,
                current_step: Texts::of(&Msg::StepInit),
                last_event_id: 1,
                ..Progress::default()
            },
            logs: vec![LogRow {
                id: 1,
                message: Texts::of(&Msg::Started),
                created_at: now,
            }],
        };
        let outcome = self.inner.store.start_scan(&scan).await?;
        if let StartOutcome::Started(row) = &outcome {
            self.spawn(ScanRow::clone(row), false);
        }
        Ok(outcome)
    }

    /// Continues an `interrupted`, `error` or `cancelled` scan where its
    /// checkpoint stands, under the same id.
    #[tracing::instrument(skip_all, fields(scan_id))]
    pub async fn resume(&self, scan_id: &ScanId) -> StoreResult<ResumeOutcome> {
        self.interrupt_stale(false, Locked::Wait).await?;
        let Some(row) = self.inner.store.scan(scan_id).await? else {
            return Ok(ResumeOutcome::NotFound);
        };
        let line = LogRow {
            id: row.figures.last_event_id + 1,
            message: Texts::of(&Msg::ScanResumed),
            created_at: Utc::now(),
        };
        let outcome = self
            .inner
            .store
            .resume_scan(scan_id, &self.inner.instance, self.lease_until(), &[line])
            .await?;
        if let ResumeOutcome::Resumed(row) = &outcome {
            self.spawn(ScanRow::clone(row), true);
        }
        Ok(outcome)
    }

    /// The newest scan [`Scans::resume`] can continue (`interrupted`,
    /// `error` or `cancelled`), once scans whose process died are marked
    /// interrupted; `None` when there is none.
    pub async fn newest_resumable(&self) -> StoreResult<Option<ScanRow>> {
        self.interrupt_stale(false, Locked::Wait).await?;
        // Newest first: usually among the first few; a longer list only
        // when many scans came after it.
        let mut limit = 64;
        loop {
            let rows = self.inner.store.scans(limit).await?;
            let all_listed = (rows.len() as i64) < limit;
            if let Some(row) = rows.into_iter().find(|r| r.status.is_resumable()) {
                return Ok(Some(row));
            }
            if all_listed {
                return Ok(None);
            }
            limit = limit.saturating_mul(16);
        }
    }

    /// Asks a running scan to stop, on whichever instance it runs; it
    /// records `cancelled` within a second here, and elsewhere as soon as
    /// its instance hears (a wake-up on PostgreSQL, else its next heartbeat).
    pub async fn cancel(&self, scan_id: &ScanId) -> StoreResult<CancelOutcome> {
        if self.inner.registry.cancel(scan_id) {
            return Ok(CancelOutcome::Requested);
        }
        Ok(match self.inner.store.request_cancel(scan_id).await? {
            None => CancelOutcome::NotFound,
            Some(ScanStatus::Running) => CancelOutcome::Requested,
            Some(status) => CancelOutcome::NotRunning(status),
        })
    }

    /// Follows the wake-ups other instances send, where the database carries
    /// them: watchers here of their scans read the database at once, and a
    /// cancel asked elsewhere reaches the scan running here.
    pub async fn spawn_wakeup_listener(&self) -> StoreResult<()> {
        let Some(mut wakeups) = self.inner.store.wakeups().await? else {
            return Ok(());
        };
        self.inner
            .wakeups
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            loop {
                let wakeup = tokio::select! {
                    _ = inner.shutdown.cancelled() => return,
                    next = wakeups.next() => next,
                };
                match wakeup {
                    Some(Wakeup::Event { scan_id, id }) => inner.registry.wake(&scan_id, id),
                    Some(Wakeup::Cancel(scan_id)) => {
                        inner.registry.cancel(&scan_id);
                    }
                    None => return,
                }
            }
        });
        Ok(())
    }

    /// Makes `row`, a running scan this instance owns, live here without a
    /// scan task: the caller reports its changes (synthetic scans of the
    /// load generator).
    #[cfg(feature = "bench")]
    pub(crate) fn adopt(&self, row: ScanRow) -> progress::Reporter {
        let channel = self
            .inner
            .registry
            .register(&row.scan_id, CancellationToken::new());
        progress::Reporter::start(
            &self.inner.journal,
            row,
            self.inner.instance.clone(),
            channel,
            CancellationToken::new(),
        )
    }

    /// This process, as the owner of the leases it holds.
    #[cfg(feature = "bench")]
    pub(crate) fn instance(&self) -> &str {
        &self.inner.instance
    }

    fn spawn(&self, row: ScanRow, resumed: bool) {
        let inner = self.inner.clone();
        let cancel = CancellationToken::new();
        // Registered before the task runs, so a watcher arriving right after
        // the start answer finds the channel.
        let channel = inner.registry.register(&row.scan_id, cancel.clone());
        self.inner
            .tasks
            .spawn(runner::run(inner, row, resumed, cancel, channel));
    }

    /// Waits (at most `limit`) for every scan task to end after shutdown.
    pub async fn drain(&self, limit: Duration) {
        self.inner.tasks.close();
        if tokio::time::timeout(limit, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("scans did not stop in time");
        }
    }
}
