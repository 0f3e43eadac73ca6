//! `GET /api/customers?q=&page=`: customers as JSON, searchable by email and name.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::extract::{Admin, query_param};
use crate::error::AppError;
use crate::state::AppState;

/// Customers per page.
pub const PER_PAGE: i64 = 50;

/// The longest search, in characters: far more than any email or name.
pub const MAX_QUERY_CHARS: usize = 200;

/// The search `q` of a query string: at most [`MAX_QUERY_CHARS`]
/// characters, with no control characters (a NUL cannot even be sent to
/// PostgreSQL); anything else is a 400 saying so.
pub fn search_query(query: Option<&str>) -> Result<String, AppError> {
    let q = query_param(query, "q").unwrap_or_default();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::BadRequest(format!(
            "q may be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    if q.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "q must not contain control characters".into(),
        ));
    }
    Ok(q)
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/customers", get(customers))
}

async fn customers(
    State(state): State<AppState>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let q = search_query(query.as_deref())?;
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
