//! The database going away: health and reads say so at once, and
//! everything recovers by itself when it is back. The faults come from a
//! proxy between calscan and the database server (`proxy.rs`).

use std::time::{Duration, Instant};

use crate::helpers::{
    AppOptions, Backend, SseEvent, SseStream, TestApp, all_customers, assert_customers,
    assert_well_formed, backend, fresh_database, log_lines, spawn_app,
};
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
    let dir = tempfile::tempdir().unwrap();
    let Some((app, proxy, _database)) = behind_a_proxy(&dir, AppOptions::default()).await else {
        return;
    };
    assert_eq!(app.get("/readyz").await.status(), 200);

    for fault in [Fault::Reset, Fault::Silent] {
        proxy.set(fault);
        // Readiness says so within 2 s, whether the database refuses or
        // stays silent (the bound here leaves room for a busy machine).
        let (status, took) = timed(&app, "/readyz").await;
        assert_eq!(status, 503, "{fault:?}");
        assert!(took < Duration::from_secs(5), "{fault:?}: {took:?}");
        // A read that needs the database says so too, within seconds,
        // instead of a 500 or hanging.
        let (status, took) = timed(&app, "/api/scans").await;
        assert_eq!(status, 503, "{fault:?}");
        assert!(took < Duration::from_secs(8), "{fault:?}: {took:?}");
        let body: serde_json::Value = app.get("/api/scans").await.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("database"),
            "{body}"
        );
        proxy.set(Fault::None);
        until_ready(&app, Duration::from_secs(15)).await;
        assert_eq!(app.get("/api/scans").await.status(), 200, "{fault:?}");
    }
    // Nothing needed a restart: a scan starts and completes.
    let scan_id = app.start_scan().await;
    let end = app.follow(&scan_id).await.last().unwrap().data.clone();
    assert_eq!(end["status"], "completed", "{end}");
}

/// A database server behind a fault proxy, and an app using it through
/// the proxy: `None` on SQLite.
async fn behind_a_proxy(
    dir: &tempfile::TempDir,
    options: AppOptions,
) -> Option<(TestApp, FaultProxy, crate::helpers::TestDatabase)> {
    if backend() == Backend::Sqlite {
        eprintln!("skipped: a database server behind a proxy needs PostgreSQL or MySQL");
        return None;
    }
    let database = fresh_database(dir).await;
    let upstream = {
        let url = url::Url::parse(&database.url).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
            .parse()
            .unwrap()
    };
    let proxy = FaultProxy::start(upstream).await;
    let app = spawn_app(AppOptions {
        database_url: Some(proxy.url_for(&database.url)),
        ..options
    })
    .await;
    Some((app, proxy, database))
}

/// A scan of `events` events at 30 ms a call, a lease of one second (an
/// outage outlasts it), waiting `db_outage` for the database at most.
fn slow_scan(events: usize, db_outage: Duration) -> AppOptions {
    AppOptions {
        events,
        tweak_sim: Box::new(|c| c.latency = Duration::from_millis(30)),
        lease: Duration::from_secs(1),
        db_outage,
        ..AppOptions::default()
    }
}

/// Starts a scan and watches it until it has scanned `n` events: its id,
/// its stream, and what the stream showed.
async fn start_watching(app: &TestApp, n: i64) -> (String, SseStream, Vec<SseEvent>) {
    let scan_id = app.start_scan().await;
    let mut stream = app.stream(&scan_id, None).await;
    let events = until_scanned(&mut stream, n).await;
    (scan_id, stream, events)
}

/// Reads the stream until the scan has scanned `n` events.
async fn until_scanned(stream: &mut SseStream, n: i64) -> Vec<SseEvent> {
    let mut seen = Vec::new();
    loop {
        let event = stream.next().await.expect("the stream ended early");
        let scanned = event.data["events_scanned"].as_i64().unwrap_or(0);
        seen.push(event);
        if scanned >= n {
            return seen;
        }
    }
}

