//! The simulator's HTTP side: authentication, the rate-limit window, injected
//! faults and latency in one middleware; Calendly's resources in handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde_json::{Value, json};

use super::data::{OrgData, SimEvent, SimInvitee, SimUser};
use super::paging::{Filters, PageSpan};
use super::{Fault, Shared};

type Sim = Arc<Shared>;
type Params = Query<Vec<(String, String)>>;

/// Calendly's default and largest page sizes.
const DEFAULT_COUNT: usize = 20;
const MAX_COUNT: usize = 100;

pub(super) fn router(shared: Sim) -> Router {
    Router::new()
        .route("/users/{uuid}", get(user))
        .route("/scheduled_events", get(list_events))
        .route("/scheduled_events/{uuid}", get(one_event))
        .route("/scheduled_events/{uuid}/invitees", get(list_invitees))
        .route(
            "/scheduled_events/{uuid}/invitees/{invitee}",
            get(one_invitee),
        )
        .route(
            "/webhook_subscriptions",
            get(super::hooks::list).post(super::hooks::create),
        )
        .route(
            "/webhook_subscriptions/{uuid}",
            get(super::hooks::one).delete(super::hooks::delete),
        )
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

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
async fn gate(State(sim): State<Sim>, mut request: Request, next: Next) -> Response {
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
        let window = state.windows.entry(token).or_insert(super::RateWindow {
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
        Verdict::Throttled => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "You have exceeded the rate limit. Please try again later.",
            None,
        ),
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
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "You have exceeded the rate limit. Please try again later.",
                None,
            );
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

// ---- resources -------------------------------------------------------------

async fn user(
    State(sim): State<Sim>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(uuid): Path<String>,
) -> Response {
    let org = sim.read_org();
    let found = if uuid == "me" {
        org.users.get(caller.0)
    } else {
        org.users.iter().find(|u| u.uuid == uuid)
    };
    match found {
        Some(u) => resource(user_json(&sim, &org, u)),
        None => not_found(),
    }
}

async fn list_events(
    State(sim): State<Sim>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(params): Params,
) -> Result<Response, Refusal> {
    let org = sim.read_org();
    let get = |key: &str| param(&params, key);
    let listing = Listing::parse(
        &params,
        "start_time",
        &sim,
        &[
            "organization",
            "user",
            "group",
            "invitee_email",
            "status",
            "min_start_time",
            "max_start_time",
        ],
    )?;
    let caller_user = &org.users[caller.0];
    let org_uri = sim.org_uri(&org);
    let organization = get("organization");
    let user = get("user");
    if organization.is_none() && user.is_none() && get("group").is_none() {
        return Err(Refusal::Invalid(
            "organization",
            "one of organization, user or group is required",
        ));
    }
    if let Some(o) = organization
        && (o != org_uri || !caller_user.admin)
    {
        return Err(Refusal::Forbidden(
            "You do not have permission to access this resource.",
        ));
    }
    let host = match user {
        None => None,
        Some(uri) => match org.users.iter().position(|u| sim.user_uri(u) == uri) {
            None => return Err(Refusal::Forbidden("This user is not in your organization")),
            Some(i) if i != caller.0 && organization.is_none() => {
                return Err(Refusal::Forbidden(
                    "Please also specify organization when requesting events for a user within your organization.",
                ));
            }
            Some(i) => Some(i),
        },
    };
    if get("group").is_some() {
        return Err(Refusal::NotFound); // the simulated organization has no groups
    }
    // Without organization a member sees only their own events.
    let host = host.or((organization.is_none()).then_some(caller.0));
    let status = get("status");
    let invitee_email = get("invitee_email").map(|e| e.trim().to_lowercase());
    let min = parse_time(get("min_start_time"), "min_start_time")?;
    let max = parse_time(get("max_start_time"), "max_start_time")?;
    let mut events: Vec<&SimEvent> = org
        .events
        .iter()
        .filter(|e| host.is_none_or(|h| e.host == h))
        .filter(|e| status.is_none_or(|s| (s == "canceled") == e.canceled))
        .filter(|e| min.is_none_or(|m| e.start >= m) && max.is_none_or(|m| e.start <= m))
        .filter(|e| {
            invitee_email.as_ref().is_none_or(|want| {
                e.invitees
                    .iter()
                    .any(|i| i.email.trim().to_lowercase() == *want)
            })
        })
        .collect();
    Ok(listing.page(
        &sim,
        "scheduled_events",
        &mut events,
        |e| e.start,
        |e| event_json(&sim, &org, e),
    ))
}

async fn one_event(State(sim): State<Sim>, Path(uuid): Path<String>) -> Response {
    let org = sim.read_org();
    match org.events.iter().find(|e| e.uuid == uuid) {
        Some(e) => resource(event_json(&sim, &org, e)),
        None => not_found(),
    }
}

async fn list_invitees(
    State(sim): State<Sim>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(uuid): Path<String>,
    Query(params): Params,
) -> Result<Response, Refusal> {
    let org = sim.read_org();
    let event = org
        .events
        .iter()
        .find(|e| e.uuid == uuid)
        .ok_or(Refusal::NotFound)?;
    if !org.users[caller.0].admin && event.host != caller.0 {
        return Err(Refusal::Forbidden("You are not allowed to view this event"));
    }
    let listing = Listing::parse(&params, "created_at", &sim, &["email", "status"])?;
    let get = |key: &str| param(&params, key);
    let status = get("status");
    let email = get("email").map(|e| e.trim().to_lowercase());
    let mut invitees: Vec<&SimInvitee> = event
        .invitees
        .iter()
        .filter(|i| status.is_none_or(|s| (s == "canceled") == i.canceled))
        .filter(|i| {
            email
                .as_ref()
                .is_none_or(|want| i.email.trim().to_lowercase() == *want)
        })
        .collect();
    let endpoint = format!("scheduled_events/{uuid}/invitees");
    Ok(listing.page(
        &sim,
        &endpoint,
        &mut invitees,
        |i| i.created,
        |i| invitee_json(&sim, event, i),
    ))
}

async fn one_invitee(
    State(sim): State<Sim>,
    Path((uuid, invitee)): Path<(String, String)>,
) -> Response {
    let org = sim.read_org();
    let found = org.events.iter().find(|e| e.uuid == uuid).and_then(|e| {
        e.invitees
            .iter()
            .find(|i| i.uuid == invitee)
            .map(|i| (e, i))
    });
    match found {
        Some((e, i)) => resource(invitee_json(&sim, e, i)),
        None => not_found(),
    }
}

// ---- listing and paging ----------------------------------------------------

/// The paging part of a list request: `count`, `sort`, `page_token`.
pub(super) struct Listing {
    count: usize,
    descending: bool,
    offset: usize,
    filters: Filters,
}

impl Listing {
    /// Validates `count`, `sort` (on `sort_field`), `status` and the page
    /// token against the other filters (`filter_keys`).
    pub(super) fn parse(
        params: &[(String, String)],
        sort_field: &str,
        sim: &Shared,
        filter_keys: &[&str],
    ) -> Result<Self, Refusal> {
        let get = |key: &str| param(params, key);
        let count = match get("count") {
            None => DEFAULT_COUNT,
            Some(c) => match c.parse::<usize>() {
                Ok(n) if (1..=MAX_COUNT).contains(&n) => n,
                _ => return Err(Refusal::Invalid("count", "must be between 1 and 100")),
            },
        };
        let mut descending = match get("sort") {
            None => false,
            Some(s) if s == format!("{sort_field}:asc") => false,
            Some(s) if s == format!("{sort_field}:desc") => true,
            Some(_) => return Err(Refusal::Invalid("sort", "is invalid")),
        };
        if get("status").is_some_and(|s| s != "active" && s != "canceled") {
            return Err(Refusal::Invalid(
                "status",
                "must be one of active, canceled",
            ));
        }
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| filter_keys.contains(&k.as_str()))
            .cloned()
            .collect();
        pairs.push(("count".into(), count.to_string()));
        let filters = Filters::new(pairs);
        let mut offset = 0;
        if let Some(token) = get("page_token") {
            match filters.redeem(token, sim.now_ms(), sim.config.page_token_ttl) {
                Some(cursor) => {
                    offset = cursor.offset;
                    descending = cursor.descending;
                }
                None => return Err(Refusal::Invalid("page_token", "is invalid")),
            }
        }
        Ok(Self {
            count,
            descending,
            offset,
            filters,
        })
    }

    /// Sorts `items` by `key` (then by position, which is stable), cuts this
    /// page out and renders it with its pagination object.
    pub(super) fn page<T>(
        &self,
        sim: &Shared,
        endpoint: &str,
        items: &mut Vec<&T>,
        key: impl Fn(&T) -> DateTime<Utc>,
        render: impl Fn(&T) -> Value,
    ) -> Response {
        items.sort_by_key(|i| key(i));
        if self.descending {
            items.reverse();
        }
        let page: Vec<Value> = items
            .iter()
            .skip(self.offset)
            .take(self.count)
            .map(|i| render(i))
            .collect();
        let span = PageSpan {
            offset: self.offset,
            count: self.count,
            len: page.len(),
            total: items.len(),
            descending: self.descending,
        };
        let endpoint = format!("{}/{endpoint}", sim.base_url);
        let pagination = self.filters.pagination(&endpoint, span, sim.now_ms());
        axum::Json(json!({"collection": page, "pagination": pagination})).into_response()
    }
}

/// The first value of query parameter `key`.
pub(super) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn parse_time(value: Option<&str>, name: &'static str) -> Result<Option<DateTime<Utc>>, Refusal> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Refusal::Invalid(name, "is invalid"))
        })
        .transpose()
}

