//! What every handler shares: the application's state and the request's
//! language. A leaf: the routes import it without importing the app.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::i18n::Lang;
use crate::metrics::Metrics;
use crate::scan::Scans;
use crate::store::Store;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub scans: Scans,
    pub auth: Arc<Auth>,
    /// The fallback language.
    pub lang: Lang,
    /// See [`crate::app::Settings::block_sse`].
    pub block_sse: bool,
    pub metrics: Metrics,
    /// Verifies Calendly's webhook deliveries; without it they answer 503.
    pub webhook_key: Option<secrecy::SecretString>,
    pub shutdown: CancellationToken,
}

impl AppState {
    /// The request's language: `Accept-Language`, else `CALSCAN_LANG`.
    pub fn lang_for(&self, headers: &HeaderMap) -> Lang {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or(self.lang)
    }
}

/// The request's language (see [`AppState::lang_for`]), as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct ReqLang(pub Lang);

impl axum::extract::FromRequestParts<AppState> for ReqLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(state.lang_for(&parts.headers)))
    }
}
