//! The command line: one clap struct per command, every setting a flag and an
//! environment variable, defaults in code.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::store::CustomerSettings;
use secrecy::SecretString;
use url::Url;

use anyhow::Context;

use crate::app::Settings;
use crate::auth::{AdminPassword, AuthSettings};
use crate::calendly::{ClientSettings, SimulatorConfig};
use crate::i18n::Lang;
use crate::notify::{Notifier, NotifySettings};
use crate::scan::ScanSettings;
use crate::time::Zone;

/// calscan: imports a Calendly organization's invitees as customers.
///
/// Without a command it runs the server (`calscan serve`).
#[derive(Debug, Parser)]
#[command(
    name = "calscan",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once per run: the size of the largest command's flags costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Run the server on SQLite with the built-in Calendly simulator and a
    /// demo organization; prints the URL and the login.
    Demo(DemoArgs),
    /// Run only the Calendly simulator, a faithful fake of Calendly API v2.
    Simulate(SimulateArgs),
    /// Apply pending database migrations and exit; `--check` changes
    /// nothing and prints what it found and would do.
    Migrate(MigrateArgs),
    /// Read a password (twice from the terminal, or a line of standard
    /// input) and print its Argon2id hash for CALSCAN_ADMIN_PASSWORD_HASH.
    HashPassword,
    /// Exit 0 when the server at CALSCAN_BIND answers /healthz (for Docker).
    Healthcheck(HealthcheckArgs),
    /// Run one scan in the terminal with a progress bar (or continue one with
    /// `--resume`): the same engine and database as the server. Exit codes:
    /// 0 completed, 1 failed or nothing to resume, 3 a scan is already
    /// running, 130 cancelled with Ctrl-C.
    Scan(ScanArgs),
    /// Manage the organization's Calendly webhook subscriptions, which send
    /// new bookings to calscan at once.
    Webhooks(WebhooksArgs),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// sqlite://path (created if missing); postgres:// and mysql:// follow.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://calscan.db")]
    pub database_url: String,

    /// The customer table: the school's own where it exists.
    #[arg(long, env = "CALSCAN_CUSTOMERS_TABLE", default_value = crate::store::customers::DEFAULT_TABLE)]
    pub customers_table: String,

    /// Its email column; detected when unset (email, e_mail, mail, email_address).
    #[arg(long, env = "CALSCAN_CUSTOMER_EMAIL_COLUMN")]
    pub customer_email_column: Option<String>,

    /// Its name column, or two as `first,last`; detected when unset (name,
    /// full_name, first_name+last_name, firstname+lastname, vorname+nachname).
    #[arg(long, env = "CALSCAN_CUSTOMER_NAME_COLUMNS")]
    pub customer_name_columns: Option<String>,

    /// Seconds a scan waits for a database that does not answer (or, on
    /// SQLite, a full disk or a lock held elsewhere) before it ends with an
    /// error saying why; it goes on by itself when the database is back.
    #[arg(long, env = "CALSCAN_DB_OUTAGE_S", default_value_t = crate::scan::DEFAULT_DB_OUTAGE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub db_outage_s: u64,
}

impl DatabaseArgs {
    pub fn customers(&self) -> CustomerSettings {
        CustomerSettings {
            table: self.customers_table.clone(),
            email_column: self.customer_email_column.clone(),
            name_columns: self.customer_name_columns.clone(),
        }
    }

    /// `CALSCAN_DB_OUTAGE_S`.
    pub fn db_outage(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.db_outage_s)
    }
}

/// `calscan migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Change nothing: print what the database holds and what migrating it
    /// would do; exit 1 when it cannot proceed, saying what to set.
    #[arg(long)]
    pub check: bool,
}

