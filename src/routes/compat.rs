//! The original PHP system's documented API, kept for clients that poll:
//! `POST /admin/calendly_scan_api.php?action=start` and
//! `GET /admin/calendly_scan_api.php?action=status&scan_id=X` (also without
//! `.php`), with the original's JSON.

use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};

use super::extract::{Admin, load_scan, parse_event_id, parse_scan_id, query_param};
use super::scans::{start_scan, status_object};
use crate::error::AppError;
use crate::scan::ScanMode;
use crate::state::{AppState, ReqLang};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/calendly_scan_api.php", any(api))
        .route("/admin/calendly_scan_api", any(api))
}

async fn api(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    method: Method,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let query = query.as_deref();
    match (query_param(query, "action").as_deref(), method) {
        (Some("start"), Method::POST) => start_scan(&state, ScanMode::Full, lang).await,
        (Some("status"), Method::GET | Method::HEAD) => {
            let scan_id = query_param(query, "scan_id")
                .ok_or_else(|| AppError::BadRequest("scan_id is required".into()))
                .and_then(parse_scan_id)?;
            let after = query_param(query, "after")
                .map(|a| parse_event_id(&a, "after"))
                .transpose()?
                .unwrap_or(0);
            let row = load_scan(&state, &scan_id).await?;
            Ok(Json(status_object(&state, &row, after, lang).await?).into_response())
        }
        (Some("start"), _) => Err(AppError::BadRequest("action=start needs POST".into())),
        (Some("status"), _) => Err(AppError::BadRequest("action=status needs GET".into())),
        _ => Err(AppError::BadRequest(
            "action must be start (POST) or status (GET)".into(),
        )),
    }
}
