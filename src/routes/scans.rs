//! The scan JSON API: start, history, status (with `?after=N`), cancel, resume.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;

use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Admin, HISTORY_LIMIT, ScanIdPath, load_scan, parse_event_id, query_param};
use crate::error::{AppError, ErrorBody, Result};
use crate::i18n::Lang;
use crate::i18n::Msg;
use crate::scan::status::StatusObject;
use crate::scan::{CancelOutcome, ScanMode};
use crate::state::{AppState, ReqLang};
use crate::store::{ResumeOutcome, ScanId, ScanRow, StartOutcome};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/scans", post(start).get(history))
        .route("/api/scans/{scan_id}", get(status))
        .route("/api/scans/{scan_id}/cancel", post(cancel))
        .route("/api/scans/{scan_id}/resume", post(resume))
}

/// `POST /api/scans`' optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// `incremental` (the default) or `full`.
    #[serde(default)]
    mode: ScanMode,
}

/// The answer to a start, cancel or resume.
#[derive(Debug, Serialize, ToSchema)]
pub struct Answer {
    success: bool,
    /// The scan acted on; on a 409 to a start, the one running.
    scan_id: String,
    message: String,
    /// On a 409 to cancel or resume: why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// An [`Answer`] with its status.
pub type Answered = (StatusCode, Json<Answer>);

/// The newest scans, newest first, and the schedule when scans run on one.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    scans: Vec<StatusObject>,
    /// With `CALSCAN_SCAN_EVERY` set: when the next scheduled scan starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<Schedule>,
}

/// The next scheduled scan and the interval (`CALSCAN_SCAN_EVERY`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    /// RFC 3339, UTC, to the millisecond.
    #[serde(serialize_with = "crate::time::serialize_millis")]
    #[schema(value_type = String, format = DateTime)]
    next_at: chrono::DateTime<Utc>,
    /// Seconds between scheduled scans.
    every_s: f64,
}

/// 202 with the scan's id, or 409 with the running one's.
pub async fn start_scan(state: &AppState, mode: ScanMode, lang: Lang) -> Result<Answered> {
    Ok(match state.scans.start(mode).await? {
        StartOutcome::Started(row) => accepted(&row.scan_id, lang.text(&Msg::ScanStarted)),
        StartOutcome::AlreadyRunning(running) => conflict(&running, lang),
    })
}

/// 202: the scan acts on it now.
fn accepted(scan_id: &str, message: String) -> Answered {
    answer(StatusCode::ACCEPTED, true, scan_id, message, None)
}

/// 409 to a start or resume: another scan runs.
fn conflict(running: &str, lang: Lang) -> Answered {
    let message = lang.text(&Msg::AlreadyRunning);
    answer(StatusCode::CONFLICT, false, running, message, None)
}

/// 409 for an action the scan's state does not allow.
fn not_possible(scan_id: &str, message: &str) -> Answered {
    let error = Some(message.to_owned());
    answer(
        StatusCode::CONFLICT,
        false,
        scan_id,
        message.to_owned(),
        error,
    )
}

fn answer(
    status: StatusCode,
    success: bool,
    scan_id: &str,
    message: String,
    error: Option<String>,
) -> Answered {
    let scan_id = scan_id.to_owned();
    (
        status,
        Json(Answer {
            success,
            scan_id,
            message,
            error,
        }),
    )
}

#[utoipa::path(post, path = "/api/scans", tag = "scans",
    request_body(content = Option<StartBody>, content_type = "application/json"),
    responses(
        (status = 202, description = "Started; the answer comes before any Calendly call", body = Answer),
        (status = 400, description = "The body is not `{\"mode\": …}`", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 409, description = "A scan is running: its id", body = Answer),
    ))]
pub(super) async fn start(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    body: Bytes,
) -> Result<Answered> {
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

#[utoipa::path(get, path = "/api/scans", tag = "scans",
    responses(
        (status = 200, description = "The newest 100 scans, newest first", body = History),
        (status = 401, description = "No session or token", body = ErrorBody),
    ))]
pub(super) async fn history(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
) -> Result<Json<History>> {
    let now = Utc::now();
    let scans: Vec<StatusObject> = state
        .store
        .scans(HISTORY_LIMIT)
        .await?
        .iter()
        .map(|row| StatusObject::new(row, None, now, (lang, state.scans.zone())))
        .collect();
    let schedule = state
        .scans
        .next_scheduled()
        .map(|(next_at, every)| Schedule {
            next_at,
            every_s: every.as_secs_f64(),
        });
    Ok(Json(History { scans, schedule }))
}

/// The status object in `lang` with the log lines after `after`.
pub async fn status_object(
    state: &AppState,
    row: &ScanRow,
    after: i64,
    lang: Lang,
) -> Result<StatusObject> {
    let logs = state.scans.logs(row, after).await?;
    Ok(StatusObject::new(
        row,
        Some(&logs),
        Utc::now(),
        (lang, state.scans.zone()),
    ))
}

#[utoipa::path(get, path = "/api/scans/{scan_id}", tag = "scans",
    params(
        ("scan_id" = ScanId, Path, description = "`scan_` and 8–40 of `[0-9a-z]`"),
        ("after" = Option<i64>, Query, description = "Only log lines with a greater id"),
    ),
    responses(
        (status = 200, description = "The status object, with `logs`", body = StatusObject),
        (status = 400, description = "A malformed id or `after`", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
    ))]
pub(super) async fn status(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    ScanIdPath(scan_id): ScanIdPath,
    RawQuery(query): RawQuery,
) -> Result<Json<StatusObject>> {
    status_after(&state, &scan_id, query.as_deref(), lang).await
}

/// The status of `scan_id` with the log lines after the query's `after`.
pub async fn status_after(
    state: &AppState,
    scan_id: &ScanId,
    query: Option<&str>,
    lang: Lang,
) -> Result<Json<StatusObject>> {
    let after = query_param(query, "after")
        .map(|a| parse_event_id(&a, "after"))
        .transpose()?
        .unwrap_or(0);
    let row = load_scan(state, scan_id).await?;
    Ok(Json(status_object(state, &row, after, lang).await?))
}

#[utoipa::path(post, path = "/api/scans/{scan_id}/cancel", tag = "scans",
    params(("scan_id" = ScanId, Path, description = "`scan_` and 8–40 of `[0-9a-z]`")),
    responses(
        (status = 202, description = "The scan records `cancelled` within a second", body = Answer),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
        (status = 409, description = "The scan is not running", body = Answer),
    ))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    ScanIdPath(scan_id): ScanIdPath,
) -> Result<Answered> {
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

#[utoipa::path(post, path = "/api/scans/{scan_id}/resume", tag = "scans",
    params(("scan_id" = ScanId, Path, description = "`scan_` and 8–40 of `[0-9a-z]`")),
    responses(
        (status = 202, description = "It continues from its checkpoint, same id", body = Answer),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "A browser request from another origin", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
        (status = 409, description = "Not resumable, or another scan runs", body = Answer),
    ))]
pub(super) async fn resume(
    State(state): State<AppState>,
    _: Admin,
    ReqLang(lang): ReqLang,
    ScanIdPath(scan_id): ScanIdPath,
) -> Result<Answered> {
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
