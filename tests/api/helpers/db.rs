//! The test databases: the backend the suite runs on, a fresh database per
//! test and its removal, and raw access to a database as another program
//! would have it.

use std::sync::OnceLock;

/// A database calscan runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// The name calscan gives it: its URL scheme, its folder in
    /// `migrations/`, the `database` of `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// The backend of the database at `url`, by its scheme.
    pub fn of_url(url: &str) -> Self {
        match url.split(':').next() {
            Some("sqlite") => Self::Sqlite,
            Some("postgres") => Self::Postgres,
            _ => Self::MySql,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The backend the suite runs against: `CALSCAN_TEST_DATABASE` is
/// `sqlite` (the default), `postgres` or `mysql`.
pub fn backend() -> Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    *BACKEND.get_or_init(|| match std::env::var("CALSCAN_TEST_DATABASE").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("mysql") => Backend::MySql,
        Ok("sqlite") | Err(_) => {
            eprintln!(
                "skipped: PostgreSQL and MySQL/MariaDB; the suite runs on SQLite \
                 (CALSCAN_TEST_DATABASE=postgres or =mysql runs it there; CI does all three)"
            );
            Backend::Sqlite
        }
        Ok(other) => panic!("CALSCAN_TEST_DATABASE={other}: use sqlite, postgres or mysql"),
    })
}

/// Where the test databases are created: `CALSCAN_TEST_POSTGRES_URL` or
/// `CALSCAN_TEST_MYSQL_URL`, ending in the database to connect to first.
fn admin_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => std::env::var("CALSCAN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        Backend::MySql => std::env::var("CALSCAN_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into()),
        Backend::Sqlite => unreachable!("SQLite has no server"),
    }
}

/// Runs one statement on the database server of `backend`.
async fn admin_execute(backend: Backend, sql: String) {
    use sqlx::Connection;
    let url = admin_url(backend);
    let sql = sqlx::AssertSqlSafe(sql);
    let done = if backend == Backend::Postgres {
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL for the tests ({url}): {e}"));
        sqlx::query(sql).execute(&mut conn).await.map(drop)
    } else {
        let mut conn = sqlx::MySqlConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("MySQL/MariaDB for the tests ({url}): {e}"));
        sqlx::query(sql).execute(&mut conn).await.map(drop)
    };
    done.unwrap();
}

/// Drops a test database. On MySQL the sessions still on it are killed
/// first, as PostgreSQL's `WITH (FORCE)` does: a session of the dropped test
/// may hold a transaction whose rollback waits for the runtime this drop
/// blocks, and `DROP DATABASE` would wait for its lock for ever.
async fn admin_drop(backend: Backend, name: &str) {
    if backend == Backend::Postgres {
        return admin_execute(
            backend,
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
    use sqlx::Connection;
    let url = admin_url(backend);
    let Ok(mut conn) = sqlx::MySqlConnection::connect(&url).await else {
        return;
    };
    // `ID` is a signed BIGINT in MariaDB's information schema.
    let sessions: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM information_schema.processlist WHERE db = ?")
            .bind(name)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|error| {
                eprintln!("cannot list the sessions on {name}: {error}");
                Vec::new()
            });
    for id in sessions {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
            .execute(&mut conn)
            .await;
    }
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut conn)
    .await;
}

/// A fresh, empty database for one test, dropped with it (a SQLite file
/// goes with its temporary directory).
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    /// The database's name on a server; `None` for SQLite.
    server_name: Option<String>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.server_name.take() else {
            return;
        };
        let backend = self.backend;
        // Drop runs outside async: a thread with its own runtime does it.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(admin_drop(backend, &name));
        })
        .join();
    }
}

/// A fresh, empty database on the suite's backend; a SQLite one in `dir`.
pub async fn fresh_database(dir: &tempfile::TempDir) -> TestDatabase {
    let backend = backend();
    if backend == Backend::Sqlite {
        return TestDatabase {
            url: format!("sqlite://{}", dir.path().join("calscan.db").display()),
            backend,
            server_name: None,
        };
    }
    let name = format!(
        "calscan_test_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let create = if backend == Backend::Postgres {
        format!("CREATE DATABASE {name}")
    } else {
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    };
    admin_execute(backend, create).await;
    let admin = admin_url(backend);
    let url = match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("{admin} needs a database path"),
    };
    TestDatabase {
        url,
        backend,
        server_name: Some(name),
    }
}

/// A running scan as another process would have written it, its lease
/// ending `lease_ms` from now.
pub fn running_scan(scan_id: &str, owner: &str, lease_ms: i64) -> calscan::store::NewScan {
    use calscan::store::{LogRow, NewScan, Progress};
    let now = chrono::Utc::now();
    NewScan {
        scan_id: calscan::store::ScanId::parse(scan_id).expect("a scan id"),
        mode: calscan::store::ScanMode::Full,
        owner: owner.into(),
        lease_until_ms: now.timestamp_millis() + lease_ms,
        started_at: now,
        figures: Progress {
            last_event_id: 1,
            ..Progress::default()
        },
        logs: vec![LogRow {
            id: 1,
            message: calscan::i18n::Texts::same("start"),
            created_at: now,
        }],
    }
}

/// Every text value in calscan's tables at `url`, one per line: for tests
/// that search the database for what must never be stored.
pub async fn database_text(url: &str) -> String {
    use sqlx::{Connection, Row};
    const TABLES: [&str; 8] = [
        "scan_progress",
        "scan_logs",
        "scan_events_done",
        "scan_emails",
        "customers",
        "customer_stats",
        "bookings",
        "sessions",
    ];
    let mut text = String::new();
    for table in TABLES {
        let sql = sqlx::AssertSqlSafe(format!("SELECT * FROM {table}"));
        // Columns that are not text fail to decode as text and are passed over.
        macro_rules! collect {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(url).await.unwrap();
                for row in sqlx::query(sql).fetch_all(&mut conn).await.unwrap() {
                    for i in 0..row.len() {
                        if let Ok(Some(value)) = row.try_get::<Option<String>, _>(i) {
                            text.push_str(&value);
                            text.push('\n');
                        }
                    }
                }
            }};
        }
        match Backend::of_url(url) {
            Backend::Sqlite => collect!(sqlx::SqliteConnection),
            Backend::Postgres => collect!(sqlx::PgConnection),
            Backend::MySql => collect!(sqlx::MySqlConnection),
        }
    }
    text
}

/// Runs `statements` on the database at `url`, as another program would.
pub async fn exec(url: &str, statements: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(statements.to_owned());
    match Backend::of_url(url) {
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// The rows `query` returns at `url`, every column as text (the query casts
/// what is not text); NULL as `None`.
pub async fn rows(url: &str, query: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Connection, Row};
    let sql = sqlx::AssertSqlSafe(query.to_owned());
    macro_rules! collect {
        ($conn:ty) => {{
            let mut conn = <$conn>::connect(url).await.unwrap();
            sqlx::query(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).unwrap())
                        .collect()
                })
                .collect()
        }};
    }
    match Backend::of_url(url) {
        Backend::Sqlite => collect!(sqlx::SqliteConnection),
        Backend::Postgres => collect!(sqlx::PgConnection),
        Backend::MySql => collect!(sqlx::MySqlConnection),
    }
}
