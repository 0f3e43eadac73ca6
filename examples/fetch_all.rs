//! Fetches every invitee of an organization with calscan's Calendly client and
//! prints one JSON line of figures: calls, 429s, retries, wall time, and the
//! lower bound the rate limit sets (calls ÷ rate).
//!
//! ```sh
//! cargo run --release -- simulate --events 1000 --latency-ms 100 &
//! CALENDLY_TOKEN=demo-token CALENDLY_API_BASE=http://127.0.0.1:9090 \
//!   cargo run --release --example fetch_all -- --rate-limit 500 --rate-window-s 60
//! ```

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Context;
use calscan::calendly::CalendlyClient;
use calscan::config::CalendlyArgs;
use clap::Parser;
use futures::TryStreamExt;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    calendly: CalendlyArgs,
    /// The API's limit (requests per window), for the bound.
    #[arg(long, default_value_t = 500)]
    rate_limit: u32,
    /// The API's window in seconds, for the bound.
    #[arg(long, default_value_t = 60)]
    rate_window_s: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = args
        .calendly
        .client_settings()
        .context("set CALENDLY_TOKEN (the simulator's default is demo-token)")?;
    let client = CalendlyClient::new(settings)?;
    let started = Instant::now();
    let org = client
        .organization(args.calendly.calendly_org_uri.as_deref())
        .await?;
    let events: Vec<_> = client.events(&org, None).try_concat().await?;
    let listed = started.elapsed();
    let done: Vec<_> = client.invitees_of(events).try_collect().await?;
    let wall = started.elapsed();

    let emails: BTreeSet<String> = done
        .iter()
        .flat_map(|e| &e.invitees)
        .filter_map(|i| i.normalized_email())
        .collect();
    let stats = client.stats();
    let rate = f64::from(args.rate_limit) / args.rate_window_s as f64;
    let figures = serde_json::json!({
        "events": done.len(),
        "invitee_records": done.iter().map(|e| e.invitees.len()).sum::<usize>(),
        "distinct_emails": emails.len(),
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "retries": stats.retries,
        "restarts": stats.restarts,
        "events_listed_s": listed.as_secs_f64(),
        "wall_s": wall.as_secs_f64(),
        "bound_s": stats.requests as f64 / rate,
    });
    println!("{figures}");
    Ok(())
}
