//! A faithful local fake of the parts of the Calendly API v2 that calscan
//! uses: `calscan simulate` serves it on a port, tests and `calscan demo` run
//! it in-process.
//!
//! Besides the API it has the knobs tests need: latency, a fixed-window rate
//! limit per token, a share of random 5xx, and scripted faults (429 bursts,
//! connection resets, stalls, an HTML 502, refused page tokens). It counts
//! what it served so tests can check the client's manners.

mod answer;
mod data;
mod gate;
mod hooks;
mod json;
mod listing;
mod paging;

// One file per Calendly resource, each with its handlers and `routes()`.
mod invitees;
mod scheduled_events;
mod users;
mod webhook_subscriptions;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::{Router, middleware};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use data::{OrgData, SimEvent, SimInvitee, SimUser};
pub use hooks::DeliveryRecord;

use super::webhook;

/// How the simulator behaves. `calscan simulate` fills it from its flags.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The bearer token of the organization's owner (an admin).
    pub token: String,
    /// An optional token of a member who is not an admin, to provoke 403s.
    pub member_token: Option<String>,
    pub events: usize,
    pub seed: u64,
    /// Added to every answer.
    pub latency: Duration,
    /// Requests allowed per token and window.
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Share of requests answered with a transient 5xx, 0.0–1.0.
    pub fail_rate: f64,
    /// How long a page token stays valid.
    pub page_token_ttl: Duration,
    /// Renames the first invitee of the first event, e.g. to markup that a
    /// page must show as text.
    pub first_invitee_name: Option<String>,
    /// Whether the plan has webhooks; without, creating a subscription
    /// gets Calendly's 403 "Please upgrade your Calendly account".
    pub webhooks_allowed: bool,
    /// Where the resources' URIs begin when not where the simulator listens
    /// (a URI is an identity; the API is reached at the listening address).
    /// The demo sets one, so that its events keep their URIs across
    /// restarts on another port and bookings are not counted twice.
    pub uri_base: Option<String>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            token: "demo-token".into(),
            member_token: None,
            events: 250,
            seed: 1,
            latency: Duration::ZERO,
            rate_limit: 500,
            rate_window: Duration::from_secs(60),
            fail_rate: 0.0,
            page_token_ttl: Duration::from_secs(15 * 60),
            first_invitee_name: None,
            webhooks_allowed: true,
            uri_base: None,
        }
    }
}

/// A failure to inject into the next request that it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A JSON 5xx with Calendly's error body.
    ServerError(u16),
    /// A proxy's HTML 502 page.
    HtmlBadGateway,
    /// Headers, then the connection breaks mid-body.
    ResetConnection,
    /// No answer for this long (longer than the client's timeout).
    Stall(Duration),
    /// A 429 with `X-RateLimit-Reset` (seconds) and optionally `Retry-After`.
    RateLimited {
        reset_s: u64,
        retry_after_s: Option<u64>,
    },
    /// A 401 as for a revoked token.
    Unauthenticated,
    /// A 400 refusing the page token; applies only to requests that carry one.
    RejectPageToken,
}

/// What the simulator has served so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Requests with a valid token, whatever the answer.
    pub requests: u64,
    /// 429s because a window was full (not injected ones).
    pub rate_limited: u64,
    /// Injected faults and random 5xx served.
    pub faults: u64,
    /// The most requests that arrived in any one window, refused ones included:
    /// a client that paces itself keeps this at or below the limit.
    pub max_in_window: u32,
    /// Requests fully answered (the latency and any stall behind them).
    pub answered: u64,
    /// The most requests being answered at the same time.
    pub max_in_flight: u32,
    /// `requests` made to an invitee listing.
    pub invitee_requests: u64,
    /// `requests` made to the event listing.
    pub event_list_requests: u64,
}

#[derive(Debug)]
struct RateWindow {
    started: tokio::time::Instant,
    /// Requests answered normally in this window.
    admitted: u32,
    /// Every authenticated request that arrived in this window, refused or not.
    arrived: u32,
}