// ---- JSON shapes, field for field as Calendly's API v2 answers --------------

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as Calendly writes every timestamp.
pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn user_json(sim: &Shared, org: &OrgData, u: &SimUser) -> Value {
    json!({
        "avatar_url": null,
        "created_at": "2024-02-01T09:10:11.123456Z",
        "current_organization": sim.org_uri(org),
        "email": u.email,
        "locale": "de",
        "name": u.name,
        "resource_type": "User",
        "scheduling_url": format!("https://calendly.com/{}", u.slug),
        "slug": u.slug,
        "time_notation": "24h",
        "timezone": "Europe/Berlin",
        "updated_at": "2024-06-01T10:00:00.000000Z",
        "uri": sim.user_uri(u),
    })
}

pub(super) fn event_json(sim: &Shared, org: &OrgData, e: &SimEvent) -> Value {
    let host = &org.users[e.host.min(org.users.len() - 1)];
    let active = e.invitees.iter().filter(|i| !i.canceled).count();
    let created = timestamp(e.created);
    let mut event = json!({
        "booking_method": "instant",
        "calendar_event": {"external_id": e.uuid.replace('-', ""), "kind": "google"},
        "created_at": created,
        "end_time": timestamp(e.end),
        "event_guests": e.guests.iter().map(|g| json!({"created_at": created, "email": g, "updated_at": created})).collect::<Vec<_>>(),
        "event_memberships": [{
            "buffered_end_time": timestamp(e.end),
            "buffered_start_time": timestamp(e.start),
            "user": sim.user_uri(host),
            "user_email": host.email,
            "user_name": host.name,
        }],
        "event_type": format!("{}/event_types/{}", sim.base_url, e.event_type),
        "invitees_counter": {"active": active, "limit": e.invitee_limit, "total": e.invitees.len()},
        "location": e.location,
        "meeting_notes_html": null,
        "meeting_notes_plain": null,
        "name": e.name,
        "start_time": timestamp(e.start),
        "status": if e.canceled { "canceled" } else { "active" },
        "updated_at": created,
        "uri": format!("{}/scheduled_events/{}", sim.base_url, e.uuid),
    });
    if e.canceled {
        event["cancellation"] = json!({
            "canceled_by": host.name,
            "canceler_type": "host",
            "created_at": created,
            "reason": null,
        });
    }
    event
}

