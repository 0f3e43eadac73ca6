//! The status object (the JSON of `GET /api/scans/{id}`) and the events the stream
//! carries, serialized once and shared by every subscriber.

use std::sync::Arc;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::i18n::{Lang, Msg};
use crate::store::{LogRow, ScanMode, ScanRow, ScanStatus};
use crate::time::{Zone, serialize_millis, serialize_opt_millis};

/// The original's status keys plus `scan_id`, timestamps, `last_event_id`
/// and the scan's mode and event total.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusObject {
    pub scan_id: crate::store::ScanId,
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
    /// About how many seconds a running scan still takes, waits for
    /// Calendly's rate limit included; `null` until it can tell and once it
    /// is over.
    pub eta_s: Option<i64>,
    /// One sentence on how a scan that is over went (what it found, or
    /// why it stopped); `null` while it runs.
    pub summary: Option<String>,
    /// RFC 3339, UTC, to the millisecond.
    #[serde(serialize_with = "serialize_millis")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    /// RFC 3339, UTC, to the millisecond; `null` while running.
    #[serde(serialize_with = "serialize_opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<DateTime<Utc>>,
    pub mode: ScanMode,
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
    /// The status of `row` at `now` for a reader of `lang` in `zone`, with
    /// `logs` when given.
    pub fn new(
        row: &ScanRow,
        logs: Option<&[LogRow]>,
        now: DateTime<Utc>,
        (lang, zone): (Lang, Zone),
    ) -> Self {
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
            error_message: row.error_message.as_ref().map(|t| t.get(lang).to_owned()),
            // One decimal, as the original showed it.
            duration: (millis / 100) as f64 / 10.0,
            eta_s: f
                .eta_at_ms
                .filter(|_| row.status == ScanStatus::Running)
                .map(|at| ((at - now.timestamp_millis()).max(0) + 999) / 1000),
            summary: summary(row, lang, zone),
            started_at: row.started_at,
            completed_at: row.completed_at,
            mode: row.mode,
            last_event_id: f.last_event_id,
            logs: logs.map(|logs| logs.iter().map(|l| LogLine::new(l, lang)).collect()),
        }
    }
}

/// How the scan `row` went, once it is over.
fn summary(row: &ScanRow, lang: Lang, zone: Zone) -> Option<String> {
    let f = &row.figures;
    let since = f
        .previous_scan_ms
        .and_then(DateTime::from_timestamp_millis)
        .map(|at| zone.short(at, lang));
    let since = since.as_deref();
    let msg = match row.status {
        ScanStatus::Running => return None,
        ScanStatus::Completed if f.new_count > 0 => Msg::SummaryNew {
            new: f.new_count,
            events: f.events_scanned,
            emails: f.emails_found,
            existing: f.existing_count,
        },
        ScanStatus::Completed if f.events_scanned > 0 => Msg::SummaryNoneNew {
            events: f.events_scanned,
            emails: f.emails_found,
            since,
        },
        ScanStatus::Completed => Msg::SummaryNoBookings { since },
        ScanStatus::Error => {
            let error = row.error_message.as_ref().map_or("", |e| e.get(lang));
            return Some(lang.text(&Msg::SummaryFailed { error }));
        }
        ScanStatus::Cancelled => Msg::SummaryCancelled,
        ScanStatus::Interrupted => Msg::SummaryInterrupted,
    };
    Some(lang.text(&msg))
}

/// The event stream's event names: `snapshot`, `log`, `progress`, `done`.
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

/// One Server-Sent Events frame as calscan writes it; the OpenAPI
/// description shows its fields.
#[derive(Debug, utoipa::ToSchema)]
pub struct SseEvent<'a> {
    /// `snapshot`, `progress`, `log` or `done`.
    #[schema(value_type = Option<String>)]
    pub event: &'a str,
    /// The scan's event id, for `Last-Event-ID`.
    #[schema(value_type = Option<String>)]
    pub id: i64,
    /// One line of JSON: a status object, or a log line for `log`.
    #[schema(value_type = Option<String>)]
    pub data: &'a str,
    /// Milliseconds a browser waits before reconnecting; with `snapshot`.
    pub retry: Option<u64>,
}

