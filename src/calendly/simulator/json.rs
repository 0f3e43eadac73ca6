//! The JSON shapes of the simulated resources (users, scheduled events,
//! invitees), field for field as Calendly's API v2 answers, and its
//! timestamp format. Webhook deliveries embed the same shapes.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Shared;
use super::data::{OrgData, SimEvent, SimInvitee, SimUser};

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as Calendly writes every timestamp.
pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(super) fn user_json(sim: &Shared, org: &OrgData, u: &SimUser) -> Value {
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
        "event_type": format!("{}/event_types/{}", sim.uri_base, e.event_type),
        "invitees_counter": {"active": active, "limit": e.invitee_limit, "total": e.invitees.len()},
        "location": e.location,
        "meeting_notes_html": null,
        "meeting_notes_plain": null,
        "name": e.name,
        "start_time": timestamp(e.start),
        "status": if e.canceled { "canceled" } else { "active" },
        "updated_at": created,
        "uri": format!("{}/scheduled_events/{}", sim.uri_base, e.uuid),
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
    let event_uri = format!("{}/scheduled_events/{}", sim.uri_base, e.uuid);
    let invitee_uri = |(event, invitee): &(String, String)| {
        format!(
            "{}/scheduled_events/{event}/invitees/{invitee}",
            sim.uri_base
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
