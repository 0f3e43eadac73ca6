//! `GET /api/customers?q=&page=`: customers as JSON, searchable by email and name.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::extract::{Admin, query_param};
use crate::error::{AppError, ErrorBody, Result};
use crate::state::AppState;
use crate::store::Customer;

/// Customers per page.
pub const PER_PAGE: i64 = 50;

/// The longest search, in characters: far more than any email or name.
pub const MAX_QUERY_CHARS: usize = 200;

/// The search `q` of a query string: at most [`MAX_QUERY_CHARS`]
/// characters, with no control characters (a NUL cannot even be sent to
/// PostgreSQL); anything else is a 400 saying so.
pub fn search_query(query: Option<&str>) -> Result<String> {
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

/// One page of customers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerPage {
    customers: Vec<Customer>,
    /// All that match `q`.
    total: i64,
    page: i64,
    per_page: i64,
    q: String,
}

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
pub(super) async fn customers(
    State(state): State<AppState>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<CustomerPage>> {
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
    Ok(Json(CustomerPage {
        customers,
        total,
        page,
        per_page: PER_PAGE,
        q,
    }))
}
