//! calscan as a process of its own, and signals to processes.

use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{API_TOKEN, PASSWORD, SseStream};

/// Sends `signal` (`TERM`, `INT`, …) to process `pid`.
pub async fn send_signal(pid: u32, signal: &str) {
    let sent = tokio::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
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
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_calscan"));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("CALENDLY_API_BASE", calendly)
            .env("CALENDLY_TOKEN", "demo-token")
            .env("CALSCAN_ADMIN_PASSWORD", PASSWORD)
            .env("CALSCAN_LEASE_S", lease_s.to_string());
        Self::start(command).await
    }

    /// `calscan demo` on `database_url`: its own simulator of `events`
    /// events, no latency.
    pub async fn demo(database_url: &str, events: usize) -> Self {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_calscan"));
        command
            .args(["demo", "--bind", "127.0.0.1:0", "--latency-ms", "0"])
            .args(["--events", &events.to_string()])
            .args(["--database-url", database_url]);
        Self::start(command).await
    }

    /// Starts `command` with the API token, and waits until it listens.
    async fn start(mut command: tokio::process::Command) -> Self {
        let mut child = command
            .env("CALSCAN_API_TOKEN", API_TOKEN)
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

    /// The server logging JSON lines (`CALSCAN_LOG_FORMAT=json`), on a
    /// fresh SQLite file in `dir`, with more environment variables.
    pub async fn logging_json(
        dir: &tempfile::TempDir,
        calendly: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let url = format!("sqlite://{}", dir.path().join("json-log.db").display());
        let env: Vec<_> = [("CALSCAN_LOG_FORMAT", "json")]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        Self::spawn_with(&url, calendly, 15, &env).await
    }

    /// Its log, each line parsed as JSON (a line that is not fails the
    /// test), once a request has been answered and logged.
    pub async fn json_log_after_an_answer(&self) -> Vec<serde_json::Value> {
        let started = std::time::Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if log
                .iter()
                .any(|l| l.contains("finished processing request"))
            {
                return log
                    .iter()
                    .map(|line| {
                        serde_json::from_str(line)
                            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
                    })
                    .collect();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{log:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
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
