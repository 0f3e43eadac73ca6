//! The binary's commands: hash-password, migrate, healthcheck, and the
//! server's refusal to start without a password.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{AppOptions, spawn_app};

pub fn calscan() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calscan"));
    command.env("RUST_LOG", "warn").env_remove("DATABASE_URL");
    command
}

#[test]
fn hash_password_prints_an_argon2id_hash_of_the_piped_password() {
    let mut child = calscan()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret pass\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(password_auth::verify_password("s3cret pass", hash).is_ok());
    assert!(password_auth::verify_password("s3cret pass\n", hash).is_err());
}

/// `calscan migrate` with `args`: its exit code and what it printed.
fn migrate(args: &[&str]) -> (i32, String) {
    let output = calscan().arg("migrate").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap(), stdout + &stderr)
}

#[test]
fn migrate_check_changes_nothing_and_migrate_creates_the_tables_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.db");
    let url = format!("sqlite://{}", file.display());

    let (code, plan) = migrate(&["--check", "--database-url", &url]);
    assert_eq!(code, 0, "{plan}");
    assert!(!file.exists(), "--check created the database");
    assert!(plan.contains("0 migrations applied, 8 pending"), "{plan}");
    assert!(
        plan.contains(
            "tables to create: scan_progress, scan_logs, scan_events_done, scan_emails, \
             customers, bookings, sessions, webhook_deliveries, webhook_subscriptions, \
             customer_stats"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("customers: table customers, created by calscan (email, name)"),
        "{plan}"
    );

    let (code, first) = migrate(&["--database-url", &url]);
    assert_eq!(code, 0, "{first}");
    assert!(first.ends_with("database is up to date\n"), "{first}");
    let (code, again) = migrate(&["--database-url", &url]);
    assert_eq!(code, 0, "{again}");
    assert!(again.contains("8 migrations applied, 0 pending"), "{again}");
    assert!(again.contains("nothing to do"), "{again}");
    assert!(
        again.contains(
            "customers: table customers, email column email, name columns name, 0 rows, 0 with \
             an email another row has too"
        ),
        "{again}"
    );
}

#[test]
fn migrate_refuses_a_customer_table_it_cannot_use_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let (code, _) = migrate(&["--database-url", &url]);
    assert_eq!(code, 0);
    sqlite_exec(
        &url,
        "CREATE TABLE kunden (nr INTEGER PRIMARY KEY, kontakt TEXT)",
    );
    for args in [
        vec![
            "--check",
            "--database-url",
            &url,
            "--customers-table",
            "kunden",
        ],
        vec!["--database-url", &url, "--customers-table", "kunden"],
    ] {
        let (code, said) = migrate(&args);
        assert_eq!(code, 1, "{said}");
        assert!(said.contains("set CALSCAN_CUSTOMER_EMAIL_COLUMN"), "{said}");
    }
    let (code, said) = migrate(&[
        "--check",
        "--database-url",
        &url,
        "--customers-table",
        "kundn",
    ]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("`kundn` does not exist"), "{said}");
    let (code, said) = migrate(&[
        "--database-url",
        &url,
        "--customers-table",
        "kunden",
        "--customer-email-column",
        "kontakt",
    ]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("email column kontakt, name columns none"),
        "{said}"
    );
}

#[test]
fn serve_and_migrate_refuse_a_database_whose_table_is_in_the_way_before_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    sqlite_exec(&url, "CREATE TABLE bookings (what TEXT)");
    let why = "`bookings` exists already and calscan's migrations did not create it";
    let (code, said) = migrate(&["--check", "--database-url", &url]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains(why), "{said}");
    let (code, said) = migrate(&["--database-url", &url]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains(why), "{said}");
    let output = calscan()
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &url])
        .env("CALSCAN_ADMIN_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(why), "{stderr}");
    // Nothing was written: no migrations table, no table of calscan's.
    let tables = std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            crate::helpers::rows(&url, "SELECT name FROM sqlite_master WHERE type = 'table'").await
        })
    })
    .join()
    .unwrap();
    assert_eq!(tables, [[Some("bookings".to_owned())]]);
}

