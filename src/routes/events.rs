//! `GET /api/scans/{scan_id}/events`: the scan as Server-Sent Events.
//!
//! A watcher subscribes to the scan's channel first and reads the database
//! second, so nothing falls between the two: the `snapshot` carries every
//! log line after `Last-Event-ID` up to the scan's newest event id, and live
//! events at or below that id are skipped. A watcher that falls behind the
//! channel is refilled from the database; a scan running in another process
//! is followed by reading the database.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use futures::{Stream, StreamExt};
use rand::RngExt;
use tokio::sync::broadcast::error::RecvError;

use super::extract::{Admin, ScanIdPath, load_scan, logs_after, parse_event_id};
use crate::error::AppError;
use crate::scan::status::{Batch, EventKind, Published, StatusObject};
use crate::state::AppState;
use crate::store::{ScanRow, ScanStatus};

/// Comments keep proxies and browsers from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How often a scan running elsewhere is re-read where no wake-ups come
/// (SQLite, MySQL).
const POLL: Duration = Duration::from_millis(500);
/// How often it is re-read anyway where wake-ups come (PostgreSQL): a
/// wake-up lost with a dropped connection is late by at most this.
const POLL_WOKEN: Duration = Duration::from_secs(5);
/// Log lines read back per refill.
const REFILL_LIMIT: i64 = 100_000;
/// Events of a refill sent as one batch (one write).
const REFILL_BATCH: usize = 1_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/scans/{scan_id}/events", get(events))
}

async fn events(
    State(state): State<AppState>,
    _: Admin,
    ScanIdPath(scan_id): ScanIdPath,
    headers: HeaderMap,
) -> Result<Response, AppError> {
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
    // Subscribed before the row is read: no event can fall in between.
    let live = state.scans.subscribe(&scan_id);
    let row = load_scan(&state, &scan_id).await?;
    let finished = row.status != ScanStatus::Running;
    if finished && last_event_id.is_some_and(|n| n >= row.figures.last_event_id) {
        // The browser has everything: 204 stops its reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let lang = state.lang_for(&headers);
    let logs = logs_after(&state, &row, last_event_id.unwrap_or(0)).await?;
    // A finished scan's newest id is its `done` event's, sent right after.
    let snapshot_id = row.figures.last_event_id - i64::from(finished);
    let now = Utc::now();
    let first = Published::new(snapshot_id, EventKind::Snapshot, |lang| {
        StatusObject::new(&row, Some(&logs), now, lang)
    });
    let frames = follow(state.clone(), row, first, live).map(move |p| p.frame(lang));
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

/// The snapshot, then every later event once, ending with `done`.
fn follow(
    state: AppState,
    row: ScanRow,
    snapshot: Published,
    live: Option<tokio::sync::broadcast::Receiver<Arc<Batch>>>,
) -> impl Stream<Item = Arc<Batch>> {
    async_stream::stream! {
        let mut sent = snapshot.id;
        yield Arc::new(Batch::one(snapshot));
        if row.status != ScanStatus::Running {
            yield Arc::new(Batch::one(done(&row)));
            return;
        }
        match live {
            Some(mut live) => loop {
                match live.recv().await {
                    Ok(batch) => {
                        let Some(batch) = batch.after(sent) else {
                            continue;
                        };
                        sent = batch.last_id();
                        let last = batch.ends();
                        yield batch;
                        if last {
                            return;
                        }
                    }
                    // Fell behind the channel: the database has the gap.
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(scan_id = %row.scan_id, skipped, sent, "stream refilled from the database");
                        let Some((batches, newest, finished)) = refill(&state, &row.scan_id, sent).await else {
                            return;
                        };
                        for batch in batches {
                            yield batch;
                        }
                        sent = newest;
                        if finished {
                            return;
                        }
                    }
                    // The scan task is gone without a done we saw: follow the database.
                    Err(RecvError::Closed) => {
                        for await event in poll(state.clone(), row.scan_id.clone(), sent) {
                            yield event;
                        }
                        return;
                    }
                }
            },
            None => {
                for await event in poll(state.clone(), row.scan_id.clone(), sent) {
                    yield event;
                }
            }
        }
    }
}

/// Follows a scan that runs elsewhere by re-reading the database: when its
/// instance announces new events, and every so often in any case.
fn poll(state: AppState, scan_id: String, mut sent: i64) -> impl Stream<Item = Arc<Batch>> {
    async_stream::stream! {
        // Watched before the first read: no announcement falls in between.
        let mut woken = state.scans.registry().watch_elsewhere(&scan_id);
        let period = if state.wakeups { POLL_WOKEN } else { POLL };
        loop {
            let Some((batches, newest, finished)) = refill(&state, &scan_id, sent).await else {
                return;
            };
            for batch in batches {
                yield batch;
            }
            sent = newest;
            if finished {
                return;
            }
            // An announcement during the read above wakes this at once.
            let _ = tokio::time::timeout(period, woken.changed()).await;
        }
    }
}

/// [`catch_up`] in batches of [`REFILL_BATCH`] events, logging a failure
/// (the stream then ends; the browser reconnects with its `Last-Event-ID`).
async fn refill(
    state: &AppState,
    scan_id: &str,
    sent: i64,
) -> Option<(Vec<Arc<Batch>>, i64, bool)> {
    let (events, newest, finished) = catch_up(state, scan_id, sent)
        .await
        .inspect_err(|error| tracing::warn!(%error, scan_id, "cannot read a scan's events back"))
        .ok()?;
    let batches = events
        .chunks(REFILL_BATCH)
        .filter_map(|chunk| Batch::new(chunk.to_vec()))
        .map(Arc::new)
        .collect();
    Some((batches, newest, finished))
}

/// What the database holds after `sent`: log lines, then the newest
/// progress (or `done`). Returns the events, the newest id, and whether the
/// scan has finished.
async fn catch_up(
    state: &AppState,
    scan_id: &str,
    sent: i64,
) -> Result<(Vec<Published>, i64, bool), AppError> {
    // The row first: every log line up to its newest id is already written.
    let row = state
        .store
        .scan(scan_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no scan {scan_id}")))?;
    let newest = row.figures.last_event_id;
    let mut events: Vec<Published> = state
        .store
        .logs_after(scan_id, sent, REFILL_LIMIT)
        .await?
        .iter()
        .filter(|log| log.id <= newest)
        .map(Published::log)
        .collect();
    let finished = row.status != ScanStatus::Running;
    if finished {
        events.push(done(&row));
    } else if newest > sent && events.last().is_none_or(|e| e.id < newest) {
        events.push(Published::status(
            newest,
            EventKind::Progress,
            &row,
            Utc::now(),
        ));
    }
    Ok((events, newest.max(sent), finished))
}

fn done(row: &ScanRow) -> Published {
    Published::status(row.figures.last_event_id, EventKind::Done, row, Utc::now())
}
