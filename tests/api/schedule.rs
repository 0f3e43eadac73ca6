//! `CALSCAN_SCAN_EVERY`: incremental scans on a timer, never two at once.

use std::time::{Duration, Instant};

use crate::helpers::{AppOptions, page, spawn_app};

#[tokio::test]
async fn scheduled_scans_run_on_the_timer_never_overlap_and_the_page_shows_the_next() {
    // The first scan takes longer than the interval (40 events at 100 ms,
    // at most eight at a time: about 700 ms against 200 ms), so the ticks
    // while it runs find it running and skip.
    let app = spawn_app(AppOptions {
        events: 40,
        tweak_sim: Box::new(|c| c.latency = Duration::from_millis(100)),
        scan_every: Some(Duration::from_millis(200)),
        ..AppOptions::default()
    })
    .await;
    let (status, html) = page(&app, "/admin/customer_search", "de").await;
    assert_eq!(status, 200);
    assert!(html.contains("Nächster geplanter Scan: "), "{html}");

    // Three scans, started by nobody but the timer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids = loop {
        let ids = app.history("scan_id").await;
        if ids.len() >= 3 {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "the timer started {} scans",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for id in &ids {
        let done = app.follow(id).await.last().unwrap().data.clone();
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["mode"], "incremental");
    }
    // One at a time: each started after the one before it ended.
    let history = app.get_json("/api/scans").await;
    // The API names the schedule: every 200 ms, the next one ahead.
    assert_eq!(history["schedule"]["every_s"], 0.2, "{history}");
    let next_at: chrono::DateTime<chrono::Utc> = history["schedule"]["next_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        next_at > chrono::Utc::now() - chrono::Duration::seconds(5),
        "{history}"
    );
    let scans = history["scans"].as_array().unwrap();
    for pair in scans.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        let started = newer["started_at"].as_str().unwrap();
        let ended = older["completed_at"].as_str().unwrap();
        assert!(started >= ended, "{newer} started before {older} ended");
    }
    let log = crate::helpers::server_log();
    assert!(
        log.lines()
            .any(|l| l.contains("scheduled scan skipped: a scan is running")),
        "no tick found a scan running"
    );
}

#[tokio::test]
async fn without_a_schedule_the_history_names_none() {
    let app = spawn_app(AppOptions::default()).await;
    let history = app.get_json("/api/scans").await;
    assert_eq!(history, serde_json::json!({ "scans": [] }));
}
