//! The scan service over HTTP: start at once, stream every change, poll the
//! same data, conflicts, cancel, leases, resume.

use std::collections::HashSet;
use std::time::Duration;

use calscan::calendly::Fault;
use calscan::store::{Progress, ScanWrite, StartOutcome};
use serde_json::Value;

use crate::helpers::{
    AppOptions, Backend, SseStream, TestApp, all_customers, assert_customers, assert_well_formed,
    log_lines, running_scan, spawn_app,
};

fn slow(latency_ms: u64) -> AppOptions {
    AppOptions {
        tweak_sim: Box::new(move |c| c.latency = Duration::from_millis(latency_ms)),
        ..AppOptions::default()
    }
}

#[tokio::test]
async fn a_start_answers_202_before_the_first_calendly_call_completes() {
    let app = spawn_app(slow(2_000)).await;
    let response = app.post("/api/scans").await;
    assert_eq!(response.status(), 202);
    assert_eq!(app.sim.stats().answered, 0, "the start waited for Calendly");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Scan gestartet");
    let scan_id = body["scan_id"].as_str().unwrap();
    let status = app.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(status["status"], "running");
    assert!(status["progress"].as_i64().unwrap() <= 10);
    assert_eq!(status["logs"][0]["message"], "🚀 Calendly Scan gestartet");
}

#[tokio::test]
async fn a_watcher_sees_every_stage_and_log_once_and_the_counts_match_calendly() {
    let app = spawn_app(slow(5)).await;
    let expected = app.sim.expected_emails().len() as i64;
    let scan_id = app.start_scan().await;
    let events = app.follow(&scan_id).await;
    assert_well_formed(&events);
    assert!(
        events.iter().filter(|e| e.event == "progress").count() >= 10,
        "progress is pushed as it changes"
    );

    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["events_scanned"], 60);
    assert_eq!(done["emails_found"], expected);
    assert_eq!(done["new_count"], expected);
    assert_eq!(done["existing_count"], 0);

    // The stream carried exactly the log lines the polling API has, once each.
    let streamed = log_lines(&events);
    let polled = app.get_json(&format!("/api/scans/{scan_id}")).await;
    let stored: Vec<(i64, String)> = polled["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(streamed, stored);
    assert!(
        stored
            .iter()
            .any(|(_, m)| m == "✅ 60 Events von Calendly geladen")
    );
    assert_eq!(app.customer_total().await, expected);

    // A second, full scan finds every one of them existing.
    let again = app.start_scan_in("full").await;
    let done = app.follow(&again).await.last().unwrap().data.clone();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["emails_found"], expected);
    assert_eq!(done["new_count"], 0);
    assert_eq!(done["existing_count"], expected);
    assert_eq!(app.customer_total().await, expected);

    assert_eq!(
        app.history("scan_id").await,
        [again.as_str(), scan_id.as_str()],
        "newest first"
    );
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_every_later_line_exactly_once() {
    let app = spawn_app(slow(20)).await;
    let scan_id = app.start_scan().await;
    let mut first = app.stream(&scan_id, None).await;
    let mut seen = Vec::new();
    // Read a few events, then drop the connection mid-scan.
    while seen.len() < 8 {
        seen.push(first.next().await.unwrap());
    }
    drop(first);
    let last = seen.last().unwrap().id.unwrap();
    let rest = app.stream(&scan_id, Some(last)).await.until_done().await;
    assert_eq!(rest[0].event, "snapshot");
    assert!(
        rest.iter()
            .all(|e| e.id.unwrap() > last || e.event == "snapshot")
    );

    let mut all = seen.clone();
    all.extend(rest.iter().cloned());
    let lines = log_lines(&all);
    let ids: Vec<i64> = lines.iter().map(|(id, _)| *id).collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "a line came twice: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
    let polled = app.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(
        lines.len(),
        polled["logs"].as_array().unwrap().len(),
        "a line was lost"
    );

    // After the end: nothing new means 204, so browsers stop reconnecting.
    let done_id = rest.last().unwrap().id.unwrap();
    let finished = app.stream(&scan_id, Some(done_id)).await;
    assert_eq!(finished.status, 204);
    // One short of the end: the snapshot and done.
    let tail = app
        .stream(&scan_id, Some(done_id - 1))
        .await
        .until_done()
        .await;
    assert_eq!(
        tail.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["snapshot", "done"]
    );
    assert!(tail[0].data["logs"].as_array().unwrap().is_empty());

    // ?after=N returns exactly the later lines.
    let n = lines[lines.len() / 2].0;
    let later = app
        .get_json(&format!("/api/scans/{scan_id}?after={n}"))
        .await;
    let later_ids: Vec<i64> = later["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    let want: Vec<i64> = ids.iter().copied().filter(|id| *id > n).collect();
    assert_eq!(later_ids, want);
}

#[tokio::test]
async fn a_second_start_while_one_runs_answers_409_with_the_running_id() {
    let app = spawn_app(slow(200)).await;
    let running = app.start_scan().await;
    let response = app.post("/api/scans").await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["scan_id"], running.as_str());
}

