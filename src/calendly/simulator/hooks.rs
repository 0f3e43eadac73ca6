//! The simulator's webhooks: the subscriptions as it keeps them, and signed
//! `invitee.created` deliveries to every matching subscription when a booking
//! is made. The `/webhook_subscriptions` resource that manages them is in
//! `webhook_subscriptions.rs`.
//!
//! Deliveries go out once each; Calendly's 24-hour retries are not
//! simulated. What each delivery got back is recorded for tests.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::Shared;
use super::data::{OrgData, SimEvent, SimInvitee};
use super::json::{event_json, invitee_json, timestamp};
use crate::calendly::webhook;

/// One subscription, as the simulator keeps it.
#[derive(Debug, Clone)]
pub(super) struct SimSubscription {
    pub uuid: String,
    pub callback_url: String,
    pub events: Vec<String>,
    /// `organization` or `user`.
    pub scope: String,
    /// The user of a user-scoped subscription (index into `OrgData::users`).
    pub user: Option<usize>,
    /// Who made it (index into `OrgData::users`).
    pub creator: usize,
    pub signing_key: Option<String>,
    pub created: DateTime<Utc>,
}

/// What one delivery got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The subscription's URI.
    pub subscription: String,
    pub callback_url: String,
    /// `invitee.created`.
    pub event: String,
    /// The receiver's status, or `None` when it could not be reached.
    pub status: Option<u16>,
    /// Whether the delivery carried a `Calendly-Webhook-Signature`.
    pub signed: bool,
}

/// Subscriptions and the deliveries made so far.
#[derive(Debug, Default)]
pub(super) struct Hooks {
    pub subscriptions: Vec<SimSubscription>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// The signed `invitee.created` deliveries for the booking `event_uuid`:
/// one (url, body, signature header) per subscription that wants it.
pub(super) fn deliveries_for(
    sim: &Shared,
    event_uuid: &str,
    now: DateTime<Utc>,
) -> Vec<(DeliveryRecord, Vec<u8>, Option<String>)> {
    let org = sim.read_org();
    let Some(event) = org.events.iter().find(|e| e.uuid == event_uuid) else {
        return Vec::new();
    };
    let hooks = sim.hooks();
    let mut out = Vec::new();
    for s in &hooks.subscriptions {
        let wants = s.events.iter().any(|e| e == "invitee.created")
            && (s.scope == "organization" || s.user == Some(event.host));
        if !wants {
            continue;
        }
        for invitee in &event.invitees {
            let body = delivery_body(sim, &org, event, invitee, s.creator, now);
            let signature = s
                .signing_key
                .as_ref()
                .map(|key| webhook::sign(key.as_bytes(), now.timestamp(), &body));
            let record = DeliveryRecord {
                subscription: sim.hook_uri(&s.uuid),
                callback_url: s.callback_url.clone(),
                event: "invitee.created".into(),
                status: None,
                signed: signature.is_some(),
            };
            out.push((record, body, signature));
        }
    }
    out
}

/// The JSON body of an `invitee.created` delivery: the envelope, and the
/// invitee with its event embedded.
pub(super) fn delivery_body(
    sim: &Shared,
    org: &OrgData,
    event: &SimEvent,
    invitee: &SimInvitee,
    creator: usize,
    now: DateTime<Utc>,
) -> Vec<u8> {
    let mut payload = invitee_json(sim, event, invitee);
    payload["scheduled_event"] = event_json(sim, org, event);
    let body = json!({
        "created_at": timestamp(now),
        "created_by": org.users.get(creator).map(|u| sim.user_uri(u)),
        "event": "invitee.created",
        "payload": payload,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// POSTs one delivery the way Calendly does; records what came back.
pub(super) async fn deliver(
    sim: &Shared,
    mut record: DeliveryRecord,
    body: Vec<u8>,
    signature: Option<String>,
) -> DeliveryRecord {
    let mut request = reqwest::Client::new()
        .post(&record.callback_url)
        .timeout(std::time::Duration::from_secs(10))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header(webhook::SIGNATURE_HEADER, signature);
    }
    record.status = request.send().await.ok().map(|r| r.status().as_u16());
    sim.hooks().deliveries.push(record.clone());
    sim.delivered.send_modify(|n| *n += 1);
    record
}
