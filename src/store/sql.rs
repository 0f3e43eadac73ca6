//! The one implementation of [`Store`] over SQL, shared by SQLite,
//! PostgreSQL and MySQL/MariaDB.
//!
//! The statements are written once, with `?` placeholders bound in the
//! order they appear; a [`Dialect`] supplies what differs between the
//! databases: placeholder syntax, row locks, the upsert and insert-or-ignore
//! forms, `GREATEST`/`MAX`, how timestamps are stored, and how other
//! instances are woken.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use sqlx::{
    AssertSqlSafe, ColumnIndex, Connection, Database, Decode, Encode, Executor, IntoArguments,
    Pool, Row, Transaction, Type, query::Query,
};

use super::customers::{Column, CustomerLayout, CustomerSettings};
use super::dialect::Dialect;
use super::schema::{self, CustomerFindings, Report};
use super::{
    Booking, Customer, EmailCounts, KnownCustomers, Lease, Locked, LogRow, NewScan, Progress,
    ResumeOutcome, ScanId, ScanRow, ScanStatus, ScanWrite, StartOutcome, Store, StoreError,
    StoreResult, Totals, Wakeup, WebhookImport, WebhookRow, WebhookSubscriptionRow,
};
use crate::i18n::Texts;

/// A scan row's columns, its figures read as [`FIGURE_COLUMNS`] says.
static SCAN_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let figures = FIGURE_COLUMNS
        .iter()
        .map(|c| format!("{} AS {}", c.read, c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "scan_id, status, mode, {figures}, error_message, error_message_en, started_at, \
         completed_at"
    )
});

/// Whether the scan row `p` is another program's (no owner) with lines of
/// its own to number or an end to give a `done` id: it runs, or its newest
/// id is not above its last line, or a line has no event id yet (MySQL).
const FOREIGN_PENDING: &str = "p.owner IS NULL AND (p.status = 'running' \
     OR p.last_event_id <= (SELECT COALESCE(MAX(l.event_id), 0) FROM scan_logs l \
     WHERE l.scan_id = p.scan_id) \
     OR EXISTS (SELECT 1 FROM scan_logs l WHERE l.scan_id = p.scan_id AND l.event_id = 0))";

/// How long a scan without a lease (one the PHP page started: it keeps
/// none) counts as running; after that it is dead. The PHP request ran for
/// about five minutes at the most.
const LEASELESS_SCAN_LIMIT: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// The journal view of a writer connection where [`Dialect::JOURNAL_VIEW`]
/// says it has one: a row inserted into it is a scan's figures, bound as
/// [`figure_row`] with the line's columns NULL, or one of its lines, the
/// scan id and [`JOURNAL_LINE_COLUMNS`] bound and the rest NULL.
pub(super) const JOURNAL: &str = "calscan_journal";

/// The journal view's columns after the figures' [`figure_value_names`].
pub(super) const JOURNAL_LINE_COLUMNS: [&str; 4] =
    ["l_id", "l_message", "l_message_en", "l_created_at"];

/// What the journal's statement fails with when a figures row finds its
/// scan no longer running under its owner: then it wrote nothing.
pub(super) const LEASE_GONE: &str = "calscan: a lease is gone";

/// Rows at most in one journal statement (at most [`FIGURE_VALUES`] values
/// a row, far below SQLite's 32,766 parameters). The trigger runs once a
/// row, a multi-row INSERT does not: the long way wrote a burst of 1,000
/// lines of one scan about a fifth faster (`loadgen logs`), the view 100
/// scans with a line each about a fifth faster (`loadgen journal`).
const JOURNAL_ROWS: usize = 256;

/// A figures row and a line row of the journal's statement.
static JOURNAL_FIGURES_ROW: LazyLock<String> = LazyLock::new(|| {
    let nulls = vec!["NULL"; JOURNAL_LINE_COLUMNS.len()].join(", ");
    format!("({}, {nulls})", vec!["?"; FIGURE_VALUES].join(", "))
});
static JOURNAL_LINE_ROW: LazyLock<String> = LazyLock::new(|| {
    let nulls = "NULL, ".repeat(FIGURE_VALUES - 1);
    let line = vec!["?"; JOURNAL_LINE_COLUMNS.len()].join(", ");
    format!("(?, {nulls}{line})")
});

/// `scan_logs (scan_id, id, message, message_en, created_at)`: the table
/// and columns a line is inserted into, its values bound in this order.
pub(super) fn log_columns<D: Dialect>() -> String {
    format!(
        "scan_logs (scan_id, {}, message, message_en, created_at)",
        D::LOG_ID
    )
}

/// A value bound to a statement's next `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Int(i64),
    MaybeInt(Option<i64>),
    Text(&'a str),
}

/// One column of a scan's figures: its name, how a scan row reads it, and
/// the field of [`Progress`] written into it.
pub(super) struct FigureColumn {
    pub(super) name: &'static str,
    read: &'static str,
    value: fn(&Progress) -> Value<'_>,
}

/// A [`FigureColumn`]: one line a column in [`FIGURE_COLUMNS`].
const fn figure(
    name: &'static str,
    read: &'static str,
    value: fn(&Progress) -> Value<'_>,
) -> FigureColumn {
    FigureColumn { name, read, value }
}

/// The columns of a scan's figures, each beside the value it takes: every
/// statement that writes figures binds them through [`figure_values`], in
/// this order, so that a column cannot get another's value. Those the PHP
/// scanner's table lets be NULL read as it meant them (MySQL adopts that
/// table; the others never hold NULL there).
#[rustfmt::skip]
pub(super) const FIGURE_COLUMNS: [FigureColumn; 11] = [
    figure("progress", "COALESCE(progress, 0)", |f| Value::Int(f.progress)),
    figure("current_step", "COALESCE(current_step, '')", |f| Value::Text(&f.current_step.de)),
    figure("current_step_en", "COALESCE(current_step_en, current_step, '')", |f| Value::Text(&f.current_step.en)),
    figure("events_scanned", "COALESCE(events_scanned, 0)", |f| Value::Int(f.events_scanned)),
    figure("events_total", "events_total", |f| Value::MaybeInt(f.events_total)),
    figure("emails_found", "COALESCE(emails_found, 0)", |f| Value::Int(f.emails_found)),
    figure("new_count", "COALESCE(new_count, 0)", |f| Value::Int(f.new_count)),
    figure("existing_count", "COALESCE(existing_count, 0)", |f| Value::Int(f.existing_count)),
    figure("last_event_id", "last_event_id", |f| Value::Int(f.last_event_id)),
    figure("eta_at", "eta_at", |f| Value::MaybeInt(f.eta_at_ms)),
    figure("previous_scan_at", "previous_scan_at", |f| Value::MaybeInt(f.previous_scan_ms)),
];

/// The values of `figures`, in the order of [`FIGURE_COLUMNS`].
pub(super) fn figure_values(figures: &Progress) -> impl Iterator<Item = Value<'_>> {
    FIGURE_COLUMNS.iter().map(|c| (c.value)(figures))
}

/// The keys [`Dialect::update_figures`] binds before a scan's figures.
const FIGURE_KEYS: [&str; 2] = ["scan_id", "owner"];

/// The values bound for each scan: [`FIGURE_KEYS`], then [`FIGURE_COLUMNS`].
pub(super) const FIGURE_VALUES: usize = FIGURE_KEYS.len() + FIGURE_COLUMNS.len();

/// What [`Dialect::update_figures`] binds for one scan, in the order of
/// [`figure_value_names`].
pub(super) fn figure_row<'a>(write: &ScanWrite<'a>) -> impl Iterator<Item = Value<'a>> {
    [Value::Text(write.scan_id), Value::Text(write.owner)]
        .into_iter()
        .chain(figure_values(write.figures))
}

/// A scan's figures from a row read with [`SCAN_COLUMNS`], by the names of
/// [`FIGURE_COLUMNS`].
fn figures_from_row<R: Row>(row: &R) -> StoreResult<Progress>
where
    for<'n> &'n str: ColumnIndex<R>,
    String: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    i64: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    Ok(Progress {
        progress: row.try_get("progress")?,
        current_step: Texts {
            de: row.try_get("current_step")?,
            en: row.try_get("current_step_en")?,
        },
        events_scanned: row.try_get("events_scanned")?,
        events_total: row.try_get("events_total")?,
        emails_found: row.try_get("emails_found")?,
        new_count: row.try_get("new_count")?,
        existing_count: row.try_get("existing_count")?,
        last_event_id: row.try_get("last_event_id")?,
        eta_at_ms: row.try_get("eta_at")?,
        previous_scan_ms: row.try_get("previous_scan_at")?,
    })
}

