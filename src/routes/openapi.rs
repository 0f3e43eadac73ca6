//! The OpenAPI description of the JSON API, at `GET /api/openapi.json`.
//!
//! The status object, log lines, customers and enums are described from the
//! types the handlers serialize. The small answers the handlers build with
//! `json!` are described by the shapes below; CI runs schemathesis against
//! a live server, which fails on any answer that does not match.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::auth::SESSION_COOKIE;
use crate::scan::ScanMode;
use crate::scan::status::{LogLine, StatusObject};
use crate::state::AppState;
use crate::store::{Customer, ScanStatus};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "calscan",
        description = "Scans Calendly for invitees and keeps them as customers; scans run in the background and report over Server-Sent Events."
    ),
    paths(
        start, history, status, events, cancel, resume, customers, original_api,
        original_api_start, calendly_webhook, healthz, readyz
    ),
    components(schemas(
        StatusObject, LogLine, ScanStatus, ScanMode, Customer, StartBody, Answer, History,
        CustomerPage, ErrorBody, Health, SseEvent, StatusAction, StartAction
    )),
    modifiers(&Security),
    security(("session" = []), ("bearer" = [])),
    tags(
        (name = "scans", description = "Starting, following, cancelling and resuming scans"),
        (name = "customers", description = "The customers scans found"),
        (name = "original", description = "The original system's API, kept for its clients"),
        (name = "webhooks", description = "Calendly's deliveries, verified by signature"),
        (name = "operations", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The two ways in: the admin's session cookie (set by `POST /login`) or
/// `Authorization: Bearer $CALSCAN_API_TOKEN`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `POST /api/scans`' optional body.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StartBody {
    /// `incremental` (the default) or `full`.
    mode: Option<ScanMode>,
}

/// The answer to a start, cancel or resume.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Answer {
    success: bool,
    /// The scan acted on; on a 409 to a start, the one running.
    scan_id: String,
    message: String,
    /// On a 409 to cancel or resume: why not.
    error: Option<String>,
}

/// The scan history, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
struct History {
    scans: Vec<StatusObject>,
}

/// One page of customers.
#[derive(ToSchema)]
#[allow(dead_code)]
struct CustomerPage {
    customers: Vec<Customer>,
    total: i64,
    page: i64,
    per_page: i64,
    q: String,
}

/// Every error: what went wrong, never a stack trace.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    error: String,
}

/// One event of the stream: `data` is the JSON of a status object
/// (`snapshot`, `progress`, `done`) or of a log line (`log`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct SseEvent {
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
    /// Milliseconds a browser waits before reconnecting.
    retry: Option<i64>,
}

/// `action` of the original API's status request.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum StatusAction {
    Status,
}

/// `action` of the original API's start request.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum StartAction {
    Start,
}

/// `/healthz` and `/readyz`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Health {
    status: String,
    database: Option<String>,
    error: Option<String>,
}

// The routes. Their bodies are never called: each stands for a handler in
// `scans.rs`, `events.rs`, `customers.rs`, `compat.rs` or `health.rs`.

#[utoipa::path(post, path = "/api/scans", tag = "scans",
    request_body(content = Option<StartBody>, content_type = "application/json"),
    responses(
        (status = 202, description = "Started; the answer comes before any Calendly call", body = Answer),
        (status = 400, description = "The body is not `{\"mode\": …}`", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 409, description = "A scan is running: its id", body = Answer),
    ))]
#[allow(dead_code)]
fn start() {}

