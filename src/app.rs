//! The application: its state, the router that merges the feature routers,
//! and the server that runs until it is told to stop.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{self, Poll, Waker};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower_http::LatencyUnit;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};

use crate::auth::{self, Auth, AuthSettings};
use crate::calendly::{CalendlyClient, ClientSettings};
use crate::metrics::Metrics;
use crate::routes;
use crate::scan::{ScanSettings, Scans};
use crate::state::AppState;
use crate::store::{self, Store};

/// Everything the server needs, resolved from the command line.
#[derive(Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: String,
    /// Which table holds the customers, and its columns.
    pub customers: crate::store::CustomerSettings,
    pub calendly: Option<ClientSettings>,
    /// The pages' and the API's language when a request asks for none.
    pub lang: crate::i18n::Lang,
    /// How scans run.
    pub scan: ScanSettings,
    pub auth: AuthSettings,
    /// `CALENDLY_WEBHOOK_SIGNING_KEY`.
    pub webhook_key: Option<secrecy::SecretString>,
    /// Testing only: the event stream answers 503, as behind a proxy that
    /// blocks it, so the pages' polling fallback can be tested.
    pub block_sse: bool,
}

/// The router: feature routers merged, then the layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(routes::scans::routes())
        .merge(routes::customers::routes())
        .merge(routes::compat::routes())
        .merge(routes::openapi::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::pages::routes())
        .merge(routes::login::routes())
        // Every request but an event stream is read and answered within
        // this, so a body trickled or stalled does not hold its connection.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .merge(routes::events::routes())
        .fallback(routes::pages::not_found)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                crate::error::ErrorBody::json("method not allowed"),
            )
                .into_response()
        })
        .layer(middleware::from_fn(crate::error::log_failures))
        // A span per request (method, route, never the query: it may hold
        // an email), and a line when it is answered with status and latency.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::extract::Request| {
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("(none)", axum::extract::MatchedPath::as_str);
                    tracing::info_span!("request", method = %request.method(), route)
                })
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                ),
        )
        // Health checks come every few seconds: their lines are DEBUG.
        .merge(
            routes::health::routes().layer(
                TraceLayer::new_for_http()
                    .make_span_with(DefaultMakeSpan::new().level(tracing::Level::DEBUG))
                    .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
            ),
        )
        .layer(middleware::from_fn(auth::same_origin_only))
        .layer(middleware::from_fn(crate::error::json_rejections))
        // Every answer: nothing is framed, sniffed, sent as a referrer
        // elsewhere, or loaded from anywhere but here; and nothing is kept in
        // a cache (the pages and the API show pupils' and parents' data)
        // unless the route says otherwise (the assets, the event stream).
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// A bound, ready server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds, opens and migrates the database, recovers scans a dead process
    /// left running, and prepares the routes. `shutdown` stops it.
    /// The address is bound first: a port in use fails the start before
    /// anything is created.
    pub async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let listener = listen(settings.bind)?;
        let store = store::connect_with(&settings.database_url, &settings.customers)
            .await
            .context("cannot open the database")?;
        Self::assemble(settings, listener, store, shutdown).await
    }

    /// [`Self::build`] on a store already open (`settings.database_url` is
    /// not read).
    pub async fn with_store(
        settings: Settings,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let listener = listen(settings.bind)?;
        Self::assemble(settings, listener, store, shutdown).await
    }

    async fn assemble(
        settings: Settings,
        listener: TcpListener,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let calendly = settings
            .calendly
            .map(CalendlyClient::new)
            .transpose()
            .context("invalid Calendly settings")?;
        if calendly.is_none() {
            tracing::warn!("CALENDLY_TOKEN is not set: scans will end with an error saying so");
        }
        let metrics = Metrics::new();
        let lang = settings.lang;
        let scans = Scans::new(
            store.clone(),
            calendly,
            settings.scan,
            metrics.clone(),
            shutdown.clone(),
        );
        scans.recover().await.context("cannot recover scans")?;
        scans.spawn_lease_sweeper();
        scans.spawn_schedule();
        scans
            .spawn_wakeup_listener()
            .await
            .context("cannot listen for other instances")?;
        let auth = Auth::new(settings.auth).await?;
        Ok(Self {
            listener,
            state: AppState {
                store,
                scans,
                auth: Arc::new(auth),
                lang,
                block_sse: settings.block_sse,
                metrics,
                webhook_key: settings.webhook_key,
                shutdown,
            },
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until shutdown; then ends the streams, lets running scans
    /// record `interrupted`, and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let state = self.state.clone();
        serve(self.listener, router(self.state), state.shutdown.clone()).await;
        state.scans.drain(Duration::from_secs(5)).await;
        Ok(())
    }
}

/// How long a client may take to send a request's head, on a new
/// connection and between requests on one kept alive: a connection that
/// sends nothing, or a header a byte at a time, is closed after this.
/// An event stream is not affected (its request was read long before).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request that is not an event stream may take, its body read
/// and its answer made; past it the answer is 408 and the connection closes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `app` on `listener` until `shutdown`, then lets every open
/// connection finish (the event streams end on shutdown) and returns.
/// `axum::serve` gives hyper no timer, so no header-read timeout.
async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let connections = tokio_util::task::TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Events are small writes: without NODELAY, Nagle's algorithm and
        // delayed ACKs hold them back for up to 40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let taken = Arc::new(Mutex::new(None));
        let service = Serve {
            app: app.clone(),
            peer,
            taken: taken.clone(),
        };
        // Boxed: hyper's state (its two 8 KiB buffers, its dispatcher) is
        // let go whole when an event stream takes the socket over.
        let mut connection = Box::new(http.serve_connection(TokioIo::new(tcp), service));
        let mut stopping = ShutdownWatch::new(&shutdown);
        connections.spawn(async move {
            let mut shutting_down = false;
            let ended = std::future::poll_fn(|cx| {
                loop {
                    if let Poll::Ready(ended) = connection.poll_without_shutdown(cx) {
                        return Poll::Ready(ended);
                    }
                    if shutting_down || !stopping.poll_stopping(cx) {
                        return Poll::Pending;
                    }
                    // Answers the request in hand, if any, and closes.
                    Pin::new(&mut *connection).graceful_shutdown();
                    shutting_down = true;
                }
            })
            .await;
            drop(stopping);
            let mut socket = connection.into_parts().io.into_inner();
            let stream = taken.lock().unwrap_or_else(PoisonError::into_inner).take();
            match (ended, stream) {
                (Ok(()), Some(stream)) => routes::events::write_out(socket, stream).await,
                (ended, _) => {
                    if let Err(error) = ended {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut socket).await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// A connection's service: the router, told the client's address. An
/// event stream's answer goes to hyper as its head alone, close-delimited
/// (HTTP/1.0 framing, `connection: close`), and the stream itself to
/// `taken`, for the connection's task to write once hyper is done.
struct Serve {
    app: Router,
    peer: SocketAddr,
    taken: Arc<Mutex<Option<routes::events::EventBody>>>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Serve {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, mut request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        // A HEAD has no body to write.
        let get = request.method() == axum::http::Method::GET;
        let answer =
            tower::ServiceExt::oneshot(self.app.clone(), request.map(axum::body::Body::new));
        let taken = self.taken.clone();
        Box::pin(async move {
            let mut response = answer.await?;
            let takeover = response
                .extensions_mut()
                .remove::<routes::events::Takeover>()
                .filter(|_| get)
                .and_then(|takeover| takeover.take());
            if let Some(stream) = takeover {
                *taken.lock().unwrap_or_else(PoisonError::into_inner) = Some(stream);
                *response.version_mut() = axum::http::Version::HTTP_10;
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                // No frame and no length: hyper writes the head alone, and
                // the body is the rest of the connection.
                *response.body_mut() = axum::body::Body::from_stream(futures::stream::empty::<
                    Result<axum::body::Bytes, std::convert::Infallible>,
                >());
            }
            Ok(response)
        })
    }
}

/// Watches the server's shutdown from a task that is woken often (an
/// event stream and its connection: every event wakes each). The token's
/// future is polled only to hand it a new waker; otherwise the token is
/// asked, once. It is the server's token, shared: a child token for each
/// would be one more cold allocation touched at every wake-up.
pub(crate) struct ShutdownWatch {
    token: CancellationToken,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `ended` holds.
    armed: Option<Waker>,
}

impl ShutdownWatch {
    pub(crate) fn new(token: &CancellationToken) -> Self {
        Self {
            token: token.clone(),
            ended: Box::pin(token.clone().cancelled_owned()),
            armed: None,
        }
    }

    /// Whether the server is shutting down; if not, `cx` is woken when it
    /// does.
    pub(crate) fn poll_stopping(&mut self, cx: &mut task::Context<'_>) -> bool {
        if self.token.is_cancelled() {
            return true;
        }
        if self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        if self.ended.as_mut().poll(cx).is_ready() {
            return true;
        }
        self.armed = Some(cx.waker().clone());
        false
    }
}

/// The kernel's send buffer of every connection (accepted sockets inherit
/// it from the listener). Left to itself Linux grows a connection's buffer up
/// to `tcp_wmem`'s maximum, 4 MiB, for a watcher that stops reading; fixed,
/// a stalled watcher costs at most this much (the kernel books twice it),
/// and what it misses is read back from the database when it reads again.
/// 128 KiB carries an event stream or a page at full speed at any latency a
/// browser can live with (128 KiB per round trip: 1.3 MB/s at 100 ms).
const SEND_BUFFER: u32 = 128 * 1024;

/// A listener on `addr`, or a sentence saying why not and what to do.
fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use std::io::ErrorKind;
    let port = addr.port();
    let ip = addr.ip();
    open_listener(addr).map_err(|error| match error.kind() {
        ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {addr}: port {port} is in use by another program; stop it, or \
             choose another address with --bind or CALSCAN_BIND (say {ip}:{})",
            port.wrapping_add(1).max(1024)
        ),
        ErrorKind::AddrNotAvailable => anyhow::anyhow!(
            "cannot listen on {addr}: {ip} is not an address of this machine; use 127.0.0.1, \
             0.0.0.0 or one of its own with --bind or CALSCAN_BIND"
        ),
        ErrorKind::PermissionDenied => anyhow::anyhow!(
            "cannot listen on {addr}: port {port} needs privileges this process lacks; choose \
             a port from 1024 up with --bind or CALSCAN_BIND"
        ),
        _ => anyhow::anyhow!("cannot listen on {addr}: {error}"),
    })
}

/// A listener with a backlog for thousands of streams connecting at once
/// (the kernel caps it at `net.core.somaxconn`).
fn open_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