/// The names of a scan's values in the statement: `v_scan_id`, `v_owner`,
/// `v_progress`, …
pub(super) fn figure_value_names() -> Vec<String> {
    FIGURE_KEYS
        .into_iter()
        .chain(FIGURE_COLUMNS.iter().map(|c| c.name))
        .map(|c| format!("v_{c}"))
        .collect()
}

/// `progress = GREATEST(progress, v_progress), current_step = v_current_step,
/// …`: progress and the event id never go down. `target` qualifies the
/// assigned columns (`s.` where the database needs it), `source` the
/// values (`NEW.` in a trigger).
pub(super) fn figure_assignments<D: Dialect>(target: &str, source: &str) -> String {
    FIGURE_COLUMNS
        .iter()
        .map(|c| c.name)
        .map(|c| match c {
            "progress" | "last_event_id" => {
                format!("{target}{c} = {}({target}{c}, {source}v_{c})", D::GREATEST)
            }
            _ => format!("{target}{c} = {source}v_{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The insert of a running scan: scan id, mode, [`FIGURE_COLUMNS`], start,
/// owner and lease end, bound in that order.
fn start_scan_sql() -> String {
    let names: Vec<&str> = FIGURE_COLUMNS.iter().map(|c| c.name).collect();
    format!(
        "INSERT INTO scan_progress (scan_id, status, mode, {}, started_at, owner, \
         lease_until_ms) VALUES (?, 'running', ?, {}, ?, ?, ?)",
        names.join(", "),
        ["?"; FIGURE_COLUMNS.len()].join(", "),
    )
}

/// SQL with `?` placeholders, rewritten for `D`.
fn sql<D: Dialect>(text: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(D::placeholders(text).into_owned())
}

/// `options` that never hand out a connection inside a transaction: one
/// still in one when it comes back to the pool (its rollback failed, as a
/// rollback may when the disk is full) is closed, and the pool opens a
/// fresh one. `flush` first waits for a rollback queued on the connection
/// to run (SQLite runs it on the connection's thread, later, and counts the
/// transaction open until then); a connection that shows none has none
/// queued, and costs no round trip.
pub(super) fn never_inside_a_transaction<D: Database>(
    options: sqlx::pool::PoolOptions<D>,
    flush: bool,
) -> sqlx::pool::PoolOptions<D> {
    options.after_release(move |conn, _| {
        Box::pin(async move {
            if flush && conn.is_in_transaction() {
                conn.ping().await?;
            }
            let clean = !conn.is_in_transaction();
            if !clean {
                tracing::warn!("a database connection was left inside a transaction; it is closed");
            }
            Ok(clean)
        })
    })
}

/// A store over one SQL database. `writer` and `reader` are the same pool
/// except on SQLite, which has one writer and readers beside it.
#[derive(Debug, Clone)]
pub struct SqlStore<D: Database> {
    pub(super) writer: Pool<D>,
    pub(super) reader: Pool<D>,
    customers: Arc<CustomerSql>,
}

/// The statements over the customer table, made once from its layout.
#[derive(Debug)]
struct CustomerSql {
    layout: CustomerLayout,
    /// Whether a row has this normalized email.
    lookup: String,
    /// The same among the rows with a key above the one bound first, and
    /// the highest key, where the key counts up.
    lookup_after: Option<String>,
    max_key: Option<String>,
    /// The emails and keys of the rows with a key above the one bound.
    rows_after: Option<String>,
    insert: String,
    count: String,
    duplicates: String,
    emails: String,
    /// Every customer with calscan's figures, newest first; `{filter}` to fill.
    list: String,
    count_matching: String,
    /// The columns a search looks in.
    searched: Vec<String>,
    /// A booking's share of `customer_stats`: claiming the email's row, then
    /// counting the booking in it.
    claim_stats: String,
    count_booking: String,
}

impl CustomerSql {
    fn new<D: Dialect>(layout: CustomerLayout) -> Self {
        let q = D::quote;
        let table = q(&layout.table);
        let email = q(&layout.email);
        let normalized = |col: &str| format!("LOWER(TRIM({col}))");
        let names: Vec<String> = layout.name_columns().iter().map(|c| q(c)).collect();
        let name_expr = match names.as_slice() {
            [] => None,
            [one] => Some(format!("c.{one}")),
            [first, last, ..] => Some(D::join_names(&format!("c.{first}"), &format!("c.{last}"))),
        };
        let mut inserted = vec![email.clone()];
        inserted.extend(names.iter().cloned());
        inserted.extend(layout.stamps.iter().map(|c| q(c)));
        let joined = format!(
            "FROM {table} c LEFT JOIN customer_stats s ON s.email = {}",
            normalized(&format!("c.{email}"))
        );
        let mut searched = vec![format!("LOWER(c.{email})"), "s.name_folded".to_owned()];
        if let Some(name) = &name_expr {
            searched.push(format!("LOWER({name})"));
        }
        let (least, greatest) = (D::LEAST, D::GREATEST);
        Self {
            claim_stats: format!(
                "INSERT INTO customer_stats (email, bookings, created_at, updated_at) \
                 VALUES (?, 0, ?, ?) {}",
                D::on_email_conflict(&format!(
                    "updated_at = {greatest}(customer_stats.updated_at, {})",
                    D::inserted("updated_at")
                ))
            ),
            count_booking: format!(
                "UPDATE customer_stats SET name_folded = COALESCE(name_folded, ?), \
                 bookings = bookings + ?, \
                 first_booking_at = {least}(COALESCE(first_booking_at, ?), ?), \
                 last_booking_at = {greatest}(COALESCE(last_booking_at, ?), ?), \
                 created_by_scan = COALESCE(created_by_scan, ?) WHERE email = ?"
            ),
            lookup: format!(
                "SELECT 1 FROM {table} WHERE {} = ? LIMIT 1{}",
                normalized(&email),
                D::LOOKUP_LOCK
            ),
            lookup_after: layout.serial_key.then(|| {
                format!(
                    "SELECT 1 FROM {table} WHERE {} > ? AND {} = ? LIMIT 1{}",
                    q(&layout.order_by),
                    normalized(&email),
                    D::LOOKUP_LOCK
                )
            }),
            rows_after: layout.serial_key.then(|| {
                format!(
                    "SELECT {email}, CAST({key} AS {}) FROM {table} WHERE {key} > ? ORDER BY {key}",
                    D::INT64,
                    key = q(&layout.order_by),
                )
            }),
            max_key: layout.serial_key.then(|| {
                format!(
                    "SELECT CAST(MAX({}) AS {}) FROM {table}",
                    q(&layout.order_by),
                    D::INT64
                )
            }),
            insert: format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                inserted.join(", "),
                vec!["?"; inserted.len()].join(", ")
            ),
            count: format!("SELECT COUNT(*) FROM {table}"),
            duplicates: format!(
                "SELECT COUNT(*) - COUNT(DISTINCT {}) FROM {table} WHERE {email} IS NOT NULL",
                normalized(&email)
            ),
            emails: format!("SELECT {email} FROM {table} WHERE {email} IS NOT NULL"),
            list: format!(
                "SELECT c.{email} AS email, {} AS name, COALESCE(s.bookings, 0) AS bookings, \
                 s.first_booking_at, s.last_booking_at, s.created_by_scan, s.created_at \
                 {joined} {{filter}} ORDER BY c.{} DESC LIMIT ? OFFSET ?",
                name_expr
                    .as_deref()
                    .map_or("NULL".to_owned(), |n| format!("NULLIF({n}, '')")),
                q(&layout.order_by),
            ),
            count_matching: format!("SELECT COUNT(*) {joined} {{filter}}"),
            searched,
            layout,
        }
    }

    /// The `WHERE` of a search, and how many times it binds the pattern.
    fn filter(&self, query: &str) -> (String, usize) {
        if query.trim().is_empty() {
            return (String::new(), 0);
        }
        let terms: Vec<String> = self
            .searched
            .iter()
            .map(|c| format!("{c} LIKE ? ESCAPE '!'"))
            .collect();
        (format!("WHERE {}", terms.join(" OR ")), terms.len())
    }
}

/// How often a transaction the database aborted to break a deadlock is run.
const DEADLOCK_ATTEMPTS: u32 = 5;

/// After `attempt` of a transaction failed with `error`: whether to run it
/// again, having waited a moment. Only a deadlock the database broke (or a
/// serialization conflict) is run again: the whole transaction was rolled
/// back, so running it again is safe. Saving customers can meet one on
/// MySQL, where the locking lookup of a school's table without an index
/// locks the whole table against other writers of it.
async fn again_after(error: &StoreError, attempt: u32) -> bool {
    let StoreError::Database(sqlx::Error::Database(e)) = error else {
        return false;
    };
    if !matches!(e.code().as_deref(), Some("40001" | "40P01")) || attempt >= DEADLOCK_ATTEMPTS {
        return false;
    }
    let wait = rand::random_range(1..=5 * u64::from(attempt));
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    true
}

/// Runs the transaction `once` makes, again while [`again_after`] says so.
async fn again_on_deadlock<T, F, Fut>(mut once: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match once().await {
            Err(error) if again_after(&error, attempt).await => continue,
            done => return done,
        }
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'q> &'q str: Type<D> + Encode<'q, D>,
    String: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>,
    i64: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>,
    bool: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>,
    Option<i64>: for<'q> Encode<'q, D>,
    for<'q> Option<&'q str>: Encode<'q, D>,
    for<'n> &'n str: ColumnIndex<D::Row>,
    usize: ColumnIndex<D::Row>,
{
    /// A transaction on the writer, begun as this database wants a
    /// transaction that writes to begin.
    async fn begin_write(&self) -> StoreResult<Transaction<'static, D>> {
        Ok(match D::BEGIN_WRITE {
            Some(begin) => self.writer.begin_with(begin).await?,
            None => self.writer.begin().await?,
        })
    }

    /// Binds `values` to the next `?`s of `query`, in their order.
    fn bind_all<'q, 'v>(
        query: Query<'q, D, D::Arguments>,
        values: impl IntoIterator<Item = Value<'v>>,
    ) -> Query<'q, D, D::Arguments> {
        values.into_iter().fold(query, |query, value| match value {
            Value::Int(v) => query.bind(v),
            Value::MaybeInt(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
        })
    }

    /// Binds a line's values, in the order of [`log_columns`].
    fn bind_line<'q>(
        query: Query<'q, D, D::Arguments>,
        scan_id: &'q str,
        log: &'q LogRow,
    ) -> Query<'q, D, D::Arguments> {
        query
            .bind(scan_id)
            .bind(log.id)
            .bind(log.message.de.as_str())
            .bind(log.message.en.as_str())
            .bind(D::to_db(log.created_at))
    }

    /// The update of the figures of `writes`, bound.
    fn figures_update(writes: &[ScanWrite<'_>]) -> Query<'static, D, D::Arguments> {
        let update = sqlx::query(sql::<D>(&D::update_figures(writes.len())));
        Self::bind_all(update, writes.iter().flat_map(figure_row))
    }

    /// The insert of the running scan `scan`, bound.
    fn start_insert(scan: &NewScan) -> Query<'static, D, D::Arguments> {
        let insert = sqlx::query(sql::<D>(&start_scan_sql()))
            .bind(scan.scan_id.as_str())
            .bind(scan.mode.as_str());
        Self::bind_all(insert, figure_values(&scan.figures))
            .bind(D::to_db(scan.started_at))
            .bind(scan.owner.as_str())
            .bind(scan.lease_until_ms)
    }

    fn opt_time(row: &D::Row, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        row.try_get::<Option<D::Time>, _>(column)?
            .map(D::from_db)
            .transpose()
    }

    fn scan_from_row(row: &D::Row) -> StoreResult<ScanRow> {
        Ok(ScanRow {
            scan_id: ScanId::parse(row.try_get::<String, _>("scan_id")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            status: row.try_get::<String, _>("status")?.parse()?,
            mode: row.try_get::<String, _>("mode")?.parse()?,
            figures: figures_from_row(row)?,
            // The PHP scanner writes only the German one.
            error_message: row
                .try_get::<Option<String>, _>("error_message")?
                .map(|de| -> StoreResult<Texts> {
                    let en = row.try_get::<Option<String>, _>("error_message_en")?;
                    Ok(Texts {
                        en: en.unwrap_or_else(|| de.clone()),
                        de,
                    })
                })
                .transpose()?,
            // The PHP scanner's column lets it be NULL.
            started_at: Self::opt_time(row, "started_at")?.unwrap_or_default(),
            completed_at: Self::opt_time(row, "completed_at")?,
        })
    }

    async fn scan_in(
        conn: &mut D::Connection,
        scan_id: &str,
        lock: &str,
    ) -> StoreResult<Option<ScanRow>> {
        sqlx::query(sql::<D>(&format!(
            "SELECT {columns} FROM scan_progress WHERE scan_id = ?{lock}",
            columns = *SCAN_COLUMNS,
        )))
        .bind(scan_id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(Self::scan_from_row)
        .transpose()
    }

    async fn running_scan_id(conn: &mut D::Connection) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(sql::<D>(
            "SELECT scan_id FROM scan_progress WHERE status = 'running'",
        ))
        .fetch_optional(conn)
        .await?)
    }

    /// After the one-running-scan index refused `failed` (now unusable):
    /// the id of the scan that won.
    async fn winner(&self, failed: Transaction<'_, D>) -> StoreResult<String> {
        drop(failed);
        let mut conn = self.writer.acquire().await?;
        Ok(Self::running_scan_id(&mut conn).await?.unwrap_or_default())
    }

    /// Appends log lines, many rows per statement.
    async fn insert_logs(
        conn: &mut D::Connection,
        scan_id: &str,
        logs: &[LogRow],
    ) -> StoreResult<()> {
        let rows: Vec<(&str, &LogRow)> = logs.iter().map(|log| (scan_id, log)).collect();
        Self::insert_log_rows(conn, &rows).await
    }

    /// Inserts lines of any scans, 200 to a statement. A line already there
    /// is left as it is: a write tried again after a commit whose answer the
    /// connection lost finds its lines written (where the key is unique:
    /// not on MySQL, whose table is the PHP scanner's).
    async fn insert_log_rows(
        conn: &mut D::Connection,
        rows: &[(&str, &LogRow)],
    ) -> StoreResult<()> {
        // 5 values a row: far below every database's limit on parameters.
        const ROWS: usize = 200;
        for chunk in rows.chunks(ROWS) {
            let mut values = String::new();
            for i in 0..chunk.len() {
                values.push_str(if i == 0 {
                    "(?, ?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?, ?)"
                });
            }
            let text = D::insert_ignore(&format!("{} VALUES {values}", log_columns::<D>()));
            let mut insert = sqlx::query(sql::<D>(&text));
            for (scan_id, log) in chunk {
                insert = Self::bind_line(insert, scan_id, log);
            }
            insert.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Writes the figures and lines of `writes` in one statement into the
    /// [`JOURNAL`] view, whose trigger puts each where it belongs, all in
    /// the statement's own transaction. `false`: a lease is gone, and
    /// nothing was written.
    async fn write_journal(&self, writes: &[ScanWrite<'_>]) -> StoreResult<bool> {
        let mut rows: Vec<&str> = Vec::new();
        for w in writes {
            rows.push(&JOURNAL_FIGURES_ROW);
            rows.extend(std::iter::repeat_n(JOURNAL_LINE_ROW.as_str(), w.logs.len()));
        }
        let text = format!("INSERT INTO {JOURNAL} VALUES {}", rows.join(", "));
        let mut insert = sqlx::query(sql::<D>(&text));
        for w in writes {
            insert = Self::bind_all(insert, figure_row(w));
            for log in w.logs {
                insert = Self::bind_line(insert, w.scan_id, log);
            }
        }
        match insert.execute(&self.writer).await {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.message() == LEASE_GONE => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Sets the newest event id of a scan.
    async fn set_last_event_id(
        conn: &mut D::Connection,
        scan_id: &str,
        id: i64,
    ) -> StoreResult<()> {
        sqlx::query(sql::<D>(
            "UPDATE scan_progress SET last_event_id = ? WHERE scan_id = ?",
        ))
        .bind(id)
        .bind(scan_id)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Wakes the other instances when the transaction commits.
    async fn notify(conn: &mut D::Connection, wakeup: &Wakeup) -> StoreResult<()> {
        if let Some(statement) = D::NOTIFY {
            sqlx::query(sql::<D>(statement))
                .bind(wakeup.to_payload().as_str())
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    async fn email_counts_in(conn: &mut D::Connection, scan_id: &str) -> StoreResult<EmailCounts> {
        let (found, new): (i64, i64) = sqlx::query_as(sql::<D>(
            "SELECT COUNT(*), COUNT(CASE WHEN is_new THEN 1 END) FROM scan_emails \
             WHERE scan_id = ?",
        ))
        .bind(scan_id)
        .fetch_one(conn)
        .await?;
        Ok(EmailCounts {
            emails_found: found,
            new_count: new,
        })
    }

    /// Updates the figures of a scan `owner` runs; `false` when it is not theirs.
    async fn update_figures(
        conn: &mut D::Connection,
        writes: &[ScanWrite<'_>],
    ) -> StoreResult<Vec<bool>> {
        // FIGURE_VALUES (11) a scan: far below every database's limit on parameters.
        const SCANS: usize = 200;
        let mut held = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(SCANS) {
            let update = Self::figures_update(chunk);
            let matched = D::rows_affected(&update.execute(&mut *conn).await?);
            if matched == chunk.len() as u64 {
                held.extend(std::iter::repeat_n(true, chunk.len()));
                continue;
            }
            // Some lease is gone: which? The rows updated are still this
            // transaction's, running and under their owner.
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut query = sqlx::query(sql::<D>(&format!(
                "SELECT scan_id, owner FROM scan_progress \
                 WHERE status = 'running' AND scan_id IN ({marks})"
            )));
            for w in chunk {
                query = query.bind(w.scan_id);
            }
            let mut ours = HashSet::new();
            for row in query.fetch_all(&mut *conn).await? {
                let owner: Option<String> = row.try_get("owner")?;
                ours.insert((row.try_get::<String, _>("scan_id")?, owner));
            }
            held.extend(
                chunk
                    .iter()
                    .map(|w| ours.contains(&(w.scan_id.to_owned(), Some(w.owner.to_owned())))),
            );
        }
        Ok(held)
    }

    /// Saves one booking: the customer (inserted into the customer table
    /// when no row has its email; calscan's figures counted, a booking
    /// counting once however often it is seen) and, for a scan, the email
    /// among the scan's. What it added to the scan's email counts.
    async fn save_booking(
        &self,
        conn: &mut D::Connection,
        scan_id: Option<&str>,
        b: &Booking,
        now: DateTime<Utc>,
    ) -> StoreResult<EmailCounts> {
        let cs = &self.customers;
        if !cs.layout.fits(&b.email) {
            // A scan leaves these out with a log line; a webhook delivery of
            // one is taken in without a customer.
            tracing::warn!(table = %cs.layout.table, "an email too long for the customer table was not saved");
            return Ok(EmailCounts {
                emails_found: 0,
                new_count: 0,
            });
        }
        // The figures' row first: its key is the normalized email, so two
        // calscan writers of one email (a scan and a webhook, two instances)
        // queue here, and the second finds the first's customer below.
        sqlx::query(sql::<D>(&cs.claim_stats))
            .bind(b.email.as_str())
            .bind(D::to_db(now))
            .bind(D::to_db(now))
            .execute(&mut *conn)
            .await?;
        // Whether it was a customer before this booking: in the table when
        // the scan began, or since (the PHP page, an earlier event). Where
        // the scan read the table up to a key, only the rows after it are
        // searched: the table may have no index that fits.
        let known = b.listed
            || match (b.table_read_up_to, &cs.lookup_after) {
                (Some(key), Some(after)) => sqlx::query(sql::<D>(after)).bind(key),
                _ => sqlx::query(sql::<D>(&cs.lookup)),
            }
            .bind(b.email.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
        let found = match scan_id {
            Some(scan_id) => {
                let found = sqlx::query(sql::<D>(&D::insert_ignore(
                    "scan_emails (scan_id, email, is_new) VALUES (?, ?, ?)",
                )))
                .bind(scan_id)
                .bind(b.email.as_str())
                .bind(!known)
                .execute(&mut *conn)
                .await?;
                i64::from(D::rows_affected(&found) == 1)
            }
            None => 1,
        };
        let added = EmailCounts {
            emails_found: found,
            new_count: if known { 0 } else { found },
        };
        if !known {
            let names = cs.layout.name_values(&b.person());
            let mut insert = sqlx::query(sql::<D>(&cs.insert)).bind(b.email.as_str());
            for value in &names {
                insert = insert.bind(value.as_deref());
            }
            for _ in &cs.layout.stamps {
                insert = insert.bind(D::to_db(now));
            }
            insert.execute(&mut *conn).await?;
        }
        let booked = sqlx::query(sql::<D>(&D::insert_ignore(
            "bookings (invitee_uri, email, event_uri, start_time, canceled) VALUES (?, ?, ?, ?, ?)",
        )))
        .bind(b.invitee_uri.as_str())
        .bind(b.email.as_str())
        .bind(b.event_uri.as_str())
        .bind(D::to_db(b.start_time))
        .bind(b.canceled)
        .execute(&mut *conn)
        .await?;
        let folded = b.name.as_deref().map(str::to_lowercase);
        sqlx::query(sql::<D>(&cs.count_booking))
            .bind(folded.as_deref())
            .bind(i64::try_from(D::rows_affected(&booked)).unwrap_or(0))
            .bind(D::to_db(b.start_time))
            .bind(D::to_db(b.start_time))
            .bind(D::to_db(b.start_time))
            .bind(D::to_db(b.start_time))
            .bind(if known { None } else { scan_id })
            .bind(b.email.as_str())
            .execute(conn)
            .await?;
        Ok(added)
    }

    /// [`Store::record_event`], once.
    async fn record_event_once(
        &self,
        scan_id: &str,
        owner: &str,
        event_uri: &str,
        bookings: &[Booking],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<EmailCounts>> {
        let mut tx = self.begin_write().await?;
        // The row lock keeps a sweeper from interrupting the scan mid-record.
        let held: Option<String> = sqlx::query_scalar(sql::<D>(&format!(
            "SELECT scan_id FROM scan_progress \
             WHERE scan_id = ? AND owner = ? AND status = 'running'{}",
            D::FOR_UPDATE
        )))
        .bind(scan_id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(None);
        }
        let fresh = sqlx::query(sql::<D>(&D::insert_ignore(
            "scan_events_done (scan_id, event_uri) VALUES (?, ?)",
        )))
        .bind(scan_id)
        .bind(event_uri)
        .execute(&mut *tx)
        .await?;
        // Added up as it goes: counting the scan's emails every event would
        // make a scan quadratic in its size.
        let mut added = EmailCounts {
            emails_found: 0,
            new_count: 0,
        };
        if D::rows_affected(&fresh) == 1 {
            for booking in bookings {
                let one = self
                    .save_booking(&mut tx, Some(scan_id), booking, now)
                    .await?;
                added.emails_found += one.emails_found;
                added.new_count += one.new_count;
            }
        }
        tx.commit().await?;
        Ok(Some(added))
    }

    /// [`Store::import_webhook`], once.
    async fn import_webhook_once(&self, import: &WebhookImport) -> StoreResult<bool> {
        let b = &import.booking;
        let mut tx = self.begin_write().await?;
        let fresh = sqlx::query(sql::<D>(&D::insert_ignore(
            "webhook_deliveries (delivery_key, event, invitee_uri, event_uri, email, name, \
             received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )))
        .bind(import.delivery_key.as_str())
        .bind(import.event.as_str())
        .bind(b.invitee_uri.as_str())
        .bind(b.event_uri.as_str())
        .bind(b.email.as_str())
        .bind(b.name.as_deref())
        .bind(D::to_db(import.received_at))
        .execute(&mut *tx)
        .await?;
        if D::rows_affected(&fresh) != 1 {
            return Ok(false);
        }
        self.save_booking(&mut tx, None, b, import.received_at)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A scan another program runs or ran (the PHP page beside calscan on
    /// MySQL; it keeps no owner), read with the lines it wrote since the last
    /// read numbered after the scan's newest (they have event id 0) and, once
    /// it has ended, a `done` id above its last line: its scans then stream
    /// like calscan's. The row is locked while this happens, so the lines
    /// read after it are all those up to its newest id. Called when
    /// [`FOREIGN_PENDING`] says so.
    async fn read_foreign_scan(&self, scan_id: &str) -> StoreResult<Option<ScanRow>> {
        let mut tx = self.begin_write().await?;
        // The lock holds off the other program's writes of this scan (its
        // lines' foreign key needs the row) until the row is read below.
        let found: Option<(i64, String)> = sqlx::query_as(sql::<D>(&format!(
            "SELECT last_event_id, status FROM scan_progress \
             WHERE scan_id = ? AND owner IS NULL{}",
            D::FOR_UPDATE
        )))
        .bind(scan_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((last, status)) = found else {
            // Taken over by calscan since: read as any other.
            return Self::scan_in(&mut tx, scan_id, "").await;
        };
        let top: i64 = sqlx::query_scalar(sql::<D>(
            "SELECT COALESCE(MAX(event_id), 0) FROM scan_logs WHERE scan_id = ?",
        ))
        .bind(scan_id)
        .fetch_one(&mut *tx)
        .await?;
        let lines: Vec<i64> = sqlx::query_scalar(sql::<D>(&format!(
            "SELECT CAST(id AS {}) FROM scan_logs WHERE scan_id = ? AND event_id = 0 ORDER BY id",
            D::INT64
        )))
        .bind(scan_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut newest_line = top;
        let mut next = last.max(top);
        for line in lines {
            next += 1;
            newest_line = next;
            sqlx::query(sql::<D>("UPDATE scan_logs SET event_id = ? WHERE id = ?"))
                .bind(next)
                .bind(line)
                .execute(&mut *tx)
                .await?;
        }
        // An ended scan's newest id is its `done`'s, after its last line.
        let ended = status != ScanStatus::Running.as_str();
        let newest = last.max(newest_line + i64::from(ended));
        if newest != last {
            Self::set_last_event_id(&mut tx, scan_id, newest).await?;
        }
        let row = Self::scan_in(&mut tx, scan_id, "").await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The store over `writer` and `reader`, once the database passed the
    /// same judgement as `migrate --check` and is migrated. A database
    /// calscan cannot use is refused before anything is written.
    pub(super) async fn assemble(
        writer: Pool<D>,
        reader: Pool<D>,
        settings: &CustomerSettings,
    ) -> StoreResult<Self> {
        let report = Self::inspect(&writer, settings).await?;
        if !report.can_proceed() {
            return Err(StoreError::Refused(report.problems.join("; ")));
        }
        D::migrate(&writer).await?;
        let columns = Self::columns(&mut *writer.acquire().await?, &settings.table).await?;
        let layout = CustomerLayout::resolve(settings, &columns).map_err(StoreError::Refused)?;
        tracing::debug!(table = %layout.table, email = %layout.email, names = %layout.names,
            "customer table");
        Ok(Self {
            writer,
            reader,
            customers: Arc::new(CustomerSql::new::<D>(layout)),
        })
    }

    /// What the database holds and what migrating it would do; reads only.
    pub(super) async fn inspect(
        pool: &Pool<D>,
        settings: &CustomerSettings,
    ) -> StoreResult<Report> {
        let mut conn = pool.acquire().await?;
        // Tables first: a migration another instance finishes meanwhile is
        // then seen as applied, not as a table in the way.
        let tables: Vec<String> = sqlx::query_scalar(sql::<D>(D::TABLES))
            .fetch_all(&mut *conn)
            .await?;
        let applied: Vec<i64> = if tables.iter().any(|t| t == "_sqlx_migrations") {
            sqlx::query_scalar(sql::<D>("SELECT version FROM _sqlx_migrations"))
                .fetch_all(&mut *conn)
                .await?
        } else {
            Vec::new()
        };
        let pending = schema::pending(D::migrator(), &applied);
        let mut wanted: Vec<&str> = vec!["scan_progress", "scan_logs", settings.table.as_str()];
        wanted.extend(
            pending
                .iter()
                .flat_map(|(_, _, p)| p.adds.iter().map(|(t, _)| t.as_str())),
        );
        let mut columns = HashMap::new();
        for table in wanted {
            if tables.iter().any(|t| t == table) && !columns.contains_key(table) {
                columns.insert(table.to_owned(), Self::columns(&mut conn, table).await?);
            }
        }
        let mut report = Report {
            backend: D::BACKEND,
            applied: applied.len(),
            ..Report::default()
        };
        report.judge(&pending, &tables, &columns);
        match columns.get(&settings.table) {
            Some(found) => match CustomerLayout::resolve(settings, found) {
                Ok(layout) => {
                    let cs = CustomerSql::new::<D>(layout);
                    let rows = sqlx::query_scalar(sql::<D>(&cs.count))
                        .fetch_one(&mut *conn)
                        .await?;
                    let duplicates = sqlx::query_scalar(sql::<D>(&cs.duplicates))
                        .fetch_one(&mut *conn)
                        .await?;
                    report.customers = Some(CustomerFindings {
                        layout: cs.layout,
                        rows,
                        duplicates,
                    });
                }
                Err(problem) => report.problems.push(problem),
            },
            None if report.create.contains(&settings.table) => {
                report.customers_created = Some(settings.table.clone());
            }
            None => {
                let problem = CustomerLayout::resolve(settings, &[]).err();
                report.problems.extend(problem);
            }
        }
        Ok(report)
    }

    /// The columns of `table`, as the database describes them.
    async fn columns(conn: &mut D::Connection, table: &str) -> StoreResult<Vec<Column>> {
        let mut query = sqlx::query(sql::<D>(D::COLUMNS));
        for _ in 0..D::COLUMNS.matches('?').count() {
            query = query.bind(table);
        }
        let flag = |row: &D::Row, name: &str| -> StoreResult<bool> {
            Ok(row.try_get::<i64, _>(name)? != 0)
        };
        query
            .fetch_all(conn)
            .await?
            .iter()
            .map(|row| {
                Ok(Column {
                    name: row.try_get("name")?,
                    data_type: row
                        .try_get::<Option<String>, _>("data_type")?
                        .unwrap_or_default(),
                    not_null: flag(row, "not_null")?,
                    has_default: flag(row, "has_default")?,
                    auto: flag(row, "auto")?,
                    max_chars: row.try_get("max_chars")?,
                    primary: flag(row, "pk")?,
                })
            })
            .collect()
    }
}

/// A log line after event `last` of a finished scan, and the id of the
/// `done` event after it: a finished scan's newest id is its `done`'s.
fn line_before_done(last: i64, message: &Texts, at: DateTime<Utc>) -> (LogRow, i64) {
    let line = LogRow {
        id: last + 1,
        message: message.clone(),
        created_at: at,
    };
    (line, last + 2)
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'q> &'q str: Type<D> + Encode<'q, D>,
    String: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>,
    i64: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>,
    bool: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>,
    Option<i64>: for<'q> Encode<'q, D>,
    for<'q> Option<&'q str>: Encode<'q, D>,
    for<'n> &'n str: ColumnIndex<D::Row>,
    usize: ColumnIndex<D::Row>,
{
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    fn single_process(&self) -> bool {
        D::SINGLE_PROCESS
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(scan_id = %scan.scan_id))]
    async fn start_scan(&self, scan: &NewScan) -> StoreResult<StartOutcome> {
        let mut tx = self.begin_write().await?;
        if let Some(running) = Self::running_scan_id(&mut tx).await? {
            return Ok(StartOutcome::AlreadyRunning(running));
        }
        let f = &scan.figures;
        let inserted = Self::start_insert(scan).execute(&mut *tx).await;
        match inserted {
            Ok(_) => {}
            // Another process started one between our check and insert.
            Err(e) if is_unique_violation(&e) => {
                return Ok(StartOutcome::AlreadyRunning(self.winner(tx).await?));
            }
            Err(e) => return Err(e.into()),
        }
        Self::insert_logs(&mut tx, &scan.scan_id, &scan.logs).await?;
        Self::notify(&mut tx, &Wakeup::event(&scan.scan_id, f.last_event_id)).await?;
        let row = Self::scan_in(&mut tx, &scan.scan_id, "")
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted scan vanished".into()))?;
        tx.commit().await?;
        Ok(StartOutcome::Started(Box::new(row)))
    }

    #[tracing::instrument(skip_all, fields(scan_id))]
    async fn resume_scan(
        &self,
        scan_id: &ScanId,
        owner: &str,
        lease_until_ms: i64,
        logs: &[LogRow],
    ) -> StoreResult<ResumeOutcome> {
        let mut tx = self.begin_write().await?;
        // Locked, so two resumes of one scan cannot both pass the checks.
        let Some(scan) = Self::scan_in(&mut tx, scan_id, D::FOR_UPDATE).await? else {
            return Ok(ResumeOutcome::NotFound);
        };
        if !scan.status.is_resumable() {
            return Ok(ResumeOutcome::NotResumable(scan.status));
        }
        if let Some(running) = Self::running_scan_id(&mut tx).await? {
            return Ok(ResumeOutcome::AlreadyRunning(running));
        }
        let last = logs.last().map_or(scan.figures.last_event_id, |l| l.id);
        let updated = sqlx::query(sql::<D>(
            "UPDATE scan_progress SET status = 'running', owner = ?, lease_until_ms = ?, \
             error_message = NULL, error_message_en = NULL, completed_at = NULL, \
             cancel_requested = ?, last_event_id = ? WHERE scan_id = ?",
        ))
        .bind(owner)
        .bind(lease_until_ms)
        .bind(false)
        .bind(last)
        .bind(scan_id.as_str())
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Ok(ResumeOutcome::AlreadyRunning(self.winner(tx).await?));
            }
            Err(e) => return Err(e.into()),
        }
        Self::insert_logs(&mut tx, scan_id, logs).await?;
        Self::notify(&mut tx, &Wakeup::event(scan_id, last)).await?;
        let row = Self::scan_in(&mut tx, scan_id, "")
            .await?
            .ok_or_else(|| StoreError::Corrupt("resumed scan vanished".into()))?;
        tx.commit().await?;
        Ok(ResumeOutcome::Resumed(Box::new(row)))
    }

    async fn scan(&self, scan_id: &ScanId) -> StoreResult<Option<ScanRow>> {
        let mut conn = self.reader.acquire().await?;
        if D::LOG_ID == "id" {
            return Self::scan_in(&mut conn, scan_id, "").await;
        }
        // MySQL, where the PHP page may write scans beside calscan: the same
        // read says whether this one has lines of that page to number first.
        let found = sqlx::query(sql::<D>(&format!(
            "SELECT {columns}, CAST({FOREIGN_PENDING} AS {}) AS foreign_pending \
             FROM scan_progress p WHERE p.scan_id = ?",
            D::INT64,
            columns = *SCAN_COLUMNS,
        )))
        .bind(scan_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        match found {
            Some(row) if row.try_get::<i64, _>("foreign_pending")? == 1 => {
                drop(conn);
                self.read_foreign_scan(scan_id).await
            }
            row => row.as_ref().map(Self::scan_from_row).transpose(),
        }
    }

    async fn scans(&self, limit: i64) -> StoreResult<Vec<ScanRow>> {
        sqlx::query(sql::<D>(&format!(
            "SELECT {columns} FROM scan_progress ORDER BY id DESC LIMIT ?",
            columns = *SCAN_COLUMNS,
        )))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(Self::scan_from_row)
        .collect()
    }

    async fn last_completed(&self) -> StoreResult<Option<ScanRow>> {
        sqlx::query(sql::<D>(&format!(
            "SELECT {columns} FROM scan_progress \
             WHERE status = 'completed' ORDER BY id DESC LIMIT 1",
            columns = *SCAN_COLUMNS,
        )))
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(Self::scan_from_row)
        .transpose()
    }

    async fn append_to_finished(
        &self,
        scan_id: &ScanId,
        message: &Texts,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let last: Option<i64> = sqlx::query_scalar(sql::<D>(&format!(
            "SELECT last_event_id FROM scan_progress \
             WHERE scan_id = ? AND status <> 'running'{}",
            D::FOR_UPDATE
        )))
        .bind(scan_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(last) = last else {
            return Ok(false);
        };
        let (log, done_id) = line_before_done(last, message, at);
        Self::set_last_event_id(&mut tx, scan_id, done_id).await?;
        Self::insert_logs(&mut tx, scan_id, std::slice::from_ref(&log)).await?;
        Self::notify(&mut tx, &Wakeup::event(scan_id, done_id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn import_webhook(&self, import: &WebhookImport) -> StoreResult<bool> {
        again_on_deadlock(|| self.import_webhook_once(import)).await
    }

    async fn record_event(
        &self,
        scan_id: &ScanId,
        owner: &str,
        event_uri: &str,
        bookings: &[Booking],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<EmailCounts>> {
        again_on_deadlock(|| self.record_event_once(scan_id, owner, event_uri, bookings, now)).await
    }

    async fn recent_webhooks(&self, limit: i64) -> StoreResult<Vec<WebhookRow>> {
        sqlx::query(sql::<D>(
            "SELECT event, email, name, event_uri, received_at FROM webhook_deliveries \
             ORDER BY received_at DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(WebhookRow {
                event: row.try_get("event")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                event_uri: row.try_get("event_uri")?,
                received_at: D::from_db(row.try_get("received_at")?)?,
            })
        })
        .collect()
    }

    async fn save_webhook_subscription(&self, row: &WebhookSubscriptionRow) -> StoreResult<()> {
        use secrecy::ExposeSecret;
        let mut tx = self.begin_write().await?;
        sqlx::query(sql::<D>("DELETE FROM webhook_subscriptions WHERE uri = ?"))
            .bind(row.uri.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::<D>(
            "INSERT INTO webhook_subscriptions (uri, callback_url, signing_key, created_at) \
             VALUES (?, ?, ?, ?)",
        ))
        .bind(row.uri.as_str())
        .bind(row.callback_url.as_str())
        .bind(row.signing_key.expose_secret())
        .bind(D::to_db(row.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhook_subscriptions(&self) -> StoreResult<Vec<WebhookSubscriptionRow>> {
        sqlx::query(sql::<D>(
            "SELECT uri, callback_url, signing_key, created_at FROM webhook_subscriptions \
             ORDER BY created_at, uri",
        ))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(WebhookSubscriptionRow {
                uri: row.try_get("uri")?,
                callback_url: row.try_get("callback_url")?,
                signing_key: row.try_get::<String, _>("signing_key")?.into(),
                created_at: D::from_db(row.try_get("created_at")?)?,
            })
        })
        .collect()
    }

    async fn delete_webhook_subscription(&self, uri: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::<D>("DELETE FROM webhook_subscriptions WHERE uri = ?"))
            .bind(uri)
            .execute(&self.writer)
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    async fn totals(&self) -> StoreResult<Totals> {
        let rows = sqlx::query(sql::<D>(
            "SELECT status, COUNT(*) AS n FROM scan_progress GROUP BY status ORDER BY status",
        ))
        .fetch_all(&self.reader)
        .await?;
        let scans_by_status = rows
            .iter()
            .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
            .collect::<StoreResult<_>>()?;
        let customers = sqlx::query_scalar(sql::<D>(&self.customers.count))
            .fetch_one(&self.reader)
            .await?;
        Ok(Totals {
            scans_by_status,
            customers,
        })
    }

    async fn most_events_listed(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(sql::<D>(
            "SELECT MAX(events_total) FROM scan_progress WHERE status = 'completed'",
        ))
        .fetch_one(&self.reader)
        .await?)
    }

    async fn logs_after(
        &self,
        scan_id: &ScanId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>> {
        // The PHP scanner's lines have German only, and may lack a time.
        sqlx::query(sql::<D>(&format!(
            "SELECT {id} AS id, COALESCE(message, '') AS message, \
             COALESCE(message_en, message, '') AS message_en, created_at FROM scan_logs \
             WHERE scan_id = ? AND {id} > ? ORDER BY {id} LIMIT ?",
            id = D::LOG_ID
        )))
        .bind(scan_id.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(LogRow {
                id: row.try_get("id")?,
                message: Texts {
                    de: row.try_get("message")?,
                    en: row.try_get("message_en")?,
                },
                created_at: Self::opt_time(row, "created_at")?.unwrap_or_default(),
            })
        })
        .collect()
    }

    async fn write_scans(&self, writes: &[ScanWrite<'_>]) -> StoreResult<Vec<bool>> {
        // The journal's one statement where the database has it: no scan
        // ends, and every lease is held (else the long way says whose).
        if D::JOURNAL_VIEW
            && D::NOTIFY.is_none()
            && writes.len() + writes.iter().map(|w| w.logs.len()).sum::<usize>() <= JOURNAL_ROWS
            && writes.iter().all(|w| w.finish.is_none())
            && self.write_journal(writes).await?
        {
            return Ok(vec![true; writes.len()]);
        }
        // A few statements for any number of scans: the figures of all in
        // one UPDATE, their lines in multi-row INSERTs. A statement is a
        // round trip (to SQLite's worker thread, or over the network).
        let mut tx = self.begin_write().await?;
        let held = Self::update_figures(&mut tx, writes).await?;
        let ours = || {
            writes
                .iter()
                .zip(&held)
                .filter(|(_, held)| **held)
                .map(|(w, _)| w)
        };
        let lines: Vec<(&str, &LogRow)> = ours()
            .flat_map(|w| w.logs.iter().map(|log| (w.scan_id, log)))
            .collect();
        Self::insert_log_rows(&mut tx, &lines).await?;
        for w in ours() {
            if let Some(end) = &w.finish {
                sqlx::query(sql::<D>(
                    "UPDATE scan_progress SET status = ?, error_message = ?, \
                     error_message_en = ?, completed_at = ?, owner = NULL, lease_until_ms = NULL, \
                     cancel_requested = ? WHERE scan_id = ?",
                ))
                .bind(end.status.as_str())
                .bind(end.error_message.map(|t| t.de.as_str()))
                .bind(end.error_message.map(|t| t.en.as_str()))
                .bind(D::to_db(end.completed_at))
                .bind(false)
                .bind(w.scan_id)
                .execute(&mut *tx)
                .await?;
            }
            Self::notify(&mut tx, &Wakeup::event(w.scan_id, w.figures.last_event_id)).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn email_counts(&self, scan_id: &ScanId) -> StoreResult<EmailCounts> {
        let mut conn = self.reader.acquire().await?;
        Self::email_counts_in(&mut conn, scan_id).await
    }

    async fn done_events(&self, scan_id: &ScanId) -> StoreResult<HashSet<String>> {
        let uris: Vec<String> = sqlx::query_scalar(sql::<D>(
            "SELECT event_uri FROM scan_events_done WHERE scan_id = ?",
        ))
        .bind(scan_id.as_str())
        .fetch_all(&self.reader)
        .await?;
        Ok(uris.into_iter().collect())
    }

    async fn renew_lease(
        &self,
        scan_id: &ScanId,
        owner: &str,
        until_ms: i64,
    ) -> StoreResult<Lease> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::<D>(
            "UPDATE scan_progress SET lease_until_ms = ? \
             WHERE scan_id = ? AND owner = ? AND status = 'running'",
        ))
        .bind(until_ms)
        .bind(scan_id.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if D::rows_affected(&done) != 1 {
            return Ok(Lease::Lost);
        }
        let cancel: bool = sqlx::query_scalar(sql::<D>(
            "SELECT cancel_requested FROM scan_progress WHERE scan_id = ?",
        ))
        .bind(scan_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if cancel {
            Lease::CancelRequested
        } else {
            Lease::Held
        })
    }

    async fn next_lease_end(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(sql::<D>(
            "SELECT MIN(lease_until_ms) FROM scan_progress WHERE status = 'running'",
        ))
        .fetch_one(&self.reader)
        .await?)
    }

    async fn request_cancel(&self, scan_id: &ScanId) -> StoreResult<Option<ScanStatus>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::<D>(
            "UPDATE scan_progress SET cancel_requested = ? WHERE scan_id = ? AND status = 'running'",
        ))
        .bind(true)
        .bind(scan_id.as_str())
        .execute(&mut *tx)
        .await?;
        let status = if D::rows_affected(&done) == 1 {
            Self::notify(&mut tx, &Wakeup::Cancel(scan_id.to_string())).await?;
            Some(ScanStatus::Running)
        } else {
            Self::scan_in(&mut tx, scan_id, "")
                .await?
                .map(|row| row.status)
        };
        tx.commit().await?;
        Ok(status)
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
        let mut tx = self.begin_write().await?;
        let lock = match locked {
            Locked::Skip => D::FOR_UPDATE_SKIP_LOCKED,
            Locked::Wait => D::FOR_UPDATE,
        };
        // A scan without a lease is the PHP page's: dead once it has run
        // longer than that page ever did.
        let leaseless_since =
            DateTime::from_timestamp_millis(now_ms).unwrap_or_default() - LEASELESS_SCAN_LIMIT;
        let stale_when = "status = 'running' AND (? OR lease_until_ms < ? \
             OR (lease_until_ms IS NULL AND (started_at IS NULL OR started_at < ?)))";
        // The candidates first, unlocked; then each is locked through its
        // scan_id, the order in which every other writer of a scan row locks
        // it. A locking read through the status index would lock that index
        // before the row and deadlock with a writer ending the scan.
        let mut candidates: Vec<String> = sqlx::query_scalar(sql::<D>(&format!(
            "SELECT scan_id FROM scan_progress WHERE {stale_when}"
        )))
        .bind(all)
        .bind(now_ms)
        .bind(D::to_db(leaseless_since))
        .fetch_all(&mut *tx)
        .await?;
        candidates.retain(|id| !alive.contains(id));
        let mut stale: Vec<(String, i64)> = Vec::with_capacity(candidates.len());
        for scan_id in candidates {
            let still: Option<(String, i64)> = sqlx::query_as(sql::<D>(&format!(
                "SELECT scan_id, last_event_id FROM scan_progress WHERE scan_id = ? \
                 AND {stale_when}{lock}"
            )))
            .bind(scan_id.as_str())
            .bind(all)
            .bind(now_ms)
            .bind(D::to_db(leaseless_since))
            .fetch_optional(&mut *tx)
            .await?;
            stale.extend(still);
        }
        let mut rows = Vec::with_capacity(stale.len());
        for (scan_id, last) in stale {
            let (log, done_id) = line_before_done(last, message, at);
            sqlx::query(sql::<D>(
                "UPDATE scan_progress SET status = 'interrupted', owner = NULL, \
                 lease_until_ms = NULL, cancel_requested = ?, completed_at = ?, \
                 last_event_id = ? WHERE scan_id = ?",
            ))
            .bind(false)
            .bind(D::to_db(at))
            .bind(done_id)
            .bind(scan_id.as_str())
            .execute(&mut *tx)
            .await?;
            Self::insert_logs(&mut tx, &scan_id, std::slice::from_ref(&log)).await?;
            Self::notify(&mut tx, &Wakeup::event(&scan_id, done_id)).await?;
            if let Some(row) = Self::scan_in(&mut tx, &scan_id, "").await? {
                rows.push(row);
            }
        }
        tx.commit().await?;
        Ok(rows)
    }

    async fn customers(
        &self,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let cs = &self.customers;
        let pattern = super::like_pattern(query);
        let (filter, binds) = cs.filter(query);
        let mut count =
            sqlx::query_scalar(sql::<D>(&cs.count_matching.replace("{filter}", &filter)));
        for _ in 0..binds {
            count = count.bind(pattern.as_str());
        }
        let total: i64 = count.fetch_one(&self.reader).await?;
        let mut list = sqlx::query(sql::<D>(&cs.list.replace("{filter}", &filter)));
        for _ in 0..binds {
            list = list.bind(pattern.as_str());
        }
        let customers = list
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                Ok(Customer {
                    email: row
                        .try_get::<Option<String>, _>("email")?
                        .unwrap_or_default(),
                    name: row.try_get("name")?,
                    bookings: row.try_get("bookings")?,
                    first_booking_at: Self::opt_time(row, "first_booking_at")?,
                    last_booking_at: Self::opt_time(row, "last_booking_at")?,
                    created_by_scan: row.try_get("created_by_scan")?,
                    created_at: Self::opt_time(row, "created_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((customers, total))
    }

    async fn customers_after(&self, known: &KnownCustomers) -> StoreResult<KnownCustomers> {
        let mut newer = KnownCustomers {
            up_to: known.up_to,
            ..KnownCustomers::default()
        };
        let (Some(after), Some(up_to)) = (&self.customers.rows_after, known.up_to) else {
            return Ok(newer);
        };
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(sql::<D>(after))
            .bind(up_to)
            .fetch_all(&self.writer)
            .await?;
        for (email, key) in rows {
            newer.up_to = newer.up_to.max(Some(key));
            newer.emails.extend(
                email
                    .as_deref()
                    .and_then(crate::calendly::model::normalize_email),
            );
        }
        Ok(newer)
    }

    async fn known_customers(&self) -> StoreResult<KnownCustomers> {
        let cs = &self.customers;
        // The key first: a row added while the emails are read is then
        // above it, and looked up.
        let up_to: Option<i64> = match &cs.max_key {
            Some(max) => {
                sqlx::query_scalar(sql::<D>(max))
                    .fetch_one(&self.reader)
                    .await?
            }
            None => None,
        };
        let mut rows = sqlx::query_scalar::<_, String>(sql::<D>(&cs.emails)).fetch(&self.reader);
        let mut emails = HashSet::new();
        while let Some(email) = rows.try_next().await? {
            if let Some(email) = crate::calendly::model::normalize_email(&email) {
                emails.insert(email);
            }
        }
        Ok(KnownCustomers {
            email_chars: cs.layout.email_chars,
            emails,
            // An empty table: every row there will be is after key 0.
            up_to: cs.max_key.as_ref().map(|_| up_to.unwrap_or(0)),
        })
    }

    async fn create_session(
        &self,
        id_hash: &str,
        username: &str,
        expires_ms: i64,
        ends_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Expired sessions are cleared whenever someone logs in.
        let now = crate::time::now_ms();
        sqlx::query(sql::<D>(
            "DELETE FROM sessions WHERE expires_ms <= ? OR ends_ms <= ?",
        ))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sql::<D>(
            "INSERT INTO sessions (id_hash, username, expires_ms, ends_ms) VALUES (?, ?, ?, ?)",
        ))
        .bind(id_hash)
        .bind(username)
        .bind(expires_ms.min(ends_ms))
        .bind(ends_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_session(
        &self,
        id_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<Option<String>> {
        let found: Option<(String, i64, i64)> = sqlx::query_as(sql::<D>(
            "SELECT username, expires_ms, ends_ms FROM sessions WHERE id_hash = ?",
        ))
        .bind(id_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some((user, current, ends)) =
            found.filter(|(_, until, ends)| *until > now_ms && *ends > now_ms)
        else {
            return Ok(None);
        };
        let expires_ms = expires_ms.min(ends);
        // Slide the expiry at most once a minute (a sixtieth of the idle
        // time, if less): most requests only read. A database that cannot
        // take the write just now (a full disk) does not end a live
        // session: the next request slides it.
        let step = super::SESSION_SLIDE_MS.min((expires_ms - now_ms) / 60);
        if current < expires_ms - step {
            let slid = sqlx::query(sql::<D>(
                "UPDATE sessions SET expires_ms = ? WHERE id_hash = ?",
            ))
            .bind(expires_ms)
            .bind(id_hash)
            .execute(&self.writer)
            .await
            .map_err(StoreError::from);
            match slid {
                Err(error) if error.is_unavailable() => {
                    tracing::debug!(%error, "a session's expiry is not moved yet");
                }
                other => {
                    other?;
                }
            }
        }
        Ok(Some(user))
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query(sql::<D>("DELETE FROM sessions WHERE id_hash = ?"))
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn wakeups(&self) -> StoreResult<Option<BoxStream<'static, Wakeup>>> {
        D::wakeups(&self.writer).await
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Arguments, Execute, MySql, Postgres, Sqlite};

    use super::*;

    /// Distinct figures, so that a value in another's column shows.
    fn figures(base: i64) -> Progress {
        Progress {
            progress: base + 1,
            current_step: Texts {
                de: format!("Schritt {base}"),
                en: format!("step {base}"),
            },
            events_scanned: base + 2,
            events_total: Some(base + 3),
            emails_found: base + 4,
            new_count: base + 5,
            existing_count: base + 6,
            last_event_id: base + 7,
            eta_at_ms: Some(base + 8),
            previous_scan_ms: Some(base + 9),
        }
    }

    fn new_scan(figures: Progress) -> NewScan {
        NewScan {
            scan_id: ScanId::parse("scan_figures1").unwrap(),
            mode: crate::store::ScanMode::Full,
            owner: "here".into(),
            lease_until_ms: 1_000,
            started_at: Utc::now(),
            figures,
            logs: vec![],
        }
    }

    /// The placeholders of `query`'s statement (`?`, or PostgreSQL's `$n`)
    /// and the values bound to it.
    fn placeholders_and_values<D: Database>(mut query: Query<'_, D, D::Arguments>) -> (usize, usize)
    where
        D::Arguments: IntoArguments<D>,
    {
        let values = query.take_arguments().unwrap().map_or(0, |a| a.len());
        let marks = query.sql().as_str().matches(['?', '$']).count();
        (marks, values)
    }

    #[test]
    fn every_figure_column_is_bound_once() {
        assert_eq!(figure_value_names().len(), FIGURE_VALUES);
        let progress = figures(0);
        let writes: Vec<ScanWrite<'_>> = (0..200)
            .map(|_| ScanWrite {
                scan_id: "scan",
                owner: "owner",
                figures: &progress,
                logs: &[],
                finish: None,
            })
            .collect();
        assert_eq!(figure_row(&writes[0]).count(), FIGURE_VALUES);
        for scans in [1, 2, 200] {
            let writes = &writes[..scans];
            let expected = (scans * FIGURE_VALUES, scans * FIGURE_VALUES);
            for (backend, counted) in [
                (
                    "sqlite",
                    placeholders_and_values(SqlStore::<Sqlite>::figures_update(writes)),
                ),
                (
                    "postgres",
                    placeholders_and_values(SqlStore::<Postgres>::figures_update(writes)),
                ),
                (
                    "mysql",
                    placeholders_and_values(SqlStore::<MySql>::figures_update(writes)),
                ),
            ] {
                assert_eq!(counted, expected, "{backend}, {scans} scans");
            }
        }
        let scan = new_scan(progress.clone());
        for (backend, (marks, values)) in [
            (
                "sqlite",
                placeholders_and_values(SqlStore::<Sqlite>::start_insert(&scan)),
            ),
            (
                "postgres",
                placeholders_and_values(SqlStore::<Postgres>::start_insert(&scan)),
            ),
            (
                "mysql",
                placeholders_and_values(SqlStore::<MySql>::start_insert(&scan)),
            ),
        ] {
            assert_eq!(marks, values, "{backend}");
            assert_eq!(values, 5 + FIGURE_COLUMNS.len(), "{backend}");
        }
    }

    type FigureTuple = (
        i64,
        String,
        String,
        i64,
        Option<i64>,
        i64,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
    );

    /// The figure columns of the scan, each named here rather than taken
    /// from [`FIGURE_COLUMNS`].
    async fn stored(store: &SqlStore<Sqlite>) -> FigureTuple {
        sqlx::query_as(
            "SELECT progress, current_step, current_step_en, events_scanned, events_total, \
             emails_found, new_count, existing_count, last_event_id, eta_at, previous_scan_at \
             FROM scan_progress WHERE scan_id = 'scan_figures1'",
        )
        .fetch_one(&store.writer)
        .await
        .unwrap()
    }

    fn as_tuple(f: &Progress) -> FigureTuple {
        (
            f.progress,
            f.current_step.de.clone(),
            f.current_step.en.clone(),
            f.events_scanned,
            f.events_total,
            f.emails_found,
            f.new_count,
            f.existing_count,
            f.last_event_id,
            f.eta_at_ms,
            f.previous_scan_ms,
        )
    }

    /// A store in memory, its one connection the writer's as `open` makes it.
    async fn in_memory() -> SqlStore<Sqlite> {
        let pool = SqlStore::<Sqlite>::writer_options()
            .connect("sqlite::memory:")
            .await
            .unwrap();
        SqlStore::<Sqlite>::assemble(pool.clone(), pool, &CustomerSettings::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn figures_land_in_their_columns_and_read_back() {
        let store = in_memory().await;

        let started = figures(0);
        let StartOutcome::Started(row) =
            store.start_scan(&new_scan(started.clone())).await.unwrap()
        else {
            panic!("the scan did not start");
        };
        assert_eq!(stored(&store).await, as_tuple(&started));
        assert_eq!(row.figures, started);

        let later = figures(10);
        let write = |owner| ScanWrite {
            scan_id: "scan_figures1",
            owner,
            figures: &later,
            logs: &[],
            finish: None,
        };
        assert_eq!(store.write_scans(&[write("here")]).await.unwrap(), [true]);
        assert_eq!(stored(&store).await, as_tuple(&later));
        let row = store
            .scan(&ScanId::parse("scan_figures1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.figures, later);
        assert_eq!(
            store.write_scans(&[write("elsewhere")]).await.unwrap(),
            [false]
        );
    }

    fn line(id: i64, text: &str) -> LogRow {
        LogRow {
            id,
            message: Texts::same(text),
            created_at: Utc::now(),
        }
    }

    async fn lines_of(store: &SqlStore<Sqlite>, scan_id: &str) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT id, message FROM scan_logs WHERE scan_id = ? ORDER BY id")
            .bind(scan_id)
            .fetch_all(&store.writer)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_journal_writes_figures_and_lines_at_once_or_nothing() {
        let store = in_memory().await;
        // Two running scans: one of ours, one another instance holds.
        store.start_scan(&new_scan(figures(0))).await.unwrap();
        sqlx::raw_sql(
            "DROP INDEX scan_progress_one_running; \
             INSERT INTO scan_progress (scan_id, status, mode, progress, current_step, \
             current_step_en, started_at, owner, last_event_id) \
             VALUES ('scan_figures2', 'running', 'full', 0, '', '', '', 'there', 0)",
        )
        .execute(&store.writer)
        .await
        .unwrap();

        let later = figures(10);
        let ours_lines = [line(1, "eins"), line(2, "zwei")];
        let ours = ScanWrite {
            scan_id: "scan_figures1",
            owner: "here",
            figures: &later,
            logs: &ours_lines,
            finish: None,
        };
        assert!(store.write_journal(&[ours]).await.unwrap());
        assert_eq!(stored(&store).await, as_tuple(&later));
        let written = vec![(1, "eins".to_owned()), (2, "zwei".to_owned())];
        assert_eq!(lines_of(&store, "scan_figures1").await, written);

        // Written again (its answer lost): nothing doubles.
        assert!(store.write_journal(&[ours]).await.unwrap());
        assert_eq!(lines_of(&store, "scan_figures1").await, written);

        // A lease gone fails the whole statement: ours is not written either.
        let more = [line(3, "drei")];
        let ours = ScanWrite {
            logs: &more,
            ..ours
        };
        let not_ours = ScanWrite {
            scan_id: "scan_figures2",
            owner: "here",
            figures: &later,
            logs: &more,
            finish: None,
        };
        assert!(!store.write_journal(&[ours, not_ours]).await.unwrap());
        assert_eq!(lines_of(&store, "scan_figures1").await, written);
        assert_eq!(lines_of(&store, "scan_figures2").await, []);

        // The long way then writes ours and says whose was gone.
        assert_eq!(
            store.write_scans(&[ours, not_ours]).await.unwrap(),
            [true, false]
        );
        assert_eq!(lines_of(&store, "scan_figures1").await.len(), 3);
        assert_eq!(lines_of(&store, "scan_figures2").await, []);
        let (progress, last_event_id): (i64, i64) = sqlx::query_as(
            "SELECT progress, last_event_id FROM scan_progress WHERE scan_id = 'scan_figures2'",
        )
        .fetch_one(&store.writer)
        .await
        .unwrap();
        assert_eq!((progress, last_event_id), (0, 0));
    }
}
