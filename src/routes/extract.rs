//! What the routes take from a request: who asks ([`Admin`], [`PageAdmin`]),
//! which scan ([`ScanIdPath`], [`load_scan`]), query values and event ids,
//! and the limits every route shares.

use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::AppError;
use crate::state::AppState;
use crate::store::{ScanId, ScanRow};
use crate::views;

/// History pages hold this many scans.
pub const HISTORY_LIMIT: i64 = 100;

/// A logged-in admin or an API client with the token. Extracting it is
/// what guards a route.
#[derive(Debug, Clone)]
pub struct Admin {
    pub username: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let username = state.auth.admin(&parts.headers, &*state.store).await?;
        username
            .map(|username| Admin { username })
            .ok_or(AppError::Unauthorized)
    }
}

/// An admin looking at a page; without a session, a redirect to `/login`
/// that comes back here, saying so when a session had ended.
#[derive(Debug)]
pub struct PageAdmin;

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Admin::from_request_parts(parts, state).await {
            Ok(_) => Ok(PageAdmin),
            Err(AppError::Unauthorized) => {
                let had_session =
                    axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers)
                        .get(crate::auth::SESSION_COOKIE)
                        .is_some();
                let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                Err(Redirect::to(&login_url(here, had_session)).into_response())
            }
            Err(other) => Err(page_error(state, &parts.headers, other)),
        }
    }
}

/// `/login`, to come back to `next` afterwards; with `expired` the page
/// says the session has ended.
pub fn login_url(next: &str, expired: bool) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", next);
    if expired {
        query.append_pair("expired", "1");
    }
    format!("/login?{}", query.finish())
}

/// Where a login goes on to: `next` when it is a path of this site, else
/// the customer page. Never another host (`//host`, `/\\host`, `https:`).
pub fn after_login(next: Option<&str>) -> &str {
    const HOME: &str = "/admin/customer_search";
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(char::is_control)
                && next != "/login"
                && !next.starts_with("/login?") =>
        {
            next
        }
        _ => HOME,
    }
}

/// A failure on a page: the error page in the layout, with the status.
pub fn page_error(state: &AppState, headers: &HeaderMap, error: AppError) -> Response {
    let status = error.status();
    let lang = state.lang_for(headers);
    let page = (status, views::error_page(lang, status.as_u16(), true)).into_response();
    // The cause goes with the page, for the log.
    match error.failure() {
        Some(failure) => failure.carried_by(page),
        None => page,
    }
}

/// The `{scan_id}` of a route, parsed: a path that cannot be decoded or
/// is not a scan id is a 400 in the API's JSON.
#[derive(Debug)]
pub struct ScanIdPath(pub ScanId);

impl<S: Send + Sync> FromRequestParts<S> for ScanIdPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::BadRequest("the scan id in the path cannot be read".into()))?;
        Ok(Self(parse_scan_id(id)?))
    }
}

/// A scan id from a request; 400 when malformed.
pub fn parse_scan_id(id: String) -> Result<ScanId, AppError> {
    ScanId::parse(id).map_err(|e| AppError::BadRequest(e.to_string()))
}

/// The scan's row; 404 when unknown.
pub async fn load_scan(state: &AppState, scan_id: &ScanId) -> Result<ScanRow, AppError> {
    state
        .store
        .scan(scan_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no scan {scan_id}")))
}

/// A non-negative event id, as `after` or `Last-Event-ID` carry it.
pub fn parse_event_id(value: &str, name: &str) -> Result<i64, AppError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| AppError::BadRequest(format!("{name} must be a whole number ≥ 0")))
}

/// The first value of `name` in a query string; never fails on odd input.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
