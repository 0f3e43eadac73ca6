//! `loadgen peers`: calscan against the servers a school could run instead
//! to push events over SSE, and against the machine's floor, in one run.
//!
//! Every server gets the same client: `S` subscribers on one channel, each
//! reading plain SSE with reqwest, and `N` events of about 200 bytes, one
//! every `every` ms, each carrying its creation time. Every subscriber must
//! get every event exactly once and in order. Server CPU comes from `/proc`
//! (the process and its children: nginx's master and worker), memory per
//! idle subscriber from the servers' RSS.
//!
//! The peers publish what they get over HTTP POST, their one way in; the
//! client posts each event on one keep-alive connection. calscan publishes
//! from inside, as a scan does: each line is written to SQLite first, then
//! sent. The floor writes each frame to the sockets and nothing else.
//! `peers/setup.sh` installs the peers; their programs and nginx's config
//! are beside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use calscan::bench::{parse_probe, probe, unix_micros};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{ProcStats, Seen, Server, TOKEN, Tally, check, latency_ms, round, wait_for};

/// Where the peers' programs and config live in the checkout.
const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/loadgen/peers");

/// Bytes of a published event's text; with each server's framing the
/// frame comes to about 200 bytes, as calscan's frame of a probe line.
const EVENT_BYTES: usize = 170;

/// The servers measured, in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Peer {
    Floor,
    Calscan,
    Nchan,
    BetterSse,
    SseStarlette,
    AiohttpSse,
}

impl Peer {
    const ALL: [Peer; 6] = [
        Peer::Floor,
        Peer::Calscan,
        Peer::Nchan,
        Peer::BetterSse,
        Peer::SseStarlette,
        Peer::AiohttpSse,
    ];

    fn name(self) -> &'static str {
        match self {
            Peer::Floor => "floor",
            Peer::Calscan => "calscan",
            Peer::Nchan => "nginx_nchan",
            Peer::BetterSse => "node_better_sse",
            Peer::SseStarlette => "sse_starlette",
            Peer::AiohttpSse => "aiohttp_sse",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Peer::Floor => "floor (plain tokio)",
            Peer::Calscan => "calscan (persists every event)",
            Peer::Nchan => "nginx + nchan",
            Peer::BetterSse => "Node better-sse",
            Peer::SseStarlette => "sse-starlette",
            Peer::AiohttpSse => "aiohttp-sse",
        }
    }
}

/// One size of the comparison.
#[derive(Debug, Clone, Copy)]
struct Size {
    subscribers: usize,
    events: usize,
    every_ms: u64,
}

/// The scenario: every peer at every size, then memory per idle
/// subscriber. With `busy`, a burner holds one of the two cores' worth of
/// CPU during each run (see [`burn`]).
pub(crate) async fn peers(quick: bool, busy: bool) -> anyhow::Result<Value> {
    let dir = install()?;
    // (subscribers, events, every ms); no subscriber: what an event costs
    // before it is delivered.
    let sizes: &[(usize, usize, u64)] = if quick {
        &[
            (0, 300, 10),
            (100, 300, 10),
            (1_000, 300, 10),
            (2_000, 50, 100),
        ]
    } else {
        &[
            (0, 3_000, 10),
            (100, 3_000, 10),
            (1_000, 3_000, 10),
            (5_000, 300, 100),
        ]
    };
    // CALSCAN_PEERS_SIZES=100,1000: only those sizes.
    let sizes: Vec<Size> = sizes
        .iter()
        .map(|&(subscribers, events, every_ms)| Size {
            subscribers,
            events,
            every_ms,
        })
        .filter(|size| listed("CALSCAN_PEERS_SIZES", &size.subscribers.to_string()))
        .collect();
    let idle = if quick { 2_000 } else { 10_000 };
    // CALSCAN_PEERS=calscan,nginx_nchan: only those servers.
    let chosen: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|p| listed("CALSCAN_PEERS", p.name()))
        .collect();
    let mut runs = Vec::new();
    for size in &sizes {
        let mut results = serde_json::Map::new();
        for &peer in &chosen {
            let burner = if busy { Some(Burner::start()?) } else { None };
            let figures = run(peer, *size, &dir)
                .await
                .with_context(|| format!("{} at {size:?}", peer.name()))?;
            if let Some(burner) = burner {
                burner.stop().await;
            }
            eprintln!("peers: {} {size:?}: {figures}", peer.name());
            results.insert(peer.name().into(), figures);
        }
        runs.push(json!({
            "subscribers": size.subscribers, "events": size.events,
            "every_ms": size.every_ms, "results": results,
        }));
    }
    let mut memory = serde_json::Map::new();
    for &peer in chosen.iter().filter(|&&p| p != Peer::Floor) {
        let kib = idle_memory(peer, idle, &dir)
            .await
            .with_context(|| format!("{} idle", peer.name()))?;
        eprintln!("peers: {} idle: {kib:.2} KiB per subscriber", peer.name());
        memory.insert(peer.name().into(), round(kib, 2).into());
    }
    let out = json!({
        "busy": busy, "versions": versions(&dir), "runs": runs,
        "idle_subscribers": idle, "kib_per_idle_subscriber": memory,
        "target": "calscan's CPU per delivery ≤ nchan's at every size and ≤ 1.3× the floor at 1,000 and more; ≤ 12 KiB per idle subscriber; p99 ≤ 50 ms at 1,000 when busy",
    });
    eprintln!("{}", table(&out, &chosen));
    Ok(out)
}