/// How the server is reached and guarded.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Listen address.
    #[arg(long, env = "CALSCAN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Admin login name.
    #[arg(long, env = "CALSCAN_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,

    /// Optional bearer token for non-browser API clients.
    #[arg(long, env = "CALSCAN_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<SecretString>,

    /// Language when the browser's Accept-Language names neither de nor en
    /// (and of scan log lines).
    #[arg(long, env = "CALSCAN_LANG", default_value = "de")]
    pub lang: Lang,

    /// The time zone times are shown in (an IANA name such as
    /// Europe/Vienna); the server's own when unset.
    #[arg(long, env = "CALSCAN_TIMEZONE")]
    pub timezone: Option<Zone>,

    /// Mark the session cookie Secure (set it when calscan is served over HTTPS).
    #[arg(long, env = "CALSCAN_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "CALSCAN_SESSION_IDLE_MIN", default_value_t = crate::auth::DEFAULT_SESSION_IDLE.as_secs() / 60,
          value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub session_idle_min: u64,

    /// Hours a session lasts however much it is used; then the admin logs
    /// in again.
    #[arg(long, env = "CALSCAN_SESSION_MAX_HOURS", default_value_t = crate::auth::DEFAULT_SESSION_MAX.as_secs() / 3600,
          value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub session_max_hours: u64,

    /// Failed logins a client may make per window before it gets 429.
    #[arg(long, env = "CALSCAN_LOGIN_ATTEMPTS", default_value_t = crate::auth::DEFAULT_LOGIN_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts: u32,

    /// Reverse proxies in front of calscan (addresses or CIDRs, comma
    /// separated): only a request from one of them has its client address
    /// read from `X-Forwarded-For` or `Forwarded`.
    #[arg(long, env = "CALSCAN_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Seconds a scan's lease holds without a heartbeat; a scan whose process
    /// died is marked interrupted after this.
    #[arg(long, env = "CALSCAN_LEASE_S", default_value_t = crate::scan::DEFAULT_LEASE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub lease_s: u64,

    /// Batches of events (one per write of the scan's progress) a stream
    /// may fall behind the scan before it is refilled from the database.
    #[arg(long, env = "CALSCAN_STREAM_BUFFER", default_value_t = crate::scan::DEFAULT_STREAM_BUFFER as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub stream_buffer: u32,

    /// Hours before the last completed scan's start from which an
    /// incremental scan reads events (a booking made since starts after it
    /// was made; the margin covers clocks and late edits).
    #[arg(long, env = "CALSCAN_LOOKBACK_HOURS", default_value_t = crate::scan::DEFAULT_LOOKBACK.as_secs() / 3600,
          value_parser = clap::value_parser!(u64).range(0..=87_600))]
    pub lookback_hours: u64,

    /// Run an incremental scan on this interval (`90s`, `30m`, `6h`, `1d`);
    /// a tick while a scan runs is skipped.
    #[arg(long, env = "CALSCAN_SCAN_EVERY", value_parser = parse_interval)]
    pub scan_every: Option<Duration>,

    /// The signing key of the Calendly webhook subscription: verifies
    /// deliveries to /webhooks/calendly, which answers 503 without it.
    #[arg(long, env = "CALENDLY_WEBHOOK_SIGNING_KEY", hide_env_values = true)]
    pub webhook_signing_key: Option<SecretString>,

    /// Where a signed JSON summary is POSTed when a scan ends.
    #[arg(long, env = "CALSCAN_NOTIFY_URL", requires = "notify_secret")]
    pub notify_url: Option<Url>,

    /// The key summaries are signed with (HMAC-SHA256 in the
    /// `Calscan-Signature` header, as Calendly signs its webhooks).
    #[arg(long, env = "CALSCAN_NOTIFY_SECRET", hide_env_values = true)]
    pub notify_secret: Option<SecretString>,

    /// calscan's address as users reach it (https://calscan.example.com),
    /// for the link in summaries; without it the link is a path.
    #[arg(long, env = "CALSCAN_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Testing only: answer 503 on the event stream, as a proxy that blocks
    /// it would, to exercise the pages' polling fallback.
    #[arg(
        long,
        env = "CALSCAN_TEST_BLOCK_SSE",
        default_value_t = false,
        hide = true
    )]
    pub test_block_sse: bool,
}

