//! The database going away: health and reads say so at once, and
//! everything recovers by itself when it is back. The faults come from a
//! proxy between calscan and the database server (`proxy.rs`).

use std::time::{Duration, Instant};

use crate::helpers::{AppOptions, TestApp, backend, fresh_database, spawn_app};
use crate::proxy::{Fault, FaultProxy};

/// The status of `path` and how long it took to answer.
async fn timed(app: &TestApp, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    // A server that hangs fails the test rather than holding it up.
    let answer = tokio::time::timeout(Duration::from_secs(20), app.get(path))
        .await
        .unwrap_or_else(|_| panic!("{path} did not answer within 20 s"));
    (answer.status().as_u16(), started.elapsed())
}

/// Waits until `/readyz` answers 200 (the database is back), at most `within`.
async fn until_ready(app: &TestApp, within: Duration) {
    let started = Instant::now();
    while app.get("/readyz").await.status() != 200 {
        assert!(
            started.elapsed() < within,
            "not ready again after {within:?}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn readiness_and_reads_answer_503_while_the_database_is_away_and_recover_by_themselves() {
    if backend() == "sqlite" {
        eprintln!("skipped: a database server behind a proxy needs PostgreSQL or MySQL");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let upstream = {
        let url = url::Url::parse(&database.url).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
            .parse()
            .unwrap()
    };
    let proxy = FaultProxy::start(upstream).await;
    let app = spawn_app(AppOptions {
        database_url: Some(proxy.url_for(&database.url)),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    for fault in [Fault::Reset, Fault::Silent] {
        proxy.set(fault);
        // Readiness says so within 2 s, whether the database refuses or
        // stays silent (the bound here leaves room for a busy machine).
        let (status, took) = timed(&app, "/readyz").await;
        assert_eq!(status, 503, "{fault:?}");
        assert!(took < Duration::from_secs(5), "{fault:?}: {took:?}");
        if fault == Fault::Reset {
            // A read that needs the database says so too, instead of a 500.
            let answer = app.get("/api/scans").await;
            assert_eq!(answer.status(), 503);
            let body: serde_json::Value = answer.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("database"),
                "{body}"
            );
        }
        proxy.set(Fault::None);
        until_ready(&app, Duration::from_secs(15)).await;
        assert_eq!(app.get("/api/scans").await.status(), 200, "{fault:?}");
    }
    // Nothing needed a restart: a scan starts and completes.
    let scan_id = app.start_scan().await;
    let end = app.follow(&scan_id).await.last().unwrap().data.clone();
    assert_eq!(end["status"], "completed", "{end}");
}
