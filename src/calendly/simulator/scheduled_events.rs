//! The scheduled events resource: `GET /scheduled_events`, filtered and
//! paged with Calendly's permission rules for admins and members, and
//! `GET /scheduled_events/{uuid}`. The invitees under an event have a file
//! of their own.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;

use super::Sim;
use super::answer::{Refusal, not_found, resource};
use super::data::SimEvent;
use super::gate::Caller;
use super::json::event_json;
use super::listing::{Listing, Params, param, parse_time};

pub(super) fn routes() -> Router<Sim> {
    Router::new()
        .route("/scheduled_events", get(list_events))
        .route("/scheduled_events/{uuid}", get(one_event))
}

/// `GET /scheduled_events?organization=…|user=…|group=…`.
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

/// `GET /scheduled_events/{uuid}`.
async fn one_event(State(sim): State<Sim>, Path(uuid): Path<String>) -> Response {
    let org = sim.read_org();
    match org.events.iter().find(|e| e.uuid == uuid) {
        Some(e) => resource(event_json(&sim, &org, e)),
        None => not_found(),
    }
}
