//! What the operator is told when the server cannot start: one sentence
//! naming the place and the cause, within seconds, never a backtrace.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::cli::calscan;
use crate::helpers::Backend;

/// `calscan serve` with `DATABASE_URL=url` and a password, as an operator
/// with `RUST_BACKTRACE=1` in the environment starts it.
fn serve(url: &str, extra: &[&str]) -> Output {
    calscan()
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .env("DATABASE_URL", url)
        .env("CALSCAN_ADMIN_PASSWORD", "x")
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

/// The line the command ended with, after checking that it failed with
/// exit code 1 and printed no backtrace or panic.
fn last_words(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("backtrace") && !stderr.contains("panicked") && !stderr.contains("  at "),
        "{stderr}"
    );
    stderr.lines().last().unwrap_or_default().to_owned()
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_database_server_that_refuses_the_connection_is_named_with_host_and_port() {
    for (scheme, backend) in [("postgres", "PostgreSQL"), ("mysql", "MySQL/MariaDB")] {
        let port = closed_port();
        let output = serve(
            &format!("{scheme}://calscan:secret@127.0.0.1:{port}/x"),
            &[],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("connecting to {backend} at 127.0.0.1:{port} …")),
            "{stderr}"
        );
        assert!(!stderr.contains("secret"), "{stderr}");
        assert_eq!(
            last_words(&output),
            format!(
                "calscan: cannot open the database: cannot connect to {backend} at \
                 127.0.0.1:{port}: the connection was refused; is the server running, and on \
                 this port?"
            )
        );
    }
}

#[test]
fn a_database_server_that_never_answers_fails_the_start_after_five_seconds() {
    // The kernel completes the handshake into the backlog; nobody reads.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let output = serve(&format!("postgres://postgres@127.0.0.1:{port}/x"), &[]);
    let took = started.elapsed();
    assert_eq!(
        last_words(&output),
        format!(
            "calscan: cannot open the database: cannot connect to PostgreSQL at \
             127.0.0.1:{port}: no answer within 5 s; check the host and port in DATABASE_URL, \
             and that no firewall drops the connection"
        )
    );
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(30),
        "{took:?}"
    );
    drop(silent);
}

/// The suite's database server with another user or database in its URL.
async fn server_url(change: impl FnOnce(&mut reqwest::Url)) -> Option<(String, &'static str)> {
    let backend = match crate::helpers::backend() {
        Backend::Postgres => "PostgreSQL",
        Backend::MySql => "MySQL/MariaDB",
        Backend::Sqlite => return None,
    };
    let dir = tempfile::tempdir().unwrap();
    let database = crate::helpers::fresh_database(&dir).await;
    let mut url = reqwest::Url::parse(&database.url).unwrap();
    change(&mut url);
    Some((url.to_string(), backend))
}

#[tokio::test]
async fn a_wrong_user_and_an_unknown_database_are_said_as_such() {
    let Some((url, backend)) = server_url(|url| {
        url.set_username("calscan_nobody").unwrap();
        url.set_password(Some("wrong")).unwrap();
    })
    .await
    else {
        return;
    };
    let words = last_words(&serve(&url, &[]));
    assert!(
        words.starts_with(&format!(
            "calscan: cannot open the database: cannot connect to {backend} at 127.0.0.1:"
        )) && words.contains(": it refused user \"calscan_nobody\" (")
            && words.ends_with("); check the user and password in DATABASE_URL"),
        "{words}"
    );
    assert!(!words.contains("wrong"), "{words}");

    let (url, _) = server_url(|url| url.set_path("calscan_no_such_database"))
        .await
        .unwrap();
    let words = last_words(&serve(&url, &[]));
    assert!(
        words.contains(": it has no database \"calscan_no_such_database\" (")
            && words.ends_with(
                "); create it (CREATE DATABASE calscan_no_such_database), or name another in \
                 DATABASE_URL"
            ),
        "{words}"
    );
}

#[test]
fn an_sqlite_file_in_a_missing_folder_names_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no").join("such").join("calscan.db");
    let output = serve(&format!("sqlite://{}", file.display()), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("opening SQLite database {}", file.display())),
        "{stderr}"
    );
    assert_eq!(
        last_words(&output),
        format!(
            "calscan: cannot open the database: cannot open SQLite database {}: the folder {} \
             does not exist; create it, or name another file in DATABASE_URL",
            file.display(),
            file.parent().unwrap().display()
        )
    );
    assert!(!dir.path().join("no").exists());
}

#[test]
fn an_sqlite_file_that_cannot_be_created_is_named_once() {
    // A folder where the file should be: SQLite cannot open it as a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calscan.db");
    std::fs::create_dir(&file).unwrap();
    let output = serve(&format!("sqlite://{}", file.display()), &[]);
    let words = last_words(&output);
    assert_eq!(
        words,
        format!(
            "calscan: cannot open the database: cannot open SQLite database {}: unable to open \
             database file; check that calscan may read and write the file and its folder",
            file.display()
        )
    );
}

#[test]
fn a_port_in_use_says_so_and_how_to_choose_another_before_any_database_is_made() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let expected = format!(
        "calscan: cannot listen on 127.0.0.1:{port}: port {port} is in use by another program; \
         stop it, or choose another address with --bind or CALSCAN_BIND (say 127.0.0.1:{})",
        (port + 1).max(1024)
    );

    let file = dir.path().join("serve.db");
    let output = calscan()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", format!("sqlite://{}", file.display()))
        .env("CALSCAN_ADMIN_PASSWORD", "x")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(last_words(&output), expected);
    assert!(!file.exists(), "serve created its database");

    let file = dir.path().join("demo.db");
    let output = calscan()
        .args(["demo", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &format!("sqlite://{}", file.display())])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(last_words(&output), expected);
    assert!(!file.exists(), "demo created its database");
    drop(taken);
}

#[test]
fn a_missing_setting_is_one_sentence_even_with_rust_backtrace() {
    let output = calscan()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("CALSCAN_ADMIN_PASSWORD")
        .env_remove("CALSCAN_ADMIN_PASSWORD_HASH")
        .env("RUST_BACKTRACE", "full")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "calscan: set CALSCAN_ADMIN_PASSWORD, or CALSCAN_ADMIN_PASSWORD_HASH (made by `calscan \
         hash-password`)\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[tokio::test]
async fn a_refused_request_is_logged_once_inside_its_request_span() {
    let sim = crate::helpers::simulator(0, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let process = crate::helpers::Process::logging_json(
        &dir,
        sim.base_url(),
        &[("CALENDLY_WEBHOOK_SIGNING_KEY", "whsec-test")],
    )
    .await;
    let answer = process
        .http
        .post(format!("{}/webhooks/calendly", process.base))
        .header("Calendly-Webhook-Signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let refused: Vec<_> = process
        .json_log_after_an_answer()
        .await
        .into_iter()
        .filter(|line| line.to_string().contains("webhook delivery refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    let line = &refused[0];
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["fields"]["message"], "request refused", "{line}");
    assert_eq!(line["fields"]["status"], 401, "{line}");
    assert_eq!(line["span"]["route"], "/webhooks/calendly", "{line}");
    assert_eq!(line["span"]["method"], "POST", "{line}");
}
