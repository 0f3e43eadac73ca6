//! The users' words: every log line and step of a scan, in German (the
//! original's wording, the default) and English.

use std::fmt;
use std::str::FromStr;

/// A language calscan speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    De,
    En,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "de" => Ok(Self::De),
            "en" => Ok(Self::En),
            other => Err(format!("unsupported language {other:?}: use de or en")),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::De => "de",
            Self::En => "en",
        })
    }
}

impl Lang {
    /// The first of `de`/`en` an `Accept-Language` header names, by quality.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Self)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Ok(lang) = primary.parse::<Self>() else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }
}

/// Everything a scan says.
#[derive(Debug, Clone)]
pub enum Msg<'a> {
    StepInit,
    StepConnect,
    StepEventsLoaded,
    StepExtract,
    StepEmailsFound,
    StepSave,
    StepFinish,
    StepDone,
    StepFailed,
    StepCancelled,
    StepInterrupted,
    Started,
    Resumed {
        done: usize,
    },
    Connected {
        organization: &'a str,
    },
    EventsPage {
        page: usize,
        count: usize,
        total: usize,
    },
    EventsLoaded {
        count: usize,
    },
    /// An incremental scan reads events from `since` (UTC) on.
    IncrementalSince {
        since: chrono::DateTime<chrono::Utc>,
        zone: crate::time::Zone,
        lookback_hours: u64,
    },
    /// A completed scan that found new customers.
    SummaryNew {
        new: i64,
        events: i64,
        emails: i64,
        existing: i64,
    },
    /// One that read events and found only known customers; an
    /// incremental one says since which scan (`since`).
    SummaryNoneNew {
        events: i64,
        emails: i64,
        since: Option<&'a str>,
    },
    /// An incremental scan that found no booking since the last scan (`since`).
    SummaryNoBookings {
        since: Option<&'a str>,
    },
    /// A scan that failed, with its error.
    SummaryFailed {
        error: &'a str,
    },
    SummaryCancelled,
    SummaryInterrupted,
    /// About how long a running scan still takes: `noch ca. 40 s`,
    /// `noch ca. 3 min` (`scan.js` writes the same).
    Eta {
        secs: i64,
    },
    /// Calendly's rate limit holds the calls up until `at` (the school's
    /// clock), `secs` from now.
    RateWait {
        at: &'a str,
        secs: u64,
    },
    /// The end-of-scan summary was delivered.
    NotifySent {
        host: &'a str,
        status: u16,
        attempts: u32,
    },
    /// It could not be delivered.
    NotifyFailed {
        host: &'a str,
        error: &'a str,
        attempts: u32,
    },
    /// An incremental scan without a completed scan before it.
    IncrementalFirst,
    /// Roughly how many calls an incremental scan saved against a full one,
    /// which lists about `full_events`.
    CallsSaved {
        saved: i64,
        full_events: i64,
    },
    NoEmail {
        name: &'a str,
    },
    EmailTooLong {
        email: &'a str,
        max: i64,
    },
    UniqueEmails {
        count: i64,
    },
    Saved {
        new: i64,
        existing: i64,
    },
    Completed {
        events: i64,
        emails: i64,
        new: i64,
        secs: f64,
    },
    NotConfigured,
    /// A scan's end with an error: `error` in each language.
    Failed {
        error: &'a Texts,
    },
    /// What went wrong talking to Calendly, and what to do.
    Calendly(&'a crate::calendly::CalendlyError),
    /// The database refused a scan's work (its own words are technical).
    Database(&'a crate::store::StoreError),
    Cancelled,
    Interrupted,
    ProcessGone,
    ScanStarted,
    CancelRequested,
    ScanResumed,
    /// A start or resume refused: another scan runs.
    AlreadyRunning,
    /// The terminal's word for the new customers' count.
    NewCount,
    /// The terminal heard Ctrl-C.
    CtrlC,
    /// The database does not take the scan's writes; it waits, for `secs` so far.
    DbWaiting {
        secs: u64,
    },
    /// It does again, after `secs`.
    DbBack {
        secs: u64,
    },
    /// It did not for `secs`, the longest a scan waits: the scan's error.
    DbGone {
        backend: &'a str,
        outage: crate::store::Outage,
        secs: u64,
    },
    /// `calscan scan --resume` without an id, and no scan can be resumed.
    ResumeNone,
    /// `--resume` with a text that is not a scan id.
    ResumeBadId {
        id: &'a str,
    },
    /// `--resume` with an id the database does not know.
    ResumeUnknown {
        id: &'a str,
    },
    /// `--resume` of a scan that is neither interrupted, error nor cancelled.
    ResumeNotResumable {
        id: &'a str,
        status: &'a str,
    },
    /// After Ctrl-C: the scan's id and the command that resumes it.
    ResumeHint {
        id: &'a str,
    },
}

impl Lang {
    /// `msg` in this language.
    pub fn text(self, msg: &Msg<'_>) -> String {
        use Msg::*;
        let de = self == Lang::De;
        match msg {
            StepInit => pick(de, "Scanner initialisiert", "Scanner initialized"),
            StepConnect => pick(
                de,
                "Verbinde mit Calendly API...",
                "Connecting to the Calendly API...",
            ),
            StepEventsLoaded => pick(de, "Alle Events geladen", "All events loaded"),
            StepExtract => pick(
                de,
                "Extrahiere Email-Adressen...",
                "Extracting email addresses...",
            ),
            StepEmailsFound => pick(
                de,
                "Eindeutige Email-Adressen ermittelt",
                "Unique email addresses identified",
            ),
            StepSave => pick(de, "Speichere in Datenbank...", "Saving to the database..."),
            StepFinish => pick(de, "Schließe ab...", "Finishing..."),
            StepDone => pick(de, "Fertig", "Done"),
            StepFailed => pick(de, "Fehler", "Error"),
            StepCancelled => pick(de, "Abgebrochen", "Cancelled"),
            StepInterrupted => pick(de, "Unterbrochen", "Interrupted"),
            Started => pick(de, "🚀 Calendly Scan gestartet", "🚀 Calendly scan started"),
            Resumed { done } => {
                if de {
                    format!("🔁 Scan fortgesetzt ({done} Events bereits erledigt)")
                } else {
                    format!("🔁 Scan resumed ({done} events already done)")
                }
            }
            Connected { organization } => {
                if de {
                    format!("🔗 Verbunden mit Calendly (Organisation {organization})")
                } else {
                    format!("🔗 Connected to Calendly (organization {organization})")
                }
            }
            EventsPage { page, count, total } => {
                if de {
                    format!("📄 Seite {page}: {count} Events ({total} insgesamt)")
                } else {
                    format!("📄 Page {page}: {count} events ({total} in all)")
                }
            }
            IncrementalSince {
                since,
                zone,
                lookback_hours,
            } => {
                let since = zone.date_time(*since, self);
                if de {
                    format!(
                        "⏩ Inkrementeller Scan: nur Events ab {since} (Start des letzten abgeschlossenen Scans minus {lookback_hours} h)"
                    )
                } else {
                    format!(
                        "⏩ Incremental scan: only events from {since} on (the last completed scan's start minus {lookback_hours} h)"
                    )
                }
            }
            NotifySent {
                host,
                status,
                attempts,
            } => {
                if de {
                    format!(
                        "📨 Benachrichtigung an {host} gesendet (HTTP {status}, Versuch {attempts})"
                    )
                } else {
                    format!("📨 Notification sent to {host} (HTTP {status}, attempt {attempts})")
                }
            }
            NotifyFailed {
                host,
                error,
                attempts,
            } => {
                if de {
                    format!(
                        "⚠️ Benachrichtigung an {host} fehlgeschlagen nach {attempts} Versuchen: {error}"
                    )
                } else {
                    format!("⚠️ Notification to {host} failed after {attempts} attempts: {error}")
                }
            }
            IncrementalFirst => pick(
                de,
                "⏩ Noch kein abgeschlossener Scan: dieser Scan liest alle Events",
                "⏩ No completed scan yet: this scan reads every event",
            ),
            CallsSaved { saved, full_events } => {
                if de {
                    format!(
                        "💡 Etwa {saved} Calendly-Aufrufe gespart (ein vollständiger Scan liest etwa {full_events} Events)"
                    )
                } else {
                    format!(
                        "💡 About {saved} Calendly calls saved (a full scan reads about {full_events} events)"
                    )
                }
            }
            EventsLoaded { count } => {
                if de {
                    format!("✅ {count} Events von Calendly geladen")
                } else {
                    format!("✅ {count} events loaded from Calendly")
                }
            }
            NoEmail { name } => {
                if de {
                    format!("⚠️ Teilnehmer ohne gültige Email übersprungen: {name}")
                } else {
                    format!("⚠️ Skipped an invitee without a usable email: {name}")
                }
            }
            EmailTooLong { email, max } => {
                if de {
                    format!(
                        "⚠️ Email länger als die Kundentabelle erlaubt ({max} Zeichen) übersprungen: {email}"
                    )
                } else {
                    format!(
                        "⚠️ Skipped an email longer than the customer table takes ({max} characters): {email}"
                    )
                }
            }
            UniqueEmails { count } => {
                if de {
                    format!("📧 {count} eindeutige Email-Adressen gefunden")
                } else {
                    format!("📧 {count} unique email addresses found")
                }
            }
            Saved { new, existing } => {
                if de {
                    format!("💾 {new} neue Kunden gespeichert, {existing} bereits vorhanden")
                } else {
                    format!("💾 {new} new customers saved, {existing} already known")
                }
            }
            Completed {
                events,
                emails,
                new,
                secs,
            } => {
                if de {
                    format!(
                        "🎉 Scan abgeschlossen: {events} Events, {emails} Emails, {new} neu ({secs:.1} s)"
                    )
                } else {
                    format!(
                        "🎉 Scan completed: {events} events, {emails} emails, {new} new ({secs:.1} s)"
                    )
                }
            }
            NotConfigured => pick(
                de,
                "Calendly API nicht konfiguriert: CALENDLY_TOKEN setzen (persönlicher Zugriffstoken aus Calendly → Integrationen → API & Webhooks)",
                "Calendly API not configured: set CALENDLY_TOKEN (a personal access token from Calendly → Integrations → API & Webhooks)",
            ),
            Failed { error } => {
                let error = error.get(self);
                if de {
                    format!("❌ Fehler: {error}")
                } else {
                    format!("❌ Error: {error}")
                }
            }
            Calendly(error) => {
                if de {
                    calendly_de(error)
                } else {
                    error.to_string()
                }
            }
            Database(error) => {
                if de {
                    format!("Die Datenbank hat die Arbeit des Scans abgelehnt: {error}")
                } else {
                    format!("The database refused the scan's work: {error}")
                }
            }
            Cancelled => pick(de, "⏹️ Scan abgebrochen", "⏹️ Scan cancelled"),
            Interrupted => pick(
                de,
                "⏸️ Scan unterbrochen (Server beendet); er kann fortgesetzt werden",
                "⏸️ Scan interrupted (server stopped); it can be resumed",
            ),
            ProcessGone => pick(
                de,
                "⏸️ Scan unterbrochen: der ausführende Prozess antwortet nicht mehr; er kann fortgesetzt werden",
                "⏸️ Scan interrupted: the process running it stopped answering; it can be resumed",
            ),
            ScanStarted => pick(de, "Scan gestartet", "Scan started"),
            CancelRequested => pick(de, "Abbruch angefordert", "Cancellation requested"),
            ScanResumed => pick(de, "Scan wird fortgesetzt", "Scan resuming"),
            AlreadyRunning => pick(de, "Es läuft bereits ein Scan", "A scan is already running"),
            NewCount => pick(de, "neu", "new"),
            CtrlC => pick(
                de,
                "Ctrl-C: Der Scan wird abgebrochen und kann fortgesetzt werden",
                "Ctrl-C: the scan is cancelled and can be resumed",
            ),
            SummaryNew {
                new,
                events,
                emails,
                existing,
            } => {
                let (events, emails) = (self.events(*events), self.emails(*emails));
                if de {
                    let new = count(*new, "neuer Kunde", "neue Kunden");
                    format!("{new} aus {events} ({emails}, {existing} bereits vorhanden)")
                } else {
                    let new = count(*new, "new customer", "new customers");
                    format!("{new} from {events} ({emails}, {existing} already known)")
                }
            }
            SummaryNoneNew {
                events,
                emails,
                since,
            } => {
                let since = since.map_or(String::new(), |since| match self {
                    Lang::De => format!(" seit dem letzten Scan ({since})"),
                    Lang::En => format!(" since the last scan ({since})"),
                });
                let (events, emails) = (self.events(*events), self.emails(*emails));
                if de {
                    format!(
                        "Keine neuen Kunden{since}: {events} gelesen, {emails} – alle bereits Kunden"
                    )
                } else {
                    format!(
                        "No new customers{since}: {events} read, {emails} – all customers already"
                    )
                }
            }
            SummaryNoBookings { since } => match (de, since) {
                (true, Some(since)) => {
                    format!("Keine neuen Buchungen seit dem letzten Scan ({since})")
                }
                (true, None) => "Keine Buchungen gefunden".to_owned(),
                (false, Some(since)) => format!("No new bookings since the last scan ({since})"),
                (false, None) => "No bookings found".to_owned(),
            },
            SummaryFailed { error } => {
                if de {
                    format!("Scan fehlgeschlagen: {error}")
                } else {
                    format!("Scan failed: {error}")
                }
            }
            SummaryCancelled => pick(
                de,
                "Scan abgebrochen – er kann fortgesetzt werden",
                "Scan cancelled – it can be resumed",
            ),
            SummaryInterrupted => pick(
                de,
                "Scan unterbrochen – er kann fortgesetzt werden",
                "Scan interrupted – it can be resumed",
            ),
            Eta { secs } => {
                let about = if *secs < 90 {
                    format!("{} s", secs.max(&1))
                } else {
                    format!("{} min", (secs + 30) / 60)
                };
                if de {
                    format!("noch ca. {about}")
                } else {
                    format!("about {about} left")
                }
            }
            RateWait { at, secs } => {
                if de {
                    format!("⏳ Calendly-Limit erreicht – weiter um {at} (in {secs} s)")
                } else {
                    format!("⏳ Calendly's rate limit reached – going on at {at} (in {secs} s)")
                }
            }
            DbWaiting { secs } => {
                if de {
                    format!("⏳ Datenbank nicht erreichbar – Scan wartet (seit {secs} s)")
                } else {
                    format!("⏳ Database not reachable – the scan waits (for {secs} s)")
                }
            }
            DbBack { secs } => {
                if de {
                    format!("✅ Datenbank wieder erreichbar – Scan läuft weiter (nach {secs} s)")
                } else {
                    format!("✅ Database reachable again – the scan goes on (after {secs} s)")
                }
            }
            DbGone {
                backend,
                outage,
                secs,
            } => db_gone(de, backend, *outage, *secs),
            ResumeNone => pick(
                de,
                "Kein Scan zum Fortsetzen: fortsetzen lassen sich nur unterbrochene, fehlgeschlagene und abgebrochene Scans",
                "No scan to resume: only interrupted, failed and cancelled scans can be resumed",
            ),
            ResumeBadId { id } => {
                if de {
                    format!(
                        "{id:?} ist keine Scan-ID: eine Scan-ID ist scan_ gefolgt von 8 bis 40 Zeichen aus 0-9 und a-z"
                    )
                } else {
                    format!(
                        "{id:?} is not a scan id: a scan id is scan_ followed by 8 to 40 characters of 0-9 and a-z"
                    )
                }
            }
            ResumeUnknown { id } => {
                if de {
                    format!("Diese Datenbank kennt keinen Scan {id}")
                } else {
                    format!("This database has no scan {id}")
                }
            }
            ResumeNotResumable { id, status } => {
                if de {
                    format!(
                        "Scan {id} lässt sich nicht fortsetzen (Status {status}): fortsetzen lassen sich nur unterbrochene, fehlgeschlagene und abgebrochene Scans"
                    )
                } else {
                    format!(
                        "Scan {id} cannot be resumed (status {status}): only interrupted, failed and cancelled scans can"
                    )
                }
            }
            ResumeHint { id } => {
                if de {
                    format!("Scan {id} abgebrochen. Fortsetzen mit: calscan scan --resume {id}")
                } else {
                    format!("Scan {id} cancelled. Resume with: calscan scan --resume {id}")
                }
            }
        }
    }
}

/// [`crate::calendly::CalendlyError`]'s words in German. Calendly's own
/// title and message stay as Calendly sent them.
fn calendly_de(error: &crate::calendly::CalendlyError) -> String {
    use crate::calendly::CalendlyError::*;
    match error {
        NotConfigured => Lang::De.text(&Msg::NotConfigured),
        Unauthenticated { title, message } => format!(
            "Calendly hat den Zugriffstoken abgelehnt ({title}: {message}). Unter Integrationen → \
             API & Webhooks einen neuen persönlichen Zugriffstoken erstellen und als CALENDLY_TOKEN \
             setzen"
        ),
        PermissionDenied { title, message } => format!(
            "Calendly verweigert den Zugriff ({title}: {message}). Der Token muss einem Inhaber \
             oder Admin der Organisation gehören; CALENDLY_TOKEN und CALENDLY_ORG_URI prüfen"
        ),
        NotFound {
            what,
            title,
            message,
        } => format!("Calendly kennt {what} nicht ({title}: {message}); CALENDLY_ORG_URI prüfen"),
        Rejected {
            status,
            title,
            message,
            details,
        } => format!(
            "Calendly hat die Anfrage mit HTTP {status} abgelehnt ({title}: {message}{details})"
        ),
        RateLimitWaitTooLong { wait, limit } => format!(
            "Das Calendly-Limit verlangt {} s Wartezeit, mehr als die erlaubten {} s; den Scan \
             später fortsetzen",
            wait.as_secs(),
            limit.as_secs()
        ),
        Unavailable { attempts, last } => format!(
            "Calendly hat nach {attempts} Versuchen nicht richtig geantwortet (zuletzt: {last}); \
             später erneut versuchen, der Scan kann fortgesetzt werden"
        ),
        ForeignNextPage { found, expected } => format!(
            "Calendlys next_page-Link zeigt auf {found}, nicht auf die eingestellte API \
             {expected}; calscan folgt ihm nicht. CALENDLY_API_BASE prüfen"
        ),
        Malformed(what) => format!(
            "Calendly hat eine Antwort geschickt, die calscan nicht lesen kann ({what}); später \
             erneut versuchen"
        ),
        InvalidSetting(what) => format!("Ungültige Calendly-Einstellung: {what}"),
    }
}

/// Why a scan gave up waiting for the database, and what to do.
fn db_gone(de: bool, backend: &str, outage: crate::store::Outage, secs: u64) -> String {
    use crate::store::Outage;
    let name = crate::store::backend_name(backend);
    match (backend, outage, de) {
        ("sqlite", Outage::DiskFull, true) => format!(
            "SQLite: die Festplatte ist voll (seit {secs} s) – Platz schaffen, dann den Scan fortsetzen"
        ),
        ("sqlite", Outage::DiskFull, false) => {
            format!("SQLite: the disk is full (for {secs} s) — free space, then resume the scan")
        }
        ("sqlite", Outage::Locked, true) => format!(
            "SQLite: ein anderer Prozess hält die Datenbank seit {secs} s gesperrt – ihn beenden, dann den Scan fortsetzen"
        ),
        ("sqlite", Outage::Locked, false) => format!(
            "SQLite: another process has held the database locked for {secs} s — stop it, then resume the scan"
        ),
        ("sqlite", _, true) => format!(
            "SQLite: die Datenbankdatei ist seit {secs} s nicht beschreibbar (schreibgeschützt oder Plattenfehler) – das beheben, dann den Scan fortsetzen"
        ),
        ("sqlite", _, false) => format!(
            "SQLite: the database file could not be written for {secs} s (read-only or failing disk) — fix that, then resume the scan"
        ),
        (_, _, true) => format!(
            "{name}: die Datenbank antwortet seit {secs} s nicht – sobald sie wieder da ist, den Scan fortsetzen"
        ),
        (_, _, false) => format!(
            "{name}: the database has not answered for {secs} s — once it is back, resume the scan"
        ),
    }
}

/// A text in both languages, so each reader gets its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Texts {
    pub de: String,
    pub en: String,
}

