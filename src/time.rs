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

/// `90 s`, `30 min`, `6 h`, `1 d`: the largest unit that divides it.
pub fn interval(every: std::time::Duration) -> String {
    let s = every.as_secs();
    match s {
        0 => format!("{} ms", every.as_millis()),
        _ if s.is_multiple_of(86_400) => format!("{} d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{} min", s / 60),
        _ => format!("{s} s"),
    }
}

/// The zone the pages, the log lines and the terminal show times in
/// (`CALSCAN_TIMEZONE`, else the server's own), with one format for each
/// kind of time, live and after a reload alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

impl Default for Zone {
    fn default() -> Self {
        Self::system()
    }
}

impl Zone {
    /// The server's zone: `TZ` when it names one, else the system's
    /// (`/etc/localtime`), else UTC.
    pub fn system() -> Self {
        std::env::var("TZ")
            .ok()
            .and_then(|tz| tz.trim_start_matches(':').parse().ok())
            .or_else(|| iana_time_zone::get_timezone().ok()?.parse().ok())
            .unwrap_or(Self(chrono_tz::UTC))
    }

    /// The zone's IANA name, as the browser's `Intl` takes it.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// `18:01:35`: a log line's time, a wait's end.
    pub fn clock(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).format("%H:%M:%S").to_string()
    }

    /// `01.12.2026, 17:52 CET` (German) or `2026-12-01 17:52 CET`: a scan's
    /// start, a delivery's arrival.
    pub fn date_time(&self, t: DateTime<Utc>, lang: crate::i18n::Lang) -> String {
        let local = t.with_timezone(&self.0);
        match lang {
            crate::i18n::Lang::De => local.format("%d.%m.%Y, %H:%M %Z"),
            crate::i18n::Lang::En => local.format("%Y-%m-%d %H:%M %Z"),
        }
        .to_string()
    }

    /// `30.11., 18:51` or `Nov 30, 18:51`: a recent time within a summary.
    pub fn short(&self, t: DateTime<Utc>, lang: crate::i18n::Lang) -> String {
        let local = t.with_timezone(&self.0);
        match lang {
            crate::i18n::Lang::De => local.format("%d.%m., %H:%M"),
            crate::i18n::Lang::En => local.format("%b %-d, %H:%M"),
        }
        .to_string()
    }

    /// `heute 18:04` / `today 18:04` when `t` is on `now`'s day, else
    /// [`Zone::date_time`]: when the last scan ran.
    pub fn recent(&self, t: DateTime<Utc>, now: DateTime<Utc>, lang: crate::i18n::Lang) -> String {
        let local = t.with_timezone(&self.0);
        if local.date_naive() == now.with_timezone(&self.0).date_naive() {
            let today = match lang {
                crate::i18n::Lang::De => "heute",
                crate::i18n::Lang::En => "today",
            };
            format!("{today} {}", local.format("%H:%M"))
        } else {
            self.date_time(t, lang)
        }
    }

    /// `01.12.2026` or `2026-12-01`: a booking's day.
    pub fn date(&self, t: DateTime<Utc>, lang: crate::i18n::Lang) -> String {
        let local = t.with_timezone(&self.0);
        match lang {
            crate::i18n::Lang::De => local.format("%d.%m.%Y"),
            crate::i18n::Lang::En => local.format("%Y-%m-%d"),
        }
        .to_string()
    }
}

impl std::str::FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim().parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            format!("unknown time zone {s:?}: use an IANA name such as Europe/Vienna or UTC")
        })
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn times_are_shown_in_the_schools_zone_with_the_zone_named() {
        let zone: Zone = "Europe/Vienna".parse().unwrap();
        let winter = "2026-12-01T16:52:03Z".parse::<DateTime<Utc>>().unwrap();
        let summer = "2026-07-01T16:52:03Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(zone.clock(winter), "17:52:03");
        assert_eq!(zone.date_time(winter, Lang::De), "01.12.2026, 17:52 CET");
        assert_eq!(zone.date_time(summer, Lang::En), "2026-07-01 18:52 CEST");
        assert_eq!(zone.date(winter, Lang::De), "01.12.2026");
        assert_eq!(zone.short(winter, Lang::De), "01.12., 17:52");
        assert_eq!(zone.short(winter, Lang::En), "Dec 1, 17:52");
        let evening = "2026-12-01T22:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(zone.recent(winter, evening, Lang::De), "heute 17:52");
        // 22:30 UTC is 23:30 in Vienna, still the same day there.
        assert_eq!(zone.recent(evening, evening, Lang::En), "today 23:30");
        let next_day = "2026-12-02T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            zone.recent(winter, next_day, Lang::De),
            "01.12.2026, 17:52 CET"
        );
        assert!("Mars/Olympus".parse::<Zone>().is_err());
    }
}
