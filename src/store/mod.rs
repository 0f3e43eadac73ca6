//! Persistence: the `Store` trait every backend implements, and the row types
//! that travel through it.
//!
//! Everything above this module talks to `Arc<dyn Store>` only. One method is
//! one unit of work and owns its transaction; ids and timestamps are made in
//! Rust, so no backend depends on `RETURNING`. Writes of a running scan carry
//! the owner of its lease and change nothing once the lease is lost.

pub mod customers;
mod dialect;
mod mysql;
mod postgres;
mod reach;
mod scan_id;
pub mod schema;
mod sql;
mod sqlite;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use thiserror::Error;

pub use mysql::MySqlStore;
pub use postgres::PostgresStore;
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

pub use customers::CustomerSettings;
pub use reach::CONNECT_LIMIT;
pub use scan_id::{InvalidScanId, ScanId};
pub use schema::Report;

use crate::i18n::Texts;

/// A database failure. Never a user's mistake: routes answer 500/503.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported DATABASE_URL scheme {0:?}: use sqlite://…, postgres://… or mysql://… (mariadb://…)"
    )]
    UnsupportedUrl(String),
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    /// The database cannot be used as it is; says what to do.
    #[error("calscan cannot use this database: {0}")]
    Refused(String),
    /// The first connection failed: a sentence naming where and why.
    #[error("{0}")]
    Connect(String),
    /// No answer within [`ANSWER_LIMIT`] (a connection gone silent).
    #[error("the database did not answer within {} s", ANSWER_LIMIT.as_secs())]
    TimedOut,
}

/// How long a scan's unit of work may wait for the database's answer
/// before it counts as an outage: a connection whose peer went silent
/// (a network gone, a host gone) would otherwise hang until TCP gives up.
pub const ANSWER_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// `work`, or [`StoreError::TimedOut`] after [`ANSWER_LIMIT`]. What the
/// work did is then unknown: it is for work that may run again.
pub async fn answer_within<T>(
    work: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    tokio::time::timeout(ANSWER_LIMIT, work)
        .await
        .unwrap_or(Err(StoreError::TimedOut))
}

impl StoreError {
    /// Whether the database could not be reached, did not answer in time,
    /// or could not take the write just now (SQLite's disk full, its file
    /// locked by another process, a read-only or failing disk; a server
    /// shutting down or out of connections), as against a statement it
    /// refused: the caller may try again once the database is back.
    pub fn is_unavailable(&self) -> bool {
        self.outage().is_some()
    }

    /// What kind of outage this is, if it is one.
    pub fn outage(&self) -> Option<Outage> {
        let error = match self {
            Self::Database(error) => error,
            Self::TimedOut => return Some(Outage::Unreachable),
            _ => return None,
        };
        match error {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
                Some(Outage::Unreachable)
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Some(Outage::Unreachable),
            sqlx::Error::Database(e) => Outage::of_database(e.as_ref()),
            _ => None,
        }
    }
}

/// Why the database cannot take a statement for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// No connection: refused, reset, timed out, or the server shutting down.
    Unreachable,
    /// SQLite: no space left on the disk.
    DiskFull,
    /// SQLite: another process holds the database's lock.
    Locked,
    /// SQLite: the file cannot be written (read-only, or an I/O error).
    WriteFailed,
}

impl Outage {
    /// From the error a database answered with: SQLite's result codes,
    /// PostgreSQL's SQLSTATEs, MySQL's error numbers.
    fn of_database(error: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<Self> {
        if let Some(mysql) = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            // Shutting down, too many connections, connection killed.
            if matches!(mysql.number(), 1053 | 1040 | 1927) {
                return Some(Self::Unreachable);
            }
        }
        let code = error.code()?;
        if error
            .try_downcast_ref::<sqlx::sqlite::SqliteError>()
            .is_some()
        {
            // The primary result code is the low byte of an extended one.
            return match code.parse::<i32>().ok()? & 0xff {
                5 | 6 => Some(Self::Locked),
                13 => Some(Self::DiskFull),
                8 | 10 | 14 => Some(Self::WriteFailed),
                _ => None,
            };
        }
        match code.as_ref() {
            // Connection exceptions (both servers); PostgreSQL shutting
            // down, not accepting connections yet, too many connections.
            c if c.starts_with("08") => Some(Self::Unreachable),
            "57P01" | "57P02" | "57P03" | "53300" => Some(Self::Unreachable),
            _ => None,
        }
    }
}

