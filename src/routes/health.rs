//! `/healthz` (the process answers), `/readyz` (and its database does) and
//! `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::AppError;
use crate::metrics::Snapshot;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// No session: scrapers do not log in, and nothing here is personal (scan
/// ids and counts). Restrict it at the proxy if it must not be public.
async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
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

async fn ready(State(state): State<AppState>) -> Response {
    let answer = tokio::time::timeout(READY_WITHIN, state.store.ping()).await;
    match answer {
        Ok(Ok(())) => {
            Json(json!({"status": "ready", "database": state.store.backend()})).into_response()
        }
        Ok(Err(error)) => unavailable(&error),
        Err(_) => unavailable(&"no answer within 2 s"),
    }
}

fn unavailable(error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(%error, "not ready: the database does not answer");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "error": "the database does not answer"})),
    )
        .into_response()
}
