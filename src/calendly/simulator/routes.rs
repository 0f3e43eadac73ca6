//! The simulator's HTTP side: the router, behind the gate (authentication,
//! the rate-limit window, injected faults and latency); Calendly's resources
//! in handlers.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;

use super::Sim;
use super::answer::{Refusal, not_found, resource};
use super::data::{SimEvent, SimInvitee};
use super::gate::{Caller, gate};
use super::json::{event_json, invitee_json, user_json};
use super::listing::{Listing, Params, param, parse_time};

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
