//! Time as calscan writes it: UTC, RFC 3339, millisecond precision.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `2026-11-23T10:00:00.012Z`.
pub fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn serialize_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&millis(*t))
}

pub fn serialize_opt_millis<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&millis(*t)),
        None => s.serialize_none(),
    }
}