impl ServerArgs {
    /// How the admin and API clients get in, from these flags.
    fn auth_settings(&self, admin_password: AdminPassword) -> AuthSettings {
        AuthSettings {
            api_token: self.api_token.clone(),
            cookie_secure: self.cookie_secure,
            session_idle: Duration::from_secs(self.session_idle_min * 60),
            session_max: Duration::from_secs(self.session_max_hours * 3600),
            login_attempts: self.login_attempts,
            trusted_proxies: self.trusted_proxies.clone(),
            ..AuthSettings::new(self.admin_user.clone(), admin_password)
        }
    }

    /// The server's settings: these flags, the database's, and what the
    /// command decided (Calendly, the password).
    pub fn settings(
        &self,
        database: &DatabaseArgs,
        calendly: Option<ClientSettings>,
        organization: Option<String>,
        admin_password: AdminPassword,
    ) -> anyhow::Result<Settings> {
        Ok(Settings {
            bind: self.bind,
            database_url: database.database_url.clone(),
            customers: database.customers(),
            calendly,
            lang: self.lang,
            scan: self.scan_settings(database, organization)?,
            auth: self.auth_settings(admin_password),
            webhook_key: self.webhook_signing_key.clone(),
            block_sse: self.test_block_sse,
        })
    }

    /// How scans run, from these flags and the database's.
    fn scan_settings(
        &self,
        database: &DatabaseArgs,
        organization: Option<String>,
    ) -> anyhow::Result<ScanSettings> {
        let notify = self
            .notify_url
            .clone()
            .zip(self.notify_secret.clone())
            .map(|(url, secret)| {
                Notifier::new(NotifySettings::new(
                    url,
                    secret,
                    self.public_url.clone(),
                    self.lang,
                ))
            })
            .transpose()
            .context("invalid notification settings")?;
        Ok(ScanSettings {
            organization,
            lease: Duration::from_secs(self.lease_s),
            stream_buffer: self.stream_buffer as usize,
            lookback: Duration::from_secs(self.lookback_hours * 3600),
            db_outage: database.db_outage(),
            notify,
            every: self.scan_every,
            zone: self.timezone.unwrap_or_default(),
        })
    }
}

/// `calscan serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub calendly: CalendlyArgs,

    /// The admin password; hashed (Argon2id) at start and never kept.
    #[arg(long, env = "CALSCAN_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// The admin password as an Argon2id PHC string (see `calscan hash-password`).
    #[arg(
        long,
        env = "CALSCAN_ADMIN_PASSWORD_HASH",
        hide_env_values = true,
        conflicts_with = "admin_password"
    )]
    pub admin_password_hash: Option<String>,
}

/// `calscan demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// The demo database (a file of its own, so the demo never touches real data).
    #[arg(
        long,
        env = "CALSCAN_DEMO_DATABASE_URL",
        default_value = "sqlite://calscan-demo.db"
    )]
    pub database_url: String,

    /// Scheduled events in the demo organization.
    #[arg(long, default_value_t = 300)]
    pub events: usize,

    /// Milliseconds of simulated Calendly latency, so the progress is visible.
    #[arg(long, default_value_t = 150)]
    pub latency_ms: u64,

    /// How often somebody new books a lesson in the demo organization
    /// (`90s`, `3m`, `1h`), so that a later incremental scan finds a new
    /// customer.
    #[arg(long, default_value = "3m", value_parser = parse_interval)]
    pub book_every: Duration,
}

/// `calscan healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The server's listen address.
    #[arg(long, env = "CALSCAN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

/// How calscan reaches Calendly.
#[derive(Debug, Clone, Args)]
pub struct CalendlyArgs {
    /// Personal access token or OAuth token (sent as Bearer). Without it a
    /// scan ends with a "not configured" error.
    #[arg(long, env = "CALENDLY_TOKEN", hide_env_values = true)]
    pub calendly_token: Option<SecretString>,

    /// The organization to scan; when unset, the token user's current
    /// organization from GET /users/me.
    #[arg(long, env = "CALENDLY_ORG_URI")]
    pub calendly_org_uri: Option<String>,

