//! The command line: one clap struct per command, every setting a flag and an
//! environment variable, defaults in code.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::calendly::{ClientSettings, SimulatorConfig};

/// calscan: imports a Calendly organization's invitees as customers.
#[derive(Debug, Parser)]
#[command(name = "calscan", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run only the Calendly simulator, a faithful fake of Calendly API v2.
    Simulate(SimulateArgs),
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
    #[arg(long, env = "CALSCAN_CALENDLY_CONCURRENCY", default_value_t = 4,
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
        }
    }
}

fn parse_share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{value:?} is not a share between 0 and 1")),
    }
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
        let Command::Simulate(args) = cli.command;
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
    fn a_fail_rate_outside_zero_to_one_is_refused() {
        let err = Cli::try_parse_from(["calscan", "simulate", "--fail-rate", "1.5"]).unwrap_err();
        assert!(err.to_string().contains("not a share between 0 and 1"));
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
}