/// How the README names a backend.
pub fn backend_name(backend: &str) -> &str {
    match backend {
        "postgres" => "PostgreSQL",
        "mysql" => "MySQL/MariaDB",
        "sqlite" => "SQLite",
        other => other,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long a request waits for a database connection before it answers
/// 503 (PostgreSQL and MySQL; SQLite's one writer queues its writes).
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the database `url` names and applies pending migrations, with
/// calscan's own customer table.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    connect_with(url, &CustomerSettings::default()).await
}

/// Opens the database `url` names, judges it as `migrate --check` does,
/// applies pending migrations and reads the customer table's layout.
pub async fn connect_with(url: &str, customers: &CustomerSettings) -> StoreResult<Arc<dyn Store>> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite => {
            let (writer, reader) = SqliteStore::open(url).await?;
            Arc::new(SqliteStore::assemble(writer, reader, customers).await?)
        }
        Backend::Postgres => {
            let (writer, reader) = PostgresStore::open(url).await?;
            Arc::new(PostgresStore::assemble(writer, reader, customers).await?)
        }
        Backend::MySql => {
            let (writer, reader) = MySqlStore::open(url).await?;
            Arc::new(MySqlStore::assemble(writer, reader, customers).await?)
        }
    })
}

/// What the database `url` names holds and what migrating it would do,
/// changing nothing (`calscan migrate --check`).
pub async fn check(url: &str, customers: &CustomerSettings) -> StoreResult<Report> {
    match Backend::of(url)? {
        Backend::Sqlite => {
            let pool = SqliteStore::open_to_read(url).await?;
            SqliteStore::inspect(&pool, customers).await
        }
        Backend::Postgres => {
            let (pool, _) = PostgresStore::open(url).await?;
            PostgresStore::inspect(&pool, customers).await
        }
        Backend::MySql => {
            let (pool, _) = MySqlStore::open(url).await?;
            MySqlStore::inspect(&pool, customers).await
        }
    }
}

enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn of(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            return Ok(Self::Sqlite);
        }
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Ok(Self::Postgres);
        }
        if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            return Ok(Self::MySql);
        }
        Err(StoreError::UnsupportedUrl(
            url.split_once("://")
                .map_or(url, |(scheme, _)| scheme)
                .to_owned(),
        ))
    }
}

/// How far a session's expiry must lag before a request moves it, at most:
/// most requests only read their session. Less for a short idle timeout
/// (a sixtieth of it), so that the expiry stays exact to that.
const SESSION_SLIDE_MS: i64 = 60_000;

/// A case-folded `LIKE` pattern that finds `query` anywhere, with the
/// wildcards in it taken literally. The escape character is `!`: a
/// backslash means something else in MySQL's string literals.
fn like_pattern(query: &str) -> String {
    let folded = query
        .trim()
        .to_lowercase()
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_");
    format!("%{folded}%")
}

/// What a sweep does with a scan row another transaction holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Passes it over: its owner is writing it, so it is not stale (the
    /// background sweeper).
    Skip,
    /// Waits for it and judges it as it is then: a start must not find a
    /// dead scan that a sweep elsewhere is just interrupting still running.
    Wait,
}

/// Where a scan stands. `running` is the only state a scan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScanStatus {
    Running,
    Completed,
    Error,
    Cancelled,
    /// Its process died or lost its lease.
    Interrupted,
}

impl ScanStatus {
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Completed,
        Self::Error,
        Self::Cancelled,
        Self::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    /// Whether `resume` may continue a scan in this state.
    pub fn is_resumable(self) -> bool {
        matches!(self, Self::Interrupted | Self::Error | Self::Cancelled)
    }
}

impl FromStr for ScanStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "error" => Self::Error,
            "cancelled" => Self::Cancelled,
            "interrupted" => Self::Interrupted,
            other => return Err(StoreError::Corrupt(format!("scan status {other:?}"))),
        })
    }
}

impl fmt::Display for ScanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mode a scan was asked for.
///
/// An incremental scan (the default) asks Calendly only for events starting
/// at or after the last completed scan's start minus the look-back: a
/// booking made since then starts after it was made, so it is among them.
/// Without a completed scan it reads every event, as a full scan does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    #[default]
    Incremental,
    Full,
}

