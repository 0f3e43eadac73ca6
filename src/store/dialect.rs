//! What differs between the SQL databases behind [`SqlStore`]: each of
//! SQLite, PostgreSQL and MySQL/MariaDB implements [`Dialect`] in its own
//! file, and the statements of [`SqlStore`] are written once over it.
//!
//! [`SqlStore`]: super::SqlStore

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::{Database, Decode, Encode, Pool, Type};

use super::sql::{FIGURE_VALUES, figure_assignments, figure_value_names};
use super::{StoreResult, Wakeup};

/// What one database does its own way.
pub trait Dialect: Database {
    /// `sqlite`, `postgres` or `mysql`.
    const BACKEND: &'static str;
    /// Whether only one process uses the database (see [`Store::single_process`](super::Store::single_process)).
    const SINGLE_PROCESS: bool;
    /// The two-argument maximum and minimum: `GREATEST` and `LEAST`, or
    /// SQLite's scalar `MAX` and `MIN`.
    const GREATEST: &'static str;
    const LEAST: &'static str;
    /// How a transaction that writes begins, when not as `BEGIN`.
    const BEGIN_WRITE: Option<&'static str> = None;

    /// Appended to a `SELECT` to lock its rows until the transaction ends;
    /// empty where the database has a single writer anyway.
    const FOR_UPDATE: &'static str;
    /// The same, passing over rows another transaction holds.
    const FOR_UPDATE_SKIP_LOCKED: &'static str;

    /// How a timestamp is stored.
    type Time: Type<Self> + for<'q> Encode<'q, Self> + for<'r> Decode<'r, Self> + Send + Sync;
    fn to_db(time: DateTime<Utc>) -> Self::Time;
    fn from_db(time: Self::Time) -> StoreResult<DateTime<Utc>>;

    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// The statement with this database's placeholders.
    fn placeholders(sql: &str) -> Cow<'_, str> {
        Cow::Borrowed(sql)
    }

    /// `INSERT INTO {rest}` that inserts nothing when the key exists.
    fn insert_ignore(rest: &str) -> String {
        format!("INSERT INTO {rest} ON CONFLICT DO NOTHING")
    }

    /// The clause of an `INSERT INTO customers` that updates the row with
    /// email already there, given its `SET` list; [`Self::inserted`] names
    /// the value the insert carried.
    fn on_email_conflict(set: &str) -> String {
        format!("ON CONFLICT (email) DO UPDATE SET {set}")
    }

    fn inserted(column: &str) -> String {
        format!("excluded.{column}")
    }

    /// Sets the figures of `scans` running scans, each under its owner, in
    /// one statement: a join with the rows of values, looked up by key (a
    /// `CASE` per column would compare every scan with every row). Each
    /// row binds scan id, owner, then the figures in the order of
    /// [`FIGURE_COLUMNS`](super::sql::FIGURE_COLUMNS).
    fn update_figures(scans: usize) -> String {
        let row = format!("({})", ["?"; FIGURE_VALUES].join(", "));
        let rows = vec![row; scans].join(", ");
        format!(
            "WITH v ({}) AS (VALUES {rows}) \
             UPDATE scan_progress SET {} FROM v \
             WHERE scan_progress.scan_id = v.v_scan_id AND scan_progress.owner = v.v_owner \
             AND scan_progress.status = 'running'",
            figure_value_names().join(", "),
            figure_assignments::<Self>("", ""),
        )
    }

    /// The column of `scan_logs` that holds a line's event id within its
    /// scan. MySQL keeps the PHP scanner's `id`, an AUTO_INCREMENT across
    /// all scans, beside it.
    const LOG_ID: &'static str = "id";

    /// Appended to the lookup of a customer by email before calscan inserts
    /// one: where another program may insert into the same table (the PHP
    /// page on MySQL), a locking read sees its rows as soon as they commit,
    /// and holds off its inserts until calscan's transaction ends.
    const LOOKUP_LOCK: &'static str = "";

    /// `name` as an identifier in a statement.
    fn quote(name: &str) -> String {
        format!("\"{name}\"")
    }

    /// Two name columns as one text, for display and search.
    fn join_names(first: &str, last: &str) -> String {
        format!("TRIM(COALESCE({first}, '') || ' ' || COALESCE({last}, ''))")
    }

    /// The type `CAST` names for a 64-bit integer.
    const INT64: &'static str = "BIGINT";

    /// The tables of the database (of the current schema).
    const TABLES: &'static str;

    /// The columns of the table bound as the statement's every `?`, as
    /// `name, data_type, not_null, has_default, auto, max_chars, pk` with
    /// the flags as integers.
    const COLUMNS: &'static str;

    /// The migrations of this database.
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// Applies the pending migrations.
    fn migrate(pool: &Pool<Self>) -> BoxFuture<'_, StoreResult<()>>;

    /// A statement that, run in a transaction, wakes the other instances
    /// with its one argument when the transaction commits.
    const NOTIFY: Option<&'static str> = None;

    /// Whether the writer's connections have the journal view
    /// ([`JOURNAL`](super::sql::JOURNAL), SQLite's, see `sqlite.rs`): the
    /// figures and lines of scans inserted into it are written by one
    /// statement. Only where nothing is to be notified.
    const JOURNAL_VIEW: bool = false;

    /// The wake-ups other instances send, where the database carries them.
    fn wakeups(
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, StoreResult<Option<BoxStream<'static, Wakeup>>>> {
        let _ = pool;
        Box::pin(async { Ok(None) })
    }
}
