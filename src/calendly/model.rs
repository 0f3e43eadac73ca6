//! Typed views of the Calendly API v2 resources calscan reads.
//!
//! Only the fields calscan uses are typed. Everything else is ignored, so new
//! fields Calendly adds never break a scan; optional and nullable keys default
//! to `None`; timestamps accept any RFC 3339 precision (`.000Z`, `.123456Z`, none).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// `{"resource": …}`: the envelope of every single-object answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource<T> {
    pub resource: T,
}

/// `{"collection": […], "pagination": {…}}`: the envelope of every list.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub collection: Vec<T>,
    #[serde(default)]
    pub pagination: Pagination,
}

/// Calendly's pagination object. Older answers carry only `count` and
/// `next_page`; every key is therefore optional here.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub next_page: Option<String>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub previous_page: Option<String>,
    #[serde(default)]
    pub previous_page_token: Option<String>,
}

/// `GET /users/me`: the caller.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub uri: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// The organization to scan when `CALENDLY_ORG_URI` is unset.
    pub current_organization: String,
}

/// `active` or `canceled`; anything Calendly adds later is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Canceled,
    #[serde(other)]
    Other,
}

/// One scheduled event, as listed by `GET /scheduled_events`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub uri: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: Status,
    pub start_time: DateTime<Utc>,
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub invitees_counter: Option<InviteesCounter>,
}

impl Event {
    /// The event's UUID: the last path segment of its URI.
    pub fn uuid(&self) -> &str {
        last_segment(&self.uri)
    }
}

/// `invitees_counter` of an event: how many invitees to expect.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct InviteesCounter {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub active: u64,
    #[serde(default)]
    pub limit: u64,
}

/// One invitee of an event, as listed by `GET /scheduled_events/{uuid}/invitees`.
///
/// `email` is required by Calendly's schema, but a missing or empty one is
/// tolerated here so that one odd record never fails a whole scan.
#[derive(Debug, Clone, Deserialize)]
pub struct Invitee {
    pub uri: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub email: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rescheduled: bool,
}

impl Invitee {
    /// The email as calscan keys customers: trimmed and lower-cased, or `None`
    /// when nothing usable is left.
    pub fn normalized_email(&self) -> Option<String> {
        normalize_email(&self.email)
    }

    /// The best display name: `name`, else `first_name last_name`.
    pub fn display_name(&self) -> Option<String> {
        let name = self.name.trim();
        if !name.is_empty() {
            return Some(name.to_owned());
        }
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// Trims and lower-cases an email; `None` when it is empty or has no `@`.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    // A control character (a NUL, say) is never part of an address, and
    // PostgreSQL's text cannot hold a NUL.
    if email.chars().any(char::is_control) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some(email)
}

/// Calendly's error body: `title` and `message`, and `details` on most 400s.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "null_as_default")]
    pub title: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub details: Vec<ErrorDetail>,
}

/// One entry of `details`: which parameter was refused and why.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub parameter: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(default)]
    pub code: Option<String>,
}

impl ErrorBody {
    /// Whether Calendly refused the `page_token` (stale or rebuilt): the listing
    /// must restart rather than fail.
    pub fn is_page_token_error(&self) -> bool {
        self.details
            .iter()
            .any(|d| d.parameter.as_deref() == Some("page_token"))
    }
}

/// The last path segment of a Calendly URI (its UUID).
/// A webhook subscription (`/webhook_subscriptions`). Calendly never sends
/// the signing key back.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct WebhookSubscription {
    pub uri: String,
    pub callback_url: String,
    /// `active`, or `disabled` after 24 h of failed deliveries.
    #[serde(default, deserialize_with = "null_as_default")]
    pub state: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub scope: String,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl WebhookSubscription {
    /// The subscription's UUID: the last path segment of its URI.
    pub fn uuid(&self) -> &str {
        last_segment(&self.uri)
    }
}

pub fn last_segment(uri: &str) -> &str {
    uri.trim_end_matches('/').rsplit('/').next().unwrap_or(uri)
}

/// Reads a JSON `null` as the type's default, for keys the schema calls
/// required that real answers sometimes null out.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitee_parses_with_unknown_fields_nulls_and_millisecond_times() {
        let json = r#"{"uri":"https://api.calendly.com/scheduled_events/E/invitees/I",
            "email":" Jane.Client@Example.ORG ","name":null,"first_name":"Jane","last_name":null,
            "status":"canceled","created_at":"2025-03-01T12:00:00.498Z","brand_new_field":{"x":1}}"#;
        let invitee: Invitee = serde_json::from_str(json).unwrap();
        assert_eq!(
            invitee.normalized_email().as_deref(),
            Some("jane.client@example.org")
        );
        assert_eq!(invitee.display_name().as_deref(), Some("Jane"));
        assert_eq!(invitee.status, Status::Canceled);
        assert!(!invitee.rescheduled);
    }

    #[test]
    fn an_event_parses_with_whole_second_and_microsecond_times() {
        for start in ["2025-03-10T15:00:00Z", "2025-03-10T15:00:00.000000Z"] {
            let json = format!(
                r#"{{"uri":"https://api.calendly.com/scheduled_events/abc","name":null,
                "status":"active","start_time":"{start}","location":null}}"#
            );
            let event: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(event.uuid(), "abc");
            assert_eq!(event.start_time.timestamp(), 1_741_618_800);
        }
    }

    #[test]
    fn an_unknown_status_is_kept_as_other() {
        let json = r#"{"uri":"u","status":"pending","start_time":"2025-01-01T00:00:00Z"}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(event.status, Status::Other);
    }

    #[test]
    fn an_old_pagination_object_with_only_count_and_next_page_parses() {
        let page: Page<Event> =
            serde_json::from_str(r#"{"collection":[],"pagination":{"count":0,"next_page":null}}"#)
                .unwrap();
        assert!(page.pagination.next_page.is_none());
        assert!(page.pagination.next_page_token.is_none());
    }

    #[test]
    fn emails_without_a_usable_address_normalize_to_none() {
        assert_eq!(normalize_email(""), None);
        assert_eq!(normalize_email("   "), None);
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("@example.org"), None);
        assert_eq!(normalize_email(" A@B.C "), Some("a@b.c".into()));
    }

    #[test]
    fn a_page_token_error_is_recognised_from_its_details() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"title":"Invalid Argument","message":"The supplied parameters are invalid.",
            "details":[{"parameter":"page_token","message":"is invalid"}]}"#,
        )
        .unwrap();
        assert!(body.is_page_token_error());
        let body: ErrorBody = serde_json::from_str(
            r#"{"title":"Unauthenticated","message":"The access token is invalid"}"#,
        )
        .unwrap();
        assert!(!body.is_page_token_error());
    }
}
