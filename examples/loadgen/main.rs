//! The load generator behind BENCHMARKS.md: drives a calscan server in a
//! process of its own on 127.0.0.1 and prints one JSON line of figures per
//! scenario. The server's CPU time and memory are read from `/proc`.
//!
//! ```sh
//! cargo run --release --features bench --example loadgen -- quick      # every scenario, small, < 2 min
//! cargo run --release --features bench --example loadgen -- all        # every scenario, full size
//! cargo run --release --features bench --example loadgen -- watchers   # one scenario (full size)
//! ```
//!
//! Scenarios: watchers, push, polling, start, logs, scan-speed, large-org,
//! reconnect, and floor: what the machine itself costs for the deliveries
//! of push and polling, measured without calscan (see [`floor`]). The server is this same program run as `loadgen serve`: the
//! calscan application with the `bench` feature's synthetic scans (see
//! `src/bench.rs`) and a small control API beside it. The simulated Calendly
//! runs in the client process, so the server's figures are calscan's own.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use calscan::app::{Application, Settings};
use calscan::auth::{AdminPassword, AuthSettings};
use calscan::bench::{BenchStore, Synthetic, parse_probe, probe, unix_micros};
use calscan::calendly::{ClientSettings, Simulator, SimulatorConfig};
use calscan::scan::ScanSettings;
use futures::StreamExt;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod peers;

const TOKEN: &str = "bench-api-token";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("quick");
    if what == "serve" {
        return serve(args.get(1).cloned()).await;
    }
    if what == "floor-serve" {
        return floor_serve(&args[1..]).await;
    }
    if what == "burn" {
        peers::burn();
    }
    let (names, quick): (Vec<&str>, bool) = match what {
        // The peers are installed and measured only when asked for.
        "quick" => (SCENARIOS[..10].to_vec(), true),
        "all" => (SCENARIOS[..10].to_vec(), false),
        one if SCENARIOS.contains(&one) => (vec![one], args.iter().any(|a| a == "--quick")),
        other => bail!("unknown scenario {other:?}: use quick, all or one of {SCENARIOS:?}"),
    };
    for name in names {
        let started = Instant::now();
        let mut figures = match name {
            "watchers" => watchers(quick).await?,
            "push" => push(quick).await?,
            "polling" => polling(quick).await?,
            "start" => start(quick).await?,
            "logs" => logs(quick).await?,
            "scan-speed" => scan_speed(quick).await?,
            "large-org" => large_org(quick).await?,
            "reconnect" => reconnect(quick).await?,
            "floor" => floor(quick).await?,
            "journal" => journal(quick).await?,
            "peers" => peers::peers(quick, args.iter().any(|a| a == "--busy")).await?,
            _ => unreachable!("checked above"),
        };
        figures["scenario"] = name.into();
        figures["quick"] = quick.into();
        figures["seconds"] = round(started.elapsed().as_secs_f64(), 1).into();
        println!("{figures}");
    }
    Ok(())
}

const SCENARIOS: [&str; 11] = [
    "watchers",
    "push",
    "polling",
    "start",
    "logs",
    "scan-speed",
    "large-org",
    "reconnect",
    "floor",
    "journal",
    "peers",
];

// ---------------------------------------------------------------------------
// The server side: `loadgen serve [CALENDLY_BASE]`.

async fn serve(calendly: Option<String>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("calscan-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let real_url = format!("sqlite://{}/calscan.db", dir.display());
    let scratch_url = format!("sqlite://{}/synthetic.db", dir.display());
    let settings = Settings {
        bind: "127.0.0.1:0".parse()?,
        database_url: real_url.clone(),
        customers: calscan::store::CustomerSettings::default(),
        calendly: calendly
            .map(|base| -> anyhow::Result<ClientSettings> {
                Ok(ClientSettings::new(
                    base.parse()?,
                    SecretString::from("demo-token"),
                ))
            })
            .transpose()?,
        lang: calscan::i18n::Lang::De,
        scan: ScanSettings::default(),
        auth: AuthSettings {
            api_token: Some(SecretString::from(TOKEN)),
            ..AuthSettings::new(
                "admin",
                AdminPassword::Hash(password_auth::generate_hash("unused")),
            )
        },
        webhook_key: None,
        block_sse: false,
    };
    let customers = match std::env::var_os(SCHOOL_ENV) {
        Some(file) => school_table(&real_url, std::path::Path::new(&file)).await?,
        None => calscan::store::CustomerSettings::default(),
    };
    let settings = Settings {
        customers: customers.clone(),
        ..settings
    };
    let real = calscan::store::connect_with(&real_url, &customers).await?;
    let store = Arc::new(BenchStore::new(real, &scratch_url).await?);
    let shutdown = CancellationToken::new();
    let app = Application::with_store(settings, store, shutdown.clone()).await?;
    let app_addr = app.local_addr()?;
    let synthetic = Arc::new(Synthetic::new(app.state().clone(), &scratch_url).await?);
    let control = axum::Router::new()
        .route("/create/{n}", post(control_create))
        .route("/emit", post(control_emit))
        .route("/finish", post(control_finish))
        .route("/stored/{scan_id}", get(control_stored))
        .route("/baseline/{lines}", post(control_baseline))
        .with_state(synthetic);
    let control_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let control_addr = control_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(control_listener, control).await });
    println!("READY http://{app_addr} http://{control_addr}");
    let result = app.run_until_stopped().await;
    let _ = std::fs::remove_dir_all(dir);
    result
}

type Ctl = State<Arc<Synthetic>>;

fn failed(error: anyhow::Error) -> (axum::http::StatusCode, String) {
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        error.to_string(),
    )
}

async fn control_create(
    State(s): Ctl,
    Path(n): Path<usize>,
) -> Result<Json<Vec<String>>, (axum::http::StatusCode, String)> {
    s.create(n).await.map(Json).map_err(failed)
}

#[derive(Debug, Deserialize)]
struct Emit {
    scan_ids: Vec<String>,
    first: usize,
    rounds: usize,
    per_round: usize,
    every_us: u64,
}

