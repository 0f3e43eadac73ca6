//! Several calscan instances on one database (PostgreSQL, MySQL/MariaDB):
//! a scan runs on one and is watched, refused, cancelled and taken over on
//! another. On SQLite, which one process owns, these are skipped.

use std::time::{Duration, Instant};

use calscan::store::{self, NewScan, Progress, ScanWrite, StartOutcome, Wakeup};
use chrono::Utc;
use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{
    AppOptions, Backend, Process, TestApp, all_customers, assert_customers, assert_well_formed,
    backend, fresh_database, log_lines, simulator, spawn_app,
};

/// Whether the suite's database can be shared; says why not when it cannot.
fn shared_database() -> bool {
    if backend() == Backend::Sqlite {
        eprintln!("skipped: several instances need PostgreSQL or MySQL (CALSCAN_TEST_DATABASE)");
        return false;
    }
    true
}

/// A second instance on `first`'s database.
async fn second_instance(first: &TestApp, lease: Duration) -> TestApp {
    spawn_app(AppOptions {
        database_url: Some(first.database_url.clone()),
        lease,
        ..AppOptions::default()
    })
    .await
}

fn slow(events: usize, latency_ms: u64, lease: Duration) -> AppOptions {
    AppOptions {
        events,
        tweak_sim: Box::new(move |c| c.latency = Duration::from_millis(latency_ms)),
        lease,
        ..AppOptions::default()
    }
}

#[tokio::test]
async fn a_scan_started_on_one_instance_streams_to_another_in_order_exactly_once() {
    if !shared_database() {
        return;
    }
    let a = spawn_app(slow(60, 20, Duration::from_secs(15))).await;
    let b = second_instance(&a, Duration::from_secs(15)).await;
    let scan_id = a.start_scan().await;
    let (on_a, on_b) = tokio::join!(a.follow(&scan_id), b.follow(&scan_id));
    assert_well_formed(&on_b);
    // Every log line, each once, in order, as the instance running it sent them.
    let lines = log_lines(&on_b);
    assert_eq!(lines, log_lines(&on_a));
    assert!(lines.len() >= 7, "{lines:?}");
    let (done_a, done_b) = (&on_a.last().unwrap().data, &on_b.last().unwrap().data);
    assert_eq!(done_b["status"], "completed");
    for key in [
        "events_scanned",
        "emails_found",
        "new_count",
        "existing_count",
    ] {
        assert_eq!(done_b[key], done_a[key], "{key}");
    }
    assert_eq!(on_b.last().unwrap().id, on_a.last().unwrap().id);
}

#[tokio::test]
async fn a_start_on_another_instance_while_a_scan_runs_answers_409_with_its_id() {
    if !shared_database() {
        return;
    }
    let a = spawn_app(slow(60, 50, Duration::from_secs(15))).await;
    let b = second_instance(&a, Duration::from_secs(15)).await;
    let scan_id = a.start_scan().await;
    let response = b.post("/api/scans").await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scan_id"], scan_id.as_str());
    a.post(&format!("/api/scans/{scan_id}/cancel")).await;
    a.follow(&scan_id).await;
}

