//! The invitees of a scheduled event: `GET /scheduled_events/{uuid}/invitees`,
//! filtered and paged, and `GET /scheduled_events/{uuid}/invitees/{invitee}`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;

use super::Sim;
use super::answer::{Refusal, not_found, resource};
use super::data::SimInvitee;
use super::gate::Caller;
use super::json::invitee_json;
use super::listing::{Listing, Params, param};

pub(super) fn routes() -> Router<Sim> {
    Router::new()
        .route("/scheduled_events/{uuid}/invitees", get(list_invitees))
        .route(
            "/scheduled_events/{uuid}/invitees/{invitee}",
            get(one_invitee),
        )
}

/// `GET /scheduled_events/{uuid}/invitees`: the event's host or an admin.
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

/// `GET /scheduled_events/{uuid}/invitees/{invitee}`.
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