async fn control_emit(
    State(s): Ctl,
    Json(e): Json<Emit>,
) -> Result<(), (axum::http::StatusCode, String)> {
    s.emit(
        &e.scan_ids,
        e.first,
        e.rounds,
        e.per_round,
        Duration::from_micros(e.every_us),
    )
    .await
    .map_err(failed)
}

async fn control_finish(
    State(s): Ctl,
    Json(scan_ids): Json<Vec<String>>,
) -> Result<(), (axum::http::StatusCode, String)> {
    s.finish(&scan_ids).await.map_err(failed)
}

async fn control_stored(
    State(s): Ctl,
    Path(scan_id): Path<String>,
) -> Result<Json<i64>, (axum::http::StatusCode, String)> {
    s.stored_lines(&scan_id).await.map(Json).map_err(failed)
}

async fn control_baseline(
    State(s): Ctl,
    Path(lines): Path<usize>,
) -> Result<Json<f64>, (axum::http::StatusCode, String)> {
    s.one_insert_per_line(lines).await.map(Json).map_err(failed)
}

// ---------------------------------------------------------------------------
// The client side.

/// A server process and its control API.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    app: String,
    control: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(calendly: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(calendly, None).await
    }

    /// A server whose customer table is a school's own, filled with the
    /// emails in the file `school` (one per line).
    async fn start_with(
        calendly: Option<&str>,
        school: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command.arg("serve");
        if let Some(base) = calendly {
            command.arg(base);
        }
        if let Some(file) = school {
            command.env(SCHOOL_ENV, file);
        }
        let mut child = command
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("server pid")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the server did not start in 30 s")??
            .context("the server ended")?;
        let mut parts = line.split(' ');
        ensure!(parts.next() == Some("READY"), "server said {line:?}");
        let app = parts.next().context("app address")?.to_owned();
        let control = parts.next().context("control address")?.to_owned();
        Ok(Self {
            child,
            pid,
            app,
            control,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()?,
        })
    }

    /// A request to the control API, its JSON answer.
    async fn control<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let mut request = self.http.request(method, format!("{}{path}", self.control));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?.error_for_status()?;
        let bytes = response.bytes().await?;
        // Unit answers are empty.
        Ok(serde_json::from_slice(if bytes.is_empty() {
            b"null"
        } else {
            &bytes
        })?)
    }

    async fn create(&self, n: usize) -> anyhow::Result<Vec<String>> {
        self.control(reqwest::Method::POST, &format!("/create/{n}"), None)
            .await
    }

    /// Emits `rounds` rounds of `per_round` probes to each scan, `every` apart.
    async fn emit(
        &self,
        scan_ids: &[String],
        first: usize,
        rounds: usize,
        per_round: usize,
        every: Duration,
    ) -> anyhow::Result<()> {
        let body = json!({
            "scan_ids": scan_ids, "first": first, "rounds": rounds,
            "per_round": per_round, "every_us": every.as_micros() as u64,
        });
        self.control(reqwest::Method::POST, "/emit", Some(body))
            .await
    }

    async fn finish(&self, scan_ids: &[String]) -> anyhow::Result<()> {
        self.control(reqwest::Method::POST, "/finish", Some(json!(scan_ids)))
            .await
    }

    async fn stored(&self, scan_id: &str) -> anyhow::Result<i64> {
        self.control(reqwest::Method::GET, &format!("/stored/{scan_id}"), None)
            .await
    }

    /// The one-INSERT-per-line baseline of `lines` lines, in lines per second.
    async fn baseline(&self, lines: usize) -> anyhow::Result<f64> {
        self.control(reqwest::Method::POST, &format!("/baseline/{lines}"), None)
            .await
    }

    /// The server's writes of scan progress from its `/metrics`: how many,
    /// and their mean time in ms. Live events wait for these writes.
    async fn progress_writes(&self) -> anyhow::Result<Value> {
        let text = self
            .http
            .get(format!("{}/metrics", self.app))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let sample = |name: &str| -> anyhow::Result<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .with_context(|| format!("no {name} in /metrics"))?
                .parse()
                .with_context(|| format!("{name} is not a number"))
        };
        let count = sample("calscan_progress_write_seconds_count")?;
        let sum = sample("calscan_progress_write_seconds_sum")?;
        Ok(json!({"writes": count, "mean_ms": round(sum * 1e3 / count.max(1.0), 3)}))
    }

    fn proc(&self) -> anyhow::Result<ProcStats> {
        ProcStats::read(self.pid)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// What `/proc` says of a process.
#[derive(Debug, Clone, Copy)]
struct ProcStats {
    rss_kib: u64,
    peak_rss_kib: u64,
    /// User and system CPU time, in seconds.
    cpu_s: f64,
    /// Context switches of all its threads, voluntary (a thread went to
    /// sleep: each is a wake-up later) and not.
    switches: u64,
}

impl ProcStats {
    fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .context("no such field")?
                .parse()
                .context("not a number")
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name, which ends with the last ')'.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .context("stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = rest[11].parse::<u64>()? + rest[12].parse::<u64>()?;
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            peak_rss_kib: field("VmHWM:")?,
            // USER_HZ is 100 on Linux.
            cpu_s: ticks as f64 / 100.0,
            switches: Self::switches(pid)?,
        })
    }

    fn switches(pid: u32) -> anyhow::Result<u64> {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            // A thread that ended meanwhile took its count with it.
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            total += status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(total)
    }
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Seen {
    /// Probe latencies in µs, from the line's creation to its arrival.
    latencies_us: Vec<i64>,
    probes: usize,
    /// Probes out of sequence: a gap or a repeat.
    out_of_order: usize,
    connects: usize,
    done: bool,
    error: Option<String>,
}

/// Counters the subscribers share with the driver.
#[derive(Debug, Default)]
struct Tally {
    connected: AtomicUsize,
    /// Subscribers back after their first drop.
    reconnected: AtomicUsize,
    probes: AtomicUsize,
}

