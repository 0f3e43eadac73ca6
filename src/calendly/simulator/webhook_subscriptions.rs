//! The webhook subscriptions resource: `POST`, `GET` (a paged list, or one)
//! and `DELETE` on `/webhook_subscriptions`, with Calendly's checks of scope,
//! plan and permission. The subscriptions and their deliveries are kept in
//! `hooks.rs`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};

use super::answer::{Refusal, error, not_found, resource};
use super::gate::Caller;
use super::hooks::SimSubscription;
use super::json::timestamp;
use super::listing::{Listing, Params, param};
use super::{Shared, Sim};

/// The events a subscription may name: the enum of the `events` field in
/// Calendly's OpenAPI description.
const EVENTS: &[&str] = &[
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
    "routing_form_submission.created",
    "event_type.created",
    "event_type.updated",
    "event_type.deleted",
];

pub(super) fn routes() -> Router<Sim> {
    Router::new()
        .route("/webhook_subscriptions", get(list).post(create))
        .route("/webhook_subscriptions/{uuid}", get(one).delete(delete))
}

impl Shared {
    /// A subscription's JSON shape, field for field as Calendly answers.
    fn hook_json(&self, s: &SimSubscription) -> Value {
        let org = self.read_org();
        let created = timestamp(s.created);
        json!({
            "callback_url": s.callback_url,
            "created_at": created,
            "creator": org.users.get(s.creator).map(|u| self.user_uri(u)),
            "events": s.events,
            "organization": self.org_uri(&org),
            "retry_started_at": null,
            "scope": s.scope,
            "state": "active",
            "updated_at": created,
            "uri": self.hook_uri(&s.uuid),
            "user": s.user.and_then(|u| org.users.get(u)).map(|u| self.user_uri(u)),
        })
    }
}