impl Texts {
    /// `msg` in German and English.
    pub fn of(msg: &Msg<'_>) -> Self {
        Self {
            de: Lang::De.text(msg),
            en: Lang::En.text(msg),
        }
    }

    /// A text that is the same in both (a name, a message from elsewhere).
    pub fn same(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            de: text.clone(),
            en: text,
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::De => &self.de,
            Lang::En => &self.en,
        }
    }
}

impl Lang {
    /// `1 Event`, `300 Events` (German) or `1 event`, `300 events`.
    fn events(self, n: i64) -> String {
        match self {
            Lang::De => count(n, "Event", "Events"),
            Lang::En => count(n, "event", "events"),
        }
    }

    /// `1 Email`, `2 Emails` (German) or `1 email`, `2 emails`.
    fn emails(self, n: i64) -> String {
        match self {
            Lang::De => count(n, "Email", "Emails"),
            Lang::En => count(n, "email", "emails"),
        }
    }
}

/// `n` and the word for one or for several.
fn count(n: i64, one: &str, several: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { several })
}

fn pick(de: bool, german: &str, english: &str) -> String {
    if de { german } else { english }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_de_and_en() {
        assert_eq!(
            Lang::from_accept_language("de-DE,de;q=0.9,en;q=0.8"),
            Some(Lang::De)
        );
        assert_eq!(
            Lang::from_accept_language("fr-FR, en-US;q=0.7, de;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0, de;q=0.1"),
            Some(Lang::De)
        );
        assert_eq!(Lang::from_accept_language("fr, it"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn the_original_german_wording_is_kept() {
        assert_eq!(Lang::De.text(&Msg::Started), "🚀 Calendly Scan gestartet");
        assert_eq!(
            Lang::De.text(&Msg::EventsLoaded { count: 87 }),
            "✅ 87 Events von Calendly geladen"
        );
        assert_eq!(
            Lang::De.text(&Msg::StepExtract),
            "Extrahiere Email-Adressen..."
        );
        assert_eq!(
            Lang::En.text(&Msg::EventsLoaded { count: 1 }),
            "✅ 1 events loaded from Calendly"
        );
    }
}