/// Follows a scan's stream to `done`. Reconnects with `Last-Event-ID`
/// whenever `drop` changes. Probes must arrive numbered from `first_probe`
/// on, each once.
async fn subscribe(
    http: reqwest::Client,
    url: String,
    first_probe: usize,
    tally: Arc<Tally>,
    mut drop: watch::Receiver<u32>,
) -> Seen {
    let mut seen = Seen::default();
    let mut last_id: Option<i64> = None;
    let mut next_probe = first_probe;
    'connect: loop {
        let mut request = http.get(&url).bearer_auth(TOKEN);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = match request.send().await {
            Ok(r) if r.status() == 200 => r,
            Ok(r) => {
                seen.error = Some(format!("status {}", r.status()));
                break;
            }
            Err(e) => {
                seen.error = Some(e.to_string());
                break;
            }
        };
        seen.connects += 1;
        drop.mark_unchanged();
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        loop {
            let chunk = tokio::select! {
                chunk = body.next() => chunk,
                _ = drop.changed() => continue 'connect,
            };
            let Some(Ok(chunk)) = chunk else {
                seen.error = Some("the stream broke".into());
                break 'connect;
            };
            let arrived = unix_micros();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = "";
                let mut data = "";
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        last_id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v;
                    }
                }
                let mut lines = Vec::new();
                match event {
                    "snapshot" => {
                        match seen.connects {
                            1 => tally.connected.fetch_add(1, Ordering::Relaxed),
                            2 => tally.reconnected.fetch_add(1, Ordering::Relaxed),
                            _ => 0,
                        };
                        if let Ok(v) = serde_json::from_str::<Value>(data) {
                            for log in v["logs"].as_array().into_iter().flatten() {
                                lines.push((
                                    log["message"].as_str().unwrap_or("").to_owned(),
                                    false,
                                ));
                            }
                        }
                    }
                    "log" => {
                        if let Ok(v) = serde_json::from_str::<Value>(data) {
                            lines.push((v["message"].as_str().unwrap_or("").to_owned(), true));
                        }
                    }
                    "done" => {
                        seen.done = true;
                        break 'connect;
                    }
                    _ => {}
                }
                for (text, live) in lines {
                    if let Some((n, made)) = parse_probe(&text) {
                        if n != next_probe {
                            seen.out_of_order += 1;
                        }
                        next_probe = n + 1;
                        seen.probes += 1;
                        tally.probes.fetch_add(1, Ordering::Relaxed);
                        if live {
                            seen.latencies_us.push(arrived - made);
                        }
                    }
                }
            }
        }
    }
    seen
}

/// Subscribers on scans, connected `ramp` at a time.
struct Crowd {
    tally: Arc<Tally>,
    drop: watch::Sender<u32>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
    http: reqwest::Client,
}

impl Crowd {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            tally: Arc::new(Tally::default()),
            drop: watch::channel(0).0,
            tasks: Vec::new(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .tcp_nodelay(true)
                .build()?,
        })
    }

    /// Adds `n` subscribers spread over `scan_ids`, a batch at a time so
    /// the listen backlog never overflows, and waits until each has its
    /// snapshot.
    async fn join(
        &mut self,
        server: &Server,
        scan_ids: &[String],
        n: usize,
        first_probe: usize,
    ) -> anyhow::Result<()> {
        const BATCH: usize = 250;
        let target = self.tasks.len() + n;
        while self.tasks.len() < target {
            let batch = BATCH.min(target - self.tasks.len());
            for _ in 0..batch {
                let scan_id = &scan_ids[self.tasks.len() % scan_ids.len()];
                let url = format!("{}/api/scans/{scan_id}/events", server.app);
                self.tasks.push(tokio::spawn(subscribe(
                    self.http.clone(),
                    url,
                    first_probe,
                    self.tally.clone(),
                    self.drop.subscribe(),
                )));
            }
            let spawned = self.tasks.len();
            wait_for(
                &self.tally.connected,
                spawned,
                Duration::from_secs(60),
                "subscribers connected",
            )
            .await?;
        }
        Ok(())
    }

    /// Drops every stream and reconnects it with its `Last-Event-ID`.
    fn reconnect_all(&self) {
        self.drop.send_modify(|g| *g += 1);
    }

    /// Ends the scans `scan_ids` and collects what every subscriber saw:
    /// each stream ends with its scan's `done`.
    async fn finish(self, server: &Server, scan_ids: &[String]) -> anyhow::Result<Vec<Seen>> {
        server.finish(scan_ids).await?;
        self.results().await
    }

    async fn results(self) -> anyhow::Result<Vec<Seen>> {
        let mut all = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            all.push(task.await?);
        }
        Ok(all)
    }
}