#[derive(Debug)]
struct Mutable {
    stats: SimStats,
    /// The current rate-limit window of each token.
    windows: HashMap<String, RateWindow>,
    faults: VecDeque<Fault>,
    rng: StdRng,
    /// Requests being answered right now.
    in_flight: u32,
}

pub(crate) struct Shared {
    config: SimulatorConfig,
    base_url: String,
    /// Where the resources' URIs (their identities) begin: `base_url`
    /// unless [`SimulatorConfig::uri_base`] says otherwise.
    uri_base: String,
    /// Page tokens age on tokio's clock from here.
    started: tokio::time::Instant,
    org: RwLock<OrgData>,
    state: Mutex<Mutable>,
    hooks: Mutex<hooks::Hooks>,
    /// How many webhook deliveries have been made; tests wait on it.
    delivered: tokio::sync::watch::Sender<usize>,
}

/// How handlers and helpers hold the simulator.
type Sim = Arc<Shared>;

/// Every resource's routes behind the gate (authentication, the rate-limit
/// window, injected faults and latency); any other path is Calendly's 404.
/// A new resource is a file of its own and one `.merge` here.
fn router(shared: Sim) -> Router {
    Router::new()
        .merge(users::routes())
        .merge(scheduled_events::routes())
        .merge(invitees::routes())
        .merge(webhook_subscriptions::routes())
        .fallback(|| async { answer::not_found() })
        .layer(middleware::from_fn_with_state(shared.clone(), gate::gate))
        .with_state(shared)
}

