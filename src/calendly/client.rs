//! The Calendly API v2 client: every invitee of an organization, paced by the
//! rate-limit headers, retried through transient failures.
//!
//! A scan uses it in two phases so it can report progress as it goes:
//! [`CalendlyClient::events`] yields the organization's scheduled events page
//! by page, then [`CalendlyClient::invitees_of`] yields each event with all of
//! its invitees, fetching several events at once (the `concurrency` setting)
//! so that latency does not waste the rate budget.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use super::error::CalendlyError;
use super::model::{ErrorBody, Event, Invitee, Page, Resource, User, WebhookSubscription};
use super::pacer::{Budget, Pacer, RateHeaders};

/// Calendly's largest page size.
/// Items per page asked of a Calendly listing (its maximum).
pub const PAGE_SIZE: i64 = 100;

/// How often in a row a listing may restart after a refused page token before
/// the scan gives up.
const MAX_LISTING_RESTARTS: u32 = 5;

/// How many 429s one request may wait out before it counts as unavailable.
const MAX_RATE_LIMIT_WAITS: u32 = 20;

/// How the client talks to Calendly. Every field has a command-line flag and
/// an environment variable in the server's configuration.
#[derive(Clone)]
pub struct ClientSettings {
    /// Where the API is, `https://api.calendly.com` in production.
    pub api_base: Url,
    /// The bearer token (personal access token or OAuth access token).
    pub token: SecretString,
    /// Events whose invitees are fetched at the same time.
    pub concurrency: usize,
    /// Attempts per request before a transient failure becomes an error.
    pub max_attempts: u32,
    /// The first retry's delay; it doubles (with jitter) up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long one request may take, connecting included.
    pub request_timeout: Duration,
    /// The longest 429 wait the client accepts before failing the scan.
    pub max_rate_limit_wait: Duration,
}

impl ClientSettings {
    /// Production defaults for `api_base` and `token`.
    pub fn new(api_base: Url, token: SecretString) -> Self {
        Self {
            api_base,
            token,
            concurrency: 8,
            max_attempts: 5,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(300),
        }
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("api_base", &self.api_base.as_str())
            .field("token", &"[redacted]")
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("request_timeout", &self.request_timeout)
            .field("max_rate_limit_wait", &self.max_rate_limit_wait)
            .finish_non_exhaustive()
    }
}

/// What the client has done so far; read by the scan log and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests repeated after a transient failure.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Listings restarted after Calendly refused a page token.
    pub restarts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    restarts: AtomicU64,
}

/// One event with every one of its invitees.
#[derive(Debug, Clone)]
pub struct EventInvitees {
    pub event: Event,
    pub invitees: Vec<Invitee>,
}

/// A Calendly API client; cheap to clone, all clones share one rate budget.
#[derive(Clone, Debug)]
pub struct CalendlyClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Always ends with `/`, so relative joins stay below it.
    base: Url,
    settings: ClientSettings,
    pacer: Pacer,
    counters: Counters,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, inside the retry loop.
enum Attempt {
    /// Worth another try after a backoff: the text says what happened.
    Transient(String),
    /// 429: wait this long (if the answer said) and try again.
    RateLimited(Option<Duration>),
    /// Calendly refused the `page_token`: the listing must restart.
    StalePageToken,
    /// Final.
    Fatal(CalendlyError),
}