#[utoipa::path(get, path = "/api/scans", tag = "scans",
    responses(
        (status = 200, description = "The newest 100 scans, newest first", body = History),
        (status = 401, description = "No session or token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn history() {}

#[utoipa::path(get, path = "/api/scans/{scan_id}", tag = "scans",
    params(
        ("scan_id" = String, Path, description = "`scan_` and 8–40 of `[0-9a-z]`", pattern = "^scan_[0-9a-z]{8,40}$"),
        ("after" = Option<i64>, Query, description = "Only log lines with a greater id"),
    ),
    responses(
        (status = 200, description = "The status object, with `logs`", body = StatusObject),
        (status = 400, description = "A malformed id or `after`", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn status() {}

#[utoipa::path(get, path = "/api/scans/{scan_id}/events", tag = "scans",
    params(
        ("scan_id" = String, Path, description = "`scan_` and 8–40 of `[0-9a-z]`", pattern = "^scan_[0-9a-z]{8,40}$"),
        ("Last-Event-ID" = Option<i64>, Header, description = "The last event the client has"),
    ),
    responses(
        (status = 200, description = "`snapshot`, then `log` and `progress` events, ending with `done`; each `data` is JSON", content_type = "text/event-stream", body = SseEvent),
        (status = 204, description = "The scan is finished and the client has every event"),
        (status = 400, description = "A malformed id or Last-Event-ID", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn events() {}

#[utoipa::path(post, path = "/api/scans/{scan_id}/cancel", tag = "scans",
    params(("scan_id" = String, Path, description = "`scan_` and 8–40 of `[0-9a-z]`", pattern = "^scan_[0-9a-z]{8,40}$")),
    responses(
        (status = 202, description = "The scan records `cancelled` within a second", body = Answer),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
        (status = 409, description = "The scan is not running", body = Answer),
    ))]
#[allow(dead_code)]
fn cancel() {}

#[utoipa::path(post, path = "/api/scans/{scan_id}/resume", tag = "scans",
    params(("scan_id" = String, Path, description = "`scan_` and 8–40 of `[0-9a-z]`", pattern = "^scan_[0-9a-z]{8,40}$")),
    responses(
        (status = 202, description = "It continues from its checkpoint, same id", body = Answer),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
        (status = 409, description = "Not resumable, or another scan runs", body = Answer),
    ))]
#[allow(dead_code)]
fn resume() {}

#[utoipa::path(get, path = "/api/customers", tag = "customers",
    params(
        ("q" = Option<String>, Query, description = "Part of an email or name, any case"),
        ("page" = Option<i64>, Query, description = "From 1"),
    ),
    responses(
        (status = 200, description = "One page of customers", body = CustomerPage),
        (status = 400, description = "A malformed page", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn customers() {}

#[utoipa::path(get, path = "/admin/calendly_scan_api.php", tag = "original",
    params(
        ("action" = StatusAction, Query, description = "`status`"),
        ("scan_id" = Option<String>, Query, description = "With `action=status`", pattern = "^scan_[0-9a-z]{8,40}$"),
        ("after" = Option<i64>, Query, description = "Only log lines with a greater id"),
    ),
    responses(
        (status = 200, description = "The status object, with `logs`", body = StatusObject),
        (status = 400, description = "A missing or malformed parameter", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn original_api() {}

#[utoipa::path(post, path = "/admin/calendly_scan_api.php", tag = "original",
    params(("action" = StartAction, Query, description = "`start`")),
    responses(
        (status = 202, description = "Started (a full scan, as the original's)", body = Answer),
        (status = 400, description = "A missing or wrong action", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 409, description = "A scan is running: its id", body = Answer),
    ))]
#[allow(dead_code)]
fn original_api_start() {}

#[utoipa::path(post, path = "/webhooks/calendly", tag = "webhooks", security(()),
    params(("Calendly-Webhook-Signature" = String, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.\" + body>`")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "Calendly's delivery: `{created_at, created_by, event, payload}`"),
    responses(
        (status = 200, description = "Taken in; `imported` is false for a repeat or another event kind", body = serde_json::Value),
        (status = 400, description = "Signed, but not an invitee delivery calscan can use", body = ErrorBody),
        (status = 401, description = "Missing, malformed, expired or wrong signature", body = ErrorBody),
        (status = 503, description = "No signing key: neither CALENDLY_WEBHOOK_SIGNING_KEY nor one stored by `calscan webhooks subscribe`", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn calendly_webhook() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers", body = Health)))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The database answers too", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    ))]
#[allow(dead_code)]
fn readyz() {}
