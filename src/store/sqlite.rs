//! SQLite: WAL, a busy timeout, foreign keys, one writer connection and a
//! few readers. Timestamps are RFC 3339 text in UTC with milliseconds, so
//! that they sort as text.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use super::sql::{Dialect, SqlStore};
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
}

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) the database at `url` and migrates it.
    /// Two pools: a single writer (SQLite has one anyway; queuing in the
    /// pool beats busy retries) and readers that WAL lets run alongside.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }
}
