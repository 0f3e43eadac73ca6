//! `calscan scan` in the terminal beyond one scan: Ctrl-C and the command
//! it prints, `--resume` and what it refuses, and `calscan hash-password`
//! on a terminal.

use std::process::{Output, Stdio};
use std::time::Duration;

use calscan::store::{ScanStatus, Store};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::cli::calscan;
use crate::helpers::TestSim;

/// `calscan scan` with `args` on the SQLite database `url`, against `sim`
/// with `token` (none: no token at all), in the default language unless
/// `args` say otherwise.
fn scan_command(
    sim: &TestSim,
    url: &str,
    token: Option<&str>,
    args: &[&str],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::from(calscan());
    command
        .arg("scan")
        .args(args)
        .args(["--database-url", url])
        .env("CALENDLY_API_BASE", sim.base_url())
        .env_remove("CALSCAN_LANG")
        .env_remove("CALENDLY_TOKEN")
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("CALENDLY_TOKEN", token);
    }
    command
}

async fn scan(sim: &TestSim, url: &str, token: Option<&str>, args: &[&str]) -> Output {
    scan_command(sim, url, token, args).output().await.unwrap()
}

/// The last NDJSON line of `output`: the scan's `done`.
fn done(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{output:?}"));
    let event: Value = serde_json::from_str(last).unwrap();
    assert_eq!(event["event"], "done", "{output:?}");
    event["data"].clone()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every scan in the database, newest first: id and status.
async fn scans(store: &dyn Store) -> Vec<(String, ScanStatus)> {
    store
        .scans(100)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.scan_id.to_string(), row.status))
        .collect()
}