    /// Where the Calendly API is (tests point it at a simulator).
    #[arg(
        long,
        env = "CALENDLY_API_BASE",
        default_value = "https://api.calendly.com"
    )]
    pub calendly_api_base: Url,

    /// Events whose invitees are fetched at the same time.
    #[arg(long, env = "CALSCAN_CALENDLY_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub calendly_concurrency: u16,

    /// Attempts per Calendly request before a transient failure (5xx,
    /// timeout, reset) fails the scan.
    #[arg(long, env = "CALSCAN_CALENDLY_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub calendly_max_attempts: u32,

    /// Seconds one Calendly request may take.
    #[arg(long, env = "CALSCAN_CALENDLY_TIMEOUT_S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub calendly_timeout_s: u64,

    /// The longest wait, in seconds, a Calendly 429 may ask for before the
    /// scan stops (it can be resumed later).
    #[arg(long, env = "CALSCAN_CALENDLY_MAX_WAIT_S", default_value_t = 300)]
    pub calendly_max_wait_s: u64,
}

/// `calscan scan`.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub calendly: CalendlyArgs,

    /// Read every event of the organization, not only those since the last
    /// completed scan.
    #[arg(long)]
    pub full: bool,

    /// Continue a scan that was interrupted, failed or was cancelled, from
    /// its checkpoint and under its id: scan ID, or without one the newest
    /// such scan. Exits 1, starting nothing, when there is none to continue.
    #[arg(long, value_name = "ID", num_args = 0..=1, conflicts_with = "full")]
    pub resume: Option<Option<String>>,

    /// Print the scan's events as NDJSON (one JSON object a line, ending with
    /// `done`) instead of a progress bar.
    #[arg(long)]
    pub json: bool,

    /// Language of log lines and steps.
    #[arg(long, env = "CALSCAN_LANG", default_value = "de")]
    pub lang: Lang,

    /// The time zone log lines name times in (an IANA name such as
    /// Europe/Vienna); the server's own when unset.
    #[arg(long, env = "CALSCAN_TIMEZONE")]
    pub timezone: Option<Zone>,

    /// Hours before the last completed scan's start from which an
    /// incremental scan reads events.
    #[arg(long, env = "CALSCAN_LOOKBACK_HOURS", default_value_t = crate::scan::DEFAULT_LOOKBACK.as_secs() / 3600,
          value_parser = clap::value_parser!(u64).range(0..=87_600))]
    pub lookback_hours: u64,
}

impl ScanArgs {
    /// How the one scan runs: as the server's would, with the default
    /// lease, and a channel its one reader never falls far behind.
    pub fn scan_settings(&self) -> ScanSettings {
        ScanSettings {
            organization: self.calendly.calendly_org_uri.clone(),
            stream_buffer: 1 << 16,
            lookback: Duration::from_secs(self.lookback_hours * 3600),
            db_outage: self.database.db_outage(),
            zone: self.timezone.unwrap_or_default(),
            ..ScanSettings::default()
        }
    }
}

/// `calscan webhooks`.
#[derive(Debug, Clone, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe calscan's webhook URL to the organization's bookings. The
    /// signing key is generated, stored in the database for the server to
    /// verify deliveries with, and never shown.
    Subscribe(SubscribeArgs),
    /// List the organization's webhook subscriptions, and whether calscan
    /// holds the signing key of each.
    List(ListHooksArgs),
    /// Delete a subscription (by its id or URI) and forget its key.
    Delete(DeleteHookArgs),
}

/// What every `calscan webhooks` command needs: Calendly and the database
/// the signing keys are kept in.
#[derive(Debug, Clone, Args)]
pub struct HookTarget {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub calendly: CalendlyArgs,
}

/// `calscan webhooks subscribe`.
#[derive(Debug, Clone, Args)]
pub struct SubscribeArgs {
    /// Where Calendly posts deliveries: calscan's public address, such as
    /// https://calscan.example.com (then /webhooks/calendly is added), or
    /// the full URL of that route.
    #[arg(long)]
    pub url: Url,

    /// The events to subscribe to, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "invitee.created",
          value_parser = ["invitee.created", "invitee.canceled"])]
    pub events: Vec<String>,

    /// Print the subscription as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub target: HookTarget,
}

/// `calscan webhooks list`.
#[derive(Debug, Clone, Args)]
pub struct ListHooksArgs {
    /// Print the subscriptions as a JSON array.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub target: HookTarget,
}