/// The scan ended `completed` with every one of `events` events, every
/// email new once, every booking counted once.
async fn assert_exact_end(app: &TestApp, done: &serde_json::Value, events: i64) {
    let expected = app.sim.expected_emails();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["events_scanned"], events, "{done}");
    assert_eq!(done["emails_found"], expected.len() as i64, "{done}");
    assert_eq!(done["new_count"], expected.len() as i64, "{done}");
    assert_eq!(done["existing_count"], 0, "{done}");
    let customers = all_customers(&app.http, &app.base).await;
    assert_customers(&customers, &expected, app.sim.org().invitee_count());
}

/// The messages of the log lines `events` carry.
fn messages(events: &[SseEvent]) -> Vec<String> {
    log_lines(events).into_iter().map(|(_, m)| m).collect()
}

#[tokio::test]
async fn a_scan_waits_out_a_database_outage_longer_than_its_lease_and_completes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let Some((app, proxy, _database)) =
        behind_a_proxy(&dir, slow_scan(60, Duration::from_secs(60))).await
    else {
        return;
    };
    let (scan_id, mut stream, mut events) = start_watching(&app, 10).await;
    // Away for three leases: the process must not take its own scan for
    // a dead one.
    proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set(Fault::None);
    // Then silent, as a network that is gone: what hangs meanwhile fails
    // when the connections close, and is done again.
    events.extend(until_scanned(&mut stream, 30).await);
    proxy.set(Fault::Silent);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set(Fault::None);
    events.extend(stream.until_done().await);
    assert_well_formed(&events);
    let done = events.last().unwrap().data.clone();
    assert_exact_end(&app, &done, 60).await;
    let lines = messages(&events);
    let waited = lines
        .iter()
        .position(|m| m.starts_with("⏳ Datenbank nicht erreichbar – Scan wartet"))
        .unwrap_or_else(|| panic!("no wait line: {lines:#?}"));
    assert!(
        lines[waited..]
            .iter()
            .any(|m| m.starts_with("✅ Datenbank wieder erreichbar")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|m| m.contains("unterbrochen")),
        "{lines:#?}"
    );
    // What the stream said is what the database holds.
    assert_eq!(stored_lines(&app, &scan_id).await, lines);
}

#[tokio::test]
async fn a_database_away_past_the_bound_ends_the_scan_with_the_cause_and_resume_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some((app, proxy, _database)) =
        behind_a_proxy(&dir, slow_scan(60, Duration::from_secs(1))).await
    else {
        return;
    };
    let (scan_id, stream, _) = start_watching(&app, 10).await;
    proxy.set(Fault::Reset);
    // The scan gives up after a second; its end is written once the
    // database is back.
    until_logged(&scan_id, "scan failed").await;
    proxy.set(Fault::None);
    let end = stream.until_done().await;
    let done = &end.last().unwrap().data;
    assert_eq!(done["status"], "error", "{done}");
    let message = done["error_message"].as_str().unwrap();
    let name = if backend() == Backend::Postgres {
        "PostgreSQL"
    } else {
        "MySQL/MariaDB"
    };
    assert!(
        message.starts_with(&format!("{name}: die Datenbank antwortet seit")),
        "{message}"
    );
    assert!(message.contains("den Scan fortsetzen"), "{message}");
    let response = app.post(&format!("/api/scans/{scan_id}/resume")).await;
    assert_eq!(response.status(), 202);
    let resumed = app.follow(&scan_id).await;
    assert_exact_end(&app, &resumed.last().unwrap().data, 60).await;
}