/// Whether `name` is in the comma-separated list in `var`; all are when
/// it is not set.
fn listed(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |list| list.split(',').any(|n| n == name))
}

/// Runs `setup.sh`, which installs what is missing, and copies the Node
/// program next to its `node_modules` (ES modules resolve packages from
/// their own folder). Returns the peers' folder.
fn install() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(
        std::env::var_os("CALSCAN_PEERS_DIR").unwrap_or_else(|| "/var/tmp/calscan-peers".into()),
    );
    let status = std::process::Command::new("bash")
        .arg(format!("{SOURCES}/setup.sh"))
        .env("CALSCAN_PEERS_DIR", &dir)
        .status()
        .context("running peers/setup.sh")?;
    ensure!(status.success(), "peers/setup.sh failed: {status}");
    std::fs::copy(
        format!("{SOURCES}/better-sse.mjs"),
        dir.join("node/better-sse.mjs"),
    )?;
    Ok(dir)
}

/// The peers' versions, as their own tools report them.
fn versions(dir: &Path) -> Value {
    let out = |program: &str, args: &[&str]| -> String {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|o| {
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text).trim().to_owned()
            })
            .unwrap_or_else(|e| e.to_string())
    };
    let python = dir.join("py/bin/python");
    let python = python.to_string_lossy();
    let pip = |package: &str| {
        out(
            &python,
            &[
                "-c",
                &format!("import importlib.metadata as m; print(m.version('{package}'))"),
            ],
        )
    };
    let better_sse = std::fs::read_to_string(dir.join("node/node_modules/better-sse/package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map_or(Value::Null, |v| v["version"].clone());
    json!({
        "nginx": out("nginx", &["-v"]).trim_start_matches("nginx version: ").to_owned(),
        "nchan": out("dpkg-query", &["-W", "-f", "${Version}", "libnginx-mod-nchan"]),
        "node": out("node", &["--version"]),
        "better-sse": better_sse,
        "python": out(&python, &["--version"]),
        "sse-starlette": pip("sse-starlette"),
        "uvicorn": pip("uvicorn"),
        "aiohttp": pip("aiohttp"),
        "aiohttp-sse": pip("aiohttp-sse"),
    })
}

/// A peer's process (its own process group, so nginx's worker goes with
/// its master), and how to reach it.
struct PeerProcess {
    child: tokio::process::Child,
    pid: u32,
    base: String,
}

impl PeerProcess {
    async fn start(peer: Peer, dir: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let python = dir.join("py/bin/python");
        let mut command = match peer {
            Peer::Nchan => {
                let run = dir.join(format!("nchan-{port}"));
                std::fs::create_dir_all(&run)?;
                let conf = std::fs::read_to_string(format!("{SOURCES}/nchan.conf"))?
                    .replace("@DIR@", &run.to_string_lossy())
                    .replace("@PORT@", &port.to_string());
                let file = run.join("nginx.conf");
                std::fs::write(&file, conf)?;
                let mut c = tokio::process::Command::new("nginx");
                c.arg("-p").arg(&run).arg("-c").arg(&file);
                c
            }
            Peer::BetterSse => {
                let mut c = tokio::process::Command::new("node");
                c.arg(dir.join("node/better-sse.mjs")).arg(port.to_string());
                c
            }
            Peer::SseStarlette | Peer::AiohttpSse => {
                let script = if peer == Peer::SseStarlette {
                    "sse_starlette_app.py"
                } else {
                    "aiohttp_sse_app.py"
                };
                let mut c = tokio::process::Command::new(&python);
                c.arg(format!("{SOURCES}/{script}")).arg(port.to_string());
                c
            }
            Peer::Floor | Peer::Calscan => bail!("{} is not a peer process", peer.name()),
        };
        let child = command
            .stdout(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", peer.name()))?;
        let pid = child.id().context("peer pid")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            ensure!(
                Instant::now() < deadline,
                "{} did not listen in 30 s",
                peer.name()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .status();
        let _ = self.child.wait().await;
    }
}

/// CPU and RSS of `pid` and all its descendants.
fn tree(pid: u32) -> anyhow::Result<ProcStats> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(p) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(p);
        }
    }
    let mut total = ProcStats::read(pid)?;
    let mut todo = children.get(&pid).cloned().unwrap_or_default();
    while let Some(p) = todo.pop() {
        if let Ok(s) = ProcStats::read(p) {
            total.rss_kib += s.rss_kib;
            total.peak_rss_kib += s.peak_rss_kib;
            total.cpu_s += s.cpu_s;
            total.switches += s.switches;
        }
        todo.extend(children.get(&p).cloned().unwrap_or_default());
    }
    Ok(total)
}