/// `POST /webhook_subscriptions`.
async fn create(
    State(sim): State<Sim>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Bytes,
) -> Result<Response, Refusal> {
    if !sim.config.webhooks_allowed {
        return Err(Refusal::Forbidden(
            "Please upgrade your Calendly account to Standard",
        ));
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| Refusal::Invalid("body", "is not a JSON object"))?;
    let text = |key: &'static str| match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::Invalid(key, "must be a string")),
    };
    let callback_url = text("url")?.ok_or(Refusal::Invalid("url", "is required"))?;
    if !url::Url::parse(&callback_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        return Err(Refusal::Invalid("url", "must be a valid URL"));
    }
    let events: Vec<String> = match body.get("events") {
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|e| match e.as_str() {
                Some(name) if EVENTS.contains(&name) => Ok(name.to_owned()),
                _ => Err(Refusal::Invalid("events", "contains an unknown event")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(Refusal::Invalid("events", "is required")),
    };
    let organization =
        text("organization")?.ok_or(Refusal::Invalid("organization", "is required"))?;
    let scope = text("scope")?.ok_or(Refusal::Invalid("scope", "is required"))?;
    let signing_key = text("signing_key")?;
    let (org_uri, user) = {
        let org = sim.read_org();
        let user = match text("user")? {
            None => None,
            Some(uri) => Some(
                org.users
                    .iter()
                    .position(|u| sim.user_uri(u) == uri)
                    .ok_or(Refusal::Forbidden("This user is not in your organization"))?,
            ),
        };
        let admin = org.users[caller.0].admin;
        match scope.as_str() {
            "organization" if !admin => {
                return Err(Refusal::Forbidden(
                    "You do not have permission to access this resource.",
                ));
            }
            "organization" => {}
            "user" => match user {
                None => return Err(Refusal::Invalid("user", "is required for user scope")),
                Some(u) if u != caller.0 && !admin => {
                    return Err(Refusal::Forbidden(
                        "You do not have permission to access this resource.",
                    ));
                }
                Some(_) => {}
            },
            "group" => return Err(Refusal::NotFound), // the organization has no groups
            _ => {
                return Err(Refusal::Invalid(
                    "scope",
                    "must be one of organization, user, group",
                ));
            }
        }
        (sim.org_uri(&org), user)
    };
    if organization != org_uri {
        return Err(Refusal::Forbidden(
            "You do not have permission to access this resource.",
        ));
    }
    if scope != "organization"
        && events
            .iter()
            .any(|e| e == "routing_form_submission.created")
    {
        return Err(Refusal::Invalid(
            "events",
            "routing_form_submission.created needs organization scope",
        ));
    }
    let mut hooks = sim.hooks();
    let taken = hooks
        .subscriptions
        .iter()
        .any(|s| s.callback_url == callback_url && s.scope == scope && s.user == user);
    if taken {
        return Ok(error(
            StatusCode::CONFLICT,
            "Already Exists",
            "Hook with this url already exists",
            None,
        ));
    }
    let subscription = SimSubscription {
        uuid: uuid::Uuid::new_v4().to_string(),
        callback_url,
        events,
        user: user.filter(|_| scope == "user"),
        scope,
        creator: caller.0,
        signing_key,
        created: Utc::now(),
    };
    hooks.subscriptions.push(subscription.clone());
    drop(hooks);
    Ok((StatusCode::CREATED, resource(sim.hook_json(&subscription))).into_response())
}

/// `GET /webhook_subscriptions?organization=…&scope=…`.
async fn list(State(sim): State<Sim>, Query(params): Params) -> Result<Response, Refusal> {
    let listing = Listing::parse(
        &params,
        "created_at",
        &sim,
        &["organization", "scope", "user"],
    )?;
    let get = |key: &str| param(&params, key);
    let organization =
        get("organization").ok_or(Refusal::Invalid("organization", "is required"))?;
    let scope = get("scope").ok_or(Refusal::Invalid("scope", "is required"))?;
    if organization != sim.org_uri(&sim.read_org()) {
        return Err(Refusal::Forbidden(
            "You do not have permission to access this resource.",
        ));
    }
    let user = match (scope, get("user")) {
        ("organization", _) => None,
        ("user", Some(uri)) => Some(uri.to_owned()),
        ("user", None) => return Err(Refusal::Invalid("user", "is required for user scope")),
        ("group", _) => return Err(Refusal::NotFound),
        _ => {
            return Err(Refusal::Invalid(
                "scope",
                "must be one of organization, user, group",
            ));
        }
    };
    let hooks = sim.hooks().subscriptions.clone();
    let users: Vec<String> = sim
        .read_org()
        .users
        .iter()
        .map(|u| sim.user_uri(u))
        .collect();
    let mut matching: Vec<&SimSubscription> = hooks
        .iter()
        .filter(|s| s.scope == scope)
        .filter(|s| {
            user.as_ref()
                .is_none_or(|want| s.user.and_then(|u| users.get(u)) == Some(want))
        })
        .collect();
    Ok(listing.page(
        &sim,
        "webhook_subscriptions",
        &mut matching,
        |s| s.created,
        |s| sim.hook_json(s),
    ))
}

/// `GET /webhook_subscriptions/{uuid}`.
async fn one(State(sim): State<Sim>, Path(uuid): Path<String>) -> Response {
    let found = sim
        .hooks()
        .subscriptions
        .iter()
        .find(|s| s.uuid == uuid)
        .cloned();
    match found {
        Some(s) => resource(sim.hook_json(&s)),
        None => not_found(),
    }
}

/// `DELETE /webhook_subscriptions/{uuid}`: 204.
async fn delete(State(sim): State<Sim>, Path(uuid): Path<String>) -> Response {
    let mut hooks = sim.hooks();
    let before = hooks.subscriptions.len();
    hooks.subscriptions.retain(|s| s.uuid != uuid);
    if hooks.subscriptions.len() == before {
        return not_found();
    }
    StatusCode::NO_CONTENT.into_response()
}
