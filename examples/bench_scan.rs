//! Start latency and push latency of the scan service on SQLite, printed as
//! one JSON line.
//!
//! - start: `POST /api/scans` answered (202), then cancelled and followed to
//!   its `done`, N times; p50/p99 of the start answers.
//! - push: a scan of the simulator's organization watched over SSE; for every
//!   log line, the time from its creation in the scan task to its arrival at
//!   the client (written to SQLite, published, streamed).
//!
//! ```sh
//! cargo run --release --example bench_scan -- --starts 1000 --events 500
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use calscan::app::{Application, Settings};
use calscan::auth::AdminPassword;
use calscan::calendly::{ClientSettings, Simulator, SimulatorConfig};
use calscan::i18n::Lang;
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    /// Starts (each followed by a cancel) to time.
    #[arg(long, default_value_t = 1000)]
    starts: usize,
    /// Events of the organization scanned for the push latency.
    #[arg(long, default_value_t = 500)]
    events: usize,
    /// Simulated Calendly latency in milliseconds during the push run.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
}

const TOKEN: &str = "bench-api-token";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (sim, _sim_stop) = Simulator::spawn(SimulatorConfig {
        events: args.events,
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: 1_000_000,
        ..SimulatorConfig::default()
    })
    .await?;
    let dir = tempfile_dir()?;
    let shutdown = CancellationToken::new();
    let settings = Settings {
        bind: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}/bench.db", dir.display()),
        calendly: Some(ClientSettings::new(
            sim.base_url().parse()?,
            SecretString::from("demo-token"),
        )),
        organization: None,
        admin_user: "admin".into(),
        admin_password: AdminPassword::Hash(password_auth::generate_hash("unused")),
        api_token: Some(SecretString::from(TOKEN)),
        lang: Lang::De,
        cookie_secure: false,
        session_idle: Duration::from_secs(3600),
        login_attempts: 5,
        lease: Duration::from_secs(15),
        stream_buffer: 1024,
        block_sse: false,
    };
    let app = Application::build(settings, shutdown.clone()).await?;
    let base = format!("http://{}", app.local_addr()?);
    let server = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();

    // Start latency: start, cancel, follow to done; repeat. The cancel's
    // log line is timed from its creation to its arrival, as a push sample.
    let mut starts = Vec::with_capacity(args.starts);
    let mut pushes = Vec::new();
    for _ in 0..args.starts {
        let (answered_in, scan_id, stream) = start_and_watch(&http, &base).await?;
        starts.push(answered_in);
        http.post(format!("{base}/api/scans/{scan_id}/cancel"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        pushes.extend(log_push_times(stream).await?.0);
    }
    let cancel_pushes = pushes.len();

    // Push latency during a full scan of the organization.
    let (_, _, stream) = start_and_watch(&http, &base).await?;
    let (scan_pushes, events) = log_push_times(stream).await?;
    pushes.extend(scan_pushes);
    shutdown.cancel();
    server.await??;

    let figures = serde_json::json!({
        "starts": starts.len(),
        "start_p50_ms": percentile_ms(&mut starts, 0.50),
        "start_p99_ms": percentile_ms(&mut starts, 0.99),
        "scan_events": events,
        "push_samples": pushes.len(),
        "push_samples_from_cancels": cancel_pushes,
        "push_p50_ms": percentile_ms(&mut pushes, 0.50),
        "push_p99_ms": percentile_ms(&mut pushes, 0.99),
        "push_max_ms": pushes.iter().max().map(|d| d.as_secs_f64() * 1e3),
    });
    println!("{figures}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Starts a scan and opens its stream: how long the start took to answer,
/// the scan id, the stream.
async fn start_and_watch(
    http: &reqwest::Client,
    base: &str,
) -> anyhow::Result<(Duration, String, reqwest::Response)> {
    let t = Instant::now();
    let response = http
        .post(format!("{base}/api/scans"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    let answered_in = t.elapsed();
    anyhow::ensure!(
        response.status() == 202,
        "start answered {}",
        response.status()
    );
    let scan_id = response.json::<Value>().await?["scan_id"]
        .as_str()
        .context("scan_id")?
        .to_owned();
    let stream = http
        .get(format!("{base}/api/scans/{scan_id}/events"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    Ok((answered_in, scan_id, stream))
}

/// Reads an event stream to its end; for every live `log` event, the time
/// from the line's creation to its arrival. Also counts the events.
async fn log_push_times(stream: reqwest::Response) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut body = stream.bytes_stream();
    let mut buffer = String::new();
    let mut pushes = Vec::new();
    let mut events = 0;
    while let Some(chunk) = body.next().await {
        let arrived = Utc::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            events += 1;
            if block.contains("event: log") {
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .context("data")?;
                let log: Value = serde_json::from_str(data)?;
                let created: DateTime<Utc> =
                    log["created_at"].as_str().context("created_at")?.parse()?;
                pushes.push((arrived - created).to_std().unwrap_or_default());
            }
        }
    }
    Ok((pushes, events))
}

fn percentile_ms(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("calscan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
