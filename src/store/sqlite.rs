//! SQLite: WAL, a busy timeout, foreign keys, one writer connection and a
//! few readers. Timestamps are RFC 3339 text in UTC with milliseconds, so
//! that they sort as text.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Pool, Sqlite};

use super::dialect::Dialect;
use super::sql::{
    JOURNAL, JOURNAL_LINE_COLUMNS, LEASE_GONE, SqlStore, figure_assignments, figure_value_names,
    log_columns,
};
use super::{StoreError, StoreResult};
use crate::time::millis;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const SINGLE_PROCESS: bool = true;
    const GREATEST: &'static str = "MAX";
    const LEAST: &'static str = "MIN";
    // One writer connection: a transaction that writes has the database.
    const FOR_UPDATE: &'static str = "";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = "";
    // Takes the write lock at once, waiting out the busy timeout for it: a
    // transaction that read first and then finds another process writing
    // fails at once instead.
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");
    // Made on each writer connection (`writer_options`).
    const JOURNAL_VIEW: bool = true;

    type Time = String;

    fn to_db(time: DateTime<Utc>) -> String {
        millis(time)
    }

    fn from_db(text: String) -> StoreResult<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| StoreError::Corrupt(format!("timestamp {text:?}")))
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    const TABLES: &'static str = "SELECT name FROM sqlite_master WHERE type = 'table'";

    // An INTEGER PRIMARY KEY is the rowid: SQLite fills it.
    const COLUMNS: &'static str = "SELECT name, type AS data_type, \"notnull\" AS not_null, \
         CASE WHEN dflt_value IS NULL THEN 0 ELSE 1 END AS has_default, \
         CASE WHEN pk = 1 AND upper(type) = 'INTEGER' THEN 1 ELSE 0 END AS auto, \
         NULL AS max_chars, CASE WHEN pk > 0 THEN 1 ELSE 0 END AS pk \
         FROM pragma_table_info(?) ORDER BY cid";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn migrate(pool: &Pool<Self>) -> futures::future::BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { Ok(MIGRATOR.run(pool).await?) })
    }
}

/// The journal view and its trigger, in the connection's temporary schema
/// (see [`JOURNAL`]): one statement writes what a scan's event changed,
/// where a transaction of an UPDATE and an INSERT is four round trips to
/// the connection's thread, two of them (sqlx's BEGIN and COMMIT) waiting
/// on each other. A statement that fails (a full disk) rolls itself back
/// and leaves no transaction open. The trigger's statements find the
/// tables when it runs, so it can be made before the migrations.
fn journal_view() -> String {
    let names = figure_value_names();
    let columns: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .chain(JOURNAL_LINE_COLUMNS)
        .collect();
    format!(
        "CREATE TEMP VIEW {JOURNAL} ({}) AS SELECT {} WHERE 0; \
         CREATE TEMP TRIGGER {JOURNAL}_write INSTEAD OF INSERT ON {JOURNAL} BEGIN \
         UPDATE scan_progress SET {} WHERE NEW.l_id IS NULL AND scan_id = NEW.v_scan_id \
         AND owner = NEW.v_owner AND status = 'running'; \
         SELECT RAISE(ABORT, '{LEASE_GONE}') WHERE NEW.l_id IS NULL AND changes() = 0; \
         {}; END",
        columns.join(", "),
        vec!["NULL"; columns.len()].join(", "),
        figure_assignments::<Sqlite>("", "NEW."),
        Sqlite::insert_ignore(&format!(
            "{} SELECT NEW.v_scan_id, NEW.l_id, NEW.l_message, NEW.l_message_en, \
             NEW.l_created_at WHERE NEW.l_id IS NOT NULL",
            log_columns::<Sqlite>()
        )),
    )
}

impl SqlStore<Sqlite> {
    /// The pool of the one writer connection, each connection with the
    /// journal view. A file's connection does not go away under it: no
    /// ping before each write (a round trip to the connection's thread).
    pub(super) fn writer_options() -> SqlitePoolOptions {
        super::sql::never_inside_a_transaction(SqlitePoolOptions::new(), true)
            .test_before_acquire(false)
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(journal_view()))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
    }

    /// Opens (creating if missing) and migrates the database at `url`, with
    /// calscan's own customer table.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let (writer, reader) = Self::open(url).await?;
        Self::assemble(writer, reader, &super::CustomerSettings::default()).await
    }

    /// Opens the database at `url` to read it only, changing nothing (not
    /// even its journal mode); a file that does not exist yet reads as the
    /// empty database `migrate` would start from.
    pub(super) async fn open_to_read(url: &str) -> StoreResult<Pool<Sqlite>> {
        let options = SqliteConnectOptions::from_str(url)?;
        super::reach::sqlite_file(options.get_filename())?;
        let missing = options.get_filename() != std::path::Path::new(":memory:")
            && !options.get_filename().exists();
        let options = if missing {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            options.read_only(true)
        };
        let file = options.get_filename().to_owned();
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|error| super::reach::sqlite_refused(&file, error))
    }

    /// Opens (creating if missing) the database at `url`.
    /// Two pools: a single writer (SQLite has one anyway; queuing in the
    /// pool beats busy retries) and readers that WAL lets run alongside.
    pub(super) async fn open(url: &str) -> StoreResult<(Pool<Sqlite>, Pool<Sqlite>)> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename().to_owned();
        super::reach::sqlite_file(&file)?;
        let writer = Self::writer_options()
            .connect_with(options.clone())
            .await
            .map_err(|error| super::reach::sqlite_refused(&file, error))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok((writer, reader))
    }
}