/// A handle on a simulator; clones share it.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Generates the organization and serves it on `listener` until
    /// `shutdown` is cancelled.
    pub fn serve(
        config: SimulatorConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Self, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let addr = listener.local_addr()?;
        let simulator = Self::new(config, format!("http://{addr}"));
        let app = router(simulator.shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        Ok((simulator, task))
    }

    /// Binds `127.0.0.1:0` and serves there until the returned token is
    /// cancelled (or dropped with the runtime): for tests and the demo.
    pub async fn spawn(config: SimulatorConfig) -> std::io::Result<(Self, CancellationToken)> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let shutdown = CancellationToken::new();
        let (simulator, _task) = Self::serve(config, listener, shutdown.clone())?;
        Ok((simulator, shutdown))
    }

    fn new(config: SimulatorConfig, base_url: String) -> Self {
        let mut org = OrgData::generate(config.seed, config.events);
        if let Some(name) = &config.first_invitee_name
            && let Some(invitee) = org.events.first_mut().and_then(|e| e.invitees.first_mut())
        {
            invitee.name = name.clone();
            invitee.first_name = None;
            invitee.last_name = None;
        }
        let rng = StdRng::seed_from_u64(config.seed.wrapping_add(17));
        Self {
            shared: Arc::new(Shared {
                uri_base: config.uri_base.clone().unwrap_or_else(|| base_url.clone()),
                base_url,
                started: tokio::time::Instant::now(),
                org: RwLock::new(org),
                state: Mutex::new(Mutable {
                    stats: SimStats::default(),
                    windows: HashMap::new(),
                    faults: VecDeque::new(),
                    rng,
                    in_flight: 0,
                }),
                hooks: Mutex::default(),
                delivered: tokio::sync::watch::Sender::new(0),
                config,
            }),
        }
    }

    /// Where the API is, e.g. `http://127.0.0.1:9090` (`CALENDLY_API_BASE`).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The organization's URI, as `GET /users/me` names it.
    pub fn organization_uri(&self) -> String {
        self.shared.org_uri(&self.shared.read_org())
    }

    /// The distinct normalized invitee emails a correct scan finds.
    pub fn expected_emails(&self) -> BTreeSet<String> {
        self.shared.read_org().expected_emails()
    }

    /// A copy of the organization's data.
    pub fn org(&self) -> OrgData {
        self.shared.read_org().clone()
    }

    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats
    }

    /// Queues `fault` for the next `times` requests it applies to.
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut state = self.shared.lock();
        state.faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Adds a booking made now, by `name <email>`, for an event starting at
    /// `start`; returns the event's URI. Every subscription to
    /// `invitee.created` gets a delivery, sent in the background (see
    /// [`Simulator::wait_for_deliveries`]).
    pub fn book(&self, name: &str, email: &str, start: chrono::DateTime<chrono::Utc>) -> String {
        let uuid = self
            .shared
            .org
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .book(name, email, start);
        let deliveries = hooks::deliveries_for(&self.shared, &uuid, chrono::Utc::now());
        for (record, body, signature) in deliveries {
            let shared = self.shared.clone();
            tokio::spawn(async move { hooks::deliver(&shared, record, body, signature).await });
        }
        format!("{}/scheduled_events/{uuid}", self.shared.uri_base)
    }

    /// Waits until `count` webhook deliveries have been made in all, and
    /// returns every one made so far, oldest first.
    pub async fn wait_for_deliveries(&self, count: usize) -> Vec<DeliveryRecord> {
        let mut delivered = self.shared.delivered.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = delivered.wait_for(|n| *n >= count).await;
        self.shared.hooks().deliveries.clone()
    }

    /// The callback URLs of the webhook subscriptions that exist now.
    pub fn webhook_callbacks(&self) -> Vec<String> {
        let hooks = self.shared.hooks();
        hooks
            .subscriptions
            .iter()
            .map(|s| s.callback_url.clone())
            .collect()
    }

    /// Drops the faults still queued; returns how many there were.
    pub fn clear_faults(&self) -> usize {
        let mut state = self.shared.lock();
        let queued = state.faults.len();
        state.faults.clear();
        queued
    }

    /// An `invitee.created` delivery for the `invitee`-th invitee of the
    /// `event`-th event, signed with `key` at `timestamp`: the raw body and
    /// the `Calendly-Webhook-Signature` header value. `None` when there is no
    /// such invitee.
    pub fn signed_delivery(
        &self,
        event: usize,
        invitee: usize,
        key: &[u8],
        timestamp: i64,
    ) -> Option<(Vec<u8>, String)> {
        let body = {
            let org = self.shared.read_org();
            let ev = org.events.get(event)?;
            let inv = ev.invitees.get(invitee)?;
            let at = chrono::DateTime::from_timestamp(timestamp, 0)?;
            hooks::delivery_body(&self.shared, &org, ev, inv, 0, at)
        };
        let header = webhook::sign(key, timestamp, &body);
        Some((body, header))
    }

    /// POSTs a signed delivery (see [`Simulator::signed_delivery`]) to `url`
    /// the way Calendly does, and returns the receiver's status.
    pub async fn deliver_webhook(
        &self,
        url: &str,
        event: usize,
        invitee: usize,
        key: &[u8],
    ) -> anyhow::Result<reqwest::StatusCode> {
        let now = chrono::Utc::now().timestamp();
        let (body, signature) = self
            .signed_delivery(event, invitee, key, now)
            .ok_or_else(|| anyhow::anyhow!("no invitee {invitee} of event {event}"))?;
        let response = reqwest::Client::new()
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await?;
        Ok(response.status())
    }
}

impl Shared {
    fn read_org(&self) -> std::sync::RwLockReadGuard<'_, OrgData> {
        self.org.read().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hooks(&self) -> std::sync::MutexGuard<'_, hooks::Hooks> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn org_uri(&self, org: &OrgData) -> String {
        format!("{}/organizations/{}", self.uri_base, org.org_uuid)
    }

    fn user_uri(&self, user: &SimUser) -> String {
        format!("{}/users/{}", self.uri_base, user.uuid)
    }

    fn hook_uri(&self, uuid: &str) -> String {
        format!("{}/webhook_subscriptions/{uuid}", self.uri_base)
    }

    /// Milliseconds since the simulator started, on tokio's clock (so tests
    /// with paused time can age page tokens).
    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}