/// Runs one statement on the SQLite database at `url` (created if missing).
fn sqlite_exec(url: &str, statement: &'static str) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(crate::helpers::exec(&url, statement))
    })
    .join()
    .unwrap()
}

#[test]
fn serve_refuses_to_start_without_an_admin_password() {
    let output = calscan()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("CALSCAN_ADMIN_PASSWORD")
        .env_remove("CALSCAN_ADMIN_PASSWORD_HASH")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CALSCAN_ADMIN_PASSWORD"), "{stderr}");
}

#[tokio::test]
async fn healthcheck_exits_zero_only_when_the_server_answers() {
    let app = spawn_app(AppOptions::default()).await;
    let bind = app.base.trim_start_matches("http://").to_owned();
    let up = tokio::process::Command::new(env!("CARGO_BIN_EXE_calscan"))
        .args(["healthcheck", "--bind", &bind])
        .status()
        .await
        .unwrap();
    assert!(up.success());
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let down = tokio::process::Command::new(env!("CARGO_BIN_EXE_calscan"))
        .args(["healthcheck", "--bind", &addr])
        .output()
        .await
        .unwrap();
    assert!(!down.status.success());
}

/// `calscan scan` against `sim` and the SQLite database `url`; the test's
/// runtime keeps serving the simulator while the command runs.
async fn terminal_scan(
    sim: &calscan::calendly::Simulator,
    url: &str,
    token: &str,
    args: &[&str],
) -> std::process::Output {
    tokio::process::Command::from(calscan())
        .arg("scan")
        .args(args)
        .args(["--database-url", url])
        .env("CALENDLY_TOKEN", token)
        .env("CALENDLY_API_BASE", sim.base_url())
        .env_remove("CALSCAN_LANG")
        .output()
        .await
        .unwrap()
}

