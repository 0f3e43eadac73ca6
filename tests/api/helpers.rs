//! Shared test setup: a simulator on a free port and a client aimed at it.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use calscan::calendly::{CalendlyClient, ClientSettings, Simulator, SimulatorConfig};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// A running simulator; stops when dropped.
pub struct TestSim {
    pub sim: Simulator,
    shutdown: CancellationToken,
}

impl std::ops::Deref for TestSim {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        &self.sim
    }
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A simulator with `events` events and otherwise `tweak`ed defaults: no
/// latency, a limit no test reaches by accident.
pub async fn simulator(events: usize, tweak: impl FnOnce(&mut SimulatorConfig)) -> TestSim {
    let mut config = SimulatorConfig {
        events,
        seed: 42,
        rate_limit: 10_000,
        ..SimulatorConfig::default()
    };
    tweak(&mut config);
    let (sim, shutdown) = Simulator::spawn(config).await.unwrap();
    TestSim { sim, shutdown }
}

/// Client settings for `sim` with short backoffs, so retries take
/// milliseconds.
pub fn settings(sim: &Simulator) -> ClientSettings {
    let mut settings = ClientSettings::new(
        sim.base_url().parse().unwrap(),
        SecretString::from("demo-token"),
    );
    settings.backoff_min = Duration::from_millis(5);
    settings.backoff_max = Duration::from_millis(50);
    settings.request_timeout = Duration::from_secs(5);
    settings
}

pub fn client(sim: &Simulator) -> CalendlyClient {
    CalendlyClient::new(settings(sim)).unwrap()
}

/// The distinct normalized emails of a full scan by `client`.
pub async fn scanned_emails(client: &CalendlyClient) -> BTreeSet<String> {
    let org = client.organization(None).await.unwrap();
    client
        .all_invitees(&org)
        .await
        .unwrap()
        .iter()
        .filter_map(|i| i.normalized_email())
        .collect()
}

/// A GET to the simulator with the owner's token.
pub async fn get(sim: &Simulator, path_or_url: &str) -> reqwest::Response {
    get_as(sim, path_or_url, "demo-token").await
}

pub async fn get_as(sim: &Simulator, path_or_url: &str, token: &str) -> reqwest::Response {
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_owned()
    } else {
        format!("{}{path_or_url}", sim.base_url())
    };
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

// ---- the application --------------------------------------------------------

use std::sync::{Mutex, OnceLock};

use calscan::app::{AppState, Application, Settings};
use calscan::auth::AdminPassword;
use calscan::i18n::Lang;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

/// The API token every test app accepts.
pub const API_TOKEN: &str = "test-api-token";
/// The admin password every test app accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// Everything the server logged during the tests, to prove what it never logs.
pub fn server_log() -> String {
    String::from_utf8_lossy(&LOG.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

#[derive(Clone, Copy)]
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.get_or_init(Default::default)
            .lock()
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_tracing() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("calscan=debug,info")
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// The password hash, made once per test run (Argon2id is slow on purpose).
fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password_auth::generate_hash(PASSWORD))
        .clone()
}

/// How to build a test app.
pub struct AppOptions {
    pub events: usize,
    pub tweak_sim: Box<dyn FnOnce(&mut SimulatorConfig) + Send>,
    pub calendly_token: Option<&'static str>,
    pub lease: Duration,
    /// How long a scan waits for the database (`CALSCAN_DB_OUTAGE_S`).
    pub db_outage: Duration,
    pub lang: Lang,
    pub stream_buffer: usize,
    /// A database to use instead of a fresh one.
    pub database_url: Option<String>,
    /// The event stream answers 503 (to test the pages' polling fallback).
    pub block_sse: bool,
    /// Failed logins per client before 429.
    pub login_attempts: u32,
    /// `CALSCAN_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Inactivity that ends a session.
    pub session_idle: Duration,
    /// How long a session lasts however much it is used.
    pub session_max: Duration,
    /// Whether the session cookie is marked `Secure` (served behind TLS).
    pub cookie_secure: bool,
    /// Where summaries of ended scans go.
    pub notify: Option<calscan::notify::NotifySettings>,
    /// `CALSCAN_SCAN_EVERY`.
    pub scan_every: Option<Duration>,
    /// `CALENDLY_WEBHOOK_SIGNING_KEY`.
    pub webhook_key: Option<&'static str>,
    /// `CALSCAN_CUSTOMERS_TABLE` and its columns.
    pub customers: calscan::store::CustomerSettings,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            events: 60,
            tweak_sim: Box::new(|_| {}),
            calendly_token: Some("demo-token"),
            lease: Duration::from_secs(15),
            db_outage: Duration::from_secs(60),
            lang: Lang::De,
            stream_buffer: 1024,
            database_url: None,
            block_sse: false,
            login_attempts: 5,
            trusted_proxies: Vec::new(),
            session_idle: Duration::from_secs(3600),
            session_max: Duration::from_secs(12 * 3600),
            cookie_secure: false,
            notify: None,
            scan_every: None,
            webhook_key: None,
            customers: calscan::store::CustomerSettings::default(),
        }
    }
}

