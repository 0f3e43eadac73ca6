//! `CALSCAN_NOTIFY_URL`: a signed summary when a scan ends, retried, and
//! recorded in the scan's log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use calscan::calendly::webhook;
use calscan::notify::NotifySettings;
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::{AppOptions, TestApp, spawn_app};

const SECRET: &str = "notify-secret-for-tests";

/// One POST the receiver got: its signature header and body.
struct Received {
    signature: String,
    body: Bytes,
}

/// The answers still to give, and where to report what arrived.
type Script = (Arc<Mutex<Vec<StatusCode>>>, mpsc::UnboundedSender<Received>);

/// A receiver on 127.0.0.1 answering with `answers` in turn (the last one
/// for ever after); returns its URL and what it receives.
async fn receiver(answers: Vec<StatusCode>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let answers = Arc::new(Mutex::new(answers));
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State((answers, tx)): State<Script>, headers: HeaderMap, body: Bytes| async move {
                    let signature = headers
                        .get("calscan-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(Received { signature, body });
                    let mut answers = answers.lock().unwrap();
                    if answers.len() > 1 {
                        answers.remove(0)
                    } else {
                        answers[0]
                    }
                },
            ),
        )
        .with_state((answers, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn notify_to(url: &str) -> Option<NotifySettings> {
    Some(NotifySettings {
        url: url.parse().unwrap(),
        secret: SecretString::from(SECRET),
        public_url: Some("https://calscan.example.com/".parse().unwrap()),
        lang: calscan::i18n::Lang::De,
        attempts: 5,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    })
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no notification within 30 s")
        .unwrap()
}

/// Waits until the scan's stored log has a line starting with `start`.
async fn wait_for_log_line(app: &TestApp, scan_id: &str, start: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scan = app.get_json(&format!("/api/scans/{scan_id}")).await;
        let logs = scan["logs"].as_array().unwrap();
        if logs
            .iter()
            .any(|l| l["message"].as_str().unwrap().starts_with(start))
        {
            return scan;
        }
        assert!(Instant::now() < deadline, "no log line {start:?}: {scan}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_finished_scan_posts_a_signed_summary_retried_until_taken_and_logs_it() {
    let (url, mut rx) = receiver(vec![StatusCode::SERVICE_UNAVAILABLE, StatusCode::OK]).await;
    let app = spawn_app(AppOptions {
        events: 30,
        notify: notify_to(&url),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let done = app.follow(&scan_id).await.last().unwrap().data.clone();
    assert_eq!(done["status"], "completed");

    let refused = next(&mut rx).await;
    let taken = next(&mut rx).await;
    assert_eq!(refused.body, taken.body, "the same summary, sent again");
    let now = chrono::Utc::now().timestamp();
    let tolerance = Duration::from_secs(180);
    webhook::verify(
        SECRET.as_bytes(),
        &taken.signature,
        &taken.body,
        now,
        tolerance,
    )
    .expect("the signature verifies with the shared secret");
    assert!(
        webhook::verify(
            b"another key",
            &taken.signature,
            &taken.body,
            now,
            tolerance
        )
        .is_err()
    );

    let summary: Value = serde_json::from_slice(&taken.body).unwrap();
    assert_eq!(summary["event"], "scan.finished");
    assert_eq!(summary["scan_id"], scan_id.as_str());
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["mode"], "incremental");
    for key in [
        "events_scanned",
        "emails_found",
        "new_count",
        "existing_count",
    ] {
        assert_eq!(summary[key], done[key], "{key}");
    }
    assert_eq!(summary["duration_s"], done["duration"]);
    assert_eq!(
        summary["link"],
        format!("https://calscan.example.com/admin/scans/{scan_id}")
    );

    // The outcome is in the scan's log, after everything else, and `done`
    // keeps the newest id.
    let scan = wait_for_log_line(&app, &scan_id, "📨").await;
    let logs = scan["logs"].as_array().unwrap();
    let last = logs.last().unwrap();
    assert_eq!(
        last["message"],
        "📨 Benachrichtigung an 127.0.0.1 gesendet (HTTP 200, Versuch 2)"
    );
    assert_eq!(
        scan["last_event_id"].as_i64().unwrap(),
        last["id"].as_i64().unwrap() + 1
    );
    assert!(rx.try_recv().is_err(), "sent again after it was taken");
}

#[tokio::test]
async fn a_refused_summary_is_not_retried_and_the_log_says_why() {
    let (url, mut rx) = receiver(vec![StatusCode::BAD_REQUEST]).await;
    let app = spawn_app(AppOptions {
        events: 5,
        notify: notify_to(&url),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    next(&mut rx).await;
    let scan = wait_for_log_line(&app, &scan_id, "⚠️ Benachrichtigung").await;
    let last = scan["logs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["message"],
        "⚠️ Benachrichtigung an 127.0.0.1 fehlgeschlagen nach 1 Versuchen: HTTP 400 Bad Request"
    );
    assert!(rx.try_recv().is_err(), "a 400 was retried");
    // The scan itself stays as it ended.
    assert_eq!(scan["status"], "completed");
}
