//! The Calendly simulator on a free port, and clients aimed at it.

use std::collections::BTreeSet;
use std::time::Duration;

use calscan::calendly::{CalendlyClient, ClientSettings, Simulator, SimulatorConfig};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// A running simulator; stops when dropped.
pub struct TestSim {
    pub sim: Simulator,
    shutdown: CancellationToken,
}

impl std::ops::Deref for TestSim {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        &self.sim
    }
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A simulator with `events` events and otherwise `tweak`ed defaults: no
/// latency, a limit no test reaches by accident.
pub async fn simulator(events: usize, tweak: impl FnOnce(&mut SimulatorConfig)) -> TestSim {
    let mut config = SimulatorConfig {
        events,
        seed: 42,
        rate_limit: 10_000,
        ..SimulatorConfig::default()
    };
    tweak(&mut config);
    let (sim, shutdown) = Simulator::spawn(config).await.unwrap();
    TestSim { sim, shutdown }
}

/// Client settings for `sim` with short backoffs, so retries take
/// milliseconds.
pub fn settings(sim: &Simulator) -> ClientSettings {
    let mut settings = ClientSettings::new(
        sim.base_url().parse().unwrap(),
        SecretString::from("demo-token"),
    );
    settings.backoff_min = Duration::from_millis(5);
    settings.backoff_max = Duration::from_millis(50);
    settings.request_timeout = Duration::from_secs(5);
    settings
}

pub fn client(sim: &Simulator) -> CalendlyClient {
    CalendlyClient::new(settings(sim)).unwrap()
}

/// The distinct normalized emails of a full scan by `client`.
pub async fn scanned_emails(client: &CalendlyClient) -> BTreeSet<String> {
    let org = client.organization(None).await.unwrap();
    client
        .all_invitees(&org)
        .await
        .unwrap()
        .iter()
        .filter_map(|i| i.normalized_email())
        .collect()
}

/// A GET to the simulator with the owner's token.
pub async fn get(sim: &Simulator, path_or_url: &str) -> reqwest::Response {
    get_as(sim, path_or_url, "demo-token").await
}

pub async fn get_as(sim: &Simulator, path_or_url: &str, token: &str) -> reqwest::Response {
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_owned()
    } else {
        format!("{}{path_or_url}", sim.base_url())
    };
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}
