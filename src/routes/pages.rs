//! The admin pages, the CSV export and the assets they load. A visitor
//! without a session is sent to `/login`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;

use super::customers::{PER_PAGE, search_query};
use super::extract::{PageAdmin, ScanIdPath, load_scan, page_error, query_param};
use super::scans::status_object;
use crate::error::AppError;
use crate::scan::status::StatusObject;
use crate::state::AppState;
use crate::views::{self, pages};

/// Customers per CSV query.
const CSV_CHUNK: i64 = 1_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { Redirect::to("/admin/customer_search") }),
        )
        .route(
            "/admin",
            get(|| async { Redirect::to("/admin/customer_search") }),
        )
        .route("/admin/customer_search", get(customer_search))
        .route("/admin/scans", get(scans))
        .route("/admin/scans/{scan_id}", get(scan))
        .route("/admin/customers.csv", get(customers_csv))
        .route(
            "/assets/app.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("../../assets/app.css"),
                )
            }),
        )
        .route(
            "/assets/history.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../../assets/history.js"),
                )
            }),
        )
        .route(
            "/assets/scan.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../../assets/scan.js"),
                )
            }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn customer_search(
    State(state): State<AppState>,
    _: PageAdmin,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = state.lang_for(&headers);
    let q = match super::customers::search_query(query.as_deref()) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    let page = query_param(query.as_deref(), "page")
        .and_then(|p| p.trim().parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let result = async {
        let (customers, total) = state
            .store
            .customers(&q, (page - 1) * PER_PAGE, PER_PAGE)
            .await?;
        let latest = match state.store.scans(1).await?.into_iter().next() {
            Some(row) => Some(status_object(&state, &row, 0, lang).await?),
            None => None,
        };
        Ok::<_, AppError>((customers, total, latest))
    }
    .await;
    match result {
        Ok((customers, total, latest)) => pages::customer_search(
            lang,
            &pages::CustomerPage {
                q: &q,
                page,
                per_page: PER_PAGE,
                customers: &customers,
                total,
                panel: panel(&state, latest.as_ref()),
            },
        )
        .into_response(),
        Err(error) => page_error(&state, &headers, error),
    }
}

/// The scan panel of the customer page for the newest scan `latest`.
fn panel<'a>(state: &AppState, latest: Option<&'a StatusObject>) -> pages::Panel<'a> {
    pages::Panel {
        latest,
        configured: state.scans.configured(),
        next_scan: state.scans.next_scheduled(),
        zone: state.scans.zone(),
        now: Utc::now(),
        controls: true,
    }
}

/// Webhook imports listed under the scan history.
const WEBHOOKS_SHOWN: i64 = 20;

async fn scans(State(state): State<AppState>, _: PageAdmin, headers: HeaderMap) -> Response {
    let lang = state.lang_for(&headers);
    let read = async {
        let rows = state.store.scans(100).await?;
        let webhooks = state.store.recent_webhooks(WEBHOOKS_SHOWN).await?;
        let subscriptions = state.store.webhook_subscriptions().await?;
        Ok::<_, crate::store::StoreError>((rows, webhooks, subscriptions))
    };
    match read.await {
        Ok((rows, webhooks, subscriptions)) => {
            let now = Utc::now();
            let scans: Vec<StatusObject> = rows
                .iter()
                .map(|r| StatusObject::new(r, None, now, (lang, state.scans.zone())))
                .collect();
            let setup = pages::WebhookSetup {
                subscriptions: &subscriptions,
                configured_key: state.webhook_key.is_some(),
            };
            let view = pages::History {
                scans: &scans,
                webhooks: &webhooks,
                setup,
                next_scan: state.scans.next_scheduled(),
                zone: state.scans.zone(),
                now,
            };
            pages::scans_history(lang, &view).into_response()
        }
        Err(error) => page_error(&state, &headers, error.into()),
    }
}

async fn scan(
    State(state): State<AppState>,
    _: PageAdmin,
    headers: HeaderMap,
    scan_id: Result<ScanIdPath, AppError>,
) -> Response {
    let lang = state.lang_for(&headers);
    // A page for an id that cannot be one is a page that does not exist.
    let Ok(ScanIdPath(scan_id)) = scan_id else {
        return page_error(&state, &headers, AppError::NotFound("no such scan".into()));
    };
    let result = async {
        let row = load_scan(&state, &scan_id).await?;
        status_object(&state, &row, 0, lang).await
    }
    .await;
    match result {
        Ok(scan) => pages::scan_detail(lang, &scan, panel(&state, None)).into_response(),
        Err(error) => page_error(&state, &headers, error),
    }
}

/// The customers as CSV: all of them, or those matching `?q=` as the
/// search page shows them. UTF-8 with a byte-order mark, so that Excel
/// reads umlauts right; `?sep=semicolon` separates cells with `;`, as Excel
/// set to German expects. Cells that a spreadsheet would run as a formula
/// are prefixed with `'`.
async fn customers_csv(
    State(state): State<AppState>,
    _: PageAdmin,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let q = search_query(query.as_deref())?;
        let delimiter = match query_param(query.as_deref(), "sep").as_deref() {
            None | Some("comma") => b',',
            Some("semicolon") => b';',
            Some(_) => {
                return Err(AppError::BadRequest(
                    "sep must be comma or semicolon".into(),
                ));
            }
        };
        csv_bytes(&state, &q, delimiter).await
    }
    .await;
    match result {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"customers.csv\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => page_error(&state, &headers, error),
    }
}

/// The byte-order mark that tells Excel a CSV file is UTF-8.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

async fn csv_bytes(state: &AppState, q: &str, delimiter: u8) -> Result<Vec<u8>, AppError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(UTF8_BOM.to_vec());
    let io = |e: csv::Error| AppError::Internal(e.into());
    writer
        .write_record([
            "email",
            "name",
            "bookings",
            "first_booking_at",
            "last_booking_at",
            "created_at",
        ])
        .map_err(io)?;
    let mut offset = 0;
    loop {
        let (chunk, _) = state.store.customers(q, offset, CSV_CHUNK).await?;
        for c in &chunk {
            let time =
                |t: Option<chrono::DateTime<Utc>>| t.map(crate::time::millis).unwrap_or_default();
            writer
                .write_record([
                    defuse(&c.email),
                    defuse(c.name.as_deref().unwrap_or("")),
                    c.bookings.to_string(),
                    time(c.first_booking_at),
                    time(c.last_booking_at),
                    time(c.created_at),
                ])
                .map_err(io)?;
        }
        if (chunk.len() as i64) < CSV_CHUNK {
            break;
        }
        offset += CSV_CHUNK;
    }
    writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))
}

/// Keeps a spreadsheet from running a cell as a formula.
fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// The 404 of every unknown route: JSON for the API, the error page for a browser.
pub async fn not_found(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if uri.path().starts_with("/api/") || !wants_html {
        return AppError::NotFound("no such route".into()).into_response();
    }
    let lang = state.lang_for(&headers);
    (StatusCode::NOT_FOUND, views::error_page(lang, 404, false)).into_response()
}
