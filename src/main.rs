//! The `calscan` binary: parse the command line, set up logging, run.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use calscan::app::{Application, Settings};
use calscan::auth::{AdminPassword, hash_password};
use calscan::calendly::{ClientSettings, Simulator, SimulatorConfig};
use calscan::config::{
    Cli, Command, DatabaseArgs, DemoArgs, HealthcheckArgs, MigrateArgs, ServeArgs, SimulateArgs,
};
use clap::Parser;
use rand::RngExt;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    calscan::telemetry::init();
    match command(cli).await {
        Ok(code) => code,
        // An expected failure (a setting, the database, the port) is a
        // sentence for the operator, not a backtrace, whatever
        // RUST_BACKTRACE says.
        Err(error) => {
            eprintln!("calscan: {}", in_words(&error));
            ExitCode::FAILURE
        }
    }
}

async fn command(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Demo(args)) => demo(args).await,
        Some(Command::Simulate(args)) => simulate(args).await,
        Some(Command::Migrate(args)) => return migrate(args).await,
        Some(Command::HashPassword) => print_hash().await,
        Some(Command::Healthcheck(args)) => healthcheck(args).await,
        Some(Command::Webhooks(args)) => calscan::subscriptions::run(args.command).await,
        Some(Command::Scan(args)) => {
            let code = calscan::terminal::run(args).await?;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
    }
    .map(|()| ExitCode::SUCCESS)
}

/// An error and its causes in one line, each cause once: an error that
/// wraps another often repeats its text.
fn in_words(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `calscan migrate [--check]`: both judge the database first and print
/// what they found; only `migrate` then changes it.
async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = &args.database.database_url;
    let customers = args.database.customers();
    let report = calscan::store::check(url, &customers)
        .await
        .context("cannot read the database")?;
    print!("{report}");
    if !report.can_proceed() {
        return Ok(ExitCode::FAILURE);
    }
    if args.check {
        if !report.pending.is_empty() {
            println!("`calscan migrate` can proceed; nothing was changed");
        }
        return Ok(ExitCode::SUCCESS);
    }
    calscan::store::connect_with(url, &customers)
        .await
        .context("migration failed")?;
    println!("database is up to date");
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let admin_password = match (args.admin_password, args.admin_password_hash) {
        (Some(plain), _) => AdminPassword::Plain(plain),
        (None, Some(hash)) => AdminPassword::Hash(hash),
        (None, None) => anyhow::bail!(
            "set CALSCAN_ADMIN_PASSWORD, or CALSCAN_ADMIN_PASSWORD_HASH (made by `calscan hash-password`)"
        ),
    };
    let settings = args.server.settings(
        &args.database,
        args.calendly.client_settings(),
        args.calendly.calendly_org_uri.clone(),
        admin_password,
    )?;
    run(settings, |_| {}).await
}

/// Runs the server until Ctrl-C or SIGTERM.
async fn run(settings: Settings, ready: impl FnOnce(std::net::SocketAddr)) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone()).await?;
    let addr = app.local_addr()?;
    tracing::info!("calscan listening on http://{addr}");
    ready(addr);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    app.run_until_stopped().await
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let token = format!("demo-{}", random_text(12));
    let (simulator, _stop_simulator) = Simulator::spawn(SimulatorConfig {
        token: token.clone(),
        events: args.events,
        seed: 7,
        latency: Duration::from_millis(args.latency_ms),
        // The simulator listens on a new port each time; its URIs stay the
        // same, so a restarted demo finds the bookings it saved as its own.
        uri_base: Some(DEMO_URI_BASE.to_owned()),
        ..SimulatorConfig::default()
    })
    .await
    .context("cannot start the Calendly simulator")?;
    demo_bookings(&simulator, args.book_every);
    let password = random_text(16);
    let calendly = ClientSettings::new(
        simulator.base_url().parse().context("simulator URL")?,
        SecretString::from(token),
    );
    let user = args.server.admin_user.clone();
    let database = DatabaseArgs {
        database_url: args.database_url.clone(),
        customers_table: calscan::store::customers::DEFAULT_TABLE.to_owned(),
        customer_email_column: None,
        customer_name_columns: None,
        db_outage_s: calscan::scan::DEFAULT_DB_OUTAGE.as_secs(),
    };
    let settings = args.server.settings(
        &database,
        Some(calendly),
        None,
        AdminPassword::Plain(SecretString::from(password.clone())),
    )?;
    run(settings, move |addr| {
        println!("calscan demo: http://{addr}/login");
        println!("  login:    {user}");
        println!("  password: {password}");
        println!(
            "  Calendly: simulator at {} with {} events; somebody new books every {}",
            simulator.base_url(),
            args.events,
            calscan::time::interval(args.book_every)
        );
        println!(
            "  database: {} (delete it, or pass another --database-url, to start over)",
            args.database_url
        );
    })
    .await
}

/// Where the demo organization's URIs begin: a name of its own (`.invalid`
/// is reserved for names that resolve nowhere), never a real Calendly's.
const DEMO_URI_BASE: &str = "https://calendly-demo.invalid";

/// Upcoming lessons, booked now, and one more by somebody new every
/// `every`: the demo organization lives, so an incremental scan after a
/// while finds a new customer. The same bookings on the same organization
/// get the same ids, so a restarted demo makes the same ones again.
fn demo_bookings(simulator: &Simulator, every: Duration) {
    const UPCOMING: [(&str, &str); 3] = [
        ("Lena Hofer", "lena.hofer@example.org"),
        ("Jonas Berger", "jonas.berger@example.org"),
        ("Mia Steiner", "mia.steiner@example.org"),
    ];
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    let at = move |days: u64| {
        (tomorrow + chrono::Days::new(days))
            .and_hms_opt(15, 0, 0)
            .unwrap_or_default()
            .and_utc()
    };
    for (day, (name, email)) in (0..).zip(UPCOMING) {
        simulator.book(name, email, at(day));
    }
    let simulator = simulator.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        for n in 1u64.. {
            tick.tick().await;
            let name = format!("Neue Kundin {n}");
            let email = format!("neue.kundin.{n}@example.org");
            simulator.book(&name, &email, at(n % 14));
        }
    });
}

fn random_text(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::rng().random()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
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

/// Reads a password without echo from a terminal, twice so that a typing
/// error is caught, or a line from a pipe.
async fn print_hash() -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Repeat the password: ")
            .context("cannot read the password")?;
        same_twice(first, again)?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    println!("{}", hash_password(SecretString::from(password)).await?);
    Ok(())
}

/// The password typed twice, if both are the same.
fn same_twice(first: String, again: String) -> anyhow::Result<String> {
    anyhow::ensure!(
        first == again,
        "the two passwords differ; nothing was hashed, run `calscan hash-password` again"
    );
    Ok(first)
}

/// Exits 0 when `/healthz` answers 200.
async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let mut addr = args.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .with_context(|| format!("no answer from http://{addr}/healthz"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "/healthz answered {}",
        response.status()
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_hashed_only_when_typed_the_same_twice() {
        assert_eq!(
            same_twice("s3cret pass".into(), "s3cret pass".into()).ok(),
            Some("s3cret pass".to_owned())
        );
        for (first, again) in [("s3cret pass", "s3cret pas"), ("a", "a "), ("", "x")] {
            let error = same_twice(first.into(), again.into()).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("the two passwords differ"), "{text}");
            assert!(!text.contains("s3cret"), "the password shows: {text}");
        }
    }
}
