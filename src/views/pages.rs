//! The admin pages: customer search with the scan panel, scan history, one
//! scan.

use chrono::{DateTime, Utc};
use maud::{Markup, PreEscaped, html};
use serde_json::json;

use super::{Nav, json_script, layout, t};
use crate::i18n::{Lang, Msg};
use crate::scan::ScanMode;
use crate::scan::status::StatusObject;
use crate::store::{Customer, ScanStatus, WebhookRow, WebhookSubscriptionRow};
use crate::time::{Zone, millis};

/// What the customer page shows.
#[derive(Debug)]
pub struct CustomerPage<'a> {
    pub q: &'a str,
    pub page: i64,
    pub per_page: i64,
    pub customers: &'a [Customer],
    pub total: i64,
    /// The scan panel above the list.
    pub panel: Panel<'a>,
}

/// What the scan panel shows: the newest scan (live when running,
/// resumable when it stopped) and what the admin should know before a click.
#[derive(Debug, Clone, Copy)]
pub struct Panel<'a> {
    pub latest: Option<&'a StatusObject>,
    /// Whether Calendly is set up (`CALENDLY_TOKEN`).
    pub configured: bool,
    /// The next scheduled scan and the interval (`CALSCAN_SCAN_EVERY`).
    pub next_scan: Option<(DateTime<Utc>, std::time::Duration)>,
    pub zone: Zone,
    pub now: DateTime<Utc>,
    /// On the customer page: a new scan can be started here.
    pub controls: bool,
}

