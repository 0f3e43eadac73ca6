//! `/metrics`: what Prometheus reads, checked against its sources.

use std::time::{Duration, Instant};

use calscan::calendly::Fault;

use crate::helpers::{AppOptions, TestApp, log_lines, spawn_app};

/// The `/metrics` text, after checking how it is served.
async fn scrape(app: &TestApp) -> String {
    // No session or token: scrapers do not log in.
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// The value of the sample `name` (with its labels, as written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// Scrapes until `name` reads `want` (the stream gauge follows hyper's
/// dropping of a finished body by a moment).
async fn wait_for_sample(app: &TestApp, name: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(app).await;
        if sample(&text, name) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never read {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn metrics_count_streams_scans_calls_retries_and_customers_as_their_sources_do() {
    let app = spawn_app(AppOptions {
        events: 40,
        tweak_sim: Box::new(|c| c.latency = Duration::from_millis(20)),
        ..AppOptions::default()
    })
    .await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, "calscan_open_streams"), Some(0.0));
    assert_eq!(sample(&before, "calscan_customers"), Some(0.0));
    assert_eq!(
        sample(&before, "calscan_calendly_requests_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(&before, "calscan_scans{status=\"completed\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &before,
            "calscan_webhook_deliveries_total{result=\"refused\"}"
        ),
        Some(0.0)
    );

    // One 503 and one 429 on the way: a retry and a wait.
    app.sim.inject(Fault::ServerError(503), 1);
    app.sim.inject(
        Fault::RateLimited {
            reset_s: 1,
            retry_after_s: None,
        },
        1,
    );
    let scan_id = app.start_scan().await;
    let mut stream = app.stream(&scan_id, None).await;
    assert_eq!(stream.next().await.unwrap().event, "snapshot");
    let during = scrape(&app).await;
    assert_eq!(
        sample(&during, "calscan_open_streams"),
        Some(1.0),
        "{during}"
    );
    assert_eq!(
        sample(&during, "calscan_scans{status=\"running\"}"),
        Some(1.0),
        "{during}"
    );
    let subscribers = format!("calscan_scan_subscribers{{scan_id=\"{scan_id}\"}}");
    assert_eq!(sample(&during, &subscribers), Some(1.0), "{during}");

    let events = stream.until_done().await;
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed");
    wait_for_sample(&app, "calscan_open_streams", 0.0).await;
    let after = scrape(&app).await;
    let customers = app.customer_total().await as f64;
    assert_eq!(sample(&after, "calscan_customers"), Some(customers));
    assert_eq!(
        sample(&after, "calscan_scans{status=\"completed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "calscan_scans{status=\"running\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &after,
            "calscan_scan_duration_seconds_count{status=\"completed\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, &subscribers),
        None,
        "a finished scan has none"
    );
    let sim = app.sim.stats();
    assert_eq!(
        sample(&after, "calscan_calendly_requests_total"),
        Some(sim.requests as f64)
    );
    assert_eq!(sample(&after, "calscan_calendly_retries_total"), Some(1.0));
    assert_eq!(
        sample(&after, "calscan_calendly_rate_limited_total"),
        Some(1.0)
    );
    // Every line the scan logged was written once.
    let stored = log_lines(&events).len() as f64;
    assert_eq!(
        sample(&after, "calscan_log_lines_written_total"),
        Some(stored)
    );
    // Each write of progress carried at least one new event of the one scan.
    let writes = sample(&after, "calscan_progress_write_seconds_count").unwrap();
    let events_written = done["last_event_id"].as_f64().unwrap();
    assert!(
        (1.0..=events_written).contains(&writes),
        "{writes} writes for {events_written} events"
    );
    assert!(sample(&after, "calscan_progress_write_seconds_sum").unwrap() > 0.0);
    assert_eq!(
        sample(&after, "calscan_progress_write_seconds_bucket{le=\"+Inf\"}"),
        Some(writes)
    );
}

#[tokio::test]
async fn a_stream_whose_client_leaves_closes_while_its_scan_runs() {
    // Each Calendly call takes 500 ms: the scan outlasts the test's steps.
    let app = spawn_app(AppOptions {
        tweak_sim: Box::new(|c| c.latency = Duration::from_millis(500)),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let mut staying = app.stream(&scan_id, None).await;
    let mut leaving = app.stream(&scan_id, None).await;
    assert_eq!(staying.next().await.unwrap().event, "snapshot");
    assert_eq!(leaving.next().await.unwrap().event, "snapshot");
    wait_for_sample(&app, "calscan_open_streams", 2.0).await;

    // The client closes its socket between two events: its stream is
    // closed then, not at the next event that fails to go out.
    drop(leaving);
    wait_for_sample(&app, "calscan_open_streams", 1.0).await;
    let status = app.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(status["status"], "running", "{status}");

    let events = staying.until_done().await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    wait_for_sample(&app, "calscan_open_streams", 0.0).await;
}
