//! The users resource: `GET /users/{uuid}`, where `me` names the caller.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use super::Sim;
use super::answer::{not_found, resource};
use super::gate::Caller;
use super::json::user_json;

pub(super) fn routes() -> Router<Sim> {
    Router::new().route("/users/{uuid}", get(user))
}

/// `GET /users/{uuid}`.
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
