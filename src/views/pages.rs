//! The admin pages: customer search with the scan panel, scan history, one
//! scan.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde_json::json;

use super::{Nav, json_script, layout, t};
use crate::i18n::Lang;
use crate::scan::ScanMode;
use crate::scan::status::StatusObject;
use crate::store::{Customer, ScanStatus, WebhookRow, WebhookSubscriptionRow};
use crate::time::millis;

/// What the customer page shows.
#[derive(Debug)]
pub struct CustomerPage<'a> {
    pub q: &'a str,
    pub page: i64,
    pub per_page: i64,
    pub customers: &'a [Customer],
    pub total: i64,
    /// The newest scan: live when running, resumable when it stopped.
    pub latest: Option<&'a StatusObject>,
    /// The next scheduled scan and the interval (`CALSCAN_SCAN_EVERY`).
    pub next_scan: Option<(DateTime<Utc>, std::time::Duration)>,
}

pub fn customer_search(lang: Lang, view: &CustomerPage<'_>) -> Markup {
    let pages = ((view.total + view.per_page - 1) / view.per_page).max(1);
    let link = |page: i64| {
        let q: String = url::form_urlencoded::byte_serialize(view.q.as_bytes()).collect();
        format!("/admin/customer_search?q={q}&page={page}")
    };
    let title = t(lang, "Kundensuche", "Customer search");
    layout(
        lang,
        title,
        Nav::Customers,
        true,
        html! {
            h1 { (title) }
            section.customers aria-labelledby="customers-heading" {
                h2 #customers-heading.visually-hidden { (t(lang, "Kunden", "Customers")) }
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
                div.table-wrap {
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
                                    td { (c.email) }
                                    td { (c.name.as_deref().unwrap_or("")) }
                                    td.num { (c.bookings) }
                                    td { (c.last_booking_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()) }
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
            (scan_panel(lang, view.latest))
            @if let Some((at, every)) = view.next_scan {
                p.hint #scan-schedule {
                    (t(lang, "Nächster geplanter Scan: ", "Next scheduled scan: "))
                    time datetime=(millis(at)) { (at.format("%Y-%m-%d %H:%M UTC").to_string()) }
                    " (" (t(lang, "alle ", "every ")) (interval(every)) ")"
                }
            }
        },
    )
}

/// The scan panel: button, progress bar, stats, live log. `scan.js` brings
/// it to life; without JavaScript it shows the newest scan as it was.
pub fn scan_panel(lang: Lang, latest: Option<&StatusObject>) -> Markup {
    let state = latest.map_or("idle", |s| s.status.as_str());
    let progress = latest.map_or(0, |s| s.progress);
    let strings = json!({
        "started": t(lang, "Scan gestartet", "Scan started"),
        "attached": t(lang, "Es läuft bereits ein Scan – er wird hier angezeigt.", "A scan is already running – showing it here."),
        "polling": t(lang, "Live-Verbindung nicht verfügbar – aktualisiere alle 2 Sekunden.", "Live connection unavailable – updating every 2 seconds."),
        "completed": t(lang, "✅ Scan abgeschlossen: {events} Events, {emails} Emails, {new} neue Kunden, {existing} bereits vorhanden.", "✅ Scan completed: {events} events, {emails} emails, {new} new customers, {existing} already known."),
        "error": t(lang, "❌ Scan fehlgeschlagen: {message}", "❌ Scan failed: {message}"),
        "cancelled": t(lang, "⏹️ Scan abgebrochen.", "⏹️ Scan cancelled."),
        "interrupted": t(lang, "⏸️ Scan unterbrochen – er kann fortgesetzt werden.", "⏸️ Scan interrupted – it can be resumed."),
        "failed_request": t(lang, "Anfrage fehlgeschlagen: {message}", "Request failed: {message}"),
        "seconds": t(lang, "s", "s"),
    });
    html! {
        section #scan-panel.scan-panel aria-labelledby="scan-heading"
            data-scan-state=(state)
            data-scan-id=[latest.map(|s| s.scan_id.as_str())]
            data-started-at=[latest.map(|s| millis(s.started_at))]
            data-duration=[latest.map(|s| s.duration)]
            data-last-log-id=[latest.map(|s| s.last_event_id)] {
            h2 #scan-heading { (t(lang, "Calendly Scan", "Calendly scan")) }
            div.actions {
                button #scan-start type="button" { "📡 Calendly Scan" }
                label.full-scan title=(t(lang,
                    "Sonst liest der Scan nur Events ab dem letzten abgeschlossenen Scan (minus Rückblick).",
                    "Otherwise the scan reads only events from the last completed scan on (minus the look-back).")) {
                    input #scan-full type="checkbox";
                    " " (t(lang, "Vollständiger Scan (alle Events)", "Full scan (every event)"))
                }
                button #scan-cancel.secondary type="button" hidden[state != "running"] { (t(lang, "Abbrechen", "Cancel")) }
                button #scan-resume.secondary type="button"
                    hidden[!latest.is_some_and(|s| s.status.is_resumable())] { (t(lang, "Fortsetzen", "Resume")) }
            }
            div #scan-progress.progress role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=(progress) aria-labelledby="scan-heading" {
                // Its width is set by scan.js: the page allows no inline style.
                div #scan-progress-bar.bar {}
            }
            p.step {
                span #scan-percent { (progress) " %" }
                " · "
                span #scan-step { (latest.map_or("", |s| s.current_step.as_str())) }
            }
            dl.stats {
                div { dt { "Events" } dd #stat-events { (latest.map_or(0, |s| s.events_scanned)) } }
                div { dt { "Emails" } dd #stat-emails { (latest.map_or(0, |s| s.emails_found)) } }
                div { dt { (t(lang, "Neu", "New")) } dd #stat-new { (latest.map_or(0, |s| s.new_count)) } }
                div { dt { (t(lang, "Vorhanden", "Existing")) } dd #stat-existing { (latest.map_or(0, |s| s.existing_count)) } }
                div { dt { (t(lang, "Dauer", "Duration")) } dd #stat-duration { (format!("{:.1} s", latest.map_or(0.0, |s| s.duration))) } }
            }
            p #scan-status.status aria-live="polite" role="status" {
                @if let Some(s) = latest {
                    @if let Some(message) = &s.error_message { (message) }
                }
            }
            p #scan-transport-note.note hidden {}
            ol #scan-log.log aria-label=(t(lang, "Protokoll", "Log")) {
                @if let Some(logs) = latest.and_then(|s| s.logs.as_ref()) {
                    @for line in logs {
                        li data-id=(line.id) {
                            time datetime=(millis(line.created_at)) { (line.created_at.format("%H:%M:%S").to_string()) }
                            " " (line.message)
                        }
                    }
                }
            }
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

pub fn scans_history(
    lang: Lang,
    scans: &[StatusObject],
    webhooks: &[WebhookRow],
    setup: WebhookSetup<'_>,
) -> Markup {
    let title = t(lang, "Scan-Verlauf", "Scan history");
    layout(
        lang,
        title,
        Nav::Scans,
        true,
        html! {
            h1 { (title) }
            @if scans.is_empty() {
                p { (t(lang, "Noch keine Scans.", "No scans yet.")) }
            } @else {
                div.table-wrap {
                    table.scans {
                        thead { tr {
                            th scope="col" { "Status" }
                            th scope="col" { (t(lang, "Gestartet", "Started")) }
                            th scope="col" { (t(lang, "Art", "Mode")) }
                            th scope="col" { (t(lang, "Dauer", "Duration")) }
                            th scope="col" { "Events" }
                            th scope="col" { "Emails" }
                            th scope="col" { (t(lang, "Neu", "New")) }
                            th scope="col" { (t(lang, "Vorhanden", "Existing")) }
                        } }
                        tbody {
                            @for s in scans {
                                tr {
                                    td { a href=(format!("/admin/scans/{}", s.scan_id)) { (status_label(lang, s.status)) } }
                                    td { time datetime=(millis(s.started_at)) { (s.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) } }
                                    td { (mode_label(lang, s.mode)) }
                                    td.num { (format!("{:.1} s", s.duration)) }
                                    td.num { (s.events_scanned) }
                                    td.num { (s.emails_found) }
                                    td.num { (s.new_count) }
                                    td.num { (s.existing_count) }
                                }
                            }
                        }
                    }
                }
            }
            h2 #webhook-imports { (t(lang, "Webhook-Importe", "Webhook imports")) }
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
                        " (" (t(lang, "seit ", "since ")) time datetime=(millis(s.created_at)) { (s.created_at.format("%Y-%m-%d").to_string()) } ")"
                    }
                    @if setup.configured_key {
                        (t(lang, "; geprüft auch mit CALENDLY_WEBHOOK_SIGNING_KEY",
                            "; also verified with CALENDLY_WEBHOOK_SIGNING_KEY"))
                    }
                    "."
                }
            }
            @if webhooks.is_empty() {
                p { (t(lang, "Noch keine Importe.", "No imports yet.")) }
            } @else {
                div.table-wrap {
                    table.webhooks {
                        thead { tr {
                            th scope="col" { (t(lang, "Empfangen", "Received")) }
                            th scope="col" { (t(lang, "Ereignis", "Event")) }
                            th scope="col" { "Email" }
                            th scope="col" { "Name" }
                        } }
                        tbody {
                            @for w in webhooks {
                                tr {
                                    td { time datetime=(millis(w.received_at)) { (w.received_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) } }
                                    td { (w.event) }
                                    td { (w.email) }
                                    td { (w.name.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            p.hint {
                (t(lang, "Kennzahlen für Prometheus (Streams, Scans, Calendly-Aufrufe, Kunden): ",
                    "Figures for Prometheus (streams, scans, Calendly calls, customers): "))
                a href="/metrics" { "/metrics" }
            }
        },
    )
}

/// `90 s`, `30 min`, `6 h`, `1 d`: the largest unit that divides it.
fn interval(every: std::time::Duration) -> String {
    let s = every.as_secs();
    match s {
        0 => format!("{} ms", every.as_millis()),
        _ if s.is_multiple_of(86_400) => format!("{} d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{} min", s / 60),
        _ => format!("{s} s"),
    }
}

fn mode_label(lang: Lang, mode: ScanMode) -> &'static str {
    match mode {
        ScanMode::Full => t(lang, "vollständig", "full"),
        ScanMode::Incremental => t(lang, "inkrementell", "incremental"),
    }
}

/// One scan: live while it runs (the same panel), its whole log afterwards.
pub fn scan_detail(lang: Lang, scan: &StatusObject) -> Markup {
    let title = format!("Scan {}", scan.scan_id);
    layout(
        lang,
        &title,
        Nav::Scans,
        true,
        html! {
            h1 { (title) }
            p { (status_label(lang, scan.status)) " · " (t(lang, "Gestartet", "Started")) " "
                time datetime=(millis(scan.started_at)) { (scan.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) } }
            (scan_panel(lang, Some(scan)))
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
