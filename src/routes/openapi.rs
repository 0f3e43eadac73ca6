//! The OpenAPI description of the JSON API, at `GET /api/openapi.json`.
//!
//! Nothing is described twice: each path is described on its handler
//! (`#[utoipa::path]`), and each body is the type the handler returns. CI
//! runs schemathesis against a live server as well.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::compat::{self, Action};
use super::customers::{self, CustomerPage};
use super::events;
use super::health::{self, Health};
use super::scans::{self, Answer, History, StartBody};
use super::webhooks::{self, Taken};
use crate::auth::SESSION_COOKIE;
use crate::error::ErrorBody;
use crate::scan::ScanMode;
use crate::scan::status::{LogLine, SseEvent, StatusObject};
use crate::state::AppState;
use crate::store::{Customer, ScanId, ScanStatus};

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
        scans::start, scans::history, scans::status, events::events, scans::cancel,
        scans::resume, customers::customers, compat::status, compat::start,
        webhooks::receive, health::alive, health::ready
    ),
    components(schemas(
        StatusObject, LogLine, ScanStatus, ScanMode, ScanId, Customer, StartBody, Answer,
        History, scans::Schedule, CustomerPage, ErrorBody, Health, Taken, Action, SseEvent
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