impl ScanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::Full => "full",
        }
    }
}

impl FromStr for ScanMode {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<Self> {
        match s {
            "incremental" => Ok(Self::Incremental),
            "full" => Ok(Self::Full),
            other => Err(StoreError::Corrupt(format!("scan mode {other:?}"))),
        }
    }
}

/// The figures of a scan that change while it runs; written as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// 0–100, never lower than before.
    pub progress: i64,
    pub current_step: Texts,
    pub events_scanned: i64,
    pub events_total: Option<i64>,
    pub emails_found: i64,
    pub new_count: i64,
    pub existing_count: i64,
    /// The newest event id of the scan (log lines and progress share the sequence).
    pub last_event_id: i64,
    /// When the scan expects to be done (milliseconds since the epoch), once
    /// it can tell.
    pub eta_at_ms: Option<i64>,
    /// The start of the completed scan an incremental scan reads on from
    /// (milliseconds since the epoch), for its summary.
    pub previous_scan_ms: Option<i64>,
}

/// Counts for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Scans by status, as stored.
    pub scans_by_status: Vec<(String, i64)>,
    pub customers: i64,
}

/// One row of `scan_progress`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRow {
    pub scan_id: ScanId,
    pub status: ScanStatus,
    pub mode: ScanMode,
    pub figures: Progress,
    /// In German (the original's column) and English.
    pub error_message: Option<Texts>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One row of `scan_logs`. `id` counts per scan, shared with SSE event ids;
/// the line is kept in German and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub id: i64,
    pub message: Texts,
    pub created_at: DateTime<Utc>,
}

/// A scan about to start.
#[derive(Debug, Clone)]
pub struct NewScan {
    pub scan_id: ScanId,
    pub mode: ScanMode,
    pub owner: String,
    pub lease_until_ms: i64,
    pub started_at: DateTime<Utc>,
    pub figures: Progress,
    pub logs: Vec<LogRow>,
}

/// What `start_scan` did.
#[derive(Debug, Clone, PartialEq)]
pub enum StartOutcome {
    Started(Box<ScanRow>),
    /// Another scan holds the running slot: its id.
    AlreadyRunning(String),
}

/// What `resume_scan` did.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumeOutcome {
    Resumed(Box<ScanRow>),
    NotFound,
    /// The scan is in a state that cannot be resumed (running or completed).
    NotResumable(ScanStatus),
    /// Another scan holds the running slot: its id.
    AlreadyRunning(String),
}

/// One booking as the scan saves it.
#[derive(Debug, Clone)]
pub struct Booking {
    /// Normalized (trimmed, lower-cased).
    pub email: String,
    /// The display name.
    pub name: Option<String>,
    /// Calendly's `first_name` and `last_name`, when the event type asks.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The email was in the customer table when the scan began, so the
    /// table need not be searched for it.
    pub listed: bool,
    /// The scan read the customer table up to this key: only rows after it
    /// are searched for an email not listed.
    pub table_read_up_to: Option<i64>,
    pub invitee_uri: String,
    pub event_uri: String,
    pub start_time: DateTime<Utc>,
    pub canceled: bool,
}

impl Booking {
    /// The booking of `invitee` at the event `event_uri`; `None` without a
    /// usable email.
    pub fn of(
        invitee: &crate::calendly::model::Invitee,
        event_uri: &str,
        start_time: DateTime<Utc>,
    ) -> Option<Self> {
        // PostgreSQL's text cannot hold a NUL; no name needs one.
        let clean = |name: Option<String>| name.map(|n| n.replace('\0', ""));
        Some(Self {
            email: invitee.normalized_email()?,
            name: clean(invitee.display_name()),
            first_name: clean(invitee.first_name.clone()),
            last_name: clean(invitee.last_name.clone()),
            listed: false,
            table_read_up_to: None,
            invitee_uri: invitee.uri.clone(),
            event_uri: event_uri.to_owned(),
            start_time,
            canceled: invitee.status == crate::calendly::model::Status::Canceled,
        })
    }

    /// The name as the customer table takes it.
    pub fn person(&self) -> customers::PersonName<'_> {
        customers::PersonName {
            full: self.name.as_deref(),
            first: self.first_name.as_deref(),
            last: self.last_name.as_deref(),
        }
    }
}