impl SseEvent<'_> {
    /// The frame's bytes: `retry`, `id`, `event`, `data`, a blank line.
    pub fn encode(&self) -> Bytes {
        let retry = self
            .retry
            .map_or_else(String::new, |ms| format!("retry: {ms}\n"));
        Bytes::from(format!(
            "{retry}id: {}\nevent: {}\ndata: {}\n\n",
            self.id, self.event, self.data
        ))
    }
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
            SseEvent {
                event: kind.as_str(),
                id,
                data: &json,
                retry: (kind == EventKind::Snapshot).then_some(RETRY_MS),
            }
            .encode()
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

    /// The status object (without logs) of `row` as an event, its times
    /// in `zone`.
    pub fn status(id: i64, kind: EventKind, row: &ScanRow, now: DateTime<Utc>, zone: Zone) -> Self {
        Self::new(id, kind, |lang| {
            StatusObject::new(row, None, now, (lang, zone))
        })
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
        self.frames[lang_index(lang)].clone()
    }
}

fn lang_index(lang: Lang) -> usize {
    match lang {
        Lang::De => 0,
        Lang::En => 1,
    }
}

/// Consecutive events of one scan, published together: what one write of
/// the journal made public. Their frames are joined once per language, so
/// a subscriber takes a thousand lines with one receive and one write, and
/// a burst of lines fills one slot of the scan's channel, not a thousand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// In id order; never empty.
    events: Vec<Published>,
    /// Every event's frame in German, then in English.
    frames: [Bytes; 2],
}

impl Batch {
    /// The events in id order as one batch; `None` when there are none.
    pub fn new(events: Vec<Published>) -> Option<Self> {
        let frames = match events.as_slice() {
            [] => return None,
            // Shared, not copied.
            [one] => one.frames.clone(),
            _ => [0, 1].map(|i| {
                let mut joined = Vec::with_capacity(events.iter().map(|e| e.frames[i].len()).sum());
                for event in &events {
                    joined.extend_from_slice(&event.frames[i]);
                }
                Bytes::from(joined)
            }),
        };
        Some(Self { events, frames })
    }

    pub fn one(event: Published) -> Self {
        Self {
            frames: event.frames.clone(),
            events: vec![event],
        }
    }

    pub fn events(&self) -> &[Published] {
        &self.events
    }

    /// The newest event's id.
    pub fn last_id(&self) -> i64 {
        self.events.last().map_or(0, |e| e.id)
    }

    /// Whether the batch ends the scan's stream (its last event is `done`).
    pub fn ends(&self) -> bool {
        self.events
            .last()
            .is_some_and(|e| e.kind == EventKind::Done)
    }

    /// The part of the batch after event `sent`: all of it, some of it
    /// (rebuilt), or `None` when `sent` covers it.
    pub fn after(self: &Arc<Self>, sent: i64) -> Option<Arc<Self>> {
        match self.events.first() {
            Some(first) if first.id > sent => Some(Arc::clone(self)),
            _ => Self::new(
                self.events
                    .iter()
                    .filter(|e| e.id > sent)
                    .cloned()
                    .collect(),
            )
            .map(Arc::new),
        }
    }

