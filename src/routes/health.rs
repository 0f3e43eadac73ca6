//! `/healthz` (the process answers), `/readyz` (and its database does) and
//! `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::Result;
use crate::metrics::Snapshot;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
    /// With `ready`: `sqlite`, `postgres` or `mysql`.
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'static str>,
    /// With `unavailable`: what does not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers", body = Health)))]
pub(super) async fn alive() -> Json<Health> {
    Json(Health {
        status: "ok",
        database: None,
        error: None,
    })
}

/// No session: scrapers do not log in, and nothing here is personal (scan
/// ids and counts). Restrict it at the proxy if it must not be public.
async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let totals = state.store.totals().await?;
    let snapshot = Snapshot {
        subscribers: state.scans.registry().watchers(),
        scans_by_status: totals.scans_by_status,
        customers: totals.customers,
        calendly: state.scans.calendly_stats(),
    };
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(&snapshot),
    )
        .into_response())
}

/// How long readiness waits for the database: a database that does not
/// answer at all (a dropped network) must not hang the probe.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The database answers too", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    ))]
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    let answer = tokio::time::timeout(READY_WITHIN, state.store.ping()).await;
    match answer {
        Ok(Ok(())) => Json(Health {
            status: "ready",
            database: Some(state.store.backend()),
            error: None,
        })
        .into_response(),
        Ok(Err(error)) => unavailable(&error),
        Err(_) => unavailable(&"no answer within 2 s"),
    }
}

fn unavailable(error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(%error, "not ready: the database does not answer");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Health {
            status: "unavailable",
            database: None,
            error: Some("the database does not answer"),
        }),
    )
        .into_response()
}
