//! The one error type of the HTTP layer: JSON `{"error": "..."}` with the
//! right status, its cause never sent. Why an answer failed is logged once,
//! inside the request's span, by [`log_failures`].

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::Level;

use crate::store::StoreError;

/// What handlers return: their answer, or an [`AppError`].
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Every error's body: what went wrong, never a stack trace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

impl ErrorBody {
    pub fn json(error: impl Into<String>) -> Json<Self> {
        Json(Self {
            error: error.into(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("login required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot be reached just now: 503, saying so.
    #[error("the database does not answer; try again shortly")]
    DatabaseAway(StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    /// An unreachable database is 503; anything else the database refused
    /// is a 500.
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            return Self::DatabaseAway(error);
        }
        Self::Internal(error.into())
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::DatabaseAway(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl AppError {
    /// What the log is told of this error, beyond its status: the cause of
    /// a 500 or of an unreachable database.
    pub fn failure(&self) -> Option<Failure> {
        let (level, cause) = match self {
            Self::Internal(error) => (Level::ERROR, format!("{error:#}")),
            Self::DatabaseAway(error) => (Level::WARN, error.to_string()),
            _ => return None,
        };
        Some(Failure {
            level,
            cause: cause.into(),
        })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let response = (self.status(), ErrorBody::json(message)).into_response();
        match self.failure() {
            Some(failure) => failure.carried_by(response),
            None => response,
        }
    }
}

/// Why an answer failed, for the server's log only: kept in the response's
/// extensions until [`log_failures`] logs it.
#[derive(Debug, Clone)]
pub struct Failure {
    level: Level,
    cause: Arc<str>,
}

impl Failure {
    /// `response`, carrying this failure to [`log_failures`].
    pub fn carried_by(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// `response`, carrying `cause` for the log at `level` (WARN or ERROR).
pub fn noted(response: Response, level: Level, cause: impl Into<Arc<str>>) -> Response {
    Failure {
        level,
        cause: cause.into(),
    }
    .carried_by(response)
}

/// Logs the [`Failure`] an answer carries, once, inside the request's span
/// (so with its method and route): handlers and error types only note it.
pub async fn log_failures(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(failure) = response.extensions().get::<Failure>() {
        let status = response.status().as_u16();
        if failure.level == Level::ERROR {
            tracing::error!(status, cause = %failure.cause, "request failed");
        } else {
            tracing::warn!(status, cause = %failure.cause, "request refused");
        }
    }
    response
}

/// The largest rejection body read back to be put into JSON.
const REJECTION_LIMIT: usize = 16 * 1024;

/// Makes every rejection under `/api/` and `/webhooks/` JSON
/// (`{"error": …}`, its status and headers kept): the extractors' own
/// rejections (a body over the limit, a wrong content type) are plain text.
pub async fn json_rejections(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/") || path.starts_with("/webhooks/");
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api
        || is_json
        || !(response.status().is_client_error() || response.status().is_server_error())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_LIMIT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => parts
            .status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
        said => said.to_owned(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    let json = ErrorBody::json(message).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}