#[tokio::test]
async fn cancel_stops_the_scan_and_records_cancelled() {
    let app = spawn_app(slow(300)).await;
    let scan_id = app.start_scan().await;
    let stream = app.stream(&scan_id, None).await;
    let response = app.post(&format!("/api/scans/{scan_id}/cancel")).await;
    assert_eq!(response.status(), 202);
    let events = stream.until_done().await;
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "cancelled");
    let status = app.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(status["status"], "cancelled");
    assert!(status["completed_at"].is_string());
    // Cancelling again is refused: it is not running.
    assert_eq!(
        app.post(&format!("/api/scans/{scan_id}/cancel"))
            .await
            .status(),
        409
    );
}

#[tokio::test]
async fn a_scan_with_a_stale_lease_becomes_interrupted_and_frees_the_slot() {
    let app = spawn_app(AppOptions::default()).await;
    let store = app.state.store.clone();
    let dead = running_scan("scan_deadbeef0001", "a-process-that-died", -1_000);
    assert!(matches!(
        store.start_scan(&dead).await.unwrap(),
        StartOutcome::Started(_)
    ));
    // A write from the old owner after its lease ran out changes nothing
    // once the scan is interrupted.
    let fresh = app.start_scan().await;
    let old = app.get_json("/api/scans/scan_deadbeef0001").await;
    assert_eq!(old["status"], "interrupted");
    let last_line = old["logs"].as_array().unwrap().last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last_line.contains("unterbrochen"), "{last_line}");
    let late = store
        .write_scans(&[ScanWrite {
            scan_id: "scan_deadbeef0001",
            owner: "a-process-that-died",
            figures: &Progress {
                progress: 50,
                ..Progress::default()
            },
            logs: &[],
            finish: None,
        }])
        .await
        .unwrap();
    assert_eq!(late, [false], "the old owner could still write");
    assert_eq!(
        app.get_json("/api/scans/scan_deadbeef0001").await["progress"],
        0
    );
    app.follow(&fresh).await;
}

