//! Property tests for everything calscan parses from Calendly: any shape the
//! API facts allow parses to the right values; garbage is an error, never a
//! panic.

use calscan::calendly::RateHeaders;
use calscan::calendly::model::{ErrorBody, Event, Invitee, Page, Status, User};
use calscan::calendly::webhook;
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

/// An RFC 3339 UTC timestamp with 0 to 9 fractional digits, `Z` or `+00:00`.
fn timestamp() -> impl Strategy<Value = (String, i64)> {
    (
        0i64..4_000_000_000,
        0usize..=9,
        any::<bool>(),
        0u32..1_000_000_000,
    )
        .prop_map(|(secs, digits, zulu, nanos)| {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            if digits > 0 {
                s.push('.');
                s.push_str(&format!("{nanos:09}")[..digits]);
            }
            s.push_str(if zulu { "Z" } else { "+00:00" });
            (s, secs)
        })
}

/// A key that is present with a value, present as `null`, or absent.
#[derive(Debug, Clone)]
enum Slot {
    Value(Value),
    Null,
    Absent,
}

fn slot(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Slot> {
    prop_oneof![
        value.prop_map(Slot::Value),
        Just(Slot::Null),
        Just(Slot::Absent)
    ]
}

fn put(map: &mut Map<String, Value>, key: &str, slot: Slot) {
    match slot {
        Slot::Value(v) => {
            map.insert(key.into(), v);
        }
        Slot::Null => {
            map.insert(key.into(), Value::Null);
        }
        Slot::Absent => {}
    }
}

/// Unknown keys Calendly may add one day, with any JSON value.
fn extras() -> impl Strategy<Value = Vec<(String, Value)>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::vec(("x_[a-z_]{1,10}", value), 0..4)
}

proptest! {
    #[test]
    fn any_event_shape_the_facts_allow_parses(
        (start, start_secs) in timestamp(),
        (end, _) in timestamp(),
        name in slot(".{0,30}".prop_map(Value::from)),
        location in slot(Just(json!({"type": "zoom", "join_url": "https://z"}))),
        counter in slot((0u64..500, 0u64..500, 1u64..500).prop_map(|(t, a, l)| json!({"total": t, "active": a, "limit": l}))),
        canceled in any::<bool>(),
        extras in extras(),
    ) {
        let mut event = Map::new();
        event.insert("uri".into(), json!("https://api.calendly.com/scheduled_events/0f6c9a52-2b1e"));
        event.insert("status".into(), json!(if canceled { "canceled" } else { "active" }));
        event.insert("start_time".into(), json!(start));
        event.insert("end_time".into(), json!(end));
        put(&mut event, "name", name);
        put(&mut event, "location", location);
        put(&mut event, "invitees_counter", counter);
        for (k, v) in extras {
            event.insert(k, v);
        }
        let page = json!({"collection": [Value::Object(event)], "pagination": {"count": 1, "next_page": null}});
        let parsed: Page<Event> = serde_json::from_value(page).unwrap();
        let e = &parsed.collection[0];
        prop_assert_eq!(e.start_time.timestamp(), start_secs);
        prop_assert_eq!(e.uuid(), "0f6c9a52-2b1e");
        prop_assert_eq!(e.status == Status::Canceled, canceled);
    }

    #[test]
    fn any_invitee_shape_the_facts_allow_parses(
        email in "[ ]{0,2}[A-Za-z0-9._%+-]{1,12}@[A-Za-z0-9-]{1,10}\\.[A-Za-z]{2,4}[ ]{0,2}",
        name in slot(".{0,20}".prop_map(Value::from)),
        first in slot("[A-Za-zäöü]{0,10}".prop_map(Value::from)),
        last in slot("[A-Za-zäöü]{0,10}".prop_map(Value::from)),
        (created, _) in timestamp(),
        rescheduled in slot(any::<bool>().prop_map(Value::from)),
        extras in extras(),
    ) {
        let mut invitee = Map::new();
        invitee.insert("uri".into(), json!("https://api.calendly.com/scheduled_events/e/invitees/i"));
        invitee.insert("email".into(), json!(email));
        invitee.insert("status".into(), json!("active"));
        invitee.insert("created_at".into(), json!(created));
        put(&mut invitee, "name", name);
        put(&mut invitee, "first_name", first);
        put(&mut invitee, "last_name", last);
        if let Slot::Value(v) = rescheduled {
            invitee.insert("rescheduled".into(), v);
        }
        for (k, v) in extras {
            invitee.insert(k, v);
        }
        let parsed: Invitee = serde_json::from_value(Value::Object(invitee)).unwrap();
        prop_assert_eq!(parsed.normalized_email(), Some(email.trim().to_lowercase()));
        if let Some(name) = parsed.display_name() {
            prop_assert!(!name.trim().is_empty());
        }
    }

    #[test]
    fn users_and_error_bodies_parse_with_nulls_and_extras(
        extras in extras(),
        details in slot(Just(json!([{"parameter": "page_token", "message": "is invalid"}]))),
    ) {
        let mut user = Map::new();
        user.insert("uri".into(), json!("https://api.calendly.com/users/u"));
        user.insert("current_organization".into(), json!("https://api.calendly.com/organizations/o"));
        user.insert("name".into(), Value::Null);
        for (k, v) in extras.clone() {
            user.insert(k, v);
        }
        let parsed: User = serde_json::from_value(Value::Object(user)).unwrap();
        prop_assert_eq!(parsed.current_organization, "https://api.calendly.com/organizations/o");

        let mut error = Map::new();
        error.insert("title".into(), json!("Invalid Argument"));
        error.insert("message".into(), json!("The supplied parameters are invalid."));
        let has_details = matches!(details, Slot::Value(_));
        put(&mut error, "details", details);
        for (k, v) in extras {
            error.insert(k, v);
        }
        let parsed: ErrorBody = serde_json::from_value(Value::Object(error)).unwrap();
        prop_assert_eq!(parsed.is_page_token_error(), has_details);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<Page<Event>>(&bytes);
        let _ = serde_json::from_slice::<Page<Invitee>>(&bytes);
        let _ = serde_json::from_slice::<ErrorBody>(&bytes);
        let _ = serde_json::from_slice::<User>(&bytes);
    }

    #[test]
    fn a_wrong_type_in_a_required_field_is_an_error(value in prop_oneof![Just(json!(1)), Just(json!([])), Just(json!({})), Just(json!(true))]) {
        let event = json!({"uri": "u", "status": "active", "start_time": value});
        prop_assert!(serde_json::from_value::<Event>(event).is_err());
    }

    #[test]
    fn rate_limit_headers_never_panic(limit in ".{0,12}", remaining in ".{0,12}", reset in ".{0,24}", retry in ".{0,32}") {
        let mut headers = HeaderMap::new();
        for (name, value) in [("x-ratelimit-limit", limit), ("x-ratelimit-remaining", remaining),
                              ("x-ratelimit-reset", reset), ("retry-after", retry)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        let _ = RateHeaders::parse(&headers).wait_hint();
    }

    #[test]
    fn rate_limit_headers_read_any_number_of_seconds(seconds in 0u64..100_000) {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from(seconds));
        prop_assert_eq!(RateHeaders::parse(&headers).reset, Some(std::time::Duration::from_secs(seconds)));
    }

    #[test]
    fn webhook_signature_headers_never_panic_and_garbage_never_verifies(header in ".{0,80}", body in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert!(webhook::verify(b"key", &header, &body, 1_700_000_000, webhook::DEFAULT_TOLERANCE).is_err());
    }

    #[test]
    fn any_signed_body_verifies_and_any_change_to_it_does_not(
        body in prop::collection::vec(any::<u8>(), 0..128),
        flip in any::<prop::sample::Index>(),
        t in 1_000_000_000i64..2_000_000_000,
    ) {
        let header = webhook::sign(b"key", t, &body);
        prop_assert_eq!(webhook::verify(b"key", &header, &body, t, webhook::DEFAULT_TOLERANCE), Ok(()));
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1;
            prop_assert!(webhook::verify(b"key", &header, &tampered, t, webhook::DEFAULT_TOLERANCE).is_err());
        }
    }
}

