//! Notifications: when a scan ends, a signed JSON summary is POSTed to
//! `CALSCAN_NOTIFY_URL`.
//!
//! The signature is Calendly's scheme, so a receiver can reuse one verifier:
//! `Calscan-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`
//! keyed with `CALSCAN_NOTIFY_SECRET`. A failed delivery (no connection, a
//! timeout, 429 or 5xx) is retried with jittered exponential backoff; any
//! other answer is final. How it went is written to the scan's log.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use crate::calendly::webhook;
use crate::scan::status::StatusObject;

/// The header the summary is signed in.
pub const SIGNATURE_HEADER: &str = "Calscan-Signature";

/// Where and how summaries are sent.
#[derive(Clone)]
pub struct NotifySettings {
    pub url: Url,
    pub secret: SecretString,
    /// calscan's address as users reach it, for the summary's link.
    pub public_url: Option<Url>,
    /// The language of the summary's step and error (`CALSCAN_LANG`).
    pub lang: crate::i18n::Lang,
    /// Attempts before giving up.
    pub attempts: u32,
    /// The first retry's delay; it doubles, with jitter, up to 30 times it.
    pub backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl NotifySettings {
    /// Five attempts, a second's first backoff, 10 s each.
    pub fn new(
        url: Url,
        secret: SecretString,
        public_url: Option<Url>,
        lang: crate::i18n::Lang,
    ) -> Self {
        Self {
            url,
            secret,
            public_url,
            lang,
            attempts: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a token in its query; the host is enough to know.
        f.debug_struct("NotifySettings")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

/// What is sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Always `scan.finished`.
    pub event: &'static str,
    pub scan_id: crate::store::ScanId,
    pub status: String,
    pub mode: crate::store::ScanMode,
    pub events_scanned: i64,
    pub emails_found: i64,
    pub new_count: i64,
    pub existing_count: i64,
    pub duration_s: f64,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    /// The scan's page: absolute with `CALSCAN_PUBLIC_URL`, else a path.
    pub link: String,
}

impl Summary {
    pub fn new(scan: &StatusObject, public_url: Option<&Url>) -> Self {
        let path = format!("/admin/scans/{}", scan.scan_id);
        let link = public_url
            .and_then(|base| base.join(&path).ok())
            .map_or(path, String::from);
        Self {
            event: "scan.finished",
            scan_id: scan.scan_id.clone(),
            status: scan.status.as_str().to_owned(),
            mode: scan.mode,
            events_scanned: scan.events_scanned,
            emails_found: scan.emails_found,
            new_count: scan.new_count,
            existing_count: scan.existing_count,
            duration_s: scan.duration,
            started_at: scan.started_at,
            completed_at: scan.completed_at,
            error_message: scan.error_message.clone(),
            link,
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Sent { status: u16, attempts: u32 },
    /// It refused, or every attempt failed; `last` says how.
    Failed { last: String, attempts: u32 },
}

/// Sends summaries; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    settings: NotifySettings,
    http: reqwest::Client,
}

/// One attempt's outcome.
enum Attempt {
    Sent(u16),
    Retry(String),
    Final(String),
}

impl Notifier {
    pub fn new(settings: NotifySettings) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("calscan/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { settings, http })
    }

    /// The host summaries go to, for log lines (never the whole URL).
    pub fn host(&self) -> &str {
        self.settings.url.host_str().unwrap_or("?")
    }

    pub fn public_url(&self) -> Option<&Url> {
        self.settings.public_url.as_ref()
    }

    pub fn lang(&self) -> crate::i18n::Lang {
        self.settings.lang
    }

    /// POSTs `summary`, retrying what may pass.
    pub async fn send(&self, summary: &Summary) -> Delivery {
        let body = match serde_json::to_vec(summary) {
            Ok(body) => body,
            Err(e) => {
                return Delivery::Failed {
                    last: e.to_string(),
                    attempts: 0,
                };
            }
        };
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.settings.backoff)
            .with_max_delay(self.settings.backoff * 30)
            .with_jitter()
            .with_max_times(self.settings.attempts.saturating_sub(1) as usize)
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = match self.attempt(&body).await {
                Attempt::Sent(status) => return Delivery::Sent { status, attempts },
                Attempt::Final(last) => return Delivery::Failed { last, attempts },
                Attempt::Retry(last) => last,
            };
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(attempts, error = %last, delay_ms = delay.as_millis() as u64, "notification failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Delivery::Failed { last, attempts },
            }
        }
    }

    async fn attempt(&self, body: &[u8]) -> Attempt {
        let signature = webhook::sign(
            self.settings.secret.expose_secret().as_bytes(),
            Utc::now().timestamp(),
            body,
        );
        let sent = self
            .http
            .post(self.settings.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Attempt::Sent(response.status().as_u16())
            }
            Ok(response) => {
                let status = response.status();
                let what = format!("HTTP {status}");
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    Attempt::Retry(what)
                } else {
                    Attempt::Final(what)
                }
            }
            // Without the URL: it may carry a token.
            Err(e) => Attempt::Retry(if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "no connection".to_owned()
            }),
        }
    }
}