pub(super) fn invitee_json(sim: &Shared, e: &SimEvent, i: &SimInvitee) -> Value {
    let event_uri = format!("{}/scheduled_events/{}", sim.base_url, e.uuid);
    let invitee_uri = |(event, invitee): &(String, String)| {
        format!(
            "{}/scheduled_events/{event}/invitees/{invitee}",
            sim.base_url
        )
    };
    let created = timestamp(i.created);
    let mut invitee = json!({
        "cancel_url": format!("https://calendly.com/cancellations/{}", i.uuid),
        "created_at": created,
        "email": i.email,
        "event": event_uri,
        "first_name": i.first_name,
        "invitee_scheduled_by": null,
        "last_name": i.last_name,
        "name": i.name,
        "new_invitee": i.new_invitee.as_ref().map(invitee_uri),
        "no_show": null,
        "old_invitee": i.old_invitee.as_ref().map(invitee_uri),
        "payment": null,
        "questions_and_answers": [{"answer": "Mathe, 9. Klasse", "position": 0, "question": "Fach und Klasse"}],
        "reconfirmation": null,
        "reschedule_url": format!("https://calendly.com/reschedulings/{}", i.uuid),
        "rescheduled": i.rescheduled,
        "routing_form_submission": null,
        "scheduling_method": null,
        "status": if i.canceled { "canceled" } else { "active" },
        "text_reminder_number": null,
        "timezone": i.timezone,
        "tracking": {"salesforce_uuid": null, "utm_campaign": null, "utm_content": null, "utm_medium": null, "utm_source": null, "utm_term": null},
        "updated_at": created,
        "uri": format!("{event_uri}/invitees/{}", i.uuid),
    });
    if i.canceled {
        invitee["cancellation"] = json!({
            "canceled_by": i.name,
            "canceler_type": "invitee",
            "created_at": created,
            "reason": if i.rescheduled { Value::Null } else { json!("Krank") },
        });
        invitee["canceled"] = json!(true);
    }
    invitee
}

