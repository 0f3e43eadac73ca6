//! The `calscan` binary: parse the command line, set up logging, run.

use anyhow::Context;
use calscan::calendly::Simulator;
use calscan::config::{Cli, Command, SimulateArgs};
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    calscan::telemetry::init();
    match cli.command {
        Command::Simulate(args) => simulate(args).await,
    }
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let shutdown = CancellationToken::new();
    let (simulator, task) = Simulator::serve(args.simulator_config(), listener, shutdown.clone())?;
    let org = simulator.org();
    println!("{}", simulator.base_url());
    tracing::info!(
        base_url = simulator.base_url(),
        organization = simulator.organization_uri(),
        events = org.events.len(),
        invitees = org.invitee_count(),
        distinct_emails = org.expected_emails().len(),
        "Calendly simulator ready (CALENDLY_API_BASE={}; it accepts the token given by --token)",
        simulator.base_url()
    );
    tokio::select! {
        result = task => result.context("simulator task failed")?.context("simulator failed")?,
        _ = shutdown_signal() => shutdown.cancel(),
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
