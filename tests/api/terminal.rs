//! The terminal's own commands: `calscan hash-password` on a terminal.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
