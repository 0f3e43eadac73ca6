//! Upgrades: a database migrated by the previous release, with its data,
//! migrates to the current schema with nothing lost, and keeps working.

use std::borrow::Cow;
use std::path::Path;

use serde_json::Value;
use sqlx::migrate::Migrator;

use crate::helpers::{
    AppOptions, Backend, all_customers, backend, fresh_database, log_lines, spawn_app,
};

const DONE: &str = "scan_01jqprevrelease0000000001";
const INTERRUPTED: &str = "scan_01jqprevrelease0000000002";

/// The migrations of `backend` the previous release had applied, and its data.
fn previous_release(backend: Backend) -> (String, i64, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let last = match backend {
        // 0.1.0: the first schema.
        Backend::Sqlite | Backend::Postgres => 1,
        // No release had MySQL: its whole schema holds the data.
        Backend::MySql => 14,
    };
    let data = std::fs::read_to_string(format!(
        "{root}/tests/fixtures/previous_release/{backend}.sql"
    ))
    .unwrap();
    (format!("{root}/migrations/{backend}"), last, data)
}

/// Migrates `url` as the previous release did and loads its data.
async fn as_previous_release_left_it(url: &str) {
    let (dir, last, data) = previous_release(backend());
    let mut migrator = Migrator::new(Path::new(&dir)).await.unwrap();
    let earlier: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect();
    assert_eq!(
        earlier.len() as i64,
        last,
        "the previous release's migrations"
    );
    migrator.migrations = Cow::Owned(earlier);
    let data = sqlx::AssertSqlSafe(data);
    match backend() {
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::raw_sql(data).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::raw_sql(data).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::raw_sql(data).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn a_database_of_the_previous_release_upgrades_with_nothing_lost_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    as_previous_release_left_it(&url).await;

    // Starting the server migrates; a second start finds nothing to do.
    calscan::store::connect(&url).await.unwrap();
    let app = spawn_app(AppOptions {
        database_url: Some(url),
        ..AppOptions::default()
    })
    .await;

    assert_eq!(app.history("scan_id").await, [INTERRUPTED, DONE]);

    let done = app.get_json(&format!("/api/scans/{DONE}")).await;
    let expect = [
        ("status", Value::from("completed")),
        ("mode", "full".into()),
        ("progress", 100.into()),
        ("current_step", "✅ Fertig".into()),
        ("events_scanned", 3.into()),
        ("events_total", 3.into()),
        ("emails_found", 2.into()),
        ("new_count", 2.into()),
        ("existing_count", 0.into()),
        ("error_message", Value::Null),
        ("started_at", "2026-05-04T10:00:00.000Z".into()),
        ("completed_at", "2026-05-04T10:00:05.250Z".into()),
        ("duration", 5.2.into()),
        ("last_event_id", 4.into()),
    ];
    for (key, value) in expect {
        assert_eq!(done[key], value, "{key}");
    }
    // The log, in both languages, with its event ids.
    let events = app.follow(DONE).await;
    assert_eq!(
        log_lines(&events),
        [
            (1, "🚀 Calendly Scan gestartet".to_owned()),
            (2, "✅ 3 Events von Calendly geladen".to_owned()),
            (
                3,
                "🎉 Scan abgeschlossen: 3 Events, 2 Emails, 2 neu".to_owned()
            ),
        ]
    );
    assert_eq!(events.last().unwrap().id, Some(4));
    let english: Value = app
        .get_in(&format!("/api/scans/{DONE}"), "en")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        english["logs"][1]["message"],
        "✅ 3 events loaded from Calendly"
    );

    let customers = all_customers(&app.http, &app.base).await;
    assert_eq!(
        customers,
        [
            serde_json::json!({
                "email": "ben@example.com",
                "name": "Ben O'Brien <b>",
                "bookings": 1,
                "first_booking_at": "2026-04-03T15:30:00.000Z",
                "last_booking_at": "2026-04-03T15:30:00.000Z",
                "created_by_scan": DONE,
                "created_at": "2026-05-04T10:00:03.000Z",
            }),
            serde_json::json!({
                "email": "anna.müller@example.de",
                "name": "Anna Müller",
                "bookings": 2,
                "first_booking_at": "2026-04-01T09:00:00.000Z",
                "last_booking_at": "2026-04-08T09:00:00.000Z",
                "created_by_scan": DONE,
                "created_at": "2026-05-04T10:00:02.000Z",
            }),
        ]
    );
    // Search still folds case beyond ASCII.
    let found = app.get_json("/api/customers?q=M%C3%9CLLER").await;
    assert_eq!(found["total"], 1);

    // The interrupted scan resumes on the new schema from its checkpoint:
    // its one email so far stays counted, every simulated one is new.
    let expected = app.sim.expected_emails();
    assert_eq!(
        app.post(&format!("/api/scans/{INTERRUPTED}/resume"))
            .await
            .status(),
        202
    );
    let resumed = app.follow(INTERRUPTED).await;
    let end = &resumed.last().unwrap().data;
    assert_eq!(end["status"], "completed");
    assert_eq!(end["emails_found"], expected.len() as i64 + 1);
    assert_eq!(end["new_count"], expected.len() as i64);
    assert_eq!(end["existing_count"], 1);
    assert_eq!(app.customer_total().await, expected.len() as i64 + 2);
}