async fn wait_for(
    counter: &AtomicUsize,
    target: usize,
    limit: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while counter.load(Ordering::Relaxed) < target {
        ensure!(
            Instant::now() < deadline,
            "{what}: {} of {target} after {limit:?}",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// p50, p99 and max of µs samples, in ms.
fn latency_ms(samples: &mut [i64]) -> Value {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .map_or(f64::NAN, |&us| round(us as f64 / 1e3, 2))
    };
    json!({"samples": samples.len(), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Checks what the subscribers saw: every one finished, each probe once and
/// in order, `expected` probes each. Returns the live latencies.
fn check(seen: &[Seen], expected: usize) -> (Vec<i64>, Value) {
    let mut latencies = Vec::new();
    let (mut missing, mut out_of_order, mut not_done, mut errors) = (0, 0, 0, 0);
    for s in seen {
        latencies.extend_from_slice(&s.latencies_us);
        missing += expected.saturating_sub(s.probes);
        out_of_order += s.out_of_order;
        not_done += usize::from(!s.done);
        errors += usize::from(s.error.is_some());
    }
    let verdict = json!({
        "subscribers": seen.len(), "missing": missing, "duplicated_or_out_of_order": out_of_order,
        "not_done": not_done, "errors": errors,
    });
    (latencies, verdict)
}

// ---------------------------------------------------------------------------
// Scenarios.

/// Scenario 1: Watchers held: memory per subscriber, and a final probe to all.
async fn watchers(quick: bool) -> anyhow::Result<Value> {
    let (n, scans) = if quick { (2_000, 20) } else { (10_000, 100) };
    let server = Server::start(None).await?;
    let ids = server.create(scans).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = server.proc()?;
    let mut crowd = Crowd::new()?;
    let small = n / 10;
    crowd.join(&server, &ids, small, 0).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_small = server.proc()?;
    crowd.join(&server, &ids, n - small, 0).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_n = server.proc()?;
    let probe_sent = Instant::now();
    server.emit(&ids, 0, 1, 1, Duration::ZERO).await?;
    wait_for(
        &crowd.tally.probes,
        n,
        Duration::from_secs(60),
        "final probe",
    )
    .await?;
    let all_had_it = probe_sent.elapsed();
    let seen = crowd.finish(&server, &ids).await?;
    let (mut latencies, verdict) = check(&seen, 1);
    server.stop().await;
    let per = |p: ProcStats, k: usize| (p.rss_kib as f64 - base.rss_kib as f64) / k as f64;
    let (per_small, per_n) = (per(at_small, small), per(at_n, n));
    Ok(json!({
        "subscribers": n, "scans": scans, "check": verdict,
        "server_rss_mib_idle": round(base.rss_kib as f64 / 1024.0, 1),
        "server_rss_mib_held": round(at_n.rss_kib as f64 / 1024.0, 1),
        "kib_per_subscriber": round(per_n, 2),
        "kib_per_subscriber_at_tenth": round(per_small, 2),
        "ratio_to_tenth": round(per_n / per_small, 3),
        "final_probe_to_all_ms": round(all_had_it.as_secs_f64() * 1e3, 1),
        "final_probe_latency": latency_ms(&mut latencies),
        "target": "≤ 24 KiB per subscriber; ratio ≤ 1.10; none dropped",
    }))
}

/// Scenario 2: Push latency: 1 scan × 1,000 subscribers, 100 scans × 10.
async fn push(quick: bool) -> anyhow::Result<Value> {
    let rounds = if quick { 100 } else { 400 };
    let mut out = json!({"target": "1×1000 p99 ≤ 50 ms; 100×10 p50 ≤ 5 ms, p99 ≤ 25 ms; none missed or repeated"});
    for (name, scans, per_scan, every_ms) in [
        ("one_scan_1000", 1, 1000, 10),
        ("100_scans_10", 100, 10, 20),
    ] {
        let server = Server::start(None).await?;
        let ids = server.create(scans).await?;
        let mut crowd = Crowd::new()?;
        crowd.join(&server, &ids, scans * per_scan, 0).await?;
        server
            .emit(&ids, 0, rounds, 1, Duration::from_millis(every_ms))
            .await?;
        server.finish(&ids).await?;
        let cpu = server.proc()?.cpu_s;
        let writes = server.progress_writes().await?;
        let seen = crowd.results().await?;
        let (mut latencies, verdict) = check(&seen, rounds);
        server.stop().await;
        out[name] = json!({
            "scans": scans, "subscribers": scans * per_scan, "lines_per_scan": rounds,
            "every_ms": every_ms, "latency": latency_ms(&mut latencies), "check": verdict,
            "server_cpu_s": cpu, "progress_write": writes,
        });
    }
    Ok(out)
}

/// Scenario 3: SSE against the original's 2-second polling, 1,000 watchers.
async fn polling(quick: bool) -> anyhow::Result<Value> {
    let (watchers, secs) = if quick { (500, 8) } else { (1_000, 60) };
    let lines = secs * 10;
    let every = Duration::from_millis(100);

    // SSE.
    let server = Server::start(None).await?;
    let ids = server.create(1).await?;
    let mut crowd = Crowd::new()?;
    crowd.join(&server, &ids, watchers, 0).await?;
    let cpu_before = server.proc()?.cpu_s;
    server.emit(&ids, 0, lines, 1, every).await?;
    let sse_cpu = server.proc()?.cpu_s - cpu_before;
    let seen = crowd.finish(&server, &ids).await?;
    let (mut sse_staleness, sse_check) = check(&seen, lines);
    server.stop().await;

    // Polling, as the original's page did: every 2 s, each watcher asks the
    // status API for the scan with all its lines (the original's page sent no
    // `after`).
    let server = Server::start(None).await?;
    let ids = server.create(1).await?;
    let scan_id = ids[0].clone();
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let stop = CancellationToken::new();
    let requests = Arc::new(AtomicUsize::new(0));
    let mut pollers = Vec::new();
    for i in 0..watchers {
        let (http, stop, requests) = (http.clone(), stop.clone(), requests.clone());
        let url = format!(
            "{}/admin/calendly_scan_api.php?action=status&scan_id={scan_id}",
            server.app
        );
        let offset = Duration::from_millis(2_000 * i as u64 / watchers as u64);
        pollers.push(tokio::spawn(async move {
            let mut staleness = Vec::new();
            let mut seen = 0i64;
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return staleness,
                    _ = tick.tick() => {}
                }
                let Ok(response) = http.get(&url).bearer_auth(TOKEN).send().await else {
                    continue;
                };
                requests.fetch_add(1, Ordering::Relaxed);
                let Ok(status) = response.json::<Value>().await else {
                    continue;
                };
                let arrived = unix_micros();
                for log in status["logs"].as_array().into_iter().flatten() {
                    let id = log["id"].as_i64().unwrap_or(0);
                    if id <= seen {
                        continue;
                    }
                    seen = id;
                    if let Some((_, made)) = parse_probe(log["message"].as_str().unwrap_or("")) {
                        staleness.push(arrived - made);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = server.proc()?.cpu_s;
    let requests_before = requests.load(Ordering::Relaxed);
    server.emit(&ids, 0, lines, 1, every).await?;
    let poll_cpu = server.proc()?.cpu_s - cpu_before;
    let poll_requests = requests.load(Ordering::Relaxed) - requests_before;
    // One more round so every line is seen.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    stop.cancel();
    let mut poll_staleness = Vec::new();
    for p in pollers {
        poll_staleness.extend(p.await?);
    }
    server.finish(&ids).await?;
    server.stop().await;
    let poll_mean_ms =
        poll_staleness.iter().sum::<i64>() as f64 / poll_staleness.len().max(1) as f64 / 1e3;
    Ok(json!({
        "watchers": watchers, "seconds": secs, "lines": lines,
        "sse": {"server_cpu_s": round(sse_cpu, 2), "staleness": latency_ms(&mut sse_staleness),
                "requests": watchers, "check": sse_check},
        "polling": {"server_cpu_s": round(poll_cpu, 2), "staleness": latency_ms(&mut poll_staleness),
                    "staleness_mean_ms": round(poll_mean_ms, 1), "requests": poll_requests},
        "cpu_ratio_sse_to_polling": round(sse_cpu / poll_cpu.max(0.01), 3),
        "target": "SSE CPU ≤ 1/10 of polling's; SSE staleness p99 ≤ 50 ms",
    }))
}

/// Scenario 4: The start answer, with and without 5,000 idle subscribers.
async fn start(quick: bool) -> anyhow::Result<Value> {
    let (cycles, idle) = if quick { (100, 1_000) } else { (500, 5_000) };
    let sim = Sim::spawn(200, 20, 1_000_000, 60).await?;
    let server = Server::start(Some(sim.base_url())).await?;
    // Unmeasured: the first cycles of a fresh process prepare statements and
    // fill caches, which would count against the run without subscribers.
    start_cycles(&server, cycles / 10).await?;
    let without = start_cycles(&server, cycles).await?;
    let ids = server.create(50).await?;
    let mut crowd = Crowd::new()?;
    crowd.join(&server, &ids, idle, 0).await?;
    let with = start_cycles(&server, cycles).await?;
    let (_, verdict) = check(&crowd.finish(&server, &ids).await?, 0);
    server.stop().await;
    let (mut without, mut with) = (without, with);
    let p99 = |v: &Value| v["p99_ms"].as_f64().unwrap_or(f64::NAN);
    let (a, b) = (latency_ms(&mut without), latency_ms(&mut with));
    Ok(json!({
        "cycles": cycles, "idle_subscribers": idle,
        "without_subscribers": a, "with_subscribers": b,
        "p99_ratio": round(p99(&b) / p99(&a), 3), "subscribers_check": verdict,
        "target": "p50 ≤ 2 ms, p99 ≤ 10 ms with subscribers; p99 ratio ≤ 1.5",
    }))
}

/// Starts a scan, times the answer, cancels it and waits until it ended.
async fn start_cycles(server: &Server, cycles: usize) -> anyhow::Result<Vec<i64>> {
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let mut times = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let t = Instant::now();
        let response = http
            .post(format!("{}/api/scans", server.app))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        times.push(t.elapsed().as_micros() as i64);
        ensure!(status == 202, "start answered {status}: {body}");
        let scan_id = body["scan_id"].as_str().context("scan_id")?;
        http.post(format!("{}/api/scans/{scan_id}/cancel", server.app))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        ended(&http, server, scan_id, Duration::from_millis(2)).await?;
    }
    Ok(times)
}

/// Reads the scan's status every `poll` until it is no longer running; the
/// final status.
async fn ended(
    http: &reqwest::Client,
    server: &Server,
    scan_id: &str,
    poll: Duration,
) -> anyhow::Result<Value> {
    loop {
        let status: Value = http
            .get(format!("{}/api/scans/{scan_id}", server.app))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if status["status"] != "running" {
            return Ok(status);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Scenario 5: Log throughput on SQLite with 100 subscribers, against one INSERT per line.
/// The journal's group write, alone in this process: one batch of one
/// line and new figures for each of 1, 10 and 100 running scans, written by
/// `Store::write_scans` (one UPDATE for all figures, multi-row INSERTs),
/// against one UPDATE and one INSERT per scan in one transaction, as the
/// journal wrote before, on the same SQLite database.
async fn journal(quick: bool) -> anyhow::Result<Value> {
    use calscan::store::{LogRow, Progress, ScanWrite, SqliteStore, Store};
    use sqlx::sqlite::SqlitePoolOptions;
    let batches = if quick { 100 } else { 500 };
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/journal.db", dir.path().display());
    let store = SqliteStore::connect(&url).await?;
    // Many running scans at once, as the synthetic scans have them.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    sqlx::query("DROP INDEX IF EXISTS scan_progress_one_running")
        .execute(&pool)
        .await?;
    let mut out = json!({"batches": batches, "target": "none: the cost under scenario 2b"});
    for scans in [1usize, 10, 100] {
        let ids: Vec<String> = (0..scans)
            .map(|i| format!("scan_journal{scans:03}x{i:04}"))
            .collect();
        for id in &ids {
            sqlx::query(
                "INSERT INTO scan_progress (scan_id, status, started_at, owner, lease_until_ms) \
                 VALUES (?, 'running', '2026-11-25T00:00:00.000Z', 'bench', 9000000000000)",
            )
            .bind(id)
            .execute(&pool)
            .await?;
        }
        let mut figures: Vec<Progress> = ids.iter().map(|_| Progress::default()).collect();
        let lines = |figures: &mut Vec<Progress>, batch: usize| -> Vec<Vec<LogRow>> {
            figures
                .iter_mut()
                .map(|f| {
                    f.last_event_id += 1;
                    f.events_scanned += 1;
                    let text = format!("{batch:06} {}", "x".repeat(100));
                    vec![LogRow {
                        id: f.last_event_id,
                        message: calscan::i18n::Texts::same(text),
                        created_at: chrono::Utc::now(),
                    }]
                })
                .collect()
        };
        let mut grouped = Duration::ZERO;
        for batch in 0..batches {
            let logs = lines(&mut figures, batch);
            let writes: Vec<ScanWrite<'_>> = ids
                .iter()
                .zip(&figures)
                .zip(&logs)
                .map(|((id, f), l)| ScanWrite {
                    scan_id: id,
                    owner: "bench",
                    figures: f,
                    logs: l,
                    finish: None,
                })
                .collect();
            let t = Instant::now();
            let held = store.write_scans(&writes).await?;
            grouped += t.elapsed();
            ensure!(held.iter().all(|h| *h), "a scan was not held");
        }
        let mut per_scan = Duration::ZERO;
        for batch in batches..2 * batches {
            let logs = lines(&mut figures, batch);
            let t = Instant::now();
            let mut tx = pool.begin().await?;
            for ((id, f), l) in ids.iter().zip(&figures).zip(&logs) {
                sqlx::query(
                    "UPDATE scan_progress SET progress = MAX(progress, ?), current_step = ?, \
                     current_step_en = ?, events_scanned = ?, events_total = ?, emails_found = ?, \
                     new_count = ?, existing_count = ?, last_event_id = MAX(last_event_id, ?) \
                     WHERE scan_id = ? AND owner = ? AND status = 'running'",
                )
                .bind(f.progress)
                .bind(&f.current_step.de)
                .bind(&f.current_step.en)
                .bind(f.events_scanned)
                .bind(f.events_total)
                .bind(f.emails_found)
                .bind(f.new_count)
                .bind(f.existing_count)
                .bind(f.last_event_id)
                .bind(id)
                .bind("bench")
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO scan_logs (scan_id, id, message, message_en, created_at) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(l[0].id)
                .bind(&l[0].message.de)
                .bind(&l[0].message.en)
                .bind(calscan::time::millis(l[0].created_at))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            per_scan += t.elapsed();
        }
        let us = |d: Duration| round(d.as_secs_f64() * 1e6 / batches as f64, 1);
        out[format!("scans_{scans}")] = json!({
            "grouped_us_per_batch": us(grouped),
            "statements_per_scan_us_per_batch": us(per_scan),
            "ratio": round(per_scan.as_secs_f64() / grouped.as_secs_f64(), 2),
        });
    }
    Ok(out)
}

async fn logs(quick: bool) -> anyhow::Result<Value> {
    let (lines, baseline_lines) = if quick {
        (30_000, 5_000)
    } else {
        (100_000, 20_000)
    };
    let server = Server::start(None).await?;
    let ids = server.create(1).await?;
    let mut crowd = Crowd::new()?;
    crowd.join(&server, &ids, 100, 0).await?;
    let t = Instant::now();
    server.emit(&ids, 0, 1, lines, Duration::ZERO).await?;
    let queued = t.elapsed();
    while server.stored(&ids[0]).await? < lines as i64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let persisted = t.elapsed();
    wait_for(
        &crowd.tally.probes,
        100 * lines,
        Duration::from_secs(300),
        "lines delivered",
    )
    .await?;
    let delivered = t.elapsed();
    let seen = crowd.finish(&server, &ids).await?;
    let (_, verdict) = check(&seen, lines);
    let baseline = server.baseline(baseline_lines).await?;
    server.stop().await;
    let rate = lines as f64 / persisted.as_secs_f64();
    Ok(json!({
        "lines": lines, "subscribers": 100, "check": verdict,
        "queued_s": round(queued.as_secs_f64(), 3),
        "persisted_s": round(persisted.as_secs_f64(), 3),
        "delivered_to_all_s": round(delivered.as_secs_f64(), 3),
        "lines_per_s": rate.round(),
        "baseline_one_insert_per_line_per_s": baseline.round(),
        "ratio_to_baseline": round(rate / baseline, 2),
        "target": "≥ 50,000 lines/s persisted, every line delivered; ≥ 7× the baseline",
    }))
}

/// The simulated Calendly, in this process.
struct Sim {
    sim: Simulator,
    _stop: CancellationToken,
}

impl Sim {
    async fn spawn(
        events: usize,
        latency_ms: u64,
        rate_limit: u32,
        window_s: u64,
    ) -> anyhow::Result<Self> {
        let (sim, stop) = Simulator::spawn(SimulatorConfig {
            events,
            latency: Duration::from_millis(latency_ms),
            rate_limit,
            rate_window: Duration::from_secs(window_s),
            ..SimulatorConfig::default()
        })
        .await?;
        Ok(Self { sim, _stop: stop })
    }

    fn base_url(&self) -> &str {
        self.sim.base_url()
    }
}

/// Runs one scan on `server` to its end; its final status and wall time.
async fn full_scan(server: &Server) -> anyhow::Result<(Value, Duration)> {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let response = http
        .post(format!("{}/api/scans", server.app))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    ensure!(
        response.status() == 202,
        "start answered {}",
        response.status()
    );
    let scan_id = response.json::<Value>().await?["scan_id"]
        .as_str()
        .context("scan_id")?
        .to_owned();
    let status = ended(&http, server, &scan_id, Duration::from_millis(20)).await?;
    Ok((status, t.elapsed()))
}

/// The original's strategy: one call after another, a 200 ms pause every
/// five calls. Returns the wall time.
async fn original_strategy(base: &str) -> anyhow::Result<Duration> {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let mut calls = 0usize;
    let mut call = async |url: String| -> anyhow::Result<Value> {
        calls += 1;
        if calls.is_multiple_of(5) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(http
            .get(url)
            .bearer_auth("demo-token")
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    };
    let me = call(format!("{base}/users/me")).await?;
    let org = me["resource"]["current_organization"]
        .as_str()
        .context("organization")?
        .to_owned();
    let mut next = Some(format!(
        "{base}/scheduled_events?organization={org}&count=100"
    ));
    let mut events = Vec::new();
    while let Some(url) = next {
        let page = call(url).await?;
        events.extend(
            page["collection"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["uri"].as_str().map(str::to_owned)),
        );
        next = page["pagination"]["next_page"].as_str().map(str::to_owned);
    }
    for event in events {
        let mut next = Some(format!("{event}/invitees?count=100"));
        while let Some(url) = next {
            let page = call(url).await?;
            next = page["pagination"]["next_page"].as_str().map(str::to_owned);
        }
    }
    Ok(t.elapsed())
}

/// Scenario 6: Scan speed: against the original's strategy, and against a rate limit.
async fn scan_speed(quick: bool) -> anyhow::Result<Value> {
    // (a) 300 events at 150 ms.
    let events_a = if quick { 60 } else { 300 };
    let sim = Sim::spawn(events_a, 150, 1_000_000, 60).await?;
    let server = Server::start(Some(sim.base_url())).await?;
    let (status, ours) = full_scan(&server).await?;
    ensure!(status["status"] == "completed", "{status}");
    let ours_calls = sim.sim.stats().requests;
    let original = original_strategy(sim.base_url()).await?;
    let original_calls = sim.sim.stats().requests - ours_calls;
    server.stop().await;

    // (b) 1,200 events under 100 requests per 10 s.
    let events_b = if quick { 120 } else { 1_200 };
    let sim_b = Sim::spawn(events_b, 0, 100, 10).await?;
    let server = Server::start(Some(sim_b.base_url())).await?;
    let (status_b, wall_b) = full_scan(&server).await?;
    ensure!(status_b["status"] == "completed", "{status_b}");
    let stats = sim_b.sim.stats();
    server.stop().await;
    let bound = stats.requests as f64 / 10.0;
    Ok(json!({
        "a": {"events": events_a, "latency_ms": 150, "calscan_s": round(ours.as_secs_f64(), 2),
              "calscan_calls": ours_calls, "original_s": round(original.as_secs_f64(), 2),
              "original_calls": original_calls,
              "speedup": round(original.as_secs_f64() / ours.as_secs_f64(), 2)},
        "b": {"events": events_b, "limit": "100 per 10 s", "calls": stats.requests,
              "wall_s": round(wall_b.as_secs_f64(), 2), "bound_s": round(bound, 2),
              "ratio_to_bound": round(wall_b.as_secs_f64() / bound, 3),
              "rate_limited": stats.rate_limited, "max_in_window": stats.max_in_window},
        "target": "(a) ≥ 5× the original; (b) ≤ 1.10× the bound, zero 429s",
    }))
}

/// Scenario 7: A large organization: memory and cost per invitee at two sizes.
async fn large_org(quick: bool) -> anyhow::Result<Value> {
    let sizes: &[usize] = if quick {
        &[500, 5_000]
    } else {
        &[4_000, 40_000]
    };
    let mut runs = Vec::new();
    for &events in sizes {
        let sim = Sim::spawn(events, 0, 10_000_000, 60).await?;
        let invitees = sim.sim.org().invitee_count();
        let expected = sim.sim.expected_emails().len();
        let server = Server::start(Some(sim.base_url())).await?;
        let cpu0 = server.proc()?.cpu_s;
        let (status, wall) = full_scan(&server).await?;
        let p = server.proc()?;
        server.stop().await;
        ensure!(status["status"] == "completed", "{status}");
        let exact = status["events_scanned"] == events && status["emails_found"] == expected;
        runs.push(json!({
            "events": events, "invitees": invitees, "emails": expected, "exact_counts": exact,
            "wall_s": round(wall.as_secs_f64(), 2),
            "server_cpu_s": round(p.cpu_s - cpu0, 2),
            "cpu_us_per_invitee": round((p.cpu_s - cpu0) * 1e6 / invitees as f64, 1),
            "wall_us_per_invitee": round(wall.as_secs_f64() * 1e6 / invitees as f64, 1),
            "peak_rss_mib": round(p.peak_rss_kib as f64 / 1024.0, 1),
        }));
    }
    let per = |r: &Value| r["cpu_us_per_invitee"].as_f64().unwrap_or(f64::NAN);
    // The larger organization again, into a school's table of 100,000
    // customers (10,000 in quick mode): a tenth of the organization's emails
    // are among them, typed as people type them.
    let events = sizes[1];
    let rows = if quick { 10_000 } else { 100_000 };
    let sim = Sim::spawn(events, 0, 10_000_000, 60).await?;
    let emails: Vec<String> = sim.sim.expected_emails().into_iter().collect();
    let known = emails.len() / 10;
    let mut lines: Vec<String> = emails[..known]
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i % 2 == 0 {
                format!("  {} ", e.to_uppercase())
            } else {
                e.clone()
            }
        })
        .collect();
    lines.extend((lines.len()..rows).map(|i| format!("kunde{i}@schule.example")));
    let file = std::env::temp_dir().join(format!("calscan-school-{}.txt", std::process::id()));
    std::fs::write(&file, lines.join("\n"))?;
    let server = Server::start_with(Some(sim.base_url()), Some(&file)).await?;
    let cpu0 = server.proc()?.cpu_s;
    let (status, wall) = full_scan(&server).await?;
    let p = server.proc()?;
    let total = server
        .http
        .get(format!("{}/api/customers", server.app))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json::<Value>()
        .await?["total"]
        .clone();
    server.stop().await;
    std::fs::remove_file(&file)?;
    ensure!(status["status"] == "completed", "{status}");
    let exact = status["emails_found"] == emails.len()
        && status["existing_count"] == known
        && status["new_count"] == emails.len() - known
        && total == rows + emails.len() - known;
    let school = json!({
        "events": events, "school_rows": rows, "emails": emails.len(),
        "emails_in_school_table": known, "exact_counts": exact,
        "customers_after": total,
        "wall_s": round(wall.as_secs_f64(), 2),
        "server_cpu_s": round(p.cpu_s - cpu0, 2),
        "peak_rss_mib": round(p.peak_rss_kib as f64 / 1024.0, 1),
    });
    Ok(json!({
        "runs": runs,
        "cost_ratio_large_to_small": round(per(&runs[1]) / per(&runs[0]), 3),
        "into_a_school_table": school,
        "target": "exact counts; peak ≤ 150 MB; per-invitee cost at 50,000 ≤ 1.25× at 5,000",
    }))
}

/// The variable naming the file of a school's customer emails (`loadgen
/// serve`).
const SCHOOL_ENV: &str = "LOADGEN_SCHOOL_EMAILS";

/// Creates a school's customer table in the database at `url` with the
/// emails of `file`, as a school's admin would have it: German columns, no
/// unique index, NOT NULL columns with defaults.
async fn school_table(
    url: &str,
    file: &std::path::Path,
) -> anyhow::Result<calscan::store::CustomerSettings> {
    use sqlx::Connection;
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true)).await?;
    sqlx::raw_sql(
        "CREATE TABLE school (id INTEGER PRIMARY KEY, vorname TEXT NOT NULL DEFAULT '', \
         nachname TEXT NOT NULL DEFAULT '', e_mail TEXT NOT NULL, telefon TEXT, \
         status TEXT NOT NULL DEFAULT 'aktiv')",
    )
    .execute(&mut conn)
    .await?;
    let mut tx = conn.begin().await?;
    for (i, email) in std::fs::read_to_string(file)?.lines().enumerate() {
        sqlx::query("INSERT INTO school (vorname, nachname, e_mail) VALUES (?, ?, ?)")
            .bind(format!("Vorname{i}"))
            .bind(format!("Nachname{i}"))
            .bind(email)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(calscan::store::CustomerSettings {
        table: "school".into(),
        ..calscan::store::CustomerSettings::default()
    })
}

/// Scenario 8: Reconnect storm: while events flow at 100 per second, every
/// subscriber drops and reconnects at once.
async fn reconnect(quick: bool) -> anyhow::Result<Value> {
    let (n, scans) = if quick { (2_000, 20) } else { (10_000, 100) };
    let server = Server::start(None).await?;
    let ids = server.create(scans).await?;
    let mut crowd = Crowd::new()?;
    crowd.join(&server, &ids, n, 0).await?;
    // 100 events/s over all scans, for 20 s (10 s in quick mode).
    let per_scan_every = Duration::from_micros(1_000_000 * scans as u64 / 100);
    let rounds = (if quick { 10 } else { 20 }) * 100 / scans;
    let storm = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let t = Instant::now();
        crowd.reconnect_all();
        wait_for(
            &crowd.tally.reconnected,
            n,
            Duration::from_secs(60),
            "subscribers back",
        )
        .await
        .map(|()| t.elapsed())
    };
    let (flowed, back) = tokio::join!(server.emit(&ids, 0, rounds, 1, per_scan_every), storm);
    flowed?;
    let back = back?;
    let seen = crowd.finish(&server, &ids).await?;
    let (_, verdict) = check(&seen, rounds);
    let reconnected = seen.iter().filter(|s| s.connects >= 2).count();
    server.stop().await;
    Ok(json!({
        "subscribers": n, "scans": scans, "reconnected": reconnected, "check": verdict,
        "all_back_s": round(back.as_secs_f64(), 2),
        "target": "all back within 15 s; no duplicates, no gaps",
    }))
}

// ---------------------------------------------------------------------------
// The floor: the same deliveries without calscan.

/// Bytes of one floor frame: as long as calscan's SSE frame of a probe line
/// (`id`, `event: log`, the JSON line, and HTTP/1.1 chunk framing).
const FLOOR_FRAME_BYTES: usize = 200;

/// The machine's own floor for pushing events: a plain tokio server (this
/// program as `loadgen floor-serve`, in a process of its own) writes each
/// frame with one `write` per socket, in one loop, to `subscribers` plain TCP
/// connections; no HTTP, no channels, no database. Its CPU per delivery and
/// the latency its readers see bound what any server can do here, since
/// calscan's delivery is the same one write per socket plus its own work.
async fn floor(quick: bool) -> anyhow::Result<Value> {
    let rounds = if quick { 100 } else { 400 };
    let mut out = json!({"frame_bytes": FLOOR_FRAME_BYTES});
    // As push's two cases, and as polling's SSE side (1,000 watchers, 10 lines/s).
    for (name, subscribers, every_ms) in [
        ("as_push_1000_every_10ms", 1_000, 10),
        ("as_push_100x10_every_20ms", 1_000, 20),
        ("as_polling_sse_1000_every_100ms", 1_000, 100),
    ] {
        let rounds = if every_ms == 100 { rounds / 4 } else { rounds };
        out[name] = floor_run(subscribers, rounds, every_ms).await?;
    }
    out["target"] = "none: the bound for scenarios 2b and 3".into();
    Ok(out)
}

async fn floor_run(subscribers: usize, rounds: usize, every_ms: u64) -> anyhow::Result<Value> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "floor-serve",
            &subscribers.to_string(),
            &rounds.to_string(),
            &every_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let ready = lines.next_line().await?.context("the floor server ended")?;
    let addr = ready
        .strip_prefix("READY ")
        .with_context(|| format!("floor server said {ready:?}"))?
        .to_owned();
    // The floor starts once every reader is in, so do not wait for bytes.
    let readers =
        peers::Readers::connect(&format!("http://{addr}/sub"), subscribers, rounds, false).await?;
    let done = lines.next_line().await?.context("the floor server ended")?;
    let (cpu_s, switches) = done
        .strip_prefix("DONE ")
        .and_then(|d| d.split_once(' '))
        .with_context(|| format!("floor server said {done:?}"))?;
    let used = peers::Used {
        cpu_s: cpu_s.parse()?,
        switches: switches.parse()?,
    };
    readers.wait_for_probes(subscribers * rounds).await;
    let seen = readers.results().await?;
    child.wait().await?;
    Ok(peers::figures(used, subscribers * rounds, &seen, rounds))
}

/// `loadgen floor-serve SUBSCRIBERS ROUNDS EVERY_MS`: accepts the
/// subscribers, writes ROUNDS probe frames to each, one round every
/// EVERY_MS, then prints its own CPU time and context switches and closes
/// them all.
async fn floor_serve(args: &[String]) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let number = |i: usize| -> anyhow::Result<u64> {
        Ok(args
            .get(i)
            .context("floor-serve SUBSCRIBERS ROUNDS EVERY_MS")?
            .parse()?)
    };
    let (subscribers, rounds, every_ms) = (number(0)? as usize, number(1)?, number(2)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("READY {}", listener.local_addr()?);
    let mut sockets = Vec::with_capacity(subscribers);
    while sockets.len() < subscribers {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        // The request's head, then a head of our own: the client is the
        // same HTTP client as the other servers'. The body ends at close.
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await?;
            anyhow::ensure!(n > 0, "a reader left before its request");
            head.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            )
            .await?;
        sockets.push(socket);
    }
    let before = ProcStats::read(std::process::id())?;
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
    for n in 0..rounds as usize {
        tick.tick().await;
        let mut frame = format!("data: {}", probe(n)).into_bytes();
        frame.resize(FLOOR_FRAME_BYTES - 2, b' ');
        frame.extend_from_slice(b"\n\n");
        for socket in &mut sockets {
            socket.write_all(&frame).await?;
        }
    }
    let used = peers::Used::between(before, ProcStats::read(std::process::id())?);
    println!("DONE {} {}", used.cpu_s, used.switches);
    Ok(())
}