/// The NDJSON lines of `output`, each `{"event", "id", "data"}`.
fn ndjson(output: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

#[tokio::test]
async fn the_terminal_scan_prints_its_events_as_ndjson_and_saves_exactly_the_customers() {
    let sim = crate::helpers::simulator(30, |_| {}).await;
    let expected = sim.expected_emails();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());

    let output = terminal_scan(&sim, &url, "demo-token", &["--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let events = ndjson(&output);
    assert_eq!(events[0]["event"], "snapshot");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    assert!(events.iter().any(|e| e["event"] == "log"));
    assert!(events.iter().any(|e| e["event"] == "progress"));
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["data"]["status"], "completed");
    assert_eq!(done["data"]["events_scanned"], 30);
    assert_eq!(done["data"]["emails_found"], expected.len() as i64);
    assert_eq!(done["data"]["new_count"], expected.len() as i64);

    // The same database the server uses holds them, once each.
    let store = calscan::store::connect(&url).await.unwrap();
    let (_, total) = store.customers("", 0, 1).await.unwrap();
    assert_eq!(total, expected.len() as i64);
    let scans = store.scans(10).await.unwrap();
    assert_eq!(scans.len(), 1);
    assert_eq!(scans[0].mode, calscan::store::ScanMode::Incremental);

    // Without --json and without a terminal: readable lines, no bar.
    let output = terminal_scan(&sim, &url, "demo-token", &["--full"]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("[100 %] Fertig"), "{text}");
    assert!(text.contains("🎉 Scan abgeschlossen"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "terminal escapes without a terminal"
    );
    let (_, total) = store.customers("", 0, 1).await.unwrap();
    assert_eq!(total, expected.len() as i64, "nobody twice");
}

#[tokio::test]
async fn the_terminal_scan_fails_with_calendlys_message_or_when_a_scan_runs() {
    let sim = crate::helpers::simulator(5, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());

    let output = terminal_scan(&sim, &url, "eyJwrong.secret.token", &["--json"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let done = ndjson(&output).pop().unwrap();
    assert_eq!(done["data"]["status"], "error");
    let message = done["data"]["error_message"].as_str().unwrap();
    assert!(message.contains("The access token is invalid"), "{message}");
    let all = format!("{output:?}");
    assert!(!all.contains("eyJwrong"), "the token leaked: {all}");

    // Without a token the scan ends at once, often before it can be
    // followed: its end then comes from the database, the same `done`.
    for _ in 0..5 {
        let output = tokio::process::Command::from(calscan())
            .args(["scan", "--json", "--database-url", &url])
            .env_remove("CALENDLY_TOKEN")
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let events = ndjson(&output);
        assert_eq!(events[0]["event"], "snapshot");
        let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
        let done = events.last().unwrap();
        assert_eq!(done["event"], "done", "{events:?}");
        assert_eq!(done["data"]["status"], "error");
        let message = done["data"]["error_message"].as_str().unwrap();
        assert!(message.contains("CALENDLY_TOKEN"), "{message}");
    }

    // A scan another process runs, with a live lease.
    let store = calscan::store::connect(&url).await.unwrap();
    store
        .start_scan(&crate::helpers::running_scan(
            "scan_elsewhere0001",
            "another-process",
            3_600_000,
        ))
        .await
        .unwrap();
    let output = terminal_scan(&sim, &url, "demo-token", &[]).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("scan_elsewhere0001"), "{stderr}");
}

#[tokio::test]
async fn ctrl_c_cancels_the_terminal_scan_resumably_and_exits_130() {
    use tokio::io::AsyncBufReadExt;
    let sim = crate::helpers::simulator(60, |c| c.latency = Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut child = tokio::process::Command::from(calscan())
        .args(["scan", "--json", "--lang", "en", "--database-url", &url])
        .env("CALENDLY_TOKEN", "demo-token")
        .env("CALENDLY_API_BASE", sim.base_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Once some invitees are in, Ctrl-C.
    let mut last = serde_json::Value::Null;
    while let Some(line) = lines.next_line().await.unwrap() {
        last = serde_json::from_str(&line).unwrap();
        if last["data"]["events_scanned"].as_i64().unwrap_or(0) >= 5 {
            break;
        }
    }
    assert!(
        last["data"]["events_scanned"].as_i64().unwrap() >= 5,
        "{last}"
    );
    crate::helpers::send_signal(child.id().unwrap(), "INT").await;
    while let Some(line) = lines.next_line().await.unwrap() {
        last = serde_json::from_str(&line).unwrap();
    }
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(last["event"], "done");
    assert_eq!(last["data"]["status"], "cancelled");
    // Beside the NDJSON, on stderr: the command that resumes it.
    let mut said = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut said)
        .await
        .unwrap();
    let id = last["data"]["scan_id"].as_str().unwrap();
    assert!(
        said.contains(&format!(
            "calscan: Scan {id} cancelled. Resume with: calscan scan --resume {id}"
        )),
        "{said}"
    );
    let scanned = last["data"]["events_scanned"].as_i64().unwrap();
    assert!((5..60).contains(&scanned), "{scanned}");
    let store = calscan::store::connect(&url).await.unwrap();
    let scans = store.scans(1).await.unwrap();
    assert!(scans[0].status.is_resumable(), "{:?}", scans[0].status);
}

#[tokio::test]
async fn with_calscan_log_format_json_every_log_line_is_a_json_object() {
    let sim = crate::helpers::simulator(0, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let process = crate::helpers::Process::logging_json(&dir, sim.base_url(), &[]).await;
    // A request, so that its line is there too.
    let answer = process
        .http
        .get(format!("{}/api/scans", process.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    for line in process.json_log_after_an_answer().await {
        assert!(
            line["level"].is_string() && line["fields"].is_object(),
            "{line}"
        );
    }
}