impl CalendlyClient {
    pub fn new(settings: ClientSettings) -> Result<Self, CalendlyError> {
        let mut base = settings.api_base.clone();
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(CalendlyError::InvalidSetting(format!(
                "CALENDLY_API_BASE must be an http(s) URL, not {base}"
            )));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("calscan/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| CalendlyError::InvalidSetting(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                settings,
                pacer: Pacer::new(),
                counters: Counters::default(),
            }),
        })
    }

    /// Until when requests wait for Calendly's rate limit; `None` while
    /// they go (see [`Pacer::pauses`]).
    pub fn rate_pauses(&self) -> tokio::sync::watch::Receiver<Option<tokio::time::Instant>> {
        self.inner.pacer.pauses()
    }

    /// What is known of Calendly's request budget.
    pub fn budget(&self) -> Budget {
        self.inner.pacer.budget()
    }

    /// What this client has sent so far.
    pub fn stats(&self) -> CallStats {
        let c = &self.inner.counters;
        CallStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
        }
    }

    /// `GET /users/me`: the token's user.
    #[tracing::instrument(skip_all)]
    pub async fn current_user(&self) -> Result<User, CalendlyError> {
        let url = self.endpoint("users/me")?;
        let user: Resource<User> = self.get_json(url).await.map_err(|a| a.into_error())?;
        Ok(user.resource)
    }

    /// The organization to scan: `configured` when given, else the token
    /// user's current organization.
    pub async fn organization(&self, configured: Option<&str>) -> Result<String, CalendlyError> {
        match configured.map(str::trim).filter(|s| !s.is_empty()) {
            Some(org) => {
                Url::parse(org).map_err(|_| {
                    CalendlyError::InvalidSetting(format!(
                        "CALENDLY_ORG_URI must be a URI like \
                         https://api.calendly.com/organizations/…, not {org:?}"
                    ))
                })?;
                Ok(org.to_owned())
            }
            None => Ok(self.current_user().await?.current_organization),
        }
    }

    /// Every scheduled event of `organization` (every status), oldest first,
    /// one item per page. With `min_start_time`, only events starting then or
    /// later.
    ///
    /// When Calendly refuses a page token (it went stale, or its filters no
    /// longer match), the listing restarts from the start time of the last
    /// event it saw and skips the events it already yielded.
    pub fn events<'a>(
        &'a self,
        organization: &'a str,
        min_start_time: Option<DateTime<Utc>>,
    ) -> impl Stream<Item = Result<Vec<Event>, CalendlyError>> + Send + 'a {
        async_stream::try_stream! {
            let mut seen: HashSet<String> = HashSet::new();
            let mut watermark = min_start_time;
            let mut url = self.events_url(organization, watermark)?;
            let mut restarts = 0;
            loop {
                let page: Page<Event> = match self.get_json(url.clone()).await {
                    Ok(page) => page,
                    Err(Attempt::StalePageToken) if restarts < MAX_LISTING_RESTARTS => {
                        restarts += 1;
                        self.inner.counters.restarts.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(restarts, "Calendly refused a page token; restarting the event listing from the last start time");
                        url = self.events_url(organization, watermark)?;
                        continue;
                    }
                    Err(other) => Err(other.into_error())?,
                };
                restarts = 0;
                let fresh: Vec<Event> = page
                    .collection
                    .into_iter()
                    .filter(|e| seen.insert(e.uri.clone()))
                    .collect();
                watermark = fresh.iter().map(|e| e.start_time).max().max(watermark);
                let next = page.pagination.next_page;
                if !fresh.is_empty() {
                    yield fresh;
                }
                match next {
                    Some(next) => url = self.checked_next_page(&next)?,
                    None => break,
                }
            }
        }
    }

    /// Every invitee of `event` (every status), across pages.
    #[tracing::instrument(skip_all, fields(event = event.uuid()))]
    pub async fn invitees(&self, event: &Event) -> Result<Vec<Invitee>, CalendlyError> {
        self.all_pages(self.invitees_url(event)?, |i: &Invitee| &i.uri)
            .await
    }

    /// Every item of a listing without a time filter, across pages. When
    /// Calendly refuses a page token the listing starts over; the items
    /// already kept (by `uri`) are skipped.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        first: Url,
        uri: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, CalendlyError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut items = Vec::new();
        let mut url = first.clone();
        let mut restarts = 0;
        loop {
            let page: Page<T> = match self.get_json(url.clone()).await {
                Ok(page) => page,
                Err(Attempt::StalePageToken) if restarts < MAX_LISTING_RESTARTS => {
                    restarts += 1;
                    self.inner.counters.restarts.fetch_add(1, Ordering::Relaxed);
                    url = first.clone();
                    continue;
                }
                Err(other) => return Err(other.into_error()),
            };
            restarts = 0;
            items.extend(
                page.collection
                    .into_iter()
                    .filter(|i| seen.insert(uri(i).to_owned())),
            );
            match page.pagination.next_page {
                Some(next) => url = self.checked_next_page(&next)?,
                None => return Ok(items),
            }
        }
    }

    /// `POST /webhook_subscriptions`: an organization-scoped subscription
    /// of `callback_url` to `events`, whose deliveries Calendly signs with
    /// `signing_key`.
    ///
    /// A POST is retried like a GET. Should a lost answer hide a
    /// subscription that was made, the retry gets 409 `Already Exists`.
    pub async fn create_webhook_subscription(
        &self,
        organization: &str,
        callback_url: &str,
        events: &[String],
        signing_key: &SecretString,
    ) -> Result<WebhookSubscription, CalendlyError> {
        let body = serde_json::json!({
            "url": callback_url,
            "events": events,
            "organization": organization,
            "scope": "organization",
            "signing_key": signing_key.expose_secret(),
        });
        let url = self.endpoint("webhook_subscriptions")?;
        let created: Resource<WebhookSubscription> = self
            .call(reqwest::Method::POST, url, Some(&body), decode_json)
            .await
            .map_err(Attempt::into_error)?;
        Ok(created.resource)
    }

    /// Every organization-scoped webhook subscription of `organization`.
    pub async fn webhook_subscriptions(
        &self,
        organization: &str,
    ) -> Result<Vec<WebhookSubscription>, CalendlyError> {
        let mut url = self.endpoint("webhook_subscriptions")?;
        url.query_pairs_mut()
            .append_pair("count", &PAGE_SIZE.to_string())
            .append_pair("organization", organization)
            .append_pair("scope", "organization");
        self.all_pages(url, |s: &WebhookSubscription| &s.uri).await
    }

    /// `DELETE /webhook_subscriptions/{uuid}`.
    pub async fn delete_webhook_subscription(&self, uuid: &str) -> Result<(), CalendlyError> {
        if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(CalendlyError::InvalidSetting(format!(
                "{uuid:?} is not a webhook subscription id"
            )));
        }
        let url = self.endpoint(&format!("webhook_subscriptions/{uuid}"))?;
        self.call(reqwest::Method::DELETE, url, None, |_| Ok(()))
            .await
            .map_err(Attempt::into_error)
    }

    /// Each event with its invitees, `concurrency` events at a time, in the
    /// order they complete. Stops at the first error.
    pub fn invitees_of<'a, I>(
        &'a self,
        events: I,
    ) -> impl Stream<Item = Result<EventInvitees, CalendlyError>> + Send + 'a
    where
        I: IntoIterator<Item = Event>,
        I::IntoIter: Send + 'a,
    {
        futures::stream::iter(events)
            .map(move |event| async move {
                let invitees = self.invitees(&event).await?;
                Ok(EventInvitees { event, invitees })
            })
            .buffer_unordered(self.inner.settings.concurrency.max(1))
    }

    /// Every invitee of every event of the organization; a convenience for
    /// callers that need no progress.
    pub async fn all_invitees(&self, organization: &str) -> Result<Vec<Invitee>, CalendlyError> {
        let events: Vec<Event> = self.events(organization, None).try_concat().await?;
        self.invitees_of(events)
            .map_ok(|e| e.invitees)
            .try_concat()
            .await
    }

    fn endpoint(&self, path: &str) -> Result<Url, CalendlyError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| CalendlyError::InvalidSetting(format!("{path}: {e}")))
    }

    fn events_url(
        &self,
        organization: &str,
        min_start_time: Option<DateTime<Utc>>,
    ) -> Result<Url, CalendlyError> {
        let mut url = self.endpoint("scheduled_events")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("count", &PAGE_SIZE.to_string());
            if let Some(min) = min_start_time {
                q.append_pair(
                    "min_start_time",
                    &min.to_rfc3339_opts(SecondsFormat::Micros, true),
                );
            }
            q.append_pair("organization", organization);
            q.append_pair("sort", "start_time:asc");
        }
        Ok(url)
    }

    fn invitees_url(&self, event: &Event) -> Result<Url, CalendlyError> {
        let uuid = event.uuid();
        if uuid.is_empty() || uuid.contains(['?', '#', '%']) {
            return Err(CalendlyError::Malformed(format!(
                "event URI without an id: {}",
                event.uri
            )));
        }
        let mut url = self.endpoint(&format!("scheduled_events/{uuid}/invitees"))?;
        url.query_pairs_mut()
            .append_pair("count", &PAGE_SIZE.to_string());
        Ok(url)
    }

    /// `next_page` is followed as given, but only on the configured API: the
    /// token must never go to another host.
    fn checked_next_page(&self, next: &str) -> Result<Url, CalendlyError> {
        let base = &self.inner.base;
        let foreign = || CalendlyError::ForeignNextPage {
            found: next.chars().take(200).collect(),
            expected: base.origin().ascii_serialization(),
        };
        let url = Url::parse(next).map_err(|_| foreign())?;
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(foreign());
        }
        Ok(url)
    }

    /// One GET with pacing, retries and error mapping.
    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, Attempt> {
        self.call(reqwest::Method::GET, url, None, decode_json)
            .await
    }

    /// One request with pacing, retries and error mapping; `decode` reads a
    /// successful answer's body.
    async fn call<T>(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&serde_json::Value>,
        decode: fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<T, Attempt> {
        let settings = &self.inner.settings;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(settings.backoff_min)
            .with_max_delay(settings.backoff_max)
            .with_jitter()
            .with_max_times(settings.max_attempts.saturating_sub(1) as usize)
            .build();
        let mut attempts = 0;
        let mut rate_waits = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(&method, &url, body, decode).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            match failure {
                Attempt::RateLimited(hint) => {
                    self.inner
                        .counters
                        .rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                    rate_waits += 1;
                    attempts -= 1; // a 429 is Calendly pacing us, not failing
                    let wait = match hint {
                        Some(wait) => wait,
                        None => backoff.next().unwrap_or(settings.backoff_max),
                    };
                    if wait > settings.max_rate_limit_wait {
                        return Err(Attempt::Fatal(CalendlyError::RateLimitWaitTooLong {
                            wait,
                            limit: settings.max_rate_limit_wait,
                        }));
                    }
                    if rate_waits > MAX_RATE_LIMIT_WAITS {
                        return Err(Attempt::Fatal(CalendlyError::Unavailable {
                            attempts: rate_waits,
                            last: "HTTP 429 Too Many Requests, again and again".into(),
                        }));
                    }
                    tracing::warn!(
                        wait_ms = wait.as_millis() as u64,
                        "Calendly rate limit reached; waiting"
                    );
                    self.inner.pacer.block_for(wait);
                }
                Attempt::Transient(last) => match backoff.next() {
                    Some(delay) => {
                        self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(attempts, delay_ms = delay.as_millis() as u64, error = %last, "Calendly request failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => {
                        return Err(Attempt::Fatal(CalendlyError::Unavailable {
                            attempts,
                            last,
                        }));
                    }
                },
                final_failure => return Err(final_failure),
            }
        }
    }

    /// Sends one request and reads its answer.
    async fn attempt<T>(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        decode: fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<T, Attempt> {
        let permit = self.inner.pacer.acquire().await;
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, path = url.path(), "Calendly request");
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(self.inner.settings.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Attempt::Transient(describe_transport_error(&e)))?;
        let status = response.status();
        let rate = RateHeaders::parse(response.headers());
        if status != StatusCode::TOO_MANY_REQUESTS {
            // A 429's wait is handled by the retry loop (Retry-After first).
            permit.observe(&rate);
        }
        drop(permit);
        // A connection reset mid-body shows up here.
        let body = response
            .bytes()
            .await
            .map_err(|e| Attempt::Transient(describe_transport_error(&e)))?;

        if status.is_success() {
            return decode(&body).map_err(|e| {
                Attempt::Transient(format!("HTTP {status} with unreadable JSON: {e}"))
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::RateLimited(rate.wait_hint()));
        }
        let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            let what = match &error {
                Some(e) if !e.title.is_empty() => format!("HTTP {status} {}", e.title),
                Some(_) => format!("HTTP {status}"),
                None => format!("HTTP {status} with a non-JSON body (a proxy's error page?)"),
            };
            return Err(Attempt::Transient(what));
        }
        let error = error.unwrap_or_default();
        let text = |s: &str, fallback: &str| {
            if s.is_empty() {
                fallback.to_owned()
            } else {
                s.to_owned()
            }
        };
        let title = text(&error.title, status.canonical_reason().unwrap_or("error"));
        let message = text(&error.message, "no message");
        Err(match status {
            StatusCode::BAD_REQUEST if error.is_page_token_error() => Attempt::StalePageToken,
            StatusCode::UNAUTHORIZED => {
                Attempt::Fatal(CalendlyError::Unauthenticated { title, message })
            }
            StatusCode::FORBIDDEN => {
                Attempt::Fatal(CalendlyError::PermissionDenied { title, message })
            }
            StatusCode::NOT_FOUND => Attempt::Fatal(CalendlyError::NotFound {
                what: url.path().to_owned(),
                title,
                message,
            }),
            _ => Attempt::Fatal(CalendlyError::Rejected {
                status: status.as_u16(),
                title,
                message,
                details: error
                    .details
                    .iter()
                    .map(|d| format!("; {}: {}", d.parameter.as_deref().unwrap_or("?"), d.message))
                    .collect(),
            }),
        })
    }
}

fn decode_json<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(body)
}

impl Attempt {
    fn into_error(self) -> CalendlyError {
        match self {
            Attempt::Fatal(e) => e,
            Attempt::Transient(last) => CalendlyError::Unavailable { attempts: 1, last },
            Attempt::RateLimited(_) => CalendlyError::Unavailable {
                attempts: 1,
                last: "HTTP 429 Too Many Requests".into(),
            },
            Attempt::StalePageToken => CalendlyError::Rejected {
                status: 400,
                title: "Invalid Argument".into(),
                message: format!(
                    "Calendly refused the page token {MAX_LISTING_RESTARTS} times in a row; \
                     try again later"
                ),
                details: String::new(),
            },
        }
    }
}

/// A transport error in words, without the URL's query (which holds nothing
/// secret, but is long) and never with a header.
fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer"
    } else {
        "connection failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}