    /// Every event's frame in `lang`, shared by every subscriber.
    pub fn frame(&self, lang: Lang) -> Bytes {
        self.frames[lang_index(lang)].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Texts;
    use crate::store::Progress;

    fn line(id: i64, text: &str) -> Published {
        Published::log(&LogRow {
            id,
            message: Texts {
                de: format!("{text} (de)"),
                en: format!("{text} (en)"),
            },
            created_at: DateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_batch_is_its_events_frames_joined_in_each_language() {
        let events = vec![line(3, "a"), line(4, "b"), line(5, "c")];
        let batch = Batch::new(events.clone()).unwrap();
        for lang in [Lang::De, Lang::En] {
            let joined: Vec<u8> = events.iter().flat_map(|e| e.frame(lang).to_vec()).collect();
            assert_eq!(batch.frame(lang), joined);
        }
        let text = String::from_utf8(batch.frame(Lang::En).to_vec()).unwrap();
        assert!(text.starts_with("id: 3\nevent: log\ndata: {\"id\":3,\"message\":\"a (en)\""));
        assert_eq!(text.matches("\n\n").count(), 3, "{text}");
        assert_eq!(batch.last_id(), 5);
        assert!(!batch.ends());
        assert_eq!(Batch::new(Vec::new()), None);
    }

    #[test]
    fn after_keeps_only_the_events_past_the_last_one_sent() {
        let batch = Arc::new(Batch::new(vec![line(3, "a"), line(4, "b"), line(5, "c")]).unwrap());
        let whole = batch.after(2).unwrap();
        assert!(Arc::ptr_eq(&whole, &batch), "not copied");
        let rest = batch.after(3).unwrap();
        let ids: Vec<i64> = rest.events().iter().map(|e| e.id).collect();
        assert_eq!(ids, [4, 5]);
        assert_eq!(
            rest.frame(Lang::De),
            [line(4, "b").frame(Lang::De), line(5, "c").frame(Lang::De)].concat()
        );
        assert_eq!(batch.after(5), None);
        assert_eq!(batch.after(9), None);
    }

    #[test]
    fn a_batch_ending_in_done_ends_the_stream() {
        let row = ScanRow {
            scan_id: crate::store::ScanId::parse("scan_bbbbbbbb").unwrap(),
            status: ScanStatus::Completed,
            mode: ScanMode::Full,
            figures: Progress::default(),
            error_message: None,
            started_at: DateTime::UNIX_EPOCH,
            completed_at: Some(DateTime::UNIX_EPOCH),
        };
        let done = Published::status(
            6,
            EventKind::Done,
            &row,
            DateTime::UNIX_EPOCH,
            Zone::default(),
        );
        let batch = Batch::new(vec![line(5, "last"), done]).unwrap();
        assert!(batch.ends());
        assert_eq!(batch.last_id(), 6);
    }

    #[test]
    fn a_finished_scan_is_summed_up_in_words_that_read_right() {
        let zone: Zone = "Europe/Vienna".parse().unwrap();
        let previous = "2026-11-30T17:51:00Z".parse::<DateTime<Utc>>().unwrap();
        let row = |status, f: Progress| ScanRow {
            scan_id: crate::store::ScanId::parse("scan_cccccccc").unwrap(),
            status,
            mode: ScanMode::Incremental,
            figures: f,
            error_message: None,
            started_at: DateTime::UNIX_EPOCH,
            completed_at: Some(DateTime::UNIX_EPOCH),
        };
        let figures = |events, emails, new| Progress {
            events_scanned: events,
            emails_found: emails,
            new_count: new,
            existing_count: emails - new,
            previous_scan_ms: Some(previous.timestamp_millis()),
            ..Progress::default()
        };
        let said = |r: &ScanRow, lang| summary(r, lang, zone).unwrap();
        let nothing = row(ScanStatus::Completed, figures(0, 0, 0));
        assert_eq!(
            said(&nothing, Lang::De),
            "Keine neuen Buchungen seit dem letzten Scan (30.11., 18:51)"
        );
        assert_eq!(
            said(&nothing, Lang::En),
            "No new bookings since the last scan (Nov 30, 18:51)"
        );
        let one = row(ScanStatus::Completed, figures(1, 1, 1));
        assert_eq!(
            said(&one, Lang::De),
            "1 neuer Kunde aus 1 Event (1 Email, 0 bereits vorhanden)"
        );
        let many = row(ScanStatus::Completed, figures(300, 412, 160));
        assert_eq!(
            said(&many, Lang::En),
            "160 new customers from 300 events (412 emails, 252 already known)"
        );
        let known = row(ScanStatus::Completed, figures(2, 3, 0));
        assert_eq!(
            said(&known, Lang::De),
            "Keine neuen Kunden seit dem letzten Scan (30.11., 18:51): 2 Events gelesen, 3 Emails – alle bereits Kunden"
        );
        let mut failed = row(ScanStatus::Error, figures(2, 3, 0));
        failed.error_message = Some(crate::i18n::Texts {
            de: "Calendly antwortet nicht".into(),
            en: "Calendly does not answer".into(),
        });
        assert_eq!(
            said(&failed, Lang::En),
            "Scan failed: Calendly does not answer"
        );
        let running = row(ScanStatus::Running, figures(2, 3, 0));
        assert_eq!(summary(&running, Lang::De, zone), None);
    }
}
