//! Incremental scans: only events from the last completed scan's start
//! (minus the look-back) on, and a full scan on request.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::helpers::{AppOptions, SseEvent, log_lines, spawn_app};

/// The scan's final figures (its `done` event) and its log lines.
fn outcome(events: &[SseEvent]) -> (Value, Vec<String>) {
    let done = events.last().unwrap();
    assert_eq!(done.event, "done");
    let lines = log_lines(events)
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    (done.data.clone(), lines)
}

#[tokio::test]
async fn an_incremental_scan_after_a_full_one_makes_far_fewer_calls_and_finds_a_new_booking() {
    let app = spawn_app(AppOptions {
        events: 300,
        ..AppOptions::default()
    })
    .await;
    let everyone = app.sim.expected_emails();

    // The first scan has no completed scan before it: incremental by
    // default, it reads every event.
    let first = app.start_scan().await;
    let (done, lines) = outcome(&app.follow(&first).await);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["events_scanned"], 300);
    assert_eq!(done["new_count"], everyone.len() as i64);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Noch kein abgeschlossener Scan")),
        "{lines:#?}"
    );
    let full_calls = app.sim.stats().requests;

    // Somebody books a lesson the day after tomorrow.
    let event_uri = app.sim.book(
        "Neue Kundin",
        "neue.kundin@example.org",
        Utc::now() + Duration::days(2),
    );
    let second = app.start_scan().await;
    let (done, lines) = outcome(&app.follow(&second).await);
    let calls = app.sim.stats().requests - full_calls;
    assert_eq!(done["status"], "completed", "{done}");
    // The simulated organization's other events all lie in 2025.
    assert_eq!(done["events_total"], 1, "{done}");
    assert_eq!(done["events_scanned"], 1);
    assert_eq!(done["emails_found"], 1);
    assert_eq!(done["new_count"], 1);
    assert_eq!(done["existing_count"], 0);
    // `/users/me`, one page of events, one invitee listing.
    assert_eq!(calls, 3, "the full scan made {full_calls}");
    assert!(full_calls > 300, "{full_calls}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("⏩ Inkrementeller Scan: nur Events ab ")
                && l.contains("minus 24 h")),
        "{lines:#?}"
    );
    // 300 invitee listings and 4 event pages against 1 and 1.
    assert!(
        lines.iter().any(|l| l
            == "💡 Etwa 302 Calendly-Aufrufe gespart (ein vollständiger Scan liest etwa 300 Events)"),
        "{lines:#?}"
    );
    let found = app.get_json("/api/customers?q=neue.kundin").await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["customers"][0]["name"], "Neue Kundin", "{found}");
    assert!(event_uri.contains("/scheduled_events/"));
    assert_eq!(app.customer_total().await, everyone.len() as i64 + 1);

    // A full scan on request reads every event again and finds nobody new.
    let third = app.start_scan_in("full").await;
    let (done, lines) = outcome(&app.follow(&third).await);
    assert_eq!(done["events_scanned"], 301);
    assert_eq!(done["emails_found"], everyone.len() as i64 + 1);
    assert_eq!(done["new_count"], 0);
    assert!(!lines.iter().any(|l| l.starts_with("⏩")), "{lines:#?}");
    assert_eq!(
        app.history("mode").await,
        ["full", "incremental", "incremental"]
    );
    assert_eq!(
        done["summary"],
        format!(
            "Keine neuen Kunden: 301 Events gelesen, {} Emails – alle bereits Kunden",
            everyone.len() + 1
        )
    );

    // An incremental scan that finds nobody new says since when, in the
    // school's clock; the page renders the same words. (It reads the
    // upcoming booking again: the look-back reaches it.)
    let fourth = app.start_scan().await;
    let (done, _) = outcome(&app.follow(&fourth).await);
    assert_eq!(done["events_scanned"], 1, "{done}");
    let third_started: chrono::DateTime<Utc> =
        app.get_json(&format!("/api/scans/{third}")).await["started_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let since = app
        .state
        .scans
        .zone()
        .short(third_started, calscan::i18n::Lang::De);
    let expected = format!(
        "Keine neuen Kunden seit dem letzten Scan ({since}): 1 Event gelesen, 1 Email – alle bereits Kunden"
    );
    assert_eq!(done["summary"], expected);
    let (_, html) = crate::helpers::page(&app, "/admin/customer_search", "de").await;
    assert!(
        html.contains("Letzter Scan: heute ") && html.contains(&expected),
        "{html}"
    );
    let english = app
        .get_in(&format!("/api/scans/{fourth}"), "en")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let since = app
        .state
        .scans
        .zone()
        .short(third_started, calscan::i18n::Lang::En);
    assert_eq!(
        english["summary"],
        format!(
            "No new customers since the last scan ({since}): 1 event read, 1 email – all customers already"
        )
    );
}
