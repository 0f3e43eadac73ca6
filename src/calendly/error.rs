//! What can go wrong talking to Calendly, in words an admin can act on.
//!
//! Every message says what happened and what to do. None of them contains the
//! access token: the token only ever lives in a request header.

use std::time::Duration;

use thiserror::Error;

/// An error of the Calendly client. Callers branch on the variant (a scan
/// stops on all of them; `is_retryable` tells whether trying later may help).
#[derive(Debug, Error)]
pub enum CalendlyError {
    /// No token is configured.
    #[error(
        "Calendly is not configured: set CALENDLY_TOKEN to a personal access token \
         (Calendly → Integrations → API & Webhooks)"
    )]
    NotConfigured,

    /// 401: the token is wrong, expired or revoked. Never retried.
    #[error(
        "Calendly rejected the access token ({title}: {message}). Create a new personal \
         access token under Integrations → API & Webhooks and set it as CALENDLY_TOKEN"
    )]
    Unauthenticated { title: String, message: String },

    /// 403: the token's user may not read what was asked. Never retried.
    #[error(
        "Calendly denied access ({title}: {message}). The token must belong to an owner or \
         admin of the organization; check CALENDLY_TOKEN and CALENDLY_ORG_URI"
    )]
    PermissionDenied { title: String, message: String },

    /// 404 on something calscan asked for by URI.
    #[error("Calendly does not know {what} ({title}: {message}); check CALENDLY_ORG_URI")]
    NotFound {
        what: String,
        title: String,
        message: String,
    },

    /// Another 4xx Calendly answered with its error body.
    #[error("Calendly refused the request with HTTP {status} ({title}: {message}{details})")]
    Rejected {
        status: u16,
        title: String,
        message: String,
        details: String,
    },

    /// Calendly asked calscan to wait longer than it is allowed to.
    #[error(
        "Calendly's rate limit asks for a wait of {} s, longer than the allowed {} s; \
         resume the scan later",
        wait.as_secs(),
        limit.as_secs()
    )]
    RateLimitWaitTooLong { wait: Duration, limit: Duration },

    /// Transient failures went on past the retry budget.
    #[error(
        "Calendly did not answer properly after {attempts} attempts (last: {last}); \
         try again later, the scan can be resumed"
    )]
    Unavailable { attempts: u32, last: String },

    /// `next_page` pointed somewhere else than the configured API: calscan
    /// refuses to send the token there.
    #[error(
        "Calendly's next_page link points at {found}, not at the configured API {expected}; \
         refusing to follow it. Check CALENDLY_API_BASE"
    )]
    ForeignNextPage { found: String, expected: String },

    /// An answer that is not the JSON Calendly documents.
    #[error("Calendly sent an answer calscan cannot read ({0}); try again later")]
    Malformed(String),

    /// The configured base URL or org URI is not a usable URL.
    #[error("invalid Calendly setting: {0}")]
    InvalidSetting(String),
}

impl CalendlyError {
    /// Whether running the same scan again later may succeed without a change
    /// of configuration.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimitWaitTooLong { .. } | Self::Unavailable { .. } | Self::Malformed(_)
        )
    }
}