#[test]
fn migrations_only_add_they_never_drop_or_rewrite_data() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files = 0;
    for backend in std::fs::read_dir(root).unwrap() {
        for file in std::fs::read_dir(backend.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            files += 1;
            // Comments may say anything; the statements may not.
            let text: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(|l| l.split("--").next().unwrap_or("").to_owned() + "\n")
                .collect();
            for statement in text.split(';').filter(|s| !s.trim().is_empty()) {
                let words: Vec<String> = statement
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .filter(|w| !w.is_empty())
                    .map(str::to_ascii_uppercase)
                    .collect();
                let what = format!("{}: {}", path.display(), statement.trim());
                match words[0].as_str() {
                    "CREATE" => {}
                    // Adding is all an ALTER may do, but for widening what
                    // a column takes while every stored value keeps its
                    // meaning: an ENUM gaining values at its end, a DATETIME
                    // gaining fractions of a second.
                    "ALTER" => {
                        for word in ["DROP", "RENAME", "CHANGE", "TYPE"] {
                            assert!(!words.iter().any(|w| w == word), "{word} in {what}");
                        }
                        for (i, _) in words.iter().enumerate().filter(|(_, w)| *w == "MODIFY") {
                            let rest = &words[i + 1..];
                            let widening = match rest {
                                [column, name, kind, tail @ ..] if column == "COLUMN" => {
                                    (kind == "ENUM"
                                        && name == "STATUS"
                                        && tail.starts_with(&[
                                            "RUNNING".into(),
                                            "COMPLETED".into(),
                                            "ERROR".into(),
                                        ]))
                                        || (kind == "DATETIME"
                                            && tail.first().is_some_and(|p| p == "6"))
                                }
                                _ => false,
                            };
                            assert!(widening, "MODIFY that is not a widening in {what}");
                        }
                    }
                    // Copying into a table of calscan's.
                    "INSERT" => {
                        assert!(words.iter().any(|w| w == "SELECT"), "{what}");
                        assert_eq!(words[2], "CUSTOMER_STATS", "{what}");
                    }
                    // Filling a column the migrations added, where it is
                    // still at its default.
                    "UPDATE" => {
                        let set = words.iter().position(|w| w == "SET").unwrap();
                        let target = &words[set + 2];
                        assert!(
                            ["EVENT_ID", "LAST_EVENT_ID"].contains(&target.as_str()),
                            "UPDATE of {target} in {what}"
                        );
                        assert!(
                            statement.contains("WHERE") && statement.trim_end().ends_with("= 0"),
                            "{what}"
                        );
                    }
                    other => panic!("{other} statement in {what}"),
                }
            }
        }
    }
    // sqlite 7, postgres 7, mysql 16.
    assert_eq!(files, 33);
}