// ---- answers ---------------------------------------------------------------

pub(super) fn resource(value: Value) -> Response {
    axum::Json(json!({ "resource": value })).into_response()
}

pub(super) fn error(
    status: StatusCode,
    title: &str,
    message: &str,
    details: Option<Value>,
) -> Response {
    let mut body = json!({"title": title, "message": message});
    if let Some(details) = details {
        body["details"] = details;
    }
    (status, axum::Json(body)).into_response()
}

/// Why a request was refused, rendered as Calendly's error body.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    /// 400 naming the parameter.
    Invalid(&'static str, &'static str),
    /// 403 with Calendly's text.
    Forbidden(&'static str),
    NotFound,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Invalid(parameter, message) => error(
                StatusCode::BAD_REQUEST,
                "Invalid Argument",
                "The supplied parameters are invalid.",
                Some(json!([{"parameter": parameter, "message": message}])),
            ),
            Refusal::Forbidden(message) => {
                error(StatusCode::FORBIDDEN, "Permission Denied", message, None)
            }
            Refusal::NotFound => not_found(),
        }
    }
}

fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "The access token is invalid",
        None,
    )
}

pub(super) fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The server could not find the requested resource.",
        None,
    )
}

impl Shared {
    /// Milliseconds since the simulator started, on tokio's clock (so tests
    /// with paused time can age page tokens).
    pub(super) fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}
