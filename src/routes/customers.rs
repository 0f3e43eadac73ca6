//! `GET /api/customers?q=&page=`: customers as JSON, searchable by email and name.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::scans::query_param;
use crate::app::AppState;
use crate::auth::Admin;
use crate::error::AppError;

/// Customers per page.
pub const PER_PAGE: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/customers", get(customers))
}

async fn customers(
    State(state): State<AppState>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let q = query_param(query.as_deref(), "q").unwrap_or_default();
    let page = match query_param(query.as_deref(), "page") {
        None => 1,
        Some(p) => p
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| AppError::BadRequest("page must be a whole number from 1".into()))?,
    };
    let (customers, total) = state
        .store
        .customers(&q, (page - 1) * PER_PAGE, PER_PAGE)
        .await?;
    Ok(Json(json!({
        "customers": customers,
        "total": total,
        "page": page,
        "per_page": PER_PAGE,
        "q": q,
    }))
    .into_response())
}
