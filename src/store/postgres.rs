//! PostgreSQL: native timestamps and booleans, row locks, and `LISTEN/NOTIFY`
//! to wake the other calscan processes that share the database.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{Pool, Postgres};

use super::dialect::Dialect;
use super::sql::SqlStore;
use super::{StoreResult, Wakeup};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel every instance listens on (also named in `NOTIFY` below).
const CHANNEL: &str = "calscan";

pub type PostgresStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const SINGLE_PROCESS: bool = false;
    const GREATEST: &'static str = "GREATEST";
    const LEAST: &'static str = "LEAST";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    // Delivered when the transaction commits, merged when repeated.
    const NOTIFY: Option<&'static str> = Some("SELECT pg_notify('calscan', ?)");

    type Time = DateTime<Utc>;

    fn to_db(time: DateTime<Utc>) -> DateTime<Utc> {
        time
    }

    fn from_db(time: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        Ok(time)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    const TABLES: &'static str = "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema()";

    const COLUMNS: &'static str = "SELECT c.column_name::text AS name, c.data_type::text AS data_type, \
         (CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END)::bigint AS not_null, \
         (CASE WHEN c.column_default IS NULL THEN 0 ELSE 1 END)::bigint AS has_default, \
         (CASE WHEN c.is_identity = 'YES' OR c.is_generated = 'ALWAYS' \
           OR c.column_default LIKE 'nextval(%' THEN 1 ELSE 0 END)::bigint \
           AS auto, \
         c.character_maximum_length::bigint AS max_chars, \
         (CASE WHEN EXISTS (SELECT 1 FROM information_schema.table_constraints t \
           JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name \
           AND k.table_schema = t.table_schema AND k.table_name = t.table_name \
           WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema \
           AND t.table_name = c.table_name AND k.column_name = c.column_name) \
           THEN 1 ELSE 0 END)::bigint AS pk \
         FROM information_schema.columns c \
         WHERE c.table_schema = current_schema() AND c.table_name = ? ORDER BY c.ordinal_position";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn migrate(pool: &Pool<Self>) -> futures::future::BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { Ok(MIGRATOR.run(pool).await?) })
    }

    /// `?` becomes `$1`, `$2`, … (no statement here has a `?` in a literal).
    fn placeholders(sql: &str) -> Cow<'_, str> {
        if !sql.contains('?') {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    fn wakeups(
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, StoreResult<Option<BoxStream<'static, Wakeup>>>> {
        Box::pin(async move {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(CHANNEL).await?;
            // `recv` reconnects after a lost connection; what was sent
            // meanwhile is lost, which the readers' periodic re-read covers.
            let stream = futures::stream::unfold(listener, |mut listener| async move {
                loop {
                    match listener.recv().await {
                        Ok(n) => {
                            if let Some(wakeup) = Wakeup::from_payload(n.payload()) {
                                return Some((wakeup, listener));
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "lost the PostgreSQL notifications; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
            Ok(Some(stream.boxed()))
        })
    }
}

impl SqlStore<Postgres> {
    /// Connects to `url`.
    pub(super) async fn open(url: &str) -> StoreResult<(Pool<Postgres>, Pool<Postgres>)> {
        let options = PgConnectOptions::from_str(url)?;
        super::reach::Server {
            backend: "PostgreSQL",
            host: options.get_host(),
            port: options.get_port(),
            socket: options.get_socket().map(PathBuf::as_path),
            user: options.get_username(),
            database: options.get_database(),
        }
        .try_connect::<sqlx::PgConnection>(&options)
        .await?;
        let pool = super::sql::never_inside_a_transaction(PgPoolOptions::new(), false)
            .max_connections(8)
            .acquire_timeout(super::ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok((pool.clone(), pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            Postgres::placeholders("UPDATE t SET a = ?, b = GREATEST(b, ?) WHERE c = ?"),
            "UPDATE t SET a = $1, b = GREATEST(b, $2) WHERE c = $3"
        );
        assert!(matches!(
            Postgres::placeholders("SELECT 1"),
            Cow::Borrowed("SELECT 1")
        ));
    }
}