#[tokio::test]
async fn a_cancel_sent_to_another_instance_stops_the_scan_where_it_runs() {
    if !shared_database() {
        return;
    }
    // A short lease: without wake-ups (MySQL) the owner hears at its next
    // heartbeat, a third of it.
    let lease = Duration::from_secs(3);
    let a = spawn_app(slow(200, 50, lease)).await;
    let b = second_instance(&a, lease).await;
    let scan_id = a.start_scan().await;
    let mut stream = a.stream(&scan_id, None).await;
    while stream.next().await.unwrap().data["events_scanned"]
        .as_i64()
        .unwrap_or(0)
        < 5
    {}
    let response = b.post(&format!("/api/scans/{scan_id}/cancel")).await;
    assert_eq!(response.status(), 202);
    let rest = stream.until_done().await;
    let done = &rest.last().unwrap().data;
    assert_eq!(done["status"], "cancelled");
    assert!(done["events_scanned"].as_i64().unwrap() < 200);
    let seen_on_b = b.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(seen_on_b["status"], "cancelled");
    // Nothing is left to cancel.
    let again = b.post(&format!("/api/scans/{scan_id}/cancel")).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn on_postgresql_every_write_wakes_the_other_instances() {
    if backend() != Backend::Postgres {
        eprintln!(
            "skipped: wake-ups are PostgreSQL's LISTEN/NOTIFY (CALSCAN_TEST_DATABASE=postgres)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let writer = store::connect(&url).await.unwrap();
    let reader = store::connect(&url).await.unwrap();
    let mut wakeups = reader.wakeups().await.unwrap().expect("PostgreSQL wakes");
    let now = Utc::now();
    let scan = NewScan {
        scan_id: calscan::store::ScanId::parse("scan_wakeup01").unwrap(),
        mode: calscan::store::ScanMode::Full,
        owner: "elsewhere".into(),
        lease_until_ms: now.timestamp_millis() + 60_000,
        started_at: now,
        figures: Progress {
            last_event_id: 1,
            ..Progress::default()
        },
        logs: vec![],
    };
    let outcome = writer.start_scan(&scan).await.unwrap();
    assert!(matches!(outcome, StartOutcome::Started(_)));
    assert_eq!(
        next_wakeup(&mut wakeups).await,
        Wakeup::event("scan_wakeup01", 1)
    );
    let figures = Progress {
        last_event_id: 7,
        ..Progress::default()
    };
    let written = writer
        .write_scans(&[ScanWrite {
            scan_id: "scan_wakeup01",
            owner: "elsewhere",
            figures: &figures,
            logs: &[],
            finish: None,
        }])
        .await
        .unwrap();
    assert_eq!(written, [true]);
    assert_eq!(
        next_wakeup(&mut wakeups).await,
        Wakeup::event("scan_wakeup01", 7)
    );
    writer
        .request_cancel(&calscan::store::ScanId::parse("scan_wakeup01").unwrap())
        .await
        .unwrap();
    assert_eq!(
        next_wakeup(&mut wakeups).await,
        Wakeup::Cancel("scan_wakeup01".into())
    );
}

async fn next_wakeup(wakeups: &mut futures::stream::BoxStream<'static, Wakeup>) -> Wakeup {
    tokio::time::timeout(Duration::from_secs(10), wakeups.next())
        .await
        .expect("a wake-up within 10 s")
        .expect("the wake-ups go on")
}

#[tokio::test]
async fn elsewhere_than_postgresql_there_are_no_wake_ups() {
    if backend() == Backend::Postgres {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let store = store::connect(&url).await.unwrap();
    assert!(store.wakeups().await.unwrap().is_none());
}

#[tokio::test]
async fn when_the_instance_running_a_scan_is_killed_another_interrupts_it_and_resumes_it_exactly() {
    if !shared_database() {
        return;
    }
    let lease_s = 2;
    let sim = simulator(60, |c| c.latency = Duration::from_millis(40)).await;
    let expected = sim.expected_emails();
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let mut a = Process::spawn(&url, sim.base_url(), lease_s).await;
    let b = Process::spawn(&url, sim.base_url(), lease_s).await;

    // Start on A, watch on B.
    let response = a.post("/api/scans").await;
    assert_eq!(response.status(), 202);
    let scan_id = response.json::<Value>().await.unwrap()["scan_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut on_b = b.stream(&scan_id).await;
    let mut seen = Vec::new();
    loop {
        let event = on_b.next().await.expect("B streams the scan");
        let scanned = event.data["events_scanned"].as_i64().unwrap_or(0);
        seen.push(event);
        if scanned >= 10 {
            break;
        }
    }

    // kill -9 A mid-scan: B marks it interrupted once its lease runs out.
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let killed = Instant::now();
    seen.extend(on_b.until_done().await);
    let noticed = killed.elapsed();
    assert_well_formed(&seen);
    let ids: Vec<i64> = log_lines(&seen).iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let done = &seen.last().unwrap().data;
    assert_eq!(done["status"], "interrupted", "{:?}", b.log.lock().unwrap());
    eprintln!("B reported the scan interrupted {noticed:?} after A was killed (lease {lease_s} s)");
    // The sweeper looks just after the lease ends; B's stream reads at once
    // when woken (PostgreSQL) or within 500 ms (MySQL); the rest is slack
    // for a busy machine.
    assert!(
        noticed < Duration::from_millis(lease_s * 1000 + 1500),
        "{noticed:?}"
    );
    let scanned_before = done["events_scanned"].as_i64().unwrap();
    assert!((10..60).contains(&scanned_before), "{scanned_before}");

    // Resume on B: it continues from the checkpoint with exact counts.
    assert_eq!(
        b.post(&format!("/api/scans/{scan_id}/resume"))
            .await
            .status(),
        202
    );
    let events = b.stream(&scan_id).await.until_done().await;
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["events_scanned"], 60);
    assert_eq!(done["emails_found"], expected.len() as i64);
    assert_eq!(done["new_count"], expected.len() as i64);
    assert_eq!(done["existing_count"], 0);
    let customers = all_customers(&b.http, &b.base).await;
    assert_customers(&customers, &expected, sim.org().invitee_count());
}

/// Another instance's sweeper takes a scan this one still runs (its
/// connection to the database was away longer than the lease, say): the
/// scan stops here, and every watcher, here and elsewhere, gets `done`.
/// The scan waits on Calendly meanwhile, so its heartbeat is what notices.
#[tokio::test]
async fn a_scan_whose_lease_another_instance_takes_ends_with_done_for_every_watcher() {
    use calscan::store::Locked;
    let a = spawn_app(slow(20, 1_500, Duration::from_millis(600))).await;
    let scan_id = a.start_scan().await;
    let mut here = a.stream(&scan_id, None).await;
    let snapshot = here.next().await.unwrap();
    assert_eq!(snapshot.event, "snapshot");
    let b = if backend() == Backend::Sqlite {
        None
    } else {
        Some(second_instance(&a, Duration::from_secs(15)).await)
    };
    let mut elsewhere = match &b {
        Some(b) => {
            let mut stream = b.stream(&scan_id, None).await;
            assert_eq!(stream.next().await.unwrap().event, "snapshot");
            Some(stream)
        }
        None => None,
    };
    // The other instance's sweep: every running scan not its own.
    let swept = a
        .state
        .store
        .interrupt_stale(
            Utc::now().timestamp_millis(),
            true,
            &[],
            Locked::Wait,
            &calscan::i18n::Texts::same("taken over"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(swept.len(), 1);
    let mut streams = vec![&mut here];
    streams.extend(elsewhere.as_mut());
    for stream in streams {
        let done = loop {
            let event = stream.next().await.expect("the stream ended without done");
            if event.event == "done" {
                break event;
            }
        };
        assert_eq!(done.data["status"], "interrupted", "{:?}", done.data);
        assert_eq!(done.id, Some(swept[0].figures.last_event_id));
        assert!(
            stream.next().await.is_none(),
            "the stream went on after done"
        );
    }
    // The scan stopped here: nothing more is written after the sweep's done.
    let row = a.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(row["last_event_id"], swept[0].figures.last_event_id);
    assert!(a.state.scans.registry().watchers().is_empty());
}
