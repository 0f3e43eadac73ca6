//! The status object of SPEC ("The status object") and the events the stream
//! carries, serialized once and shared by every subscriber.

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::i18n::Lang;
use crate::store::{LogRow, ScanRow, ScanStatus};
use crate::time::{serialize_millis, serialize_opt_millis};

/// The original's status keys plus `scan_id`, timestamps, `last_event_id`
/// and the scan's mode and event total.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusObject {
    pub scan_id: String,
    pub status: ScanStatus,
    pub progress: i64,
    pub current_step: String,
    pub events_scanned: i64,
    pub events_total: Option<i64>,
    pub emails_found: i64,
    pub new_count: i64,
    pub existing_count: i64,
    pub error_message: Option<String>,
    /// Seconds since `started_at`, final once finished.
    pub duration: f64,
    /// RFC 3339, UTC, to the millisecond.
    #[serde(serialize_with = "serialize_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    /// RFC 3339, UTC, to the millisecond; `null` while running.
    #[serde(serialize_with = "serialize_opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<DateTime<Utc>>,
    pub mode: String,
    pub last_event_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogLine>>,
}

/// A log line as the API shows it: `{"id", "message", "created_at"}`, in
/// the reader's language.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    pub id: i64,
    pub message: String,
    /// RFC 3339, UTC, to the millisecond.
    #[serde(serialize_with = "serialize_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

impl LogLine {
    pub fn new(row: &LogRow, lang: Lang) -> Self {
        Self {
            id: row.id,
            message: row.message.get(lang).to_owned(),
            created_at: row.created_at,
        }
    }
}

impl StatusObject {
    /// The status of `row` at `now` in `lang`, with `logs` when given.
    pub fn new(row: &ScanRow, logs: Option<&[LogRow]>, now: DateTime<Utc>, lang: Lang) -> Self {
        let end = row.completed_at.unwrap_or(now);
        let millis = (end - row.started_at).num_milliseconds().max(0);
        let f = &row.figures;
        Self {
            scan_id: row.scan_id.clone(),
            status: row.status,
            progress: f.progress,
            current_step: f.current_step.get(lang).to_owned(),
            events_scanned: f.events_scanned,
            events_total: f.events_total,
            emails_found: f.emails_found,
            new_count: f.new_count,
            existing_count: f.existing_count,
            error_message: row.error_message.clone(),
            // One decimal, as the original showed it.
            duration: (millis / 100) as f64 / 10.0,
            started_at: row.started_at,
            completed_at: row.completed_at,
            mode: row.mode.clone(),
            last_event_id: f.last_event_id,
            logs: logs.map(|logs| logs.iter().map(|l| LogLine::new(l, lang)).collect()),
        }
    }
}

/// The SSE event names of SPEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Snapshot,
    Progress,
    Log,
    Done,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Progress => "progress",
            Self::Log => "log",
            Self::Done => "done",
        }
    }
}

/// One event of a scan, encoded once in each language as the whole
/// Server-Sent Events frame every subscriber in that language is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: i64,
    pub kind: EventKind,
    /// The frame in German, then in English.
    frames: [Bytes; 2],
}

/// How soon a browser reconnects after its stream broke; sent with every
/// snapshot.
pub const RETRY_MS: u64 = 2_000;

impl Published {
    /// `data` renders the event's payload in a language.
    pub fn new<T: Serialize>(id: i64, kind: EventKind, data: impl Fn(Lang) -> T) -> Self {
        let frame = |lang| {
            // Serializing these plain structs cannot fail; JSON text has no
            // line breaks, so it is one `data:` line.
            let json = serde_json::to_string(&data(lang)).unwrap_or_else(|_| "null".into());
            let retry = if kind == EventKind::Snapshot {
                format!("retry: {RETRY_MS}\n")
            } else {
                String::new()
            };
            Bytes::from(format!(
                "{retry}id: {id}\nevent: {}\ndata: {json}\n\n",
                kind.as_str()
            ))
        };
        Self {
            id,
            kind,
            frames: [frame(Lang::De), frame(Lang::En)],
        }
    }

    pub fn log(log: &LogRow) -> Self {
        Self::new(log.id, EventKind::Log, |lang| LogLine::new(log, lang))
    }

    /// The status object (without logs) of `row` as an event.
    pub fn status(id: i64, kind: EventKind, row: &ScanRow, now: DateTime<Utc>) -> Self {
        Self::new(id, kind, |lang| StatusObject::new(row, None, now, lang))
    }

    /// The event's `data` in `lang`, as JSON.
    pub fn data(&self, lang: Lang) -> serde_json::Value {
        let frame = self.frame(lang);
        std::str::from_utf8(&frame)
            .ok()
            .and_then(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
            .and_then(|data| serde_json::from_str(data).ok())
            .unwrap_or_default()
    }

    /// The event's frame in `lang`, shared by every subscriber.
    pub fn frame(&self, lang: Lang) -> Bytes {
        match lang {
            Lang::De => self.frames[0].clone(),
            Lang::En => self.frames[1].clone(),
        }
    }
}
