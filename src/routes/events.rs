//! `GET /api/scans/{scan_id}/events`: the scan as Server-Sent Events.
//!
//! What the events are and in which order comes from
//! [`Scans::follow`](crate::scan::Scans::follow); this route adds HTTP:
//! `Last-Event-ID`, 204 for a browser that has everything, the headers,
//! the keep-alive comments and the end at shutdown.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use futures::stream::BoxStream;
use hyper::body::{Body as HttpBody, Frame};
use rand::RngExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::extract::{Admin, ScanIdPath, parse_event_id};
use crate::app::ShutdownWatch;
use crate::error::{AppError, ErrorBody, Result};
use crate::i18n::Lang;
use crate::metrics::OpenStream;
use crate::scan::Following;
use crate::scan::status::{Batch, SseEvent};
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
    let body = EventBody::new(
        events,
        state.lang_for(&headers),
        &state.shutdown,
        state.metrics.stream_opened(),
    );
    let takeover = Takeover(Arc::new(Mutex::new(Some(body))));
    let mut response = (
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
        Body::new(StreamBody::Waiting(takeover.clone())),
    )
        .into_response();
    response.extensions_mut().insert(takeover);
    Ok(response)
}

/// An event stream the server may write itself, straight to the socket,
/// once hyper has written the answer's head: see [`Takeover::take`]. Under
/// any other server the answer's body writes the stream through hyper.
#[derive(Clone)]
pub(crate) struct Takeover(Arc<Mutex<Option<EventBody>>>);

impl Takeover {
    /// The stream, unless the body has begun to write it.
    pub(crate) fn take(&self) -> Option<EventBody> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The answer's body: the stream, unless the server took it over.
enum StreamBody {
    Waiting(Takeover),
    Writing(EventBody),
}

impl HttpBody for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let StreamBody::Waiting(takeover) = this {
            match takeover.take() {
                Some(body) => *this = StreamBody::Writing(body),
                None => return Poll::Ready(None),
            }
        }
        match this {
            StreamBody::Writing(body) => Pin::new(body).poll_frame(cx),
            StreamBody::Waiting(_) => Poll::Ready(None),
        }
    }
}

/// Writes an event stream taken over from hyper (its head is written, its
/// body is the rest of the connection) to its socket, until the stream
/// ends, the server stops or the client goes; then closes the socket.
///
/// What a delivery costs is what the task touches when an event wakes it:
/// here that is the stream, one `write` and the socket's readiness, not
/// hyper's dispatcher, its buffers and its write queue. And an idle stream
/// holds no buffer: hyper's two 8 KiB ones go with hyper.
pub(crate) async fn write_out(mut socket: TcpStream, mut body: EventBody) {
    let mut unsent = Bytes::new();
    let ended = std::future::poll_fn(|cx| {
        loop {
            // A client that closes or resets its end has left: the stream
            // ends now, not at the next write that fails.
            if let Poll::Ready(ready) = socket.poll_read_ready(cx) {
                let mut discard = [0u8; 64];
                match ready.and_then(|()| socket.try_read(&mut discard)) {
                    Ok(0) => return Poll::Ready(Ended::ClientLeft),
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return Poll::Ready(Ended::ClientLeft),
                }
            }
            while !unsent.is_empty() {
                match Pin::new(&mut socket).poll_write(cx, &unsent) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Ended::ClientLeft),
                    Poll::Ready(Ok(n)) => unsent = unsent.slice(n..),
                    // Not one more event until the client has taken this
                    // one: what it misses meanwhile is read back later.
                    Poll::Pending => return Poll::Pending,
                }
            }
            match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    unsent = frame.into_data().unwrap_or_default();
                }
                Poll::Ready(None) => return Poll::Ready(Ended::Stream),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    drop(body);
    if ended == Ended::Stream {
        // The end of the body: the client reads it as the stream's end.
        let _ = socket.shutdown().await;
    }
}

#[derive(PartialEq)]
enum Ended {
    Stream,
    ClientLeft,
}

/// An event stream's body: the frames of `events` in the client's
/// language (each encoded once and shared by every subscriber), a comment
/// every [`KEEP_ALIVE`] so that no proxy takes a quiet stream for a dead
/// one, and the end with the events or at shutdown.
///
/// One state machine rather than a stack of stream adapters, and what
/// does not change between polls is not polled again: an event wakes
/// every open stream, and what a wake-up touches is what a delivery costs.
pub(crate) struct EventBody {
    events: BoxStream<'static, Arc<Batch>>,
    lang: Lang,
    stopping: ShutdownWatch,
    /// The next keep-alive comment, when `beat_at` has passed.
    beat: Pin<Box<Sleep>>,
    beat_at: Instant,
    /// The waker `beat` holds: it needs no poll until it is due or the
    /// waker changes.
    armed: Option<Waker>,
    /// Counted as open until hyper drops the body: the stream ended or the
    /// client went away.
    _open: OpenStream,
}