/// The journal writes every scan's share in one statement per kind; a scan
/// whose lease is gone, or that another owner holds, gets nothing written
/// while the others in the same batch do.
#[tokio::test]
async fn a_group_write_writes_only_the_scans_still_held() {
    use calscan::store::{Locked, LogRow, ScanWrite};
    let app = spawn_app(AppOptions::default()).await;
    let store = app.state.store.clone();
    let texts = |text: &str| calscan::i18n::Texts::same(text);
    store
        .start_scan(&running_scan("scan_gone00000001", "me", 60_000))
        .await
        .unwrap();
    store
        .interrupt_stale(
            0,
            true,
            &[],
            Locked::Wait,
            &texts("weg"),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store
        .start_scan(&running_scan("scan_held00000001", "me", 60_000))
        .await
        .unwrap();
    let figures = Progress {
        progress: 40,
        events_scanned: 7,
        emails_found: 3,
        last_event_id: 2,
        ..Progress::default()
    };
    let line = |id: i64| {
        vec![LogRow {
            id,
            message: texts(&format!("line {id}")),
            created_at: chrono::Utc::now(),
        }]
    };
    let (gone_line, held_line, other_line) = (line(9), line(2), line(3));
    let write = |scan_id, owner, logs| ScanWrite {
        scan_id,
        owner,
        figures: &figures,
        logs,
        finish: None,
    };
    let held = store
        .write_scans(&[
            write("scan_gone00000001", "me", &gone_line),
            write("scan_held00000001", "me", &held_line),
            write("scan_held00000001", "someone-else", &other_line),
        ])
        .await
        .unwrap();
    assert_eq!(held, [false, true, false]);

    let held_scan = app.get_json("/api/scans/scan_held00000001").await;
    assert_eq!(held_scan["progress"], 40);
    assert_eq!(held_scan["events_scanned"], 7);
    assert_eq!(held_scan["emails_found"], 3);
    let ids = |scan: &Value| -> Vec<i64> {
        scan["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&held_scan), [1, 2]);
    let gone = app.get_json("/api/scans/scan_gone00000001").await;
    assert_eq!(gone["status"], "interrupted");
    assert_eq!(gone["progress"], 0);
    assert!(!ids(&gone).contains(&9), "{gone}");
}

/// Another instance's sweeper holds the dead scan's row and is interrupting
/// it: a start waits for that sweep instead of answering 409 for a scan
/// that is about to stop running.
#[tokio::test]
async fn a_start_waits_for_a_sweep_elsewhere_instead_of_answering_409() {
    use sqlx::{Connection, MySqlConnection, PgConnection};
    let backend = crate::helpers::backend();
    if backend == Backend::Sqlite {
        eprintln!("skipped: row locks of several instances need PostgreSQL or MySQL");
        return;
    }
    let app = spawn_app(AppOptions::default()).await;
    // The lease runs out only once the row is held: this app's own sweeper
    // must not interrupt the scan first (it skips a held row).
    let dead = running_scan("scan_deadbeef0002", "a-process-that-died", 1_000);
    let lease_end = dead.lease_until_ms;
    app.state.store.start_scan(&dead).await.unwrap();
    let url = app.database_url.clone();
    let interrupt = "UPDATE scan_progress SET status = 'interrupted', owner = NULL, \
                     lease_until_ms = NULL WHERE scan_id = 'scan_deadbeef0002'";
    let hold = "SELECT owner FROM scan_progress WHERE scan_id = 'scan_deadbeef0002' FOR UPDATE";
    // A start begins while the row is held; the sweep commits once the
    // start waits for the lock (as the database reports).
    let start = {
        let (http, url) = (app.http.clone(), app.url("/api/scans"));
        move || async move {
            http.post(url)
                .bearer_auth(crate::helpers::API_TOKEN)
                .send()
                .await
                .unwrap()
        }
    };
    // `$waiting` counts statements of this database waiting for a lock.
    macro_rules! sweep_while_start_waits {
        ($connection:ty, $waiting:expr) => {{
            let mut sweeper = <$connection>::connect(&url).await.unwrap();
            let mut watcher = <$connection>::connect(&url).await.unwrap();
            let mut tx = sweeper.begin().await.unwrap();
            let owner: Option<String> = sqlx::query_scalar(hold).fetch_one(&mut *tx).await.unwrap();
            assert_eq!(
                owner.as_deref(),
                Some("a-process-that-died"),
                "held after the lease ended"
            );
            let left = lease_end + 50 - chrono::Utc::now().timestamp_millis();
            tokio::time::sleep(Duration::from_millis(left.max(0) as u64)).await;
            let started = tokio::spawn(start());
            loop {
                let waiting: i64 = sqlx::query_scalar($waiting)
                    .fetch_one(&mut watcher)
                    .await
                    .unwrap();
                // A start that did not wait has answered already.
                if waiting > 0 || started.is_finished() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            sqlx::query(interrupt).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            started.await.unwrap()
        }};
    }
    let response = if backend == Backend::Postgres {
        sweep_while_start_waits!(
            PgConnection,
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    } else {
        // MariaDB lists a statement waiting for a row lock as executing.
        sweep_while_start_waits!(
            MySqlConnection,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND INFO LIKE 'SELECT scan_id, last_event_id FROM scan_progress%'"
        )
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        app.get_json("/api/scans/scan_deadbeef0002").await["status"],
        "interrupted"
    );
    app.follow(body["scan_id"].as_str().unwrap()).await;
}

/// A scan of 80 events at 30 ms, followed until 20 are done: the app, the
/// scan and its stream.
async fn twenty_of_eighty_done() -> (TestApp, String, SseStream) {
    let app = spawn_app(AppOptions {
        events: 80,
        tweak_sim: Box::new(|c| c.latency = Duration::from_millis(30)),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let mut stream = app.stream(&scan_id, None).await;
    loop {
        let event = stream.next().await.unwrap();
        if event.data["events_scanned"].as_i64().unwrap_or(0) >= 20 {
            break;
        }
    }
    (app, scan_id, stream)
}

/// Resumes `scan_id` and checks that it ends with every one of the 80
/// events, every email new once, every booking counted once.
async fn resume_to_an_exact_end(app: &TestApp, scan_id: &str) {
    let expected = app.sim.expected_emails();
    let response = app.post(&format!("/api/scans/{scan_id}/resume")).await;
    assert_eq!(response.status(), 202);
    let events = app.follow(scan_id).await;
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["events_scanned"], 80);
    assert_eq!(done["emails_found"], expected.len() as i64);
    assert_eq!(done["new_count"], expected.len() as i64);
    assert_eq!(done["existing_count"], 0);
    let customers = all_customers(&app.http, &app.base).await;
    assert_customers(&customers, &expected, app.sim.org().invitee_count());
}

#[tokio::test]
async fn resume_continues_from_the_checkpoint_with_exact_counts_and_no_duplicates() {
    // Some events done, then cancel.
    let (app, scan_id, stream) = twenty_of_eighty_done().await;
    assert_eq!(
        app.post(&format!("/api/scans/{scan_id}/cancel"))
            .await
            .status(),
        202
    );
    let rest = stream.until_done().await;
    assert_eq!(rest.last().unwrap().data["status"], "cancelled");
    let partial = app.get_json(&format!("/api/scans/{scan_id}")).await;
    let scanned_before = partial["events_scanned"].as_i64().unwrap();
    assert!((20..80).contains(&scanned_before), "{scanned_before}");
    let requests_before = app.sim.stats().invitee_requests;

    resume_to_an_exact_end(&app, &scan_id).await;
    // Only the events not yet done were fetched again (the big group event
    // needs two requests, and one may have been cut off mid-flight).
    let fetched = app.sim.stats().invitee_requests - requests_before;
    assert!(
        fetched <= (80 - scanned_before) as u64 + 1 + 4,
        "fetched {fetched} after {scanned_before} were done"
    );
}

#[tokio::test]
async fn calendly_failing_mid_scan_stops_it_as_error_keeping_its_checkpoint_for_a_resume() {
    let (app, scan_id, stream) = twenty_of_eighty_done().await;
    // From here on every request fails: each in flight uses up its five
    // attempts, and the first to run out ends the scan.
    app.sim.inject(Fault::ServerError(503), 10_000);
    let rest = stream.until_done().await;
    let done = &rest.last().unwrap().data;
    assert_eq!(done["status"], "error", "{done}");
    let message = done["error_message"].as_str().unwrap();
    assert!(message.contains("503"), "{message}");
    assert!(message.contains("5"), "says how often it tried: {message}");
    let stored = app.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(stored["status"], "error");
    let scanned_before = stored["events_scanned"].as_i64().unwrap();
    assert!((20..80).contains(&scanned_before), "{stored}");
    assert!(
        app.sim.clear_faults() > 0,
        "the faults ran out before the scan stopped"
    );
    // The checkpoint is the events whose invitees are stored: their customers are there.
    let customers_before = all_customers(&app.http, &app.base).await.len();
    assert!(customers_before > 0);

    resume_to_an_exact_end(&app, &scan_id).await;
}

#[tokio::test]
async fn without_a_calendly_token_the_scan_ends_in_error_saying_what_to_set() {
    let app = spawn_app(AppOptions {
        calendly_token: None,
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let events = app.follow(&scan_id).await;
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "error");
    assert!(
        done["error_message"]
            .as_str()
            .unwrap()
            .contains("CALENDLY_TOKEN"),
        "{done}"
    );
    assert_eq!(app.sim.stats().requests, 0);
    assert_eq!(
        done["summary"],
        format!(
            "Scan fehlgeschlagen: {}",
            done["error_message"].as_str().unwrap()
        )
    );

    // The page says so before anyone clicks, and offers no Resume that
    // would fail the same way.
    let (_, html) = crate::helpers::page(&app, "/admin/customer_search", "de").await;
    assert!(
        html.contains("id=\"scan-config\"><strong>Calendly ist nicht eingerichtet.</strong>"),
        "{html}"
    );
    let resume = html.split("id=\"scan-resume\"").nth(1).unwrap();
    assert!(
        resume.split_once('>').unwrap().0.ends_with(" hidden"),
        "Resume is offered: {resume}"
    );
    let (_, english) = crate::helpers::page(&app, "/admin/customer_search", "en").await;
    assert!(english.contains("Calendly is not set up."));
}

#[tokio::test]
async fn a_rejected_token_ends_the_scan_with_calendlys_message_and_never_leaks() {
    let app = spawn_app(AppOptions {
        calendly_token: Some("eyJleaky.secret.token"),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let done = app.follow(&scan_id).await.last().unwrap().data.clone();
    assert_eq!(done["status"], "error");
    let message = done["error_message"].as_str().unwrap();
    assert!(message.contains("The access token is invalid"), "{message}");
    for path in [format!("/api/scans/{scan_id}"), "/api/scans".to_owned()] {
        let text = app.get(&path).await.text().await.unwrap();
        assert!(!text.contains("eyJleaky"), "{path} returned the token");
    }
    assert!(
        !crate::helpers::server_log().contains("eyJleaky"),
        "the token was logged"
    );
    // Nor stored: no text value of any table holds it (and the scan's error
    // message shows the search looks where the data is)...
    let stored = crate::helpers::database_text(&app.database_url).await;
    assert!(!stored.contains("eyJleaky"), "the database holds the token");
    assert!(stored.contains("The access token is invalid"), "{stored}");
    // ...and on SQLite, where every byte of the database is in its files,
    // not even a freed page does.
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        let holds = |content: &[u8], text: &[u8]| content.windows(text.len()).any(|w| w == text);
        let mut message_found = false;
        for file in [path.to_owned(), format!("{path}-wal")] {
            let Ok(content) = std::fs::read(&file) else {
                continue;
            };
            assert!(!holds(&content, b"eyJleaky"), "{file} holds the token");
            message_found |= holds(&content, b"The access token is invalid");
        }
        // The search looks where the scan's data is.
        assert!(
            message_found,
            "the scan's error message is not in the files"
        );
    }
}

#[tokio::test]
async fn the_stream_has_the_headers_proxies_need_and_is_never_compressed() {
    let app = spawn_app(AppOptions::default()).await;
    let scan_id = app.start_scan().await;
    let response = app
        .http
        .get(app.url(&format!("/api/scans/{scan_id}/events")))
        .bearer_auth(crate::helpers::API_TOKEN)
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.get("content-encoding").is_none());
    let text = response.text().await.unwrap();
    assert!(text.contains("retry: 2000"), "{text}");
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_leaves_the_scan_interrupted_and_resumable() {
    let mut app = spawn_app(slow(500)).await;
    let scan_id = app.start_scan().await;
    let mut stream = app.stream(&scan_id, None).await;
    assert_eq!(stream.next().await.unwrap().event, "snapshot");
    app.shutdown.cancel();
    // The stream ends (its last events may be the interruption).
    while stream.next().await.is_some() {}
    tokio::time::timeout(Duration::from_secs(8), app.server.take().unwrap())
        .await
        .expect("the server did not stop within 8 s")
        .unwrap()
        .unwrap();
    let row = app
        .state
        .store
        .scan(&calscan::store::ScanId::parse(scan_id.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status.as_str(), "interrupted");
    assert!(row.status.is_resumable());
}

/// Asserts that `events` carry every log line the database holds for the
/// scan, each once, in order.
async fn assert_has_every_stored_line_once(
    app: &crate::helpers::TestApp,
    scan_id: &str,
    events: &[crate::helpers::SseEvent],
) {
    let polled = app.get_json(&format!("/api/scans/{scan_id}")).await;
    let stored: Vec<i64> = polled["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    let streamed: Vec<i64> = log_lines(events).iter().map(|(id, _)| *id).collect();
    assert_eq!(streamed, stored, "every line once, in order");
}

/// Reads an answer's head, a byte at a time so that nothing past it is
/// taken from the socket.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed in the head"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

/// Sends a request for `path` in HTTP/1.1 (kept alive), with the API
/// token, and returns the answer's head.
async fn ask(socket: &mut tokio::net::TcpStream, method: &str, path: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        socket.peer_addr().unwrap(),
        crate::helpers::API_TOKEN
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    read_head(socket).await
}

/// A watcher whose socket takes 4 KiB and then nothing: it asks for the
/// stream and never reads past the answer's head.
async fn stalled_watcher(app: &crate::helpers::TestApp, scan_id: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    // HTTP/1.0: the body is the rest of the connection, no chunking to undo.
    let request = format!(
        "GET /api/scans/{scan_id}/events HTTP/1.0\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\n\r\n",
        crate::helpers::API_TOKEN
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    stream
}

#[tokio::test]
async fn a_stream_asked_for_on_a_kept_alive_connection_takes_it_over_and_ends_with_it() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app(AppOptions::default()).await;
    let scan_id = app.start_scan().await;
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();

    // First an answer of the API, kept alive, in HTTP/1.1's framing.
    let head = ask(&mut socket, "GET", &format!("/api/scans/{scan_id}")).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a JSON answer has its length")
        .parse()
        .unwrap();
    let mut json = vec![0; length];
    socket.read_exact(&mut json).await.unwrap();
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["scan_id"], scan_id.as_str());

    // Then the stream on the same connection: its head says the body is
    // the rest of the connection (no length, no chunks), and it is.
    let head = ask(&mut socket, "GET", &format!("/api/scans/{scan_id}/events")).await;
    assert!(head.starts_with("http/1.0 200 ok\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    // `until_done` also asserts that the connection closes after `done`.
    let events = crate::helpers::SseStream::from_reader(reqwest::StatusCode::OK, socket)
        .until_done()
        .await;
    assert_well_formed(&events);
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert_has_every_stored_line_once(&app, &scan_id, &events).await;
}

#[tokio::test]
async fn a_head_request_for_the_stream_gets_the_head_and_keeps_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(slow(200)).await;
    let scan_id = app.start_scan().await;
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = ask(&mut socket, "HEAD", &format!("/api/scans/{scan_id}/events")).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream\r\n"),
        "{head}"
    );
    // Nothing of the stream follows: the next bytes are the next answer.
    let metrics = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    socket.write_all(metrics.as_bytes()).await.unwrap();
    let mut rest = String::new();
    socket.read_to_string(&mut rest).await.unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert!(rest.contains("calscan_open_streams 0\n"), "{rest}");
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_refilled_from_the_database_and_holds_up_nobody() {
    // A channel of 8 batches (journal writes); the scan makes hundreds.
    let app = spawn_app(AppOptions {
        events: 1_500,
        stream_buffer: 8,
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let stalled = stalled_watcher(&app, &scan_id).await;
    // Two watchers that read: they see the whole scan through to its end
    // while the stalled one has not read a byte of it.
    let (first, second) = tokio::join!(app.follow(&scan_id), app.follow(&scan_id));
    for events in [&first, &second] {
        assert_well_formed(events);
        assert_eq!(events.last().unwrap().data["status"], "completed");
    }
    // About 500 KB of events: more than the stalled watcher's socket holds
    // (the server's 128 KiB send buffer, its 4 KiB receive buffer) plus the
    // 8 batches of the channel.
    let bytes: usize = first.iter().map(|e| e.data.to_string().len()).sum();
    assert!(bytes > 400_000, "too little ({bytes} B) to fill the socket");

    // Nothing was kept in memory for the stalled watcher beyond its socket
    // and its place in the shared channel: the events it missed were let go,
    // and it is refilled from the database when it reads again.
    let events = crate::helpers::SseStream::from_reader(reqwest::StatusCode::OK, stalled)
        .until_done()
        .await;
    assert_well_formed(&events);
    assert_has_every_stored_line_once(&app, &scan_id, &events).await;
    assert_eq!(events.last().unwrap().data, first.last().unwrap().data);
    let refills = crate::helpers::server_log()
        .lines()
        .filter(|l| l.contains("stream refilled from the database") && l.contains(&scan_id))
        .count();
    assert!(
        refills >= 1,
        "the stalled watcher was buffered for, not refilled"
    );
}

#[tokio::test]
async fn at_start_up_a_scan_left_running_in_its_own_database_becomes_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("left.db").display());
    let store = calscan::store::connect(&url).await.unwrap();
    let orphan = running_scan("scan_0rphan000001", "the-process-before", 3_600_000);
    assert!(matches!(
        store.start_scan(&orphan).await.unwrap(),
        StartOutcome::Started(_)
    ));
    drop(store);

    let app = spawn_app(AppOptions {
        database_url: Some(url),
        ..AppOptions::default()
    })
    .await;
    let status = app.get_json("/api/scans/scan_0rphan000001").await;
    assert_eq!(status["status"], "interrupted");
    // And it can be resumed to the end.
    assert_eq!(
        app.post("/api/scans/scan_0rphan000001/resume")
            .await
            .status(),
        202
    );
    let done = app
        .follow("scan_0rphan000001")
        .await
        .last()
        .unwrap()
        .data
        .clone();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["emails_found"], app.sim.expected_emails().len() as i64);
}

#[tokio::test]
async fn each_reader_gets_the_log_in_its_own_language() {
    let app = spawn_app(AppOptions::default()).await;
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    let path = format!("/api/scans/{scan_id}");
    let english: Value = app
        .get_in(&path, "en-GB,en;q=0.9")
        .await
        .json()
        .await
        .unwrap();
    let german: Value = app.get_in(&path, "de").await.json().await.unwrap();
    let lines = |v: &Value| -> Vec<String> {
        v["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        lines(&english).contains(&"✅ 60 events loaded from Calendly".to_owned()),
        "{:?}",
        lines(&english)
    );
    assert!(lines(&german).contains(&"✅ 60 Events von Calendly geladen".to_owned()));
    assert_eq!(english["current_step"], "Done");
    assert_eq!(german["current_step"], "Fertig");
    assert_eq!(lines(&english).len(), lines(&german).len());

    let streamed = app
        .get_in(&format!("/api/scans/{scan_id}/events"), "en")
        .await
        .text()
        .await
        .unwrap();
    assert!(streamed.contains("Scan completed: 60 events"), "{streamed}");
}

#[tokio::test]
async fn of_twenty_concurrent_starts_exactly_one_wins_and_the_rest_name_it() {
    let app = spawn_app(slow(100)).await;
    let starts = (0..20).map(|_| async {
        let response = app.post("/api/scans").await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["scan_id"].as_str().unwrap().to_owned())
    });
    let answers = futures::future::join_all(starts).await;
    let winners: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, id)| id)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, id)| *s == 202 || (*s == 409 && id == winners[0])),
        "{answers:?}"
    );
    assert_eq!(app.state.store.scans(100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_hundred_clients_dropping_and_reconnecting_at_random_each_see_every_line_once() {
    use rand::{RngExt, SeedableRng};
    let app = spawn_app(AppOptions {
        events: 120,
        tweak_sim: Box::new(|c| c.latency = Duration::from_millis(15)),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let mut clients = Vec::new();
    for seed in 0..200u64 {
        let (app_ref, scan_id) = (&app, scan_id.clone());
        clients.push(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut seen: Vec<crate::helpers::SseEvent> = Vec::new();
            let mut last = None;
            let mut reconnects = 0;
            loop {
                let mut stream = app_ref.stream(&scan_id, last).await;
                if stream.status == 204 {
                    return (seen, reconnects);
                }
                // Read a random number of events, then drop the connection.
                let keep = rng.random_range(1..6);
                for _ in 0..keep {
                    let Some(event) = stream.next().await else {
                        break;
                    };
                    last = event.id;
                    let done = event.event == "done";
                    seen.push(event);
                    if done {
                        return (seen, reconnects);
                    }
                }
                reconnects += 1;
            }
        });
    }
    let results = futures::future::join_all(clients).await;
    let polled = app.get_json(&format!("/api/scans/{scan_id}")).await;
    let expected: Vec<i64> = polled["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert!(expected.len() > 5, "{expected:?}");
    let mut total_reconnects = 0;
    for (seen, reconnects) in results {
        total_reconnects += reconnects;
        let ids: Vec<i64> = log_lines(&seen).iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, expected, "after {reconnects} reconnects");
        assert_eq!(seen.last().unwrap().event, "done");
    }
    assert!(total_reconnects >= 200, "{total_reconnects}");
}

#[tokio::test]
async fn the_server_logs_a_line_when_a_scan_starts_and_ends_and_one_per_request() {
    let app = spawn_app(AppOptions::default()).await;
    let scan_id = app.start_scan().await;
    let done = app.follow(&scan_id).await.last().unwrap().data.clone();
    // The end line is written after the stream's done: wait for it.
    let tag = format!("scan_id={scan_id}");
    let lines = || -> Vec<String> {
        crate::helpers::server_log()
            .lines()
            .filter(|l| l.contains(&tag))
            .map(str::to_owned)
            .collect()
    };
    let started = std::time::Instant::now();
    while !lines().iter().any(|l| l.contains("scan ended")) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:#?}",
            lines()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lines = lines();
    let starts: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("scan started"))
        .collect();
    let ends: Vec<&String> = lines.iter().filter(|l| l.contains("scan ended")).collect();
    assert_eq!(starts.len(), 1, "{lines:#?}");
    assert!(
        starts[0].contains("mode=\"incremental\"") || starts[0].contains("mode=incremental"),
        "{}",
        starts[0]
    );
    assert_eq!(ends.len(), 1, "{lines:#?}");
    for field in [
        "status=completed".to_owned(),
        format!("events={}", done["events_scanned"]),
        format!("new={}", done["new_count"]),
        "duration_s=".to_owned(),
    ] {
        assert!(ends[0].contains(&field), "{field} in {}", ends[0]);
    }
    // Requests: method, route (never the query) and status, once each.
    let log = crate::helpers::server_log();
    assert!(
        log.lines()
            .any(|l| l.contains("request{method=POST route=\"/api/scans\"}")
                && l.contains("finished processing request")
                && l.contains("status=202")),
        "no request line"
    );
    assert!(
        !log.contains("route=\"/healthz\""),
        "health checks are logged at INFO"
    );
}

/// The error of a scan and its log line, as a reader in `lang` gets them.
async fn error_in(app: &crate::helpers::TestApp, scan_id: &str, lang: &str) -> (String, String) {
    let status: Value = app
        .get_in(&format!("/api/scans/{scan_id}"), lang)
        .await
        .json()
        .await
        .unwrap();
    let error = status["error_message"].as_str().unwrap().to_owned();
    let line = status["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .find(|m| m.starts_with("❌"))
        .unwrap();
    (error, line)
}

#[tokio::test]
async fn a_scans_error_reads_wholly_in_the_readers_language_with_calendlys_words_quoted() {
    for (token, de, en) in [
        (
            None,
            "Calendly API nicht konfiguriert: CALENDLY_TOKEN setzen",
            "Calendly API not configured: set CALENDLY_TOKEN",
        ),
        (
            Some("wrong-token"),
            "Calendly hat den Zugriffstoken abgelehnt (Unauthenticated: The access token is invalid)",
            "Calendly rejected the access token (Unauthenticated: The access token is invalid)",
        ),
    ] {
        let app = spawn_app(AppOptions {
            calendly_token: token,
            ..AppOptions::default()
        })
        .await;
        let scan_id = app.start_scan().await;
        let done = app.follow(&scan_id).await.last().unwrap().data.clone();
        assert_eq!(done["status"], "error", "{done}");

        let (error, line) = error_in(&app, &scan_id, "de").await;
        assert!(error.starts_with(de), "{error}");
        assert_eq!(line, format!("❌ Fehler: {error}"));
        let (error, line) = error_in(&app, &scan_id, "en").await;
        assert!(error.starts_with(en), "{error}");
        assert_eq!(line, format!("❌ Error: {error}"));
        for word in ["setzen", "abgelehnt", "Zugriffstoken"] {
            assert!(
                !error.contains(word),
                "German in the English error: {error}"
            );
        }
    }
}

/// 40 events, 25 calls per 6 s window: the 42 calls need two windows, and
/// the wait stays long enough to be told however slowly the first calls go.
fn rate_limited() -> AppOptions {
    AppOptions {
        events: 40,
        tweak_sim: Box::new(|c| {
            c.rate_limit = 25;
            c.rate_window = Duration::from_secs(6);
        }),
        ..AppOptions::default()
    }
}

#[tokio::test]
async fn a_wait_for_calendlys_limit_is_said_at_once_and_the_bar_follows_the_calls() {
    let app = spawn_app(rate_limited()).await;
    let scan_id = app.start_scan().await;
    let events = app.follow(&scan_id).await;
    assert_well_formed(&events);
    let zone = app.state.scans.zone();

    // The wait is a log line, in the school's clock.
    let lines = log_lines(&events);
    let waits: Vec<&(i64, String)> = lines
        .iter()
        .filter(|(_, m)| m.starts_with("⏳ Calendly-Limit erreicht – weiter um "))
        .collect();
    assert_eq!(waits.len(), 1, "{lines:#?}");
    let (wait_id, wait_line) = waits[0];
    let logged = events
        .iter()
        .find(|e| e.event == "log" && e.id == Some(*wait_id))
        .unwrap();
    let logged_at: chrono::DateTime<chrono::Utc> =
        logged.data["created_at"].as_str().unwrap().parse().unwrap();
    let rest = wait_line
        .strip_prefix("⏳ Calendly-Limit erreicht – weiter um ")
        .unwrap();
    let (at, secs) = rest.split_once(" (in ").unwrap();
    let secs: i64 = secs.strip_suffix(" s)").unwrap().parse().unwrap();
    assert!((2..=6).contains(&secs), "{wait_line}");
    let expected: Vec<String> = (-1..=1)
        .map(|d| zone.clock(logged_at + chrono::Duration::seconds(secs + d)))
        .collect();
    assert!(
        expected.contains(&at.to_owned()),
        "{at} not in {expected:?}"
    );

    // The wait is the step while it lasts; the step before it comes back.
    let steps: Vec<(&str, &Value)> = events
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| (e.data["current_step"].as_str().unwrap(), &e.data))
        .collect();
    let waiting = steps
        .iter()
        .position(|(s, _)| s.starts_with("⏳ Calendly-Limit erreicht"))
        .expect("the wait is a step");
    let after = steps[waiting..]
        .iter()
        .find(|(s, _)| !s.starts_with("⏳"))
        .unwrap();
    assert_eq!(after.0, "Extrahiere Email-Adressen...");

    // The bar follows the calls: 1 for the organization, 1 page, then one
    // per event, 99 points for all 42; never back; 100 at the end.
    let mut last = 0;
    for (_, data) in &steps {
        let progress = data["progress"].as_i64().unwrap();
        assert!(progress >= last, "{progress} after {last}");
        last = progress;
        let scanned = data["events_scanned"].as_i64().unwrap();
        if data["current_step"] == "Extrahiere Email-Adressen..." && scanned < 40 {
            assert_eq!(data["events_total"], 40);
            assert_eq!(progress, 99 * (2 + scanned) / 42, "{data}");
        }
    }
    // Before the wait the estimate counts the window still to wait for.
    let before_wait: Vec<i64> = steps[..waiting]
        .iter()
        .filter_map(|(_, d)| d["eta_s"].as_i64())
        .collect();
    assert!(
        before_wait.iter().any(|&eta| eta >= 2),
        "the estimate ignored the rate limit: {before_wait:?}"
    );
    let done = &events.last().unwrap().data;
    assert_eq!(done["progress"], 100);
    assert_eq!(done["events_scanned"], 40);
    assert_eq!(done["eta_s"], Value::Null);

    // English readers read it in English.
    let english: Value = app
        .get_in(&format!("/api/scans/{scan_id}"), "en")
        .await
        .json()
        .await
        .unwrap();
    let said = english["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("⏳ Calendly's rate limit reached – going on at ")
        })
        .count();
    assert_eq!(said, 1, "{english}");
}
