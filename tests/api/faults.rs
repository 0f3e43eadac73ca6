//! What production does to a scan, done to a real `calscan` process on
//! every backend: kill -9 mid-scan, SIGTERM with streams open (either way
//! the scan ends `interrupted`, and a resume finishes it exactly), and a
//! cancel that must hold.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    API_TOKEN, Process, TestSim, all_customers, assert_customers, fresh_database, simulator,
};

/// Starts a scan on `process` and follows it until `scanned` events are done.
async fn start_and_wait(process: &Process, scanned: i64) -> (String, crate::helpers::SseStream) {
    let response = process.post("/api/scans").await;
    assert_eq!(response.status(), 202);
    let scan_id = response.json::<Value>().await.unwrap()["scan_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = process.stream(&scan_id).await;
    loop {
        let event = stream.next().await.expect("the scan streams");
        if event.data["events_scanned"].as_i64().unwrap_or(0) >= scanned {
            return (scan_id, stream);
        }
    }
}

async fn status(process: &Process, scan_id: &str) -> Value {
    process
        .http
        .get(format!("{}/api/scans/{scan_id}", process.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Resumes the scan on `process` and checks it finishes with exact counts,
/// every customer once, and counts equal to the database's.
async fn resume_exactly(process: &Process, sim: &TestSim, scan_id: &str) {
    assert_eq!(
        process
            .post(&format!("/api/scans/{scan_id}/resume"))
            .await
            .status(),
        202
    );
    let events = process.stream(scan_id).await.until_done().await;
    let done = &events.last().unwrap().data;
    let expected = sim.expected_emails();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["events_scanned"], sim.org().events.len() as i64);
    assert_eq!(done["emails_found"], expected.len() as i64);
    assert_eq!(done["new_count"], expected.len() as i64);
    let customers = all_customers(&process.http, &process.base).await;
    assert_customers(&customers, &expected, sim.org().invitee_count());
    assert_eq!(done["new_count"], customers.len() as i64);
}

#[tokio::test]
async fn after_kill_9_mid_scan_a_restart_reports_it_interrupted_and_a_resume_finishes_it_exactly() {
    let sim = simulator(60, |c| c.latency = Duration::from_millis(40)).await;
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let lease_s = 2;
    let mut first = Process::spawn(&url, sim.base_url(), lease_s).await;
    let (scan_id, _stream) = start_and_wait(&first, 10).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    let killed = Instant::now();

    let second = Process::spawn(&url, sim.base_url(), lease_s).await;
    // SQLite: at start-up; elsewhere once the dead process's lease ran out.
    loop {
        let now = status(&second, &scan_id).await;
        if now["status"] == "interrupted" {
            break;
        }
        assert_eq!(now["status"], "running");
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "still running 5 s after kill -9"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("interrupted {:?} after kill -9", killed.elapsed());
    resume_exactly(&second, &sim, &scan_id).await;
}

#[tokio::test]
async fn sigterm_mid_scan_ends_the_streams_and_the_process_leaving_the_scan_resumable() {
    let sim = simulator(60, |c| c.latency = Duration::from_millis(40)).await;
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let mut first = Process::spawn(&url, sim.base_url(), 15).await;
    let (scan_id, mut stream) = start_and_wait(&first, 5).await;
    let terminated = Instant::now();
    first.terminate().await;

    // The open stream ends (with the scan's `done`, or cut at shutdown).
    while let Some(event) = stream.next().await {
        if event.event == "done" {
            assert_eq!(event.data["status"], "interrupted");
        }
    }
    let exit = tokio::time::timeout(Duration::from_secs(8), first.child.wait())
        .await
        .expect("the process exits within 8 s of SIGTERM")
        .unwrap();
    eprintln!("exited {:?} after SIGTERM: {exit}", terminated.elapsed());

    let second = Process::spawn(&url, sim.base_url(), 15).await;
    assert_eq!(status(&second, &scan_id).await["status"], "interrupted");
    resume_exactly(&second, &sim, &scan_id).await;
}

#[tokio::test]
async fn a_cancel_is_recorded_within_2_s_no_calendly_call_follows_and_it_survives_a_restart() {
    let sim = simulator(200, |c| c.latency = Duration::from_millis(40)).await;
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let mut first = Process::spawn(&url, sim.base_url(), 15).await;
    let (scan_id, stream) = start_and_wait(&first, 10).await;

    let asked = Instant::now();
    let response = first.post(&format!("/api/scans/{scan_id}/cancel")).await;
    assert_eq!(response.status(), 202);
    let rest = stream.until_done().await;
    let took = asked.elapsed();
    let done = &rest.last().unwrap().data;
    assert_eq!(done["status"], "cancelled");
    assert!(took < Duration::from_secs(2), "cancelled after {took:?}");
    // Acknowledged: from here on, Calendly hears nothing more of this scan.
    let calls = sim.stats().requests;
    let scanned = done["events_scanned"].as_i64().unwrap();
    assert!(scanned < 200, "{scanned}");

    // A restart (a graceful one, then a new process) keeps it cancelled.
    first.terminate().await;
    first.child.wait().await.unwrap();
    let second = Process::spawn(&url, sim.base_url(), 15).await;
    let after = status(&second, &scan_id).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(after["events_scanned"], scanned);
    assert_eq!(
        sim.stats().requests,
        calls,
        "Calendly was called after the cancel"
    );
}