pub fn customer_search(lang: Lang, view: &CustomerPage<'_>) -> Markup {
    let pages = ((view.total + view.per_page - 1) / view.per_page).max(1);
    let link = |page: i64| {
        let q: String = url::form_urlencoded::byte_serialize(view.q.as_bytes()).collect();
        format!("/admin/customer_search?q={q}&page={page}")
    };
    let title = t(lang, "Kunden", "Customers");
    let zone = view.panel.zone;
    layout(
        lang,
        title,
        Nav::Customers,
        true,
        html! {
            a.skip href="#scan-panel" { (t(lang, "Zum Calendly-Scan springen", "Skip to the Calendly scan")) }
            h1 { (title) }
            (scan_panel(lang, view.panel))
            section.customers aria-labelledby="customers-heading" {
                h2 #customers-heading { (t(lang, "Kundensuche", "Customer search")) }
                form.search method="get" action="/admin/customer_search" role="search" {
                    label for="q" { (t(lang, "Suche nach Email oder Name", "Search by email or name")) }
                    div.row {
                        input #q name="q" type="search" value=(view.q) autocomplete="off";
                        button type="submit" { (t(lang, "Suchen", "Search")) }
                    }
                }
                p.summary {
                    span #customer-total { (view.total) }
                    " " (t(lang, "Kunden", "customers"))
                    @if !view.q.is_empty() { " " (t(lang, "gefunden", "found")) }
                    @if view.total > 0 {
                        " · "
                        @let (csv, excel) = csv_links(view.q);
                        @if view.q.is_empty() {
                            a href=(csv) download { (t(lang, "Alle als CSV exportieren", "Export all as CSV")) }
                        } @else {
                            a href=(csv) download { (t(lang, "Treffer als CSV exportieren", "Export these as CSV")) }
                        }
                        " ("
                        a href=(excel) download { (t(lang, "für Excel mit ;", "for Excel with ;")) }
                        ")"
                    }
                }
                p #customers-empty.empty hidden[view.total > 0] {
                    @if view.q.is_empty() {
                        (t(lang, "Noch keine Kunden – starte oben einen Calendly-Scan.", "No customers yet – start a Calendly scan above."))
                    } @else {
                        (t(lang, "Keine Treffer für »", "No matches for “")) (view.q) (t(lang, "«.", "”."))
                    }
                }
                div.table-wrap hidden[view.total == 0] {
                    table.customers {
                        thead { tr {
                            th scope="col" { "Email" }
                            th scope="col" { "Name" }
                            th scope="col" { (t(lang, "Buchungen", "Bookings")) }
                            th scope="col" { (t(lang, "Letzte Buchung", "Last booking")) }
                        } }
                        tbody #customer-rows data-q=(view.q) data-page=(view.page) {
                            @for c in view.customers {
                                tr {
                                    td.email { (c.email) }
                                    td.name { (c.name.as_deref().unwrap_or("")) }
                                    td.num data-label=(t(lang, "Buchungen", "Bookings")) { (c.bookings) }
                                    td.last data-label=(t(lang, "Letzte Buchung", "Last booking")) {
                                        @if let Some(at) = c.last_booking_at {
                                            time datetime=(millis(at)) { (zone.date(at, lang)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if pages > 1 {
                    nav.pager aria-label=(t(lang, "Seiten", "Pages")) {
                        @if view.page > 1 { a href=(link(view.page - 1)) rel="prev" { "‹ " (t(lang, "Zurück", "Previous")) } }
                        span { (t(lang, "Seite", "Page")) " " (view.page) " / " (pages) }
                        @if view.page < pages { a href=(link(view.page + 1)) rel="next" { (t(lang, "Weiter", "Next")) " ›" } }
                    }
                }
            }
        },
    )
}

/// The radar icon of the scan button, drawn inline: it needs no emoji font.
const SCAN_ICON: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M4.9 19.1a10 10 0 0 1 0-14.2"/><path d="M7.8 16.2a6 6 0 0 1 0-8.4"/><circle cx="12" cy="12" r="2"/><path d="M16.2 7.8a6 6 0 0 1 0 8.4"/><path d="M19.1 4.9a10 10 0 0 1 0 14.2"/></svg>"#;

/// `Events 105 / 300` while a scan runs and its events are known.
fn event_count(s: &StatusObject) -> String {
    match s.events_total {
        Some(total) if s.status == ScanStatus::Running => {
            format!("Events {} / {total}", s.events_scanned)
        }
        _ => String::new(),
    }
}

/// A running scan's estimate, when it has one.
fn eta_text(lang: Lang, eta_s: Option<i64>) -> String {
    eta_s.map_or(String::new(), |secs| lang.text(&Msg::Eta { secs }))
}

/// The scan panel: the last scan's result, the button, progress bar,
/// counts, the live log. `scan.js` brings it to life; without JavaScript it
/// shows the newest scan as it was.
pub fn scan_panel(lang: Lang, panel: Panel<'_>) -> Markup {
    let latest = panel.latest;
    let zone = panel.zone;
    let state = latest.map_or("idle", |s| s.status.as_str());
    let progress = latest.map_or(0, |s| s.progress);
    let step = latest.map_or("", |s| s.current_step.as_str());
    let resumable = panel.configured && latest.is_some_and(|s| s.status.is_resumable());
    let strings = json!({
        "started": t(lang, "Scan gestartet", "Scan started"),
        "attached": t(lang, "Es läuft bereits ein Scan – er wird hier angezeigt.", "A scan is already running – showing it here."),
        "polling": t(lang, "Live-Verbindung nicht verfügbar – aktualisiere alle 2 Sekunden.", "Live connection unavailable – updating every 2 seconds."),
        "last": t(lang, "Letzter Scan: {when} · {summary}", "Last scan: {when} · {summary}"),
        "today": t(lang, "heute", "today"),
        "eta": t(lang, "noch ca. {about}", "about {about} left"),
        "failed_request": t(lang, "Anfrage fehlgeschlagen: {message}", "Request failed: {message}"),
        "seconds": t(lang, "s", "s"),
    });
    html! {
        section #scan-panel.scan-panel aria-labelledby="scan-heading" tabindex="-1"
            data-scan-state=(state)
            data-scan-id=[latest.map(|s| s.scan_id.as_str())]
            data-started-at=[latest.map(|s| millis(s.started_at))]
            data-duration=[latest.map(|s| s.duration)]
            data-last-log-id=[latest.map(|s| s.last_event_id)]
            data-zone=(zone.name())
            data-configured=(panel.configured) {
            h2 #scan-heading { (t(lang, "Calendly-Scan", "Calendly scan")) }
            @if !panel.configured {
                p #scan-config.banner {
                    strong { (t(lang, "Calendly ist nicht eingerichtet.", "Calendly is not set up.")) }
                    " "
                    (t(lang,
                        "Ohne CALENDLY_TOKEN endet jeder Scan mit einem Fehler. Einen persönlichen Zugriffstoken unter Calendly → Integrationen → API & Webhooks erstellen, als CALENDLY_TOKEN setzen und calscan neu starten.",
                        "Without CALENDLY_TOKEN every scan ends with an error. Create a personal access token under Calendly → Integrations → API & Webhooks, set it as CALENDLY_TOKEN and restart calscan."))
                }
            }
            p #scan-status.status role="status" {
                @match latest {
                    Some(s) if s.status != ScanStatus::Running => {
                        @let when = s.completed_at.unwrap_or(s.started_at);
                        (t(lang, "Letzter Scan: ", "Last scan: ")) (zone.recent(when, panel.now, lang))
                        " · " (s.summary.as_deref().unwrap_or(""))
                    }
                    Some(_) => (t(lang, "Ein Scan läuft.", "A scan is running.")),
                    None => (t(lang, "Noch kein Scan – der erste liest alle Events der Organisation.",
                        "No scan yet – the first one reads every event of the organization.")),
                }
            }
            div.actions {
                @if panel.controls {
                    button #scan-start type="button" aria-disabled=[(state == "running").then_some("true")] {
                        (PreEscaped(SCAN_ICON)) " " (t(lang, "Calendly Scan starten", "Start Calendly Scan"))
                    }
                    label.full-scan title=(t(lang,
                        "Sonst liest der Scan nur Events ab dem letzten abgeschlossenen Scan (minus Rückblick).",
                        "Otherwise the scan reads only events from the last completed scan on (minus the look-back).")) {
                        input #scan-full type="checkbox";
                        " " (t(lang, "Vollständiger Scan (alle Events)", "Full scan (every event)"))
                    }
                }
                button #scan-cancel.secondary type="button" hidden[state != "running"] { (t(lang, "Abbrechen", "Cancel")) }
                button #scan-resume.secondary type="button" hidden[!resumable] { (t(lang, "Fortsetzen", "Resume")) }
            }
            div #scan-progress.progress role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=(progress) aria-valuetext=(format!("{progress} % · {step}"))
                aria-labelledby="scan-heading" {
                // Its width is set by scan.js: the page allows no inline style.
                div #scan-progress-bar.bar {}
            }
            p.step {
                span #scan-percent { (progress) " %" }
                " · "
                span #scan-step { (step) }
                " "
                span #scan-count { (latest.map(event_count).unwrap_or_default()) }
                " "
                span #scan-eta { (eta_text(lang, latest.and_then(|s| s.eta_s))) }
            }
            dl.stats {
                div { dt { "Events" } dd #stat-events { (latest.map_or(0, |s| s.events_scanned)) } }
                div { dt { "Emails" } dd #stat-emails { (latest.map_or(0, |s| s.emails_found)) } }
                div { dt { (t(lang, "Neu", "New")) } dd #stat-new { (latest.map_or(0, |s| s.new_count)) } }
                div { dt { (t(lang, "Vorhanden", "Existing")) } dd #stat-existing { (latest.map_or(0, |s| s.existing_count)) } }
                div { dt { (t(lang, "Dauer", "Duration")) } dd #stat-duration { (format!("{:.1} s", latest.map_or(0.0, |s| s.duration))) } }
            }
            p #scan-transport-note.note hidden {}
            @let logs = latest.and_then(|s| s.logs.as_deref()).unwrap_or_default();
            // The box scrolls and is what a screen reader follows; the list
            // inside keeps the lines a list.
            div #scan-log-box.log role="log" tabindex="0" hidden[logs.is_empty()]
                aria-label=(format!("{} ({} {})", t(lang, "Protokoll", "Log"), t(lang, "Zeiten in", "times in"), zone.name())) {
                ol #scan-log {
                    @for line in logs {
                        li data-id=(line.id) {
                            time datetime=(millis(line.created_at)) { (zone.clock(line.created_at)) }
                            " " (line.message)
                        }
                    }
                }
            }
            (schedule(lang, zone, panel.now, panel.next_scan))
            (json_script("scan-i18n", &strings))
            script src="/assets/scan.js" defer {}
        }
    }
}

/// How calscan receives webhooks: the subscriptions `calscan webhooks
/// subscribe` made, and whether `CALENDLY_WEBHOOK_SIGNING_KEY` is set.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSetup<'a> {
    pub subscriptions: &'a [WebhookSubscriptionRow],
    pub configured_key: bool,
}

/// What the history page shows beside the scans.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    pub scans: &'a [StatusObject],
    pub webhooks: &'a [WebhookRow],
    pub setup: WebhookSetup<'a>,
    pub next_scan: Option<(DateTime<Utc>, std::time::Duration)>,
    pub zone: Zone,
    pub now: DateTime<Utc>,
}

/// When the next scheduled scan starts (`CALSCAN_SCAN_EVERY`), if one is.
fn schedule(
    lang: Lang,
    zone: Zone,
    now: DateTime<Utc>,
    next: Option<(DateTime<Utc>, std::time::Duration)>,
) -> Markup {
    html! {
        @if let Some((at, every)) = next {
            p.hint #scan-schedule {
                (t(lang, "Nächster geplanter Scan: ", "Next scheduled scan: "))
                time datetime=(millis(at)) { (zone.recent(at, now, lang)) }
                " (" (t(lang, "alle ", "every ")) (crate::time::interval(every)) ")"
            }
        }
    }
}

/// A scan's status as a badge: a word and a colour, no emoji.
fn badge(lang: Lang, status: ScanStatus) -> Markup {
    html! { span class=(format!("badge badge-{}", status.as_str())) { (status_label(lang, status)) } }
}

pub fn scans_history(lang: Lang, view: &History<'_>) -> Markup {
    let title = t(lang, "Scan-Verlauf", "Scan history");
    let zone = view.zone;
    layout(
        lang,
        title,
        Nav::Scans,
        true,
        html! {
            h1 { (title) }
            (schedule(lang, zone, view.now, view.next_scan))
            @if view.scans.is_empty() {
                p.empty { (t(lang, "Noch keine Scans – starte den ersten auf der ", "No scans yet – start the first one on the "))
                    a href="/admin/customer_search" { (t(lang, "Kundenseite", "customer page")) } "." }
            } @else {
                div.table-wrap tabindex="0" role="region" aria-label=(title) {
                    table.scans {
                        thead { tr {
                            th scope="col" { "Status" }
                            th scope="col" { (t(lang, "Gestartet", "Started")) }
                            th scope="col" { (t(lang, "Art", "Mode")) }
                            th scope="col" { (t(lang, "Ergebnis", "Result")) }
                            th scope="col" { (t(lang, "Dauer", "Duration")) }
                        } }
                        tbody {
                            @for s in view.scans {
                                tr data-scan-id=(s.scan_id.as_str()) data-status=(s.status.as_str()) {
                                    td { a href=(format!("/admin/scans/{}", s.scan_id)) { (badge(lang, s.status)) } }
                                    td { time datetime=(millis(s.started_at)) { (zone.date_time(s.started_at, lang)) } }
                                    td { (mode_label(lang, s.mode)) }
                                    td.result {
                                        @match &s.summary {
                                            Some(summary) => (summary),
                                            None => {
                                                (s.progress) " % · " (s.current_step)
                                                @if let Some(total) = s.events_total { " · Events " (s.events_scanned) " / " (total) }
                                            }
                                        }
                                    }
                                    td.num { (format!("{:.1} s", s.duration)) }
                                }
                            }
                        }
                    }
                }
            }
            h2 #webhook-imports { (t(lang, "Webhook-Importe", "Webhook imports")) }
            @if view.webhooks.is_empty() {
                p.empty { (t(lang, "Noch keine Importe.", "No imports yet.")) }
            } @else {
                div.table-wrap tabindex="0" role="region" aria-label=(t(lang, "Webhook-Importe", "Webhook imports")) {
                    table.webhooks {
                        thead { tr {
                            th scope="col" { (t(lang, "Empfangen", "Received")) }
                            th scope="col" { (t(lang, "Ereignis", "Event")) }
                            th scope="col" { "Email" }
                            th scope="col" { "Name" }
                        } }
                        tbody {
                            @for w in view.webhooks {
                                tr {
                                    td { time datetime=(millis(w.received_at)) { (zone.date_time(w.received_at, lang)) } }
                                    td { (w.event) }
                                    td { (w.email) }
                                    td { (w.name.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            section.technical aria-labelledby="technical-heading" {
                h2 #technical-heading { (t(lang, "Technisches", "Technical")) }
                @let setup = view.setup;
                @if setup.subscriptions.is_empty() && !setup.configured_key {
                    p #webhook-setup.hint {
                        (t(lang, "Kein Webhook-Abo. ", "No webhook subscription. "))
                        code { "calscan webhooks subscribe --url https://…" }
                        (t(lang, " lässt Calendly neue Buchungen sofort hierher senden.",
                            " makes Calendly send new bookings here at once."))
                    }
                } @else {
                    p #webhook-setup.hint {
                        (t(lang, "Calendly sendet neue Buchungen sofort", "Calendly sends new bookings at once"))
                        @for (i, s) in setup.subscriptions.iter().enumerate() {
                            (if i == 0 { t(lang, " an ", " to ") } else { ", " })
                            code { (s.callback_url) }
                            " (" (t(lang, "seit ", "since ")) time datetime=(millis(s.created_at)) { (zone.date(s.created_at, lang)) } ")"
                        }
                        @if setup.configured_key {
                            (t(lang, "; geprüft auch mit CALENDLY_WEBHOOK_SIGNING_KEY",
                                "; also verified with CALENDLY_WEBHOOK_SIGNING_KEY"))
                        }
                        "."
                    }
                }
                p.hint {
                    (t(lang, "Kennzahlen für Prometheus (Streams, Scans, Calendly-Aufrufe, Kunden): ",
                        "Figures for Prometheus (streams, scans, Calendly calls, customers): "))
                    a href="/metrics" { "/metrics" }
                }
                p.hint { (t(lang, "Zeiten in ", "Times in ")) (zone.name()) "." }
            }
            script src="/assets/history.js" defer {}
        },
    )
}

fn mode_label(lang: Lang, mode: ScanMode) -> &'static str {
    match mode {
        ScanMode::Full => t(lang, "vollständig", "full"),
        ScanMode::Incremental => t(lang, "inkrementell", "incremental"),
    }
}

/// One scan: live while it runs (the same panel, without starting
/// another), its whole log afterwards.
pub fn scan_detail(lang: Lang, scan: &StatusObject, panel: Panel<'_>) -> Markup {
    let title = format!(
        "{} {} ({})",
        t(lang, "Scan vom", "Scan of"),
        panel.zone.date_time(scan.started_at, lang),
        mode_label(lang, scan.mode)
    );
    layout(
        lang,
        &title,
        Nav::Scans,
        true,
        html! {
            h1 { (title) }
            p { (badge(lang, scan.status)) " " code.scan-id { (scan.scan_id.as_str()) } }
            (scan_panel(lang, Panel { latest: Some(scan), controls: false, ..panel }))
        },
    )
}

pub fn status_label(lang: Lang, status: ScanStatus) -> &'static str {
    match status {
        ScanStatus::Running => t(lang, "läuft", "running"),
        ScanStatus::Completed => t(lang, "abgeschlossen", "completed"),
        ScanStatus::Error => t(lang, "Fehler", "error"),
        ScanStatus::Cancelled => t(lang, "abgebrochen", "cancelled"),
        ScanStatus::Interrupted => t(lang, "unterbrochen", "interrupted"),
    }
}

/// The CSV export of the customers a search shows (all, without one):
/// comma-separated, and for Excel set to German, semicolon-separated.
fn csv_links(q: &str) -> (String, String) {
    let link = |sep: Option<&str>| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            query.append_pair("q", q);
        }
        if let Some(sep) = sep {
            query.append_pair("sep", sep);
        }
        let query = query.finish();
        if query.is_empty() {
            "/admin/customers.csv".to_owned()
        } else {
            format!("/admin/customers.csv?{query}")
        }
    };
    (link(None), link(Some("semicolon")))
}
