//! The scan JSON API: start, history, status (with `?after=N`), cancel, resume.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::extract::{Admin, HISTORY_LIMIT, ScanIdPath, load_scan, parse_event_id, query_param};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::i18n::Msg;
use crate::scan::status::StatusObject;
use crate::scan::{CancelOutcome, ScanMode};
use crate::state::{AppState, ReqLang};
use crate::store::{ResumeOutcome, ScanRow, StartOutcome};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/scans", post(start).get(history))
        .route("/api/scans/{scan_id}", get(status))
        .route("/api/scans/{scan_id}/cancel", post(cancel))
        .route("/api/scans/{scan_id}/resume", post(resume))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    mode: ScanMode,
}

/// `202 {"success": true, "scan_id", "message"}`, or 409 with the running id.
pub async fn start_scan(
    state: &AppState,
    mode: ScanMode,
    lang: Lang,
) -> Result<Response, AppError> {
    Ok(match state.scans.start(mode).await? {
        StartOutcome::Started(row) => accepted(&row.scan_id, lang.text(&Msg::ScanStarted)),
        StartOutcome::AlreadyRunning(running) => conflict(&running, lang),
    })
}

/// `202 {"success": true, "scan_id", "message"}`: the scan acts on it now.
fn accepted(scan_id: &str, message: String) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "scan_id": scan_id, "message": message})),
    )
        .into_response()
}

fn conflict(running: &str, lang: Lang) -> Response {
    let message = lang.text(&Msg::AlreadyRunning);
    (
        StatusCode::CONFLICT,
        Json(json!({"success": false, "scan_id": running, "message": message})),
    )
        .into_response()
}

async fn start(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    body: Bytes,
) -> Result<Response, AppError> {
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            AppError::BadRequest(format!(
                "the body must be JSON like {{\"mode\": \"full\"}} or {{\"mode\": \"incremental\"}}: {e}"
            ))
        })?
    };
    start_scan(&state, body.mode, lang).await
}

async fn history(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
) -> Result<Response, AppError> {
    let now = Utc::now();
    let scans: Vec<StatusObject> = state
        .store
        .scans(HISTORY_LIMIT)
        .await?
        .iter()
        .map(|row| StatusObject::new(row, None, now, lang))
        .collect();
    Ok(Json(json!({ "scans": scans })).into_response())
}

/// The status object in `lang` with the log lines after `after`.
pub async fn status_object(
    state: &AppState,
    row: &ScanRow,
    after: i64,
    lang: Lang,
) -> Result<StatusObject, AppError> {
    let logs = state.scans.logs(row, after).await?;
    Ok(StatusObject::new(row, Some(&logs), Utc::now(), lang))
}

async fn status(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    ScanIdPath(scan_id): ScanIdPath,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let after = query_param(query.as_deref(), "after")
        .as_deref()
        .map(|a| parse_event_id(a, "after"))
        .transpose()?
        .unwrap_or(0);
    let row = load_scan(&state, &scan_id).await?;
    Ok(Json(status_object(&state, &row, after, lang).await?).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    ScanIdPath(scan_id): ScanIdPath,
) -> Result<Response, AppError> {
    load_scan(&state, &scan_id).await?;
    match state.scans.cancel(&scan_id).await? {
        CancelOutcome::Requested => Ok(accepted(&scan_id, lang.text(&Msg::CancelRequested))),
        CancelOutcome::NotFound => Err(AppError::NotFound(format!("no scan {scan_id}"))),
        CancelOutcome::NotRunning(status) => Ok(not_possible(
            &scan_id,
            &format!("the scan is {status}, not running"),
        )),
    }
}

async fn resume(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    ScanIdPath(scan_id): ScanIdPath,
) -> Result<Response, AppError> {
    load_scan(&state, &scan_id).await?;
    match state.scans.resume(&scan_id).await? {
        ResumeOutcome::Resumed(row) => Ok(accepted(&row.scan_id, lang.text(&Msg::ScanResumed))),
        ResumeOutcome::NotFound => Err(AppError::NotFound(format!("no scan {scan_id}"))),
        ResumeOutcome::NotResumable(status) => Ok(not_possible(
            &scan_id,
            &format!(
                "the scan is {status}; only interrupted, error and cancelled scans can be resumed"
            ),
        )),
        ResumeOutcome::AlreadyRunning(running) => Ok(conflict(&running, lang)),
    }
}

/// 409 for an action the scan's state does not allow.
fn not_possible(scan_id: &str, message: &str) -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({"success": false, "scan_id": scan_id, "message": message, "error": message})),
    )
        .into_response()
}