#[tokio::test]
async fn ctrl_c_prints_how_to_resume_and_the_resume_completes_the_same_scan_exactly() {
    let sim = crate::helpers::simulator(80, |c| c.latency = Duration::from_millis(40)).await;
    let expected = sim.expected_emails();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());

    // Plain lines on a pipe; Ctrl-C once the invitees are being read.
    let mut child = scan_command(&sim, &url, Some("demo-token"), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push(line.clone());
        if line.starts_with('[') && line.contains("Extrahiere Email-Adressen") {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("Extrahiere")),
        "{seen:#?}"
    );
    crate::helpers::send_signal(child.id().unwrap(), "INT").await;
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push(line);
    }
    let status = child.wait().await.unwrap();
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{text}");

    let store = calscan::store::connect(&url).await.unwrap();
    let rows = store.scans(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let scan_id = rows[0].scan_id.to_string();
    assert_eq!(rows[0].status, ScanStatus::Cancelled);
    let scanned_before = rows[0].figures.events_scanned;
    assert!(scanned_before < 80, "{scanned_before}");
    assert!(text.contains("Ctrl-C: Der Scan wird abgebrochen"), "{text}");
    let hint =
        format!("Scan {scan_id} abgebrochen. Fortsetzen mit: calscan scan --resume {scan_id}");
    assert!(text.lines().any(|l| l == hint), "{text}");

    // The printed command continues it, under the same id, to exact counts.
    let output = scan(
        &sim,
        &url,
        Some("demo-token"),
        &["--resume", &scan_id, "--json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let end = done(&output);
    assert_eq!(end["scan_id"], scan_id.as_str());
    assert_eq!(end["status"], "completed");
    assert_eq!(end["events_total"], 80);
    assert_eq!(end["events_scanned"], 80);
    assert_eq!(end["emails_found"], expected.len() as i64);
    assert_eq!(end["new_count"], expected.len() as i64);
    assert_eq!(end["existing_count"], 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Events bereits erledigt)"), "{stdout}");
    assert_eq!(scans(&*store).await, [(scan_id, ScanStatus::Completed)]);
    let (_, customers) = store.customers("", 0, 1).await.unwrap();
    assert_eq!(customers, expected.len() as i64, "everyone once");
}

#[tokio::test]
async fn resume_without_an_id_continues_the_newest_resumable_scan() {
    let sim = crate::helpers::simulator(20, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());

    // Without a token the scan ends with an error: resumable. A completed
    // scan after it is newer, but not resumable.
    let failed = scan(&sim, &url, None, &["--full", "--json"]).await;
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let failed_id = done(&failed)["scan_id"].as_str().unwrap().to_owned();
    let completed = scan(&sim, &url, Some("demo-token"), &["--json"]).await;
    assert_eq!(completed.status.code(), Some(0), "{completed:?}");
    let completed_id = done(&completed)["scan_id"].as_str().unwrap().to_owned();

    let output = scan(&sim, &url, Some("demo-token"), &["--resume", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let end = done(&output);
    assert_eq!(end["scan_id"], failed_id.as_str());
    assert_eq!(end["status"], "completed");
    assert_eq!(end["mode"], "full");
    assert_eq!(end["events_scanned"], 20);

    let store = calscan::store::connect(&url).await.unwrap();
    let before = vec![
        (completed_id, ScanStatus::Completed),
        (failed_id, ScanStatus::Completed),
    ];
    assert_eq!(scans(&*store).await, before);
    // Now nothing is left to resume, in the language asked for.
    let output = scan(
        &sim,
        &url,
        Some("demo-token"),
        &["--resume", "--lang", "en"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr(&output).contains("No scan to resume: only interrupted, failed and cancelled"),
        "{output:?}"
    );
    assert_eq!(scans(&*store).await, before, "nothing started");
}

#[tokio::test]
async fn resume_refuses_a_malformed_unknown_or_unresumable_id_and_starts_nothing() {
    let sim = crate::helpers::simulator(5, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db");
    let url = format!("sqlite://{}", file.display());
    let token = Some("demo-token");

    // A malformed id, before the database is opened.
    let output = scan(&sim, &url, token, &["--resume", "scan_ABC", "--lang", "en"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr(&output).contains(
            "\"scan_ABC\" is not a scan id: a scan id is scan_ followed by 8 to 40 characters"
        ),
        "{output:?}"
    );
    assert!(!file.exists(), "the database was opened");

    // No scan at all.
    let output = scan(&sim, &url, token, &["--resume"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr(&output).contains("Kein Scan zum Fortsetzen"),
        "{output:?}"
    );
    let store = calscan::store::connect(&url).await.unwrap();
    assert_eq!(scans(&*store).await, []);

    // A completed scan, one another process runs, one nobody knows.
    let completed = scan(&sim, &url, token, &["--json"]).await;
    assert_eq!(completed.status.code(), Some(0), "{completed:?}");
    let completed_id = done(&completed)["scan_id"].as_str().unwrap().to_owned();
    store
        .start_scan(&crate::helpers::running_scan(
            "scan_elsewhere0001",
            "another-process",
            3_600_000,
        ))
        .await
        .unwrap();
    let before = scans(&*store).await;
    assert_eq!(before.len(), 2);
    let cases = [
        (
            vec!["--resume", completed_id.as_str(), "--lang", "en"],
            format!(
                "Scan {completed_id} cannot be resumed (status completed): only interrupted, \
                 failed and cancelled scans can"
            ),
        ),
        (
            vec!["--resume", "scan_elsewhere0001"],
            "Scan scan_elsewhere0001 lässt sich nicht fortsetzen (Status running)".to_owned(),
        ),
        (
            vec!["--resume", "scan_unknown00001"],
            "Diese Datenbank kennt keinen Scan scan_unknown00001".to_owned(),
        ),
        (
            vec!["--resume", "--json"],
            "Kein Scan zum Fortsetzen".to_owned(),
        ),
    ];
    for (args, said) in cases {
        let output = scan(&sim, &url, token, &args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        assert!(stderr(&output).contains(&said), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
        assert_eq!(scans(&*store).await, before, "{args:?} started a scan");
    }

    // --resume reads from a checkpoint, --full from the start: not both.
    let output = scan(&sim, &url, token, &["--resume", "--full"]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{output:?}"
    );
    assert_eq!(scans(&*store).await, before);
}

/// Reads `from` into `seen` until it holds `wanted`; fails after 60 s.
async fn read_until(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    seen: &mut String,
    wanted: &str,
) {
    let read = async {
        let mut chunk = [0u8; 512];
        while !seen.contains(wanted) {
            let n = from.read(&mut chunk).await.unwrap();
            assert!(n > 0, "ended before {wanted:?}: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap_or_else(|_| panic!("no {wanted:?} within 60 s: {seen:?}"));
}

/// `calscan hash-password` on a pseudo-terminal (util-linux `script` makes
/// one), typing `first` and `again` at its prompts: its exit code and all
/// the terminal showed. `None` without `script`.
async fn hash_password_on_a_terminal(first: &str, again: &str) -> Option<(i32, String)> {
    let command = format!("'{}' hash-password", env!("CARGO_BIN_EXE_calscan"));
    let spawned = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--echo", "never", "--command"])
        .arg(&command)
        .arg("/dev/null")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("script: {e}"),
    };
    let mut input = child.stdin.take().unwrap();
    let mut screen = child.stdout.take().unwrap();
    let mut seen = String::new();
    read_until(&mut screen, &mut seen, "Password: ").await;
    input
        .write_all(format!("{first}\n").as_bytes())
        .await
        .unwrap();
    read_until(&mut screen, &mut seen, "Repeat the password: ").await;
    input
        .write_all(format!("{again}\n").as_bytes())
        .await
        .unwrap();
    screen.read_to_string(&mut seen).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    drop(input);
    Some((status.code().unwrap(), seen))
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn hash_password_on_a_terminal_asks_twice_and_refuses_two_different_passwords() {
    let Some((code, screen)) = hash_password_on_a_terminal("s3cret pass", "s3cret pass").await
    else {
        eprintln!("skipped: no `script` (util-linux) to make a pseudo-terminal with");
        return;
    };
    assert_eq!(code, 0, "{screen}");
    let hash = screen
        .lines()
        .map(|l| l.trim_matches(['\r', '\n']))
        .find(|l| l.starts_with("$argon2id$"))
        .unwrap_or_else(|| panic!("no hash: {screen:?}"));
    assert!(password_auth::verify_password("s3cret pass", hash).is_ok());

    let (code, screen) = hash_password_on_a_terminal("s3cret pass", "s3cret pas")
        .await
        .unwrap();
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("calscan: the two passwords differ; nothing was hashed"),
        "{screen}"
    );
    assert!(!screen.contains("$argon2id$"), "{screen}");
}