/// A filesystem of a few megabytes (a tmpfs, mounted as root) for a SQLite
/// database, that a test fills up and frees again. Unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (the test is skipped) where nothing can be mounted; in CI the
    /// test must run.
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run as root)"
            );
            eprintln!("skipped: a small filesystem needs `mount -t tmpfs` (root)");
            return None;
        }
        Some(Self { dir })
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("calscan.db").display())
    }

    fn filler(&self) -> std::path::PathBuf {
        self.dir.path().join("filler")
    }

    /// Writes a file until the filesystem has no room left.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            if let Err(error) = file.write_all(&block).and_then(|()| file.sync_all()) {
                assert_eq!(error.raw_os_error(), Some(28), "{error}"); // ENOSPC
                // The last partial block too.
                let _ = file.write_all(&block[..4096]);
                return;
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Waits until the server logged, for `scan_id`, a line containing `what`.
async fn until_logged(scan_id: &str, what: &str) {
    let tag = format!("scan_id={scan_id}");
    let started = Instant::now();
    while !crate::helpers::server_log()
        .lines()
        .any(|l| l.contains(&tag) && l.contains(what))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server never logged {what:?} for {scan_id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The scan's log lines as a fresh connection reads them: what was
/// committed, not what one connection holds.
async fn committed_lines(url: &str, scan_id: &str) -> Vec<String> {
    crate::helpers::rows(
        url,
        &format!("SELECT message FROM scan_logs WHERE scan_id = '{scan_id}' ORDER BY id"),
    )
    .await
    .into_iter()
    .map(|row| row[0].clone().unwrap())
    .collect()
}

/// On SQLite, a scan of 60 events on a small disk that fills up once 10
/// are done, waiting `db_outage` at most: the disk, the app, the scan, its
/// stream and what it showed so far.
async fn disk_full_mid_scan(
    db_outage: Duration,
) -> Option<(SmallDisk, TestApp, String, SseStream, Vec<SseEvent>)> {
    if backend() != Backend::Sqlite {
        return None;
    }
    let disk = SmallDisk::mount()?;
    let app = spawn_app(AppOptions {
        database_url: Some(disk.url()),
        ..slow_scan(60, db_outage)
    })
    .await;
    let (scan_id, stream, events) = start_watching(&app, 10).await;
    disk.fill();
    Some((disk, app, scan_id, stream, events))
}

/// The scan's log lines as the status API reads them.
async fn stored_lines(app: &TestApp, scan_id: &str) -> Vec<String> {
    app.get_json(&format!("/api/scans/{scan_id}")).await["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sqlite_on_a_full_disk_waits_for_room_then_completes_with_everything_committed() {
    let Some((disk, app, scan_id, stream, mut events)) =
        disk_full_mid_scan(Duration::from_secs(60)).await
    else {
        return;
    };
    until_logged(&scan_id, "the scan waits").await;
    // Reads still work: the database answers, it only cannot grow.
    assert_eq!(app.get("/readyz").await.status(), 200);
    disk.free();
    events.extend(stream.until_done().await);
    assert_well_formed(&events);
    assert_exact_end(&app, &events.last().unwrap().data, 60).await;
    let lines = messages(&events);
    assert!(
        lines
            .iter()
            .any(|m| m.starts_with("⏳ Datenbank nicht erreichbar – Scan wartet")),
        "{lines:#?}"
    );
    assert_eq!(committed_lines(&disk.url(), &scan_id).await, lines);
    // And it goes on working: another scan starts and completes.
    let again = app.start_scan().await;
    assert_eq!(
        app.follow(&again).await.last().unwrap().data["status"],
        "completed"
    );
    // After a restart, the scan is as it was reported.
    let mut app = app;
    app.shutdown.cancel();
    app.server.take().unwrap().await.unwrap().unwrap();
    let restarted = spawn_app(AppOptions {
        database_url: Some(disk.url()),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(stored_lines(&restarted, &scan_id).await, lines);
    let row = restarted.get_json(&format!("/api/scans/{scan_id}")).await;
    assert_eq!(row["status"], "completed");
    assert_eq!(row["new_count"], app.sim.expected_emails().len() as i64);
}

#[tokio::test]
async fn sqlite_on_a_disk_full_past_the_bound_ends_with_the_cause_and_resume_completes_it() {
    let Some((disk, app, scan_id, stream, _)) = disk_full_mid_scan(Duration::from_secs(1)).await
    else {
        return;
    };
    until_logged(&scan_id, "scan failed").await;
    // Nothing is acknowledged that cannot be written: a start answers 503
    // (or 409 for the scan still running), never 202 with an id that reads 404.
    let refused = app.post("/api/scans").await;
    assert!(
        matches!(refused.status().as_u16(), 503 | 409),
        "{}",
        refused.status()
    );
    // A login that cannot be stored says so on the page, instead of
    // bouncing back to the login form.
    let login = crate::access::login(&app, crate::helpers::PASSWORD).await;
    assert_eq!(login.status(), 503);
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("Die Datenbank ist gerade nicht erreichbar"),
    );
    disk.free();
    let end = stream.until_done().await;
    let done = &end.last().unwrap().data;
    assert_eq!(done["status"], "error", "{done}");
    let message = done["error_message"].as_str().unwrap();
    assert!(
        message.starts_with("SQLite: die Festplatte ist voll"),
        "{message}"
    );
    assert_eq!(
        crate::access::login(&app, crate::helpers::PASSWORD)
            .await
            .status(),
        303
    );
    let response = app.post(&format!("/api/scans/{scan_id}/resume")).await;
    assert_eq!(response.status(), 202);
    let resumed = app.follow(&scan_id).await;
    assert_exact_end(&app, &resumed.last().unwrap().data, 60).await;
    assert_eq!(
        committed_lines(&disk.url(), &scan_id).await,
        stored_lines(&app, &scan_id).await
    );
}

#[tokio::test]
async fn sqlite_locked_by_another_process_makes_the_scan_wait_not_fail() {
    use sqlx::Connection;
    if backend() != Backend::Sqlite {
        return;
    }
    let app = spawn_app(slow_scan(40, Duration::from_secs(60))).await;
    let (scan_id, stream, mut events) = start_watching(&app, 5).await;
    // Another process takes the write lock, longer than the busy timeout.
    let mut other = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    until_logged(&scan_id, "the scan waits").await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    events.extend(stream.until_done().await);
    assert_exact_end(&app, &events.last().unwrap().data, 40).await;
    let lines = messages(&events);
    assert!(
        lines
            .iter()
            .any(|m| m.starts_with("✅ Datenbank wieder erreichbar")),
        "{lines:#?}"
    );
}

/// Ends every other session of the test's database on its server, as an
/// administrator (or a server restart) does.
async fn kill_sessions(url: &str) -> usize {
    use sqlx::Connection;
    if backend() == Backend::Postgres {
        let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        killed.len()
    } else {
        let mut admin = sqlx::MySqlConnection::connect(url).await.unwrap();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT ID FROM information_schema.PROCESSLIST \
             WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for id in &ids {
            // One may have ended by itself meanwhile.
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL {id}")))
                .execute(&mut admin)
                .await;
        }
        ids.len()
    }
}

#[tokio::test]
async fn a_scan_whose_database_sessions_are_killed_again_and_again_completes_exactly() {
    if backend() == Backend::Sqlite {
        eprintln!("skipped: killing sessions needs PostgreSQL or MySQL");
        return;
    }
    let app = spawn_app(slow_scan(60, Duration::from_secs(60))).await;
    let scan_id = app.start_scan().await;
    let mut stream = app.stream(&scan_id, None).await;
    let mut events = Vec::new();
    for scanned in [10, 25, 40] {
        events.extend(until_scanned(&mut stream, scanned).await);
        assert!(kill_sessions(&app.database_url).await > 0);
    }
    events.extend(stream.until_done().await);
    assert_well_formed(&events);
    assert_exact_end(&app, &events.last().unwrap().data, 60).await;
}

#[tokio::test]
async fn a_webhook_delivery_while_the_database_is_away_answers_503_and_its_retry_imports_it() {
    use crate::webhooks::{KEY, post_delivery};
    let dir = tempfile::tempdir().unwrap();
    let options = AppOptions {
        webhook_key: Some(KEY),
        ..AppOptions::default()
    };
    let Some((app, proxy, _database)) = behind_a_proxy(&dir, options).await else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    let (body, signature) = app.sim.signed_delivery(1, 0, KEY.as_bytes(), now).unwrap();
    proxy.set(Fault::Reset);
    // 503, not 500: Calendly delivers it again later.
    assert_eq!(post_delivery(&app, &body, Some(&signature)).await, 503);
    proxy.set(Fault::None);
    until_ready(&app, Duration::from_secs(15)).await;
    assert_eq!(app.customer_total().await, 0);
    assert!(
        post_delivery(&app, &body, Some(&signature))
            .await
            .is_success()
    );
    assert_eq!(app.customer_total().await, 1);
}
