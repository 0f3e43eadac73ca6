//! The gate every simulator request passes before its resource: the bearer
//! token (which also says who is calling), the fixed rate-limit window per
//! token with its `X-RateLimit-*` headers, injected and random faults, the
//! configured latency, and the counts tests read from `SimStats`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngExt;

use super::answer::{Refusal, error, too_many_requests, unauthenticated};
use super::{Fault, RateWindow, Shared, Sim};

/// Who is calling: the index of the token's user in `OrgData::users`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caller(pub(super) usize);

/// What the gate decided for one request.
enum Verdict {
    Pass,
    Fault(Fault),
    Throttled,
}

/// Authentication, rate limit, faults and latency, for every request.
pub(super) async fn gate(State(sim): State<Sim>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let caller = match token {
        Some(t) if t == sim.config.token => Caller(0),
        Some(t) if sim.config.member_token.as_deref() == Some(t) => Caller(1),
        _ => return unauthenticated(),
    };
    let token = token.unwrap_or_default().to_owned();
    let path = request.uri().path().to_owned();
    let has_page_token = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("page_token=")));

    let (verdict, rate) = {
        let mut state = sim.lock();
        let state = &mut *state;
        state.stats.requests += 1;
        if path == "/scheduled_events" {
            state.stats.event_list_requests += 1;
        } else if path.ends_with("/invitees") {
            state.stats.invitee_requests += 1;
        }
        let now = tokio::time::Instant::now();
        let window = state.windows.entry(token).or_insert(RateWindow {
            started: now,
            admitted: 0,
            arrived: 0,
        });
        if now.duration_since(window.started) >= sim.config.rate_window {
            window.started = now;
            window.admitted = 0;
            window.arrived = 0;
        }
        window.arrived += 1;
        state.stats.max_in_window = state.stats.max_in_window.max(window.arrived);
        let throttled = window.admitted >= sim.config.rate_limit;
        if !throttled {
            window.admitted += 1;
        }
        let reset = (window.started + sim.config.rate_window).saturating_duration_since(now);
        let rate = RateState {
            limit: sim.config.rate_limit,
            remaining: sim.config.rate_limit.saturating_sub(window.admitted),
            reset_s: reset.as_secs_f64().ceil() as u64,
        };
        let verdict = if throttled {
            state.stats.rate_limited += 1;
            Verdict::Throttled
        } else {
            let applies = |f: &Fault| has_page_token || *f != Fault::RejectPageToken;
            if state.faults.front().is_some_and(applies) {
                state.stats.faults += 1;
                state
                    .faults
                    .pop_front()
                    .map_or(Verdict::Pass, Verdict::Fault)
            } else if sim.config.fail_rate > 0.0
                && state.rng.random_bool(sim.config.fail_rate.min(1.0))
            {
                state.stats.faults += 1;
                Verdict::Fault(Fault::ServerError(if state.rng.random_bool(0.5) {
                    500
                } else {
                    503
                }))
            } else {
                Verdict::Pass
            }
        };
        state.in_flight += 1;
        state.stats.max_in_flight = state.stats.max_in_flight.max(state.in_flight);
        (verdict, rate)
    };
    let _answering = InFlight(&sim);

    if !sim.config.latency.is_zero() {
        tokio::time::sleep(sim.config.latency).await;
    }
    let mut response = match verdict {
        Verdict::Pass => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Verdict::Throttled => too_many_requests(),
        Verdict::Fault(fault) => return fault_response(fault, &rate).await,
    };
    rate.apply(response.headers_mut());
    response
}

/// Counts a request as being answered until it is dropped.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        state.stats.answered += 1;
    }
}

#[derive(Debug, Clone, Copy)]
struct RateState {
    limit: u32,
    remaining: u32,
    reset_s: u64,
}

impl RateState {
    fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", self.limit.into());
        headers.insert("x-ratelimit-remaining", self.remaining.into());
        headers.insert("x-ratelimit-reset", self.reset_s.into());
    }
}

async fn fault_response(fault: Fault, rate: &RateState) -> Response {
    let mut response = match fault {
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                status,
                "Internal Server Error",
                "The server encountered an unexpected condition that prevented it from fulfilling the request.",
                None,
            )
        }
        Fault::HtmlBadGateway => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
        )
            .into_response(),
        Fault::ResetConnection => {
            // The status line and headers go out, then the body fails: hyper
            // drops the connection, as a reset mid-answer would.
            let broken = futures::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(broken),
            )
                .into_response()
        }
        Fault::Stall(how_long) => {
            tokio::time::sleep(how_long).await;
            error(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout", "The request timed out.", None)
        }
        Fault::RateLimited { reset_s, retry_after_s } => {
            let mut response = too_many_requests();
            let headers = response.headers_mut();
            RateState { limit: rate.limit, remaining: 0, reset_s }.apply(headers);
            if let Some(after) = retry_after_s {
                headers.insert(header::RETRY_AFTER, after.into());
            }
            return response;
        }
        Fault::Unauthenticated => return unauthenticated(),
        Fault::RejectPageToken => Refusal::Invalid("page_token", "is invalid").into_response(),
    };
    rate.apply(response.headers_mut());
    response
}
