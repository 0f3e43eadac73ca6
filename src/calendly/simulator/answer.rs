//! Calendly's answer bodies: `{"resource": …}` for one item, and the error
//! body (`title`, `message`, optional `details`) with the refusals the
//! resources give.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) fn resource(value: Value) -> Response {
    axum::Json(json!({ "resource": value })).into_response()
}

pub(super) fn error(
    status: StatusCode,
    title: &str,
    message: &str,
    details: Option<Value>,
) -> Response {
    let mut body = json!({"title": title, "message": message});
    if let Some(details) = details {
        body["details"] = details;
    }
    (status, axum::Json(body)).into_response()
}

/// Why a request was refused, rendered as Calendly's error body.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    /// 400 naming the parameter.
    Invalid(&'static str, &'static str),
    /// 403 with Calendly's text.
    Forbidden(&'static str),
    NotFound,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Invalid(parameter, message) => error(
                StatusCode::BAD_REQUEST,
                "Invalid Argument",
                "The supplied parameters are invalid.",
                Some(json!([{"parameter": parameter, "message": message}])),
            ),
            Refusal::Forbidden(message) => {
                error(StatusCode::FORBIDDEN, "Permission Denied", message, None)
            }
            Refusal::NotFound => not_found(),
        }
    }
}

/// The 429 of a full rate-limit window; the caller adds the rate headers.
pub(super) fn too_many_requests() -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "You have exceeded the rate limit. Please try again later.",
        None,
    )
}

pub(super) fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "The access token is invalid",
        None,
    )
}

pub(super) fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The server could not find the requested resource.",
        None,
    )
}