/// The customers there are when a scan begins: only emails not among them
/// are searched for in the customer table, and only among the rows added
/// since, where the table's key counts up.
#[derive(Debug, Clone, Default)]
pub struct KnownCustomers {
    /// Normalized.
    pub emails: HashSet<String>,
    /// The highest key of the table then (0 when empty); `None` where the
    /// key does not count up.
    pub up_to: Option<i64>,
    /// The longest email the table's email column takes, in characters.
    pub email_chars: Option<i64>,
}

impl KnownCustomers {
    /// Whether the customer table takes `email` (it is never cut).
    pub fn fits(&self, email: &str) -> bool {
        customers::fits(email, self.email_chars)
    }

    /// Takes in `newer`, what [`Store::customers_after`] read.
    pub fn add(&mut self, newer: KnownCustomers) {
        self.emails.extend(newer.emails);
        self.up_to = self.up_to.max(newer.up_to);
    }

    /// `booking`, marked with what is known of its email.
    pub fn mark(&self, booking: Booking) -> Booking {
        Booking {
            listed: self.emails.contains(&booking.email),
            table_read_up_to: self.up_to,
            ..booking
        }
    }
}

/// A Calendly webhook delivery to take in.
#[derive(Debug, Clone)]
pub struct WebhookImport {
    /// The delivery's identity: its event kind and invitee URI.
    pub delivery_key: String,
    /// `invitee.created` or `invitee.canceled`.
    pub event: String,
    pub booking: Booking,
    pub received_at: DateTime<Utc>,
}

/// A delivery taken in, for the admin page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub event: String,
    pub email: String,
    pub name: Option<String>,
    pub event_uri: String,
    pub received_at: DateTime<Utc>,
}

/// A Calendly webhook subscription made by `calscan webhooks subscribe`,
/// with the signing key calscan generated for it.
#[derive(Clone)]
pub struct WebhookSubscriptionRow {
    /// Calendly's URI of the subscription.
    pub uri: String,
    pub callback_url: String,
    pub signing_key: secrecy::SecretString,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for WebhookSubscriptionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSubscriptionRow")
            .field("uri", &self.uri)
            .field("callback_url", &self.callback_url)
            .field("signing_key", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// This scan's email counts after an event was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailCounts {
    pub emails_found: i64,
    pub new_count: i64,
}

/// One scan's share of a group write ([`Store::write_scans`]).
#[derive(Debug, Clone, Copy)]
pub struct ScanWrite<'a> {
    pub scan_id: &'a str,
    pub owner: &'a str,
    pub figures: &'a Progress,
    pub logs: &'a [LogRow],
    pub finish: Option<Finish<'a>>,
}

/// How a scan ends.
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    pub status: ScanStatus,
    pub error_message: Option<&'a Texts>,
    pub completed_at: DateTime<Utc>,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours, extended.
    Held,
    /// Still ours, extended, and someone asked (perhaps on another instance)
    /// that the scan stop.
    CancelRequested,
    /// Not ours any more: the scan stops without writing.
    Lost,
}

/// A wake-up from another instance sharing the database. It only says where
/// to look: the tables hold what happened, so a lost or merged wake-up loses
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// The scan wrote events up to this id.
    Event { scan_id: String, id: i64 },
    /// Someone asked that the scan stop.
    Cancel(String),
}

impl Wakeup {
    pub fn event(scan_id: &str, id: i64) -> Self {
        Self::Event {
            scan_id: scan_id.to_owned(),
            id,
        }
    }

    /// `e <scan_id> <id>` or `c <scan_id>`: short, as notifications must be.
    pub fn to_payload(&self) -> String {
        match self {
            Self::Event { scan_id, id } => format!("e {scan_id} {id}"),
            Self::Cancel(scan_id) => format!("c {scan_id}"),
        }
    }

    /// The wake-up a payload carries; `None` for anything else.
    pub fn from_payload(payload: &str) -> Option<Self> {
        let mut parts = payload.split(' ');
        let wakeup = match (parts.next()?, parts.next()?) {
            ("e", scan_id) => Self::Event {
                scan_id: scan_id.to_owned(),
                id: parts.next()?.parse().ok()?,
            },
            ("c", scan_id) => Self::Cancel(scan_id.to_owned()),
            _ => return None,
        };
        parts.next().is_none().then_some(wakeup)
    }
}