/// `calscan webhooks delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteHookArgs {
    /// The subscription's id, or its URI as `calscan webhooks list` prints it.
    pub id: String,

    #[command(flatten)]
    pub target: HookTarget,
}

/// An interval like `90s`, `30m`, `6h` or `1d`: a whole number and a unit.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: use s, m, h or d, as in 30m or 6h"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number, as in 30m or 6h"))?;
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?}: use s, m, h or d")),
    };
    match number.checked_mul(unit_s) {
        Some(0) => Err("the interval must be longer than zero".into()),
        Some(secs) if secs <= 366 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err("the interval must be at most a year".into()),
    }
}

impl CalendlyArgs {
    /// The client settings, or `None` when no token is configured.
    pub fn client_settings(&self) -> Option<ClientSettings> {
        let token = self.calendly_token.clone()?;
        let mut settings = ClientSettings::new(self.calendly_api_base.clone(), token);
        settings.concurrency = usize::from(self.calendly_concurrency);
        settings.max_attempts = self.calendly_max_attempts;
        settings.request_timeout = Duration::from_secs(self.calendly_timeout_s);
        settings.max_rate_limit_wait = Duration::from_secs(self.calendly_max_wait_s);
        Some(settings)
    }
}

/// `calscan simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Address to serve the simulated API on.
    #[arg(long, env = "CALSCAN_SIM_BIND", default_value = "127.0.0.1:9090")]
    pub bind: SocketAddr,

    /// The bearer token the simulator accepts (the organization owner's).
    #[arg(
        long,
        env = "CALSCAN_SIM_TOKEN",
        default_value = "demo-token",
        hide_env_values = true
    )]
    pub token: String,

    /// A second token, of a member who is not an admin (gets 403 on
    /// organization-wide listings).
    #[arg(long, env = "CALSCAN_SIM_MEMBER_TOKEN", hide_env_values = true)]
    pub member_token: Option<String>,

    /// Scheduled events in the simulated organization.
    #[arg(long, env = "CALSCAN_SIM_EVENTS", default_value_t = 250)]
    pub events: usize,

    /// Seed of the generated data: the same seed gives the same organization.
    #[arg(long, env = "CALSCAN_SIM_SEED", default_value_t = 1)]
    pub seed: u64,

    /// Milliseconds added to every answer.
    #[arg(long, env = "CALSCAN_SIM_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Requests allowed per token and window (Calendly's paid plans: 500/60 s).
    #[arg(long, env = "CALSCAN_SIM_RATE_LIMIT", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: u32,

    /// Length of the rate-limit window in seconds.
    #[arg(long, env = "CALSCAN_SIM_RATE_WINDOW_S", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_window_s: u64,

    /// Share of requests answered with a transient 5xx, from 0 to 1.
    #[arg(long, env = "CALSCAN_SIM_FAIL_RATE", default_value_t = 0.0, value_parser = parse_share)]
    pub fail_rate: f64,

    /// Seconds a page token stays valid.
    #[arg(long, env = "CALSCAN_SIM_PAGE_TOKEN_TTL_S", default_value_t = 900)]
    pub page_token_ttl_s: u64,

    /// Answer like a plan without webhooks: creating a subscription gets
    /// Calendly's 403 "Please upgrade your Calendly account".
    #[arg(long, env = "CALSCAN_SIM_NO_WEBHOOKS", default_value_t = false)]
    pub no_webhooks: bool,
}

impl SimulateArgs {
    pub fn simulator_config(&self) -> SimulatorConfig {
        SimulatorConfig {
            token: self.token.clone(),
            member_token: self.member_token.clone(),
            events: self.events,
            seed: self.seed,
            latency: Duration::from_millis(self.latency_ms),
            rate_limit: self.rate_limit,
            rate_window: Duration::from_secs(self.rate_window_s),
            fail_rate: self.fail_rate,
            page_token_ttl: Duration::from_secs(self.page_token_ttl_s),
            first_invitee_name: None,
            webhooks_allowed: !self.no_webhooks,
            uri_base: None,
        }
    }
}