/// The text of event `n`: a probe padded to [`EVENT_BYTES`].
fn event_text(n: usize) -> String {
    let mut text = probe(n);
    text.push(' ');
    let pad = EVENT_BYTES.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', pad));
    text
}

/// Reads one SSE stream as any client would and counts the probes in its
/// `data:` lines, in calscan's JSON or as plain text. Ends when `expected`
/// probes are in, when the stream ends, or at `stop`.
pub(crate) async fn read_probes(
    http: reqwest::Client,
    url: String,
    expected: usize,
    tally: Arc<Tally>,
    stop: CancellationToken,
) -> Seen {
    let mut seen = Seen::default();
    let response = match http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("Accept", "text/event-stream")
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => r,
        Ok(r) => {
            seen.error = Some(format!("status {}", r.status()));
            return seen;
        }
        Err(e) => {
            seen.error = Some(e.to_string());
            return seen;
        }
    };
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut next_probe = 0;
    while seen.probes < expected {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            () = stop.cancelled() => break,
        };
        let Some(Ok(chunk)) = chunk else {
            if seen.connects == 0 {
                seen.error = Some("the stream ended before its first byte".into());
            }
            break;
        };
        if seen.connects == 0 {
            seen.connects = 1;
            tally.connected.fetch_add(1, Ordering::Relaxed);
        }
        let arrived = unix_micros();
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = buffer[start..].iter().position(|&b| b == b'\n') {
            let line = &buffer[start..start + end];
            start += end + 1;
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let text = String::from_utf8_lossy(data);
            let Some(at) = text.find("probe ") else {
                continue;
            };
            let text = &text[at..];
            let text = &text[..text.find('"').unwrap_or(text.len())];
            if let Some((n, made)) = parse_probe(text) {
                if n != next_probe {
                    seen.out_of_order += 1;
                }
                next_probe = n + 1;
                seen.probes += 1;
                seen.latencies_us.push(arrived - made);
                tally.probes.fetch_add(1, Ordering::Relaxed);
            }
        }
        buffer.drain(..start);
    }
    seen.done = seen.probes >= expected;
    seen
}

