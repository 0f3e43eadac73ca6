//! Shared test setup: `TestApp`, a calscan on a free port with a simulator
//! and a fresh database behind it, and the helpers the test files share.
//! The parts live in submodules; everything is re-exported here.

mod db;
mod logs;
mod process;
mod sim;
mod sse;

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use calscan::app::{Application, Settings};
use calscan::auth::{AdminPassword, AuthSettings};
use calscan::calendly::SimulatorConfig;
use calscan::i18n::Lang;
use calscan::notify::Notifier;
use calscan::scan::ScanSettings;
use calscan::state::AppState;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use db::{
    Backend, TestDatabase, backend, database_text, exec, fresh_database, rows, running_scan,
};
pub use logs::server_log;
pub use process::{Process, send_signal};
pub use sim::{TestSim, client, get, get_as, scanned_emails, settings, simulator};
pub use sse::{SseEvent, SseStream, assert_well_formed, log_lines};

/// The API token every test app accepts.
pub const API_TOKEN: &str = "test-api-token";
/// The admin password every test app accepts.
pub const PASSWORD: &str = "correct horse battery staple";

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
    /// `CALSCAN_TIMEZONE`; the tests' times are Vienna's, whatever the machine's.
    pub zone: calscan::time::Zone,
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
            zone: "Europe/Vienna".parse().unwrap(),
        }
    }
}

/// A running calscan on 127.0.0.1 with a fresh database on the suite's
/// backend and a simulator behind it. Stops when dropped.
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

pub async fn spawn_app(options: AppOptions) -> TestApp {
    logs::init_tracing();
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
        lang: options.lang,
        scan: ScanSettings {
            lease: options.lease,
            stream_buffer: options.stream_buffer,
            db_outage: options.db_outage,
            notify: options.notify.map(|n| Notifier::new(n).unwrap()),
            every: options.scan_every,
            zone: options.zone,
            ..ScanSettings::default()
        },
        auth: AuthSettings {
            api_token: Some(SecretString::from(API_TOKEN)),
            cookie_secure: options.cookie_secure,
            session_idle: options.session_idle,
            session_max: options.session_max,
            login_attempts: options.login_attempts,
            trusted_proxies: options.trusted_proxies.clone(),
            ..AuthSettings::new("admin", AdminPassword::Hash(password_hash()))
        },
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

    /// A request to `path` with the API token.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(API_TOKEN)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    /// A GET with `Accept-Language: lang`.
    pub async fn get_in(&self, path: &str, lang: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .header("Accept-Language", lang)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
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
            .request(reqwest::Method::POST, "/api/scans")
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
        let mut request = self.request(
            reqwest::Method::GET,
            &format!("/api/scans/{scan_id}/events"),
        );
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

/// A page as a browser asking in `lang` gets it: status and HTML.
pub async fn page(app: &TestApp, path: &str, lang: &str) -> (u16, String) {
    let response = app
        .request(reqwest::Method::GET, path)
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
