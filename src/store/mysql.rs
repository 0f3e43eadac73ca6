//! MySQL and MariaDB: InnoDB row locks, `DATETIME(6)` in UTC, utf8mb4 with
//! binary collation (emails compare exactly, as on the other databases).
//! There is no partial unique index: a generated column that is 1 only for
//! the running scan carries the one-running-scan rule.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlQueryResult};
use sqlx::{MySql, Pool};

use super::StoreResult;
use super::dialect::Dialect;
use super::sql::{FIGURE_VALUES, SqlStore, figure_assignments, figure_value_names};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

pub type MySqlStore = SqlStore<MySql>;

impl Dialect for MySql {
    const BACKEND: &'static str = "mysql";
    const SINGLE_PROCESS: bool = false;
    const GREATEST: &'static str = "GREATEST";
    const LEAST: &'static str = "LEAST";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    type Time = DateTime<Utc>;

    fn to_db(time: DateTime<Utc>) -> DateTime<Utc> {
        time
    }

    fn from_db(time: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        Ok(time)
    }

    fn rows_affected(done: &MySqlQueryResult) -> u64 {
        done.rows_affected()
    }

    const LOG_ID: &'static str = "event_id";

    const INT64: &'static str = "SIGNED";

    const LOOKUP_LOCK: &'static str = " FOR UPDATE";

    fn quote(name: &str) -> String {
        format!("`{name}`")
    }

    fn join_names(first: &str, last: &str) -> String {
        format!("TRIM(CONCAT(COALESCE({first}, ''), ' ', COALESCE({last}, '')))")
    }

    const TABLES: &'static str = "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE()";

    // MariaDB shows the default of a NULL-able column without one as 'NULL':
    // such a column needs no value anyway.
    const COLUMNS: &'static str = "SELECT CAST(COLUMN_NAME AS CHAR) AS name, \
         CAST(DATA_TYPE AS CHAR) AS data_type, CAST(IS_NULLABLE = 'NO' AS SIGNED) AS not_null, \
         CAST(COLUMN_DEFAULT IS NOT NULL AS SIGNED) AS has_default, \
         CAST(EXTRA LIKE '%auto_increment%' OR EXTRA LIKE '%generated%' AS SIGNED) AS auto, \
         CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED) AS max_chars, \
         CAST(COLUMN_KEY = 'PRI' AS SIGNED) AS pk \
         FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn migrate(pool: &Pool<Self>) -> futures::future::BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { Ok(MIGRATOR.run(pool).await?) })
    }

    /// `IGNORE` also turns other errors into warnings; the columns it
    /// writes are sized for what Calendly sends, and the keys are the only
    /// constraint those inserts can meet.
    fn insert_ignore(rest: &str) -> String {
        format!("INSERT IGNORE INTO {rest}")
    }

    fn on_email_conflict(set: &str) -> String {
        format!("ON DUPLICATE KEY UPDATE {set}")
    }

    fn inserted(column: &str) -> String {
        format!("VALUES({column})")
    }

    /// MariaDB has no `UPDATE … FROM`: a join with the rows as a derived table.
    fn update_figures(scans: usize) -> String {
        let first = figure_value_names()
            .iter()
            .map(|name| format!("? AS {name}"))
            .collect::<Vec<_>>()
            .join(", ");
        let other = format!(" UNION ALL SELECT {}", ["?"; FIGURE_VALUES].join(", "));
        format!(
            "UPDATE scan_progress s JOIN (SELECT {first}{}) v \
             ON s.scan_id = v.v_scan_id AND s.owner = v.v_owner \
             SET {} WHERE s.status = 'running'",
            other.repeat(scans.saturating_sub(1)),
            figure_assignments::<Self>("s.", ""),
        )
    }
}

impl SqlStore<MySql> {
    /// Connects to `url` (`mysql://…` or `mariadb://…`). Sessions run in UTC.
    pub(super) async fn open(url: &str) -> StoreResult<(Pool<MySql>, Pool<MySql>)> {
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        let options = MySqlConnectOptions::from_str(&url)?
            .charset("utf8mb4")
            .timezone(Some(String::from("+00:00")));
        super::reach::Server {
            backend: "MySQL/MariaDB",
            host: options.get_host(),
            port: options.get_port(),
            socket: options.get_socket().map(PathBuf::as_path),
            user: options.get_username(),
            database: options.get_database(),
        }
        .try_connect::<sqlx::MySqlConnection>(&options)
        .await?;
        let pool = super::sql::never_inside_a_transaction(MySqlPoolOptions::new(), false)
            .max_connections(8)
            .acquire_timeout(super::ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok((pool.clone(), pool))
    }
}