/// Plain SSE readers of one URL.
pub(crate) struct Readers {
    pub(crate) tally: Arc<Tally>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Readers {
    /// `n` readers of `url`, each expecting `expected` probes, connected a
    /// batch at a time. With `wait`, returns once each has its first byte.
    pub(crate) async fn connect(
        url: &str,
        n: usize,
        expected: usize,
        wait: bool,
    ) -> anyhow::Result<Self> {
        const BATCH: usize = 250;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .build()?;
        let mut readers = Self {
            tally: Arc::new(Tally::default()),
            stop: CancellationToken::new(),
            tasks: Vec::with_capacity(n),
        };
        while readers.tasks.len() < n {
            for _ in 0..BATCH.min(n - readers.tasks.len()) {
                readers.tasks.push(tokio::spawn(read_probes(
                    http.clone(),
                    url.to_owned(),
                    expected,
                    readers.tally.clone(),
                    readers.stop.clone(),
                )));
            }
            if wait {
                wait_for(
                    &readers.tally.connected,
                    readers.tasks.len(),
                    Duration::from_secs(60),
                    "subscribers connected",
                )
                .await?;
            }
        }
        Ok(readers)
    }

    /// Waits until `total` probes are in, or until none came for 10 s.
    pub(crate) async fn wait_for_probes(&self, total: usize) {
        let mut last = (0, Instant::now());
        loop {
            let now = self.tally.probes.load(Ordering::Relaxed);
            if now >= total || last.1.elapsed() > Duration::from_secs(10) {
                return;
            }
            if now != last.0 {
                last = (now, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(crate) async fn results(self) -> anyhow::Result<Vec<Seen>> {
        self.stop.cancel();
        let mut all = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            all.push(task.await?);
        }
        Ok(all)
    }
}

/// One peer at one size: CPU per delivery, latency, and the check.
async fn run(peer: Peer, size: Size, dir: &Path) -> anyhow::Result<Value> {
    let Size {
        subscribers,
        events,
        every_ms,
    } = size;
    let every = Duration::from_millis(every_ms);
    let deliveries = subscribers * events;
    match peer {
        Peer::Floor => crate::floor_run(subscribers, events, every_ms).await,
        Peer::Calscan => {
            let server = Server::start(None).await?;
            let ids = server.create(1).await?;
            let url = format!("{}/api/scans/{}/events", server.app, ids[0]);
            let readers = Readers::connect(&url, subscribers, events, true).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = server.proc()?;
            server.emit(&ids, 0, events, 1, every).await?;
            readers.wait_for_probes(deliveries).await;
            let used = Used::between(before, server.proc()?);
            let seen = readers.results().await?;
            server.finish(&ids).await?;
            server.stop().await;
            Ok(figures(used, deliveries, &seen, events))
        }
        _ => {
            let process = PeerProcess::start(peer, dir).await?;
            let url = format!("{}/sub", process.base);
            let readers = Readers::connect(&url, subscribers, events, true).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = tree(process.pid)?;
            publish(&format!("{}/pub", process.base), events, every).await?;
            readers.wait_for_probes(deliveries).await;
            let used = Used::between(before, tree(process.pid)?);
            let seen = readers.results().await?;
            process.stop().await;
            Ok(figures(used, deliveries, &seen, events))
        }
    }
}

/// What a server used over a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Used {
    pub(crate) cpu_s: f64,
    /// Context switches of its threads: the wake-ups its work took.
    pub(crate) switches: u64,
}

impl Used {
    pub(crate) fn between(before: ProcStats, after: ProcStats) -> Self {
        Self {
            cpu_s: after.cpu_s - before.cpu_s,
            switches: after.switches.saturating_sub(before.switches),
        }
    }
}

/// The figures of one run: CPU per delivery, context switches per event,
/// latency, and the check.
pub(crate) fn figures(used: Used, deliveries: usize, seen: &[Seen], events: usize) -> Value {
    let (mut latencies, verdict) = check(seen, events);
    let Used { cpu_s, switches } = used;
    json!({
        "server_cpu_s": round(cpu_s, 2),
        "server_cpu_us_per_event": round(cpu_s * 1e6 / events as f64, 1),
        "server_cpu_us_per_delivery": (deliveries > 0).then(|| round(cpu_s * 1e6 / deliveries as f64, 2)),
        "server_switches_per_event": round(switches as f64 / events as f64, 2),
        "latency": latency_ms(&mut latencies),
        "check": verdict,
    })
}

/// Posts `events` events to `url`, one every `every`, on one keep-alive
/// connection.
async fn publish(url: &str, events: usize, every: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let mut tick = tokio::time::interval(every);
    for n in 0..events {
        tick.tick().await;
        let response = http.post(url).body(event_text(n)).send().await?;
        ensure!(
            response.status().is_success(),
            "publishing event {n}: {}",
            response.status()
        );
    }
    Ok(())
}

/// Memory per idle subscriber: RSS with `n` subscribers held, less RSS
/// with none, over `n`.
async fn idle_memory(peer: Peer, n: usize, dir: &Path) -> anyhow::Result<f64> {
    let settle = Duration::from_secs(1);
    let per = |before: ProcStats, after: ProcStats| {
        (after.rss_kib as f64 - before.rss_kib as f64) / n as f64
    };
    if peer == Peer::Calscan {
        let server = Server::start(None).await?;
        let ids = server.create(1).await?;
        tokio::time::sleep(settle).await;
        let before = server.proc()?;
        let url = format!("{}/api/scans/{}/events", server.app, ids[0]);
        let readers = Readers::connect(&url, n, 1, true).await?;
        tokio::time::sleep(settle).await;
        let after = server.proc()?;
        readers.results().await?;
        server.finish(&ids).await?;
        server.stop().await;
        return Ok(per(before, after));
    }
    let process = PeerProcess::start(peer, dir).await?;
    tokio::time::sleep(settle).await;
    let before = tree(process.pid)?;
    let readers = Readers::connect(&format!("{}/sub", process.base), n, 1, true).await?;
    tokio::time::sleep(settle).await;
    let after = tree(process.pid)?;
    readers.results().await?;
    process.stop().await;
    Ok(per(before, after))
}

/// A process of its own that keeps one of the two cores' worth of CPU
/// busy: two threads, each spinning 5 ms of every 10 ms.
struct Burner(tokio::process::Child);

impl Burner {
    fn start() -> anyhow::Result<Self> {
        Ok(Self(
            tokio::process::Command::new(std::env::current_exe()?)
                .arg("burn")
                .kill_on_drop(true)
                .spawn()?,
        ))
    }

    async fn stop(mut self) {
        let _ = self.0.start_kill();
        let _ = self.0.wait().await;
    }
}

/// `loadgen burn`: the burner's process; runs until killed.
pub(crate) fn burn() -> ! {
    let spin = || loop {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::spawn(spin);
    spin()
}

/// The comparison as a Markdown table: CPU per delivery, p50/p99; with no
/// subscriber, CPU and context switches per event.
fn table(out: &Value, chosen: &[Peer]) -> String {
    let mut text = String::from("| subscribers × events |");
    for peer in chosen {
        text.push_str(&format!(" {} |", peer.title()));
    }
    text.push_str("\n|---|");
    text.push_str(&"---|".repeat(chosen.len()));
    for run in out["runs"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n| {} × {} @ {} ms |",
            run["subscribers"], run["events"], run["every_ms"]
        ));
        for peer in chosen {
            let r = &run["results"][peer.name()];
            if run["subscribers"] == 0 {
                text.push_str(&format!(
                    " {} µs, {} switches per event |",
                    r["server_cpu_us_per_event"], r["server_switches_per_event"]
                ));
                continue;
            }
            let exact = r["check"]["missing"] == 0 && r["check"]["duplicated_or_out_of_order"] == 0;
            text.push_str(&format!(
                " {} µs, p50 {} / p99 {} ms{} |",
                r["server_cpu_us_per_delivery"],
                r["latency"]["p50_ms"],
                r["latency"]["p99_ms"],
                if exact { "" } else { " (NOT exactly once)" }
            ));
        }
    }
    text.push_str(&format!(
        "\n| KiB per idle subscriber at {} |",
        out["idle_subscribers"]
    ));
    for peer in chosen {
        match out["kib_per_idle_subscriber"].get(peer.name()) {
            Some(kib) => text.push_str(&format!(" {kib} |")),
            None => text.push_str(" – |"),
        }
    }
    text
}