impl EventBody {
    fn new(
        events: BoxStream<'static, Arc<Batch>>,
        lang: Lang,
        shutdown: &CancellationToken,
        open: OpenStream,
    ) -> Self {
        // A random first beat: streams opened together do not all beat together.
        let beat_at = Instant::now() + KEEP_ALIVE.mul_f64(rand::rng().random_range(0.5..1.0));
        Self {
            events,
            lang,
            stopping: ShutdownWatch::new(shutdown),
            beat: Box::pin(tokio::time::sleep_until(beat_at)),
            beat_at,
            armed: None,
            _open: open,
        }
    }

    /// Ready when a keep-alive comment is due.
    fn poll_beat(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let armed = self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if armed && Instant::now() < self.beat_at {
            return Poll::Pending;
        }
        if self.beat.as_mut().poll(cx).is_ready() {
            self.beat_at = Instant::now() + KEEP_ALIVE;
            self.beat.as_mut().reset(self.beat_at);
            // Polled again at the next Pending, which arms the new beat.
            self.armed = None;
            return Poll::Ready(());
        }
        self.armed = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The keep-alive comment.
const BEAT: Bytes = Bytes::from_static(b":\n\n");

impl HttpBody for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.stopping.poll_stopping(cx) {
            return Poll::Ready(None);
        }
        let frame = match this.events.poll_next_unpin(cx) {
            Poll::Ready(Some(batch)) => batch.frame(this.lang),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return this.poll_beat(cx).map(|()| Some(Ok(Frame::data(BEAT)))),
        };
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use futures::channel::mpsc;

    use super::*;
    use crate::i18n::Texts;
    use crate::metrics::Metrics;
    use crate::scan::status::Published;
    use crate::store::LogRow;

    async fn next(body: &mut EventBody) -> Option<Bytes> {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        frame.ok()?.into_data().ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_sends_its_frames_beats_when_quiet_and_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        let (events, live) = mpsc::unbounded::<Arc<Batch>>();
        let metrics = Metrics::new();
        let mut body = EventBody::new(live.boxed(), Lang::En, &shutdown, metrics.stream_opened());
        let opened = Instant::now();

        // The first beat comes at random within the first period, then one each period.
        assert_eq!(next(&mut body).await, Some(BEAT));
        let first = opened.elapsed();
        assert!(first >= KEEP_ALIVE / 2 && first <= KEEP_ALIVE, "{first:?}");
        assert_eq!(next(&mut body).await, Some(BEAT));
        assert_eq!(opened.elapsed() - first, KEEP_ALIVE);

        let line = Published::log(&LogRow {
            id: 1,
            message: Texts::same("probe"),
            created_at: Utc::now(),
        });
        let batch = Arc::new(Batch::one(line));
        events.unbounded_send(batch.clone()).unwrap();
        assert_eq!(next(&mut body).await, Some(batch.frame(Lang::En)));

        shutdown.cancel();
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_ends_with_its_events() {
        let shutdown = CancellationToken::new();
        let (events, live) = mpsc::unbounded::<Arc<Batch>>();
        let mut body = EventBody::new(
            live.boxed(),
            Lang::De,
            &shutdown,
            Metrics::new().stream_opened(),
        );
        drop(events);
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_body_writes_the_stream_unless_the_server_took_it_over() {
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        let open = |events: mpsc::UnboundedReceiver<Arc<Batch>>| {
            let body = EventBody::new(events.boxed(), Lang::En, &shutdown, metrics.stream_opened());
            Takeover(Arc::new(Mutex::new(Some(body))))
        };
        let frame = |body: &mut StreamBody| {
            let mut cx = Context::from_waker(Waker::noop());
            match Pin::new(body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => Some(frame.into_data().unwrap()),
                Poll::Ready(None) => None,
                other => panic!("{other:?}"),
            }
        };
        let batch = Arc::new(Batch::one(Published::log(&LogRow {
            id: 7,
            message: Texts::same("probe"),
            created_at: Utc::now(),
        })));

        // Under another server: the body writes it.
        let (events, live) = mpsc::unbounded();
        let takeover = open(live);
        let mut body = StreamBody::Waiting(takeover.clone());
        events.unbounded_send(batch.clone()).unwrap();
        assert_eq!(frame(&mut body), Some(batch.frame(Lang::En)));
        assert!(takeover.take().is_none(), "the body has it");

        // Taken over: the body is empty and the stream is the server's.
        let (events, live) = mpsc::unbounded();
        let takeover = open(live);
        let mut body = StreamBody::Waiting(takeover.clone());
        let mut taken = takeover.take().expect("not yet written");
        assert_eq!(frame(&mut body), None);
        events.unbounded_send(batch.clone()).unwrap();
        assert_eq!(next(&mut taken).await, Some(batch.frame(Lang::En)));
    }
}
