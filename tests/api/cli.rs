//! The binary's commands: hash-password, migrate, healthcheck, and the
//! server's refusal to start without a password.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{AppOptions, spawn_app};

fn calscan() -> Command {
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

#[test]
fn migrate_creates_the_tables_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    for _ in 0..2 {
        let output = calscan()
            .args(["migrate", "--database-url", &url])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "database is up to date"
        );
    }
    assert!(dir.path().join("m.db").exists());
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
