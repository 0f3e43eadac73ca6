//! `POST /webhooks/calendly`: Calendly's webhook deliveries, taken in at
//! once as customers.
//!
//! No session: Calendly posts server to server, without cookies or an
//! `Origin` (so the cross-origin guard lets it through). What authenticates a
//! delivery is its `Calendly-Webhook-Signature`, checked over the raw body
//! before anything is read or written, with `CALENDLY_WEBHOOK_SIGNING_KEY`
//! and the keys `calscan webhooks subscribe` stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::calendly::model::Invitee;
use crate::calendly::webhook;
use crate::error::{AppError, ErrorBody, Result};
use crate::state::AppState;
use crate::store::{Booking, WebhookImport};

pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/calendly", post(receive))
}

/// The envelope of a delivery.
#[derive(Debug, Deserialize)]
struct Delivery {
    event: String,
    payload: serde_json::Value,
}

/// The part of an `invitee.*` payload beyond the invitee: its event.
#[derive(Debug, Deserialize)]
struct WithEvent {
    scheduled_event: ScheduledEvent,
}

#[derive(Debug, Deserialize)]
struct ScheduledEvent {
    uri: String,
    start_time: DateTime<Utc>,
}

/// What a delivery did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Taken {
    /// Whether it was new: false for a repeat or another event kind.
    imported: bool,
    /// The event kind, when it is not about bookings.
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<String>,
}

#[utoipa::path(post, path = "/webhooks/calendly", tag = "webhooks", security(()),
    params(("Calendly-Webhook-Signature" = String, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.\" + body>`")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "Calendly's delivery: `{created_at, created_by, event, payload}`"),
    responses(
        (status = 200, description = "Taken in; `imported` is false for a repeat or another event kind", body = Taken),
        (status = 400, description = "Signed, but not an invitee delivery calscan can use", body = ErrorBody),
        (status = 401, description = "Missing, malformed, expired or wrong signature", body = ErrorBody),
        (status = 503, description = "No signing key: neither CALENDLY_WEBHOOK_SIGNING_KEY nor one stored by `calscan webhooks subscribe`", body = ErrorBody),
    ))]
pub(super) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    // The configured key and the keys of the subscriptions `calscan
    // webhooks subscribe` made: read per delivery, so a subscription made
    // while the server runs is verified at once.
    let stored = state.store.webhook_subscriptions().await?;
    let keys: Vec<&[u8]> = state
        .webhook_key
        .iter()
        .chain(stored.iter().map(|s| &s.signing_key))
        .map(|k| k.expose_secret().as_bytes())
        .collect();
    if keys.is_empty() {
        return Err(AppError::Unavailable(
            "webhooks are off: run `calscan webhooks subscribe` or set CALENDLY_WEBHOOK_SIGNING_KEY"
                .into(),
        ));
    }
    let signature = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(refused) = webhook::verify_any(
        &keys,
        signature,
        &body,
        Utc::now().timestamp(),
        webhook::DEFAULT_TOLERANCE,
    ) {
        state.metrics.webhook_delivery(false);
        let response = (
            StatusCode::UNAUTHORIZED,
            ErrorBody::json(refused.to_string()),
        )
            .into_response();
        return Ok(crate::error::noted(
            response,
            tracing::Level::WARN,
            format!("webhook delivery refused: {refused}"),
        ));
    }
    let delivery: Delivery = serde_json::from_slice(&body)
        .map_err(|e| refuse(&state, format!("not a Calendly delivery: {e}")))?;
    if !matches!(
        delivery.event.as_str(),
        "invitee.created" | "invitee.canceled"
    ) {
        // Signed and well-formed, just not about bookings: taken, not used.
        state.metrics.webhook_delivery(true);
        let ignored = Some(delivery.event);
        return Ok(Json(Taken {
            imported: false,
            ignored,
        })
        .into_response());
    }
    let invitee: Invitee = serde_json::from_value(delivery.payload.clone())
        .map_err(|e| refuse(&state, format!("the payload is not an invitee: {e}")))?;
    let WithEvent { scheduled_event } = serde_json::from_value(delivery.payload)
        .map_err(|e| refuse(&state, format!("the payload has no scheduled_event: {e}")))?;
    let booking = Booking::of(&invitee, &scheduled_event.uri, scheduled_event.start_time)
        .ok_or_else(|| refuse(&state, "the invitee has no email".into()))?;
    let import = WebhookImport {
        delivery_key: format!("{} {}", delivery.event, invitee.uri),
        event: delivery.event,
        booking,
        received_at: Utc::now(),
    };
    let imported = state.store.import_webhook(&import).await?;
    state.metrics.webhook_delivery(true);
    tracing::info!(event = %import.event, imported, "webhook delivery taken in");
    let ignored = None;
    Ok(Json(Taken { imported, ignored }).into_response())
}

/// A verified delivery calscan cannot use: 400, counted as refused.
fn refuse(state: &AppState, why: String) -> AppError {
    state.metrics.webhook_delivery(false);
    AppError::BadRequest(why)
}