// What calscan parses from its own clients: scan ids in paths, `after` and
// `Last-Event-ID`, and query strings.
proptest! {
    #[test]
    fn scan_ids_are_exactly_scan_and_8_to_40_lowercase_letters_or_digits(
        tail in "[0-9a-z]{8,40}",
        other in ".{0,60}",
    ) {
        let id = format!("scan_{tail}");
        prop_assert!(calscan::scan::ScanId::parse(id.as_str()).is_ok());
        let well_formed = other.strip_prefix("scan_").is_some_and(|t| {
            (8..=40).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        });
        prop_assert_eq!(calscan::scan::ScanId::parse(other.as_str()).is_ok(), well_formed);
    }

    #[test]
    fn event_ids_accept_exactly_whole_numbers_from_zero(n in 0i64..=i64::MAX, garbage in ".{0,24}") {
        use calscan::routes::extract::parse_event_id;
        prop_assert_eq!(parse_event_id(&n.to_string(), "after").ok(), Some(n));
        prop_assert_eq!(parse_event_id(&format!(" {n} "), "Last-Event-ID").ok(), Some(n));
        let expected = garbage.trim().parse::<i64>().ok().filter(|v| *v >= 0);
        prop_assert_eq!(parse_event_id(&garbage, "after").ok(), expected);
        if expected.is_none() {
            let message = parse_event_id(&garbage, "after").unwrap_err().to_string();
            prop_assert!(message.contains("after"), "{}", message);
        }
    }

    #[test]
    fn query_strings_give_back_what_was_encoded_and_never_panic(
        value in ".{0,40}",
        before in prop::collection::vec(("[a-z]{1,6}", ".{0,10}"), 0..4),
        raw in ".{0,80}",
    ) {
        use calscan::routes::extract::query_param;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &before {
            if k != "q" {
                query.append_pair(k, v);
            }
        }
        query.append_pair("q", &value);
        let query = query.finish();
        prop_assert_eq!(query_param(Some(&query), "q"), Some(value));
        // Anything at all: an answer or none, never a panic.
        let _ = query_param(Some(&raw), "q");
        prop_assert_eq!(query_param(None, "q"), None);
    }
}