/// A running scan as another process would have written it, its lease
/// ending `lease_ms` from now.
pub fn running_scan(scan_id: &str, owner: &str, lease_ms: i64) -> calscan::store::NewScan {
    use calscan::store::{LogRow, NewScan, Progress};
    let now = chrono::Utc::now();
    NewScan {
        scan_id: scan_id.into(),
        mode: "full".into(),
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

/// Sends `signal` (`TERM`, `INT`, …) to process `pid`.
pub async fn send_signal(pid: u32, signal: &str) {
    let sent = tokio::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// A page as a browser asking in `lang` gets it: status and HTML.
pub async fn page(app: &TestApp, path: &str, lang: &str) -> (u16, String) {
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(API_TOKEN)
        .header("Accept", "text/html")
        .header("Accept-Language", lang)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The keys of the original's status object, which calscan's keeps.
pub const ORIGINAL_STATUS_KEYS: [&str; 10] = [
    "status",
    "progress",
    "current_step",
    "events_scanned",
    "emails_found",
    "new_count",
    "existing_count",
    "error_message",
    "duration",
    "logs",
];

/// A running calscan on 127.0.0.1 with a fresh SQLite database and a
/// simulator behind it. Stops when dropped.
pub struct TestApp {
    pub base: String,
    /// The database it uses, for a second instance to share.
    pub database_url: String,
    pub sim: TestSim,
    pub state: AppState,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Dropped after the server is told to stop (fields drop after `drop`).
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The backend the suite runs against: `CALSCAN_TEST_DATABASE` is
/// `sqlite` (the default), `postgres` or `mysql`.
pub fn backend() -> &'static str {
    static BACKEND: OnceLock<&'static str> = OnceLock::new();
    BACKEND.get_or_init(|| match std::env::var("CALSCAN_TEST_DATABASE").as_deref() {
        Ok("postgres") => "postgres",
        Ok("mysql") => "mysql",
        Ok("sqlite") | Err(_) => {
            eprintln!(
                "skipped: PostgreSQL and MySQL/MariaDB; the suite runs on SQLite \
                 (CALSCAN_TEST_DATABASE=postgres or =mysql runs it there; CI does all three)"
            );
            "sqlite"
        }
        Ok(other) => panic!("CALSCAN_TEST_DATABASE={other}: use sqlite, postgres or mysql"),
    })
}

/// Where the test databases are created: `CALSCAN_TEST_POSTGRES_URL` or
/// `CALSCAN_TEST_MYSQL_URL`, ending in the database to connect to first.
fn admin_url(backend: &str) -> String {
    match backend {
        "postgres" => std::env::var("CALSCAN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        _ => std::env::var("CALSCAN_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into()),
    }
}

/// Runs one statement on the database server of `backend`.
async fn admin_execute(backend: &str, sql: String) {
    use sqlx::Connection;
    let url = admin_url(backend);
    let sql = sqlx::AssertSqlSafe(sql);
    let done = if backend == "postgres" {
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
async fn admin_drop(backend: &str, name: &str) {
    if backend == "postgres" {
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
    backend: &'static str,
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
    if backend == "sqlite" {
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
    let create = if backend == "postgres" {
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

pub async fn spawn_app(options: AppOptions) -> TestApp {
    init_tracing();
    let sim = simulator(options.events, options.tweak_sim).await;
    let dir = tempfile::tempdir().unwrap();
    let (db_url, database) = match options.database_url {
        Some(url) => (url, None),
        None => {
            let database = fresh_database(&dir).await;
            (database.url.clone(), Some(database))
        }
    };
    let calendly = options.calendly_token.map(|token| {
        let mut s = settings(&sim);
        s.token = SecretString::from(token);
        s
    });
    let settings = Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: db_url.clone(),
        customers: options.customers.clone(),
        calendly,
        organization: None,
        admin_user: "admin".into(),
        admin_password: AdminPassword::Hash(password_hash()),
        api_token: Some(SecretString::from(API_TOKEN)),
        lang: options.lang,
        cookie_secure: options.cookie_secure,
        session_idle: options.session_idle,
        session_max: options.session_max,
        login_attempts: options.login_attempts,
        trusted_proxies: options.trusted_proxies.clone(),
        lease: options.lease,
        stream_buffer: options.stream_buffer,
        lookback: Duration::from_secs(24 * 3600),
        db_outage: options.db_outage,
        notify: options.notify,
        scan_every: options.scan_every,
        webhook_key: options.webhook_key.map(secrecy::SecretString::from),
        block_sse: options.block_sse,
    };
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        database_url: db_url,
        sim,
        state,
        http: reqwest::Client::new(),
        shutdown,
        server: Some(server),
        _database: database,
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// A GET with `Accept-Language: lang`.
    pub async fn get_in(&self, path: &str, lang: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(API_TOKEN)
            .header("Accept-Language", lang)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Starts a scan in the default (incremental) mode and returns its id.
    pub async fn start_scan(&self) -> String {
        let response = self.post("/api/scans").await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        body["scan_id"].as_str().unwrap().to_owned()
    }

    /// One key of every scan in the history, newest first.
    pub async fn history(&self, key: &str) -> Vec<String> {
        self.get_json("/api/scans").await["scans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[key].as_str().unwrap().to_owned())
            .collect()
    }

    /// Starts a scan with `{"mode": mode}` and returns its id.
    pub async fn start_scan_in(&self, mode: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/scans"))
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        body["scan_id"].as_str().unwrap().to_owned()
    }

    /// Opens the scan's event stream.
    pub async fn stream(&self, scan_id: &str, last_event_id: Option<i64>) -> SseStream {
        let mut request = self
            .http
            .get(self.url(&format!("/api/scans/{scan_id}/events")))
            .bearer_auth(API_TOKEN);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        SseStream::from_response(response)
    }

    /// Follows a scan's stream to its `done` and returns every event.
    pub async fn follow(&self, scan_id: &str) -> Vec<SseEvent> {
        self.stream(scan_id, None).await.until_done().await
    }

    pub async fn customer_total(&self) -> i64 {
        self.get_json("/api/customers").await["total"]
            .as_i64()
            .unwrap()
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// A minimal text/event-stream reader.
pub struct SseStream {
    pub status: reqwest::StatusCode,
    body: futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
    /// Bytes not yet split into events (a chunk may end inside a character).
    buffer: Vec<u8>,
}

impl SseStream {
    pub fn from_response(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            body: response
                .bytes_stream()
                .map_err(std::io::Error::other)
                .boxed(),
            buffer: Vec::new(),
        }
    }

    /// The events in the body `reader` yields, read as it is asked for them.
    pub fn from_reader(
        status: reqwest::StatusCode,
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    ) -> Self {
        use tokio::io::AsyncReadExt;
        let body = futures::stream::unfold(reader, |mut reader| async move {
            let mut chunk = vec![0; 8192];
            match reader.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(bytes::Bytes::from(chunk)), reader))
                }
                Err(e) => Some((Err(e), reader)),
            }
        });
        Self {
            status,
            body: body.boxed(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` when the server closed the stream. Waits at
    /// most 60 s, so a broken test fails instead of hanging.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(Duration::from_secs(60), self.next_inner())
            .await
            .expect("no event within 60 s")
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("an event that is not UTF-8");
                let mut event = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment or a bare retry
                }
                event.data = serde_json::from_str(&data).unwrap();
                return Some(event);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Every event up to and including `done`; asserts the stream then ends.
    pub async fn until_done(mut self) -> Vec<SseEvent> {
        assert_eq!(self.status, 200, "the stream was refused");
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let done = event.event == "done";
            events.push(event);
            if done {
                assert!(self.next().await.is_none(), "the stream went on after done");
                return events;
            }
        }
        panic!("the stream ended without done: {events:?}");
    }
}

/// Every log line an event list carries: the snapshot's `logs`, then `log` events.
pub fn log_lines(events: &[SseEvent]) -> Vec<(i64, String)> {
    let mut lines = Vec::new();
    for event in events {
        match event.event.as_str() {
            "snapshot" => {
                for log in event.data["logs"].as_array().unwrap() {
                    lines.push((
                        log["id"].as_i64().unwrap(),
                        log["message"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            "log" => lines.push((
                event.data["id"].as_i64().unwrap(),
                event.data["message"].as_str().unwrap().to_owned(),
            )),
            _ => {}
        }
    }
    lines
}

/// Ids strictly increase, progress never goes down, one `done` at the end.
pub fn assert_well_formed(events: &[SseEvent]) {
    assert_eq!(events[0].event, "snapshot");
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e.id.expect("every event has an id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids must strictly increase: {ids:?}"
    );
    let progress: Vec<i64> = events
        .iter()
        .filter_map(|e| e.data["progress"].as_i64())
        .collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress went down: {progress:?}"
    );
    assert_eq!(events.iter().filter(|e| e.event == "done").count(), 1);
    assert_eq!(events.last().unwrap().event, "done");
}

/// Every customer of the calscan at `base`, page by page.
pub async fn all_customers(http: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut customers = Vec::new();
    for page in 1.. {
        let body: Value = http
            .get(format!("{base}/api/customers?page={page}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = body["customers"].as_array().unwrap();
        if rows.is_empty() {
            return customers;
        }
        customers.extend(rows.iter().cloned());
    }
    unreachable!("pages are counted until one is empty")
}

/// Asserts that the customers are exactly `expected`, each once, with one
/// booking per invitee record of the simulator.
pub fn assert_customers(customers: &[Value], expected: &BTreeSet<String>, invitees: usize) {
    let emails: Vec<&str> = customers
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<String> = emails.iter().map(|e| (*e).to_owned()).collect();
    assert_eq!(distinct.len(), emails.len(), "duplicate customers");
    assert_eq!(&distinct, expected);
    let bookings: i64 = customers
        .iter()
        .map(|c| c["bookings"].as_i64().unwrap())
        .sum();
    assert_eq!(bookings, invitees as i64);
}

/// A calscan process of the built binary, serving on a port of its own.
/// Dropping it kills it.
pub struct Process {
    pub child: tokio::process::Child,
    pub base: String,
    pub http: reqwest::Client,
    /// What it logged, for a failing test to show.
    pub log: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub async fn spawn(database_url: &str, calendly: &str, lease_s: u64) -> Self {
        Self::spawn_with(database_url, calendly, lease_s, &[]).await
    }

    /// [`Process::spawn`] with more environment variables.
    pub async fn spawn_with(
        database_url: &str,
        calendly: &str,
        lease_s: u64,
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_calscan"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("CALENDLY_API_BASE", calendly)
            .env("CALENDLY_TOKEN", "demo-token")
            .env("CALSCAN_ADMIN_PASSWORD", PASSWORD)
            .env("CALSCAN_API_TOKEN", API_TOKEN)
            .env("CALSCAN_LEASE_S", lease_s.to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let base = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the process starts within 60 s")
                .unwrap()
                .unwrap_or_else(|| panic!("the process ended: {:?}", log.lock().unwrap()));
            log.lock().unwrap().push(line.clone());
            if let Some((_, address)) = line.split_once("listening on ") {
                // As text, or inside a JSON line.
                break address.split(['"', ' ']).next().unwrap().trim().to_owned();
            }
        };
        // Read on, so the pipe never fills and blocks the process.
        let keep = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                keep.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            base,
            http: reqwest::Client::new(),
            log,
        }
    }

    /// Sends SIGTERM, as a container stop does.
    pub async fn terminate(&self) {
        send_signal(self.child.id().expect("the process runs"), "TERM").await;
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn stream(&self, scan_id: &str) -> SseStream {
        let response = self
            .http
            .get(format!("{}/api/scans/{scan_id}/events", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        SseStream::from_response(response)
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
        match url.split(':').next() {
            Some("sqlite") => collect!(sqlx::SqliteConnection),
            Some("postgres") => collect!(sqlx::PgConnection),
            _ => collect!(sqlx::MySqlConnection),
        }
    }
    text
}

/// Runs `statements` on the database at `url`, as another program would.
pub async fn exec(url: &str, statements: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(statements.to_owned());
    match url.split(':').next() {
        Some("sqlite") => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Some("postgres") => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        _ => {
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
    match url.split(':').next() {
        Some("sqlite") => collect!(sqlx::SqliteConnection),
        Some("postgres") => collect!(sqlx::PgConnection),
        _ => collect!(sqlx::MySqlConnection),
    }
}