/// One customer: a row of the customer table with calscan's figures for its
/// email (none for a customer calscan has never seen book).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Customer {
    /// As the customer table holds it.
    pub email: String,
    pub name: Option<String>,
    pub bookings: i64,
    /// RFC 3339, UTC, to the millisecond.
    #[serde(serialize_with = "crate::time::serialize_opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_booking_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize_opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_booking_at: Option<DateTime<Utc>>,
    /// The scan that added the customer to the table.
    pub created_by_scan: Option<String>,
    /// When calscan first saw the customer book.
    #[serde(serialize_with = "crate::time::serialize_opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<DateTime<Utc>>,
}

/// The persistence calscan needs. Every backend passes the same tests.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// `sqlite`, `postgres` or `mysql`.
    fn backend(&self) -> &'static str;

    /// Whether only this process uses the database, so that a scan left
    /// `running` at start-up belongs to a dead process.
    fn single_process(&self) -> bool;

    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;

    /// Inserts a running scan unless another one runs.
    async fn start_scan(&self, scan: &NewScan) -> StoreResult<StartOutcome>;

    /// Makes an `interrupted`, `error` or `cancelled` scan `running` again
    /// under `owner`, appending `logs`.
    async fn resume_scan(
        &self,
        scan_id: &ScanId,
        owner: &str,
        lease_until_ms: i64,
        logs: &[LogRow],
    ) -> StoreResult<ResumeOutcome>;

    async fn scan(&self, scan_id: &ScanId) -> StoreResult<Option<ScanRow>>;

    /// The newest `limit` scans, newest first.
    async fn scans(&self, limit: i64) -> StoreResult<Vec<ScanRow>>;

    /// The newest completed scan.
    async fn last_completed(&self) -> StoreResult<Option<ScanRow>>;

    /// Appends a line to a finished scan's log, after its `done`: the line
    /// takes the next id and `done` the one after it, as for every finished
    /// scan. `false` when there is no such finished scan.
    async fn append_to_finished(
        &self,
        scan_id: &ScanId,
        message: &Texts,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Takes in a webhook delivery: saves its booking as a scan would, once.
    /// `false` for a repeat of a delivery already taken in (nothing changes).
    async fn import_webhook(&self, import: &WebhookImport) -> StoreResult<bool>;

    /// The newest `limit` deliveries taken in, newest first.
    async fn recent_webhooks(&self, limit: i64) -> StoreResult<Vec<WebhookRow>>;

    /// Records a subscription `calscan webhooks subscribe` made, replacing
    /// one with the same URI.
    async fn save_webhook_subscription(&self, row: &WebhookSubscriptionRow) -> StoreResult<()>;

    /// The subscriptions recorded, oldest first.
    async fn webhook_subscriptions(&self) -> StoreResult<Vec<WebhookSubscriptionRow>>;

    /// Forgets the subscription `uri`; `false` when none was recorded.
    async fn delete_webhook_subscription(&self, uri: &str) -> StoreResult<bool>;

    /// How many scans have each status, and how many customers there are.
    async fn totals(&self) -> StoreResult<Totals>;

    /// The most events any completed scan listed: about what a full scan
    /// reads.
    async fn most_events_listed(&self) -> StoreResult<Option<i64>>;

    /// Log lines with `id > after`, oldest first, at most `limit`.
    async fn logs_after(
        &self,
        scan_id: &ScanId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>>;

    /// Writes each scan's share in one transaction (group commit): its
    /// figures, its log lines, and its end if it ends. For each, in order,
    /// whether `owner` still held the scan; nothing is written for a scan
    /// that it did not.
    async fn write_scans(&self, writes: &[ScanWrite<'_>]) -> StoreResult<Vec<bool>>;

    /// Records one event of the scan as done, with its bookings: customers
    /// upserted by email, the scan's emails counted, all in one transaction
    /// (the checkpoint). Returns what this event added to the scan's email
    /// counts (nothing when it was recorded before); `None`: the lease is
    /// lost, nothing was written.
    async fn record_event(
        &self,
        scan_id: &ScanId,
        owner: &str,
        event_uri: &str,
        bookings: &[Booking],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<EmailCounts>>;

    /// This scan's email counts so far.
    async fn email_counts(&self, scan_id: &ScanId) -> StoreResult<EmailCounts>;

    /// The URIs of the events the scan has recorded (its checkpoint).
    async fn done_events(&self, scan_id: &ScanId) -> StoreResult<HashSet<String>>;

    /// Extends the lease of a scan `owner` runs, and says whether someone
    /// asked it to stop.
    async fn renew_lease(&self, scan_id: &ScanId, owner: &str, until_ms: i64)
    -> StoreResult<Lease>;

    /// When the earliest lease of a running scan ends (unix ms).
    async fn next_lease_end(&self) -> StoreResult<Option<i64>>;

    /// Asks the running scan to stop, whichever instance runs it; its owner
    /// learns at its next heartbeat, or at once from a [`Wakeup::Cancel`].
    /// Returns the scan's status (`Running`: asked), `None` if there is no
    /// such scan.
    async fn request_cancel(&self, scan_id: &ScanId) -> StoreResult<Option<ScanStatus>>;

    /// Marks `interrupted` every running scan whose lease ended before
    /// `now_ms` (or every running scan, with `all`), appending `message` as a
    /// log line; never one of `alive` (the caller's own: a process does not
    /// interrupt the scans it runs, whatever their lease says). Returns them
    /// as they are now. `locked` says what to do with a scan another
    /// transaction is writing.
    #[allow(clippy::too_many_arguments)]
    async fn interrupt_stale(
        &self,
        now_ms: i64,
        all: bool,
        alive: &[String],
        locked: Locked,
        message: &Texts,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<ScanRow>>;

    /// The normalized emails of every row of the customer table, and how
    /// far it was read.
    async fn known_customers(&self) -> StoreResult<KnownCustomers>;

    /// The rows added to the customer table since `known` was read (the
    /// scan's own, anyone's), for [`KnownCustomers::add`], so that lookups
    /// stay among the newest.
    async fn customers_after(&self, known: &KnownCustomers) -> StoreResult<KnownCustomers>;

    /// Customers whose email or name contains `query` (case-insensitive),
    /// newest first, and how many match in all.
    async fn customers(
        &self,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Customer>, i64)>;

    /// Creates a session; `id_hash` is a digest of the cookie value. It
    /// ends at `expires_ms` unless used, and at `ends_ms` in any case.
    async fn create_session(
        &self,
        id_hash: &str,
        username: &str,
        expires_ms: i64,
        ends_ms: i64,
    ) -> StoreResult<()>;

    /// The user of a live session, sliding its expiry to `expires_ms` (never
    /// past its end).
    async fn touch_session(
        &self,
        id_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<Option<String>>;

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;

    /// The wake-ups of every write a scan makes, from every instance, where
    /// the database carries them (PostgreSQL's `LISTEN`); `None` elsewhere.
    async fn wakeups(&self) -> StoreResult<Option<BoxStream<'static, Wakeup>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_mode_or_status_that_is_neither_known_value_is_corrupt() {
        for mode in [ScanMode::Incremental, ScanMode::Full] {
            assert_eq!(mode.as_str().parse::<ScanMode>().unwrap(), mode);
        }
        for status in ScanStatus::ALL {
            assert_eq!(status.as_str().parse::<ScanStatus>().unwrap(), status);
        }
        for junk in ["", "Full", "partial", "full "] {
            assert!(
                matches!(junk.parse::<ScanMode>(), Err(StoreError::Corrupt(_))),
                "{junk:?}"
            );
            assert!(
                matches!(junk.parse::<ScanStatus>(), Err(StoreError::Corrupt(_))),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn wakeups_survive_their_payload_and_nothing_else_parses() {
        for wakeup in [
            Wakeup::event("scan_01jq0000000000000000000000", 42),
            Wakeup::Cancel("scan_01jq0000000000000000000000".into()),
        ] {
            assert_eq!(Wakeup::from_payload(&wakeup.to_payload()), Some(wakeup));
        }
        for junk in [
            "",
            "e",
            "e scan",
            "e scan x",
            "e scan 1 2",
            "c",
            "c a b",
            "x scan 1",
        ] {
            assert_eq!(Wakeup::from_payload(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern(" 50%_Off! "), "%50!%!_off!!%");
    }
}
