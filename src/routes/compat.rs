//! The original PHP system's documented API, kept for clients that poll:
//! `POST /admin/calendly_scan_api.php?action=start` and
//! `GET /admin/calendly_scan_api.php?action=status&scan_id=X` (also without
//! `.php`), with the original's JSON.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};

use super::extract::{Admin, parse_scan_id, query_param};
use super::scans::{Answer, Answered, start_scan, status_after};
use crate::error::{AppError, ErrorBody, Result};
use crate::scan::ScanMode;
use crate::scan::status::StatusObject;
use crate::state::{AppState, ReqLang};
use crate::store::ScanId;

pub fn routes() -> Router<AppState> {
    let api = || get(status).post(start).fallback(other_method);
    Router::new()
        .route("/admin/calendly_scan_api.php", api())
        .route("/admin/calendly_scan_api", api())
}

/// `action`: what the original API is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// With POST.
    Start,
    /// With GET, and `scan_id`.
    Status,
}

impl Action {
    fn of(query: Option<&str>) -> Option<Self> {
        match query_param(query, "action")?.as_str() {
            "start" => Some(Self::Start),
            "status" => Some(Self::Status),
            _ => None,
        }
    }

    /// 400 for an action asked with the wrong method, or none.
    fn misplaced(action: Option<Self>) -> AppError {
        AppError::BadRequest(
            match action {
                Some(Self::Start) => "action=start needs POST",
                Some(Self::Status) => "action=status needs GET",
                None => "action must be start (POST) or status (GET)",
            }
            .into(),
        )
    }
}

#[utoipa::path(get, path = "/admin/calendly_scan_api.php", tag = "original",
    params(
        ("action" = Action, Query, description = "`status`"),
        ("scan_id" = Option<ScanId>, Query, description = "With `action=status`"),
        ("after" = Option<i64>, Query, description = "Only log lines with a greater id"),
    ),
    responses(
        (status = 200, description = "The status object, with `logs`", body = StatusObject),
        (status = 400, description = "A missing or malformed parameter", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
    ))]
pub(super) async fn status(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    RawQuery(query): RawQuery,
) -> Result<Json<StatusObject>> {
    let query = query.as_deref();
    let action = Action::of(query);
    if action != Some(Action::Status) {
        return Err(Action::misplaced(action));
    }
    let scan_id = query_param(query, "scan_id")
        .ok_or_else(|| AppError::BadRequest("scan_id is required".into()))
        .and_then(parse_scan_id)?;
    status_after(&state, &scan_id, query, lang).await
}

#[utoipa::path(post, path = "/admin/calendly_scan_api.php", tag = "original",
    params(("action" = Action, Query, description = "`start`")),
    responses(
        (status = 202, description = "Started (a full scan, as the original's)", body = Answer),
        (status = 400, description = "A missing or wrong action", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 409, description = "A scan is running: its id", body = Answer),
    ))]
pub(super) async fn start(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    RawQuery(query): RawQuery,
) -> Result<Answered> {
    let action = Action::of(query.as_deref());
    if action != Some(Action::Start) {
        return Err(Action::misplaced(action));
    }
    start_scan(&state, ScanMode::Full, lang).await
}

/// Neither GET nor POST: 400 saying which method the action needs.
async fn other_method(_: Admin, RawQuery(query): RawQuery) -> AppError {
    let action = Action::of(query.as_deref());
    Action::misplaced(action)
}
