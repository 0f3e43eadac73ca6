//! `GET /api/scans/{scan_id}/events`: the scan as Server-Sent Events.
//!
//! What the events are and in which order comes from
//! [`Scans::follow`](crate::scan::Scans::follow); this route adds HTTP:
//! `Last-Event-ID`, 204 for a browser that has everything, the headers,
//! the keep-alive comments and the end at shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use rand::RngExt;

use super::extract::{Admin, ScanIdPath, parse_event_id};
use crate::error::{AppError, ErrorBody, Result};
use crate::scan::Following;
use crate::scan::status::SseEvent;
use crate::state::AppState;
use crate::store::ScanId;

/// Comments keep proxies and browsers from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/scans/{scan_id}/events", get(events))
}

#[utoipa::path(get, path = "/api/scans/{scan_id}/events", tag = "scans",
    params(
        ("scan_id" = ScanId, Path, description = "`scan_` and 8–40 of `[0-9a-z]`"),
        ("Last-Event-ID" = Option<i64>, Header, description = "The last event the client has"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = SseEvent,
            description = "Server-Sent Events: `snapshot`, then `log` and `progress` events, ending \
            with `done`. Each event has an `id` (the scan's event id) and one `data` line of JSON: a \
            status object for `snapshot`, `progress` and `done`, a log line for `log`. The snapshot \
            carries `retry: 2000`; a comment line comes every 10 s when nothing else does."),
        (status = 204, description = "The scan is finished and the client has every event"),
        (status = 400, description = "A malformed id or Last-Event-ID", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such scan", body = ErrorBody),
    ))]
pub(super) async fn events(
    State(state): State<AppState>,
    _: Admin,
    ScanIdPath(scan_id): ScanIdPath,
    headers: HeaderMap,
) -> Result<Response> {
    if state.block_sse {
        return Err(AppError::Unavailable(
            "the event stream is switched off (CALSCAN_TEST_BLOCK_SSE)".into(),
        ));
    }
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::BadRequest("Last-Event-ID must be a number".into()))
                .and_then(|v| parse_event_id(v, "Last-Event-ID"))
        })
        .transpose()?;
    let events = match state.scans.follow(&scan_id, last_event_id).await? {
        Following::Events(events) => events,
        Following::Unknown => return Err(AppError::NotFound(format!("no scan {scan_id}"))),
        // The browser has everything: 204 stops its reconnecting.
        Following::UpToDate => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let lang = state.lang_for(&headers);
    let frames = events.map(move |batch| batch.frame(lang));
    let body = with_keep_alive(frames).take_until(state.shutdown.clone().cancelled_owned());
    // Counted as open until hyper drops the body: the stream ended or the
    // client went away.
    let open = state.metrics.stream_opened();
    let body = body.map(move |frame| {
        let _counted = &open;
        Ok::<Bytes, Infallible>(frame)
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The frames, and a comment every [`KEEP_ALIVE`] so that no proxy takes
/// a quiet stream for a dead one; ends with the frames. Each frame is
/// encoded once per language and shared by every subscriber.
fn with_keep_alive(frames: impl Stream<Item = Bytes>) -> impl Stream<Item = Bytes> {
    async_stream::stream! {
        let mut frames = std::pin::pin!(frames);
        // A random first beat: streams opened together do not all beat together.
        let first = KEEP_ALIVE.mul_f64(rand::rng().random_range(0.5..1.0));
        let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + first, KEEP_ALIVE);
        loop {
            tokio::select! {
                biased;
                frame = frames.next() => match frame {
                    Some(frame) => yield frame,
                    None => return,
                },
                _ = quiet.tick() => yield Bytes::from_static(b":\n\n"),
            }
        }
    }
}