fn parse_share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{value:?} is not a share between 0 and 1")),
    }
}

/// An address (`10.0.0.7`) or a network (`10.0.0.0/8`, `fd00::/8`).
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an address nor a network like 10.0.0.0/8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn simulate_takes_the_flags_the_spec_names() {
        let cli = Cli::try_parse_from([
            "calscan",
            "simulate",
            "--bind",
            "127.0.0.1:0",
            "--token",
            "t",
            "--events",
            "10",
            "--seed",
            "3",
            "--latency-ms",
            "5",
            "--rate-limit",
            "100",
            "--rate-window-s",
            "10",
            "--fail-rate",
            "0.1",
        ])
        .unwrap();
        let Some(Command::Simulate(args)) = cli.command else {
            panic!("not simulate")
        };
        let config = args.simulator_config();
        assert_eq!(
            (config.events, config.seed, config.rate_limit),
            (10, 3, 100)
        );
        assert_eq!(config.rate_window, Duration::from_secs(10));
        assert_eq!(config.latency, Duration::from_millis(5));
        assert!((config.fail_rate - 0.1).abs() < f64::EPSILON);
    }

    #[test]
    fn without_a_command_the_server_runs_with_its_flags() {
        let cli =
            Cli::try_parse_from(["calscan", "--bind", "127.0.0.1:9999", "--lang", "en"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.server.bind.port(), 9999);
        assert_eq!(cli.serve.server.lang, Lang::En);
        let err = Cli::try_parse_from(["calscan", "--lang", "fr"]).unwrap_err();
        assert!(err.to_string().contains("use de or en"), "{err}");
    }

    #[test]
    fn a_fail_rate_outside_zero_to_one_is_refused() {
        let err = Cli::try_parse_from(["calscan", "simulate", "--fail-rate", "1.5"]).unwrap_err();
        assert!(err.to_string().contains("not a share between 0 and 1"));
    }

    #[test]
    fn intervals_are_a_whole_number_and_a_unit() {
        assert_eq!(parse_interval("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_interval(" 6h "), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_interval("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "6", "h", "0m", "6 h", "6hours", "-1h", "1.5h", "400d"] {
            assert!(parse_interval(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_calendly_token_never_shows_in_debug_output() {
        #[derive(Debug, Parser)]
        struct Wrapper {
            #[command(flatten)]
            calendly: CalendlyArgs,
        }
        let w = Wrapper::try_parse_from(["x", "--calendly-token", "eyJsecret.value"]).unwrap();
        let settings = w.calendly.client_settings().unwrap();
        assert_eq!(settings.token.expose_secret(), "eyJsecret.value");
        assert!(!format!("{w:?}").contains("eyJsecret"));
        assert!(!format!("{settings:?}").contains("eyJsecret"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        assert_eq!(
            parse_proxy(" 10.0.0.7 ").unwrap(),
            "10.0.0.7/32".parse::<ipnet::IpNet>().unwrap()
        );
        assert!(
            parse_proxy("fd00::/8")
                .unwrap()
                .contains(&"fd00::1".parse::<std::net::IpAddr>().unwrap())
        );
        assert!(parse_proxy("10.0.0.0/33").is_err());
        assert!(
            parse_proxy("proxy.local")
                .unwrap_err()
                .contains("neither an address")
        );
    }

    #[test]
    fn scan_resume_takes_an_optional_id_and_conflicts_with_full() {
        let resume = |args: &[&str]| {
            let cli = Cli::try_parse_from(["calscan", "scan"].iter().chain(args))?;
            let Some(Command::Scan(scan)) = cli.command else {
                panic!("not scan")
            };
            Ok::<_, clap::Error>((scan.resume, scan.json))
        };
        assert_eq!(resume(&[]).unwrap(), (None, false));
        assert_eq!(resume(&["--resume"]).unwrap(), (Some(None), false));
        assert_eq!(resume(&["--resume", "--json"]).unwrap(), (Some(None), true));
        assert_eq!(
            resume(&["--resume", "scan_0123abcd"]).unwrap(),
            (Some(Some("scan_0123abcd".to_owned())), false)
        );
        let err = resume(&["--resume", "--full"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
