//! Installing on the PHP scanner's own database: its scan tables upgraded in
//! place with their history, and a school's customer table used as it is.

use std::collections::{BTreeMap, BTreeSet};

use calscan::store::CustomerSettings;
use serde_json::Value;

use crate::helpers::{
    AppOptions, Backend, TestApp, all_customers, backend, exec, fresh_database, log_lines, rows,
    spawn_app,
};

const DONE: &str = "scan_6789abcdef123";
const STUCK: &str = "scan_6790aaaabbbb1";

/// Every value of the school's customers, as bytes.
const SCHOOL_ROWS: &str = "SELECT CAST(id AS CHAR), HEX(vorname), HEX(nachname), HEX(e_mail), \
     HEX(telefon), HEX(status), HEX(notizen), CAST(erstellt_am AS CHAR) FROM customers ORDER BY id";
/// The PHP scanner's columns of its two tables.
const PHP_SCANS: &str = "SELECT CAST(id AS CHAR), scan_id, CAST(status AS CHAR), \
     CAST(progress AS CHAR), current_step, CAST(events_scanned AS CHAR), \
     CAST(emails_found AS CHAR), CAST(new_count AS CHAR), CAST(existing_count AS CHAR), \
     error_message, DATE_FORMAT(started_at, '%Y-%m-%d %H:%i:%s.%f'), \
     DATE_FORMAT(completed_at, '%Y-%m-%d %H:%i:%s.%f') FROM scan_progress ORDER BY id";
const PHP_LOGS: &str = "SELECT CAST(id AS CHAR), scan_id, HEX(message), \
     DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') FROM scan_logs ORDER BY id";

/// Whether the suite runs on MySQL/MariaDB, where the PHP scanner lives;
/// says that the test is skipped when not.
fn on_mysql() -> bool {
    let here = backend() == Backend::MySql;
    if !here {
        eprintln!(
            "skipped: the PHP scanner's tables live on MySQL/MariaDB (CALSCAN_TEST_DATABASE=mysql)"
        );
    }
    here
}

/// `calscan migrate` with `args` on `url`: exit code and output.
fn migrate(url: &str, args: &[&str]) -> (i32, String) {
    let output = crate::cli::calscan()
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap(), text)
}

fn text(rows: &[Vec<Option<String>>]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.clone().unwrap_or_default()).collect())
        .collect()
}

async fn one(url: &str, query: &str) -> String {
    rows(url, query).await[0][0].clone().unwrap_or_default()
}

#[tokio::test]
async fn the_php_scanners_database_is_upgraded_in_place_and_its_customers_are_used() {
    if !on_mysql() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    let school = include_str!("../fixtures/php_scanner/school.sql");
    exec(&url, school).await;
    let school_rows = rows(&url, SCHOOL_ROWS).await;
    let php_scans = rows(&url, PHP_SCANS).await;
    let php_logs = rows(&url, PHP_LOGS).await;

    // --check reads only, and says what it would do.
    let (code, plan) = migrate(&url, &["--check"]);
    assert_eq!(code, 0, "{plan}");
    for line in [
        "0 migrations applied, 17 pending",
        "tables to create: scan_events_done, scan_emails, bookings, sessions, \
         webhook_deliveries, webhook_subscriptions, customer_stats",
        "tables kept as they are and used: scan_progress, scan_logs, customers",
        "table to upgrade: scan_progress, adding mode, current_step_en, events_total, owner, \
         lease_until_ms, last_event_id, cancel_requested, running_slot, error_message_en, eta_at, previous_scan_at",
        "table to upgrade: scan_logs, adding event_id, message_en",
        "customers: table customers, email column e_mail, name columns vorname + nachname, \
         3 rows, 1 with an email another row has too",
        "`calscan migrate` can proceed; nothing was changed",
    ] {
        assert!(plan.contains(line), "{line:?} not in\n{plan}");
    }
    let tables = "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                  WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME";
    assert_eq!(
        text(&rows(&url, tables).await),
        [["customers"], ["scan_logs"], ["scan_progress"]]
    );
    assert_eq!(rows(&url, PHP_SCANS).await, php_scans);

    let (code, said) = migrate(&url, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.ends_with("database is up to date\n"), "{said}");
    // Every old row as it was, the tables' collation and foreign key kept.
    assert_eq!(rows(&url, SCHOOL_ROWS).await, school_rows);
    assert_eq!(rows(&url, PHP_SCANS).await, php_scans);
    assert_eq!(rows(&url, PHP_LOGS).await, php_logs);
    assert_eq!(
        text(
            &rows(
                &url,
                "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_COLLATION AS CHAR) \
             FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME IN ('scan_progress', 'scan_logs', 'customers') ORDER BY TABLE_NAME"
            )
            .await
        ),
        [
            ["customers", "utf8mb4_unicode_ci"],
            ["scan_logs", "utf8mb4_unicode_ci"],
            ["scan_progress", "utf8mb4_unicode_ci"]
        ]
    );
    assert_eq!(
        text(
            &rows(
                &url,
                "SELECT CAST(REFERENCED_TABLE_NAME AS CHAR), CAST(DELETE_RULE AS CHAR) \
             FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'scan_logs'"
            )
            .await
        ),
        [["scan_progress", "CASCADE"]]
    );
    assert_eq!(
        one(
            &url,
            "SELECT CAST(COLUMN_TYPE AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'scan_progress' \
             AND COLUMN_NAME = 'status'"
        )
        .await,
        "enum('running','completed','error','cancelled','interrupted')"
    );
    assert_eq!(
        one(
            &url,
            "SELECT CAST(EXTRA AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'scan_logs' AND COLUMN_NAME = 'id'"
        )
        .await,
        "auto_increment"
    );
    // The old lines are numbered within their scans, in order.
    assert_eq!(
        text(
            &rows(
                &url,
                "SELECT scan_id, CAST(event_id AS CHAR) FROM scan_logs ORDER BY id"
            )
            .await
        ),
        [
            [DONE, "1"],
            [STUCK, "1"],
            [DONE, "2"],
            [DONE, "3"],
            [STUCK, "2"]
        ]
    );
    // The PHP page's own statements still work on the upgraded tables.
    exec(
        &url,
        "INSERT INTO scan_progress (scan_id, status, progress, current_step, started_at) \
         VALUES ('scan_php0000000001', 'running', 0, 'Initialisiere...', '2026-02-01 12:00:00'); \
         INSERT INTO scan_logs (scan_id, message, created_at) \
         VALUES ('scan_php0000000001', '🚀 Calendly Scan gestartet', '2026-02-01 12:00:00'); \
         UPDATE scan_progress SET status = 'completed', progress = 100, \
         completed_at = '2026-02-01 12:01:00' WHERE scan_id = 'scan_php0000000001';",
    )
    .await;

    let app = spawn_app(AppOptions {
        database_url: Some(url.clone()),
        ..AppOptions::default()
    })
    .await;
    the_old_scans_are_history(&app).await;
    the_php_page_scanning_beside_calscan_streams_live(&app).await;

    // Two of the school's customers book on Calendly, typed as people type.
    let expected = app.sim.expected_emails();
    let known: Vec<&String> = expected.iter().take(2).collect();
    exec(
        &url,
        &format!(
            "INSERT INTO customers (vorname, nachname, e_mail) VALUES ('Erika', 'Muster', ' {} '), \
             ('Hans', 'Huber', '{}');",
            known[0].to_uppercase(),
            known[1]
        ),
    )
    .await;
    let before = rows(&url, SCHOOL_ROWS).await;
    assert_eq!(before.len(), 5);

    // A full scan: the stuck PHP scan does not block it.
    let scan_id = app.start_scan_in("full").await;
    let end = app.follow(&scan_id).await.last().unwrap().data.clone();
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["emails_found"], expected.len() as i64);
    assert_eq!(end["existing_count"], 2);
    assert_eq!(end["new_count"], expected.len() as i64 - 2);

    // The school's rows are untouched; only the new ones were added, each
    // once, with its name in the school's columns and the defaults elsewhere.
    let after = rows(&url, SCHOOL_ROWS).await;
    assert_eq!(after[..5], before[..]);
    let added = text(
        &rows(
            &url,
            &format!(
                "SELECT e_mail, vorname, nachname, CAST(telefon IS NULL AS CHAR), status, \
         CAST(notizen IS NULL AS CHAR), CAST(erstellt_am IS NOT NULL AS CHAR) FROM customers \
         WHERE id > {} ORDER BY id",
                before.last().unwrap()[0].as_deref().unwrap()
            ),
        )
        .await,
    );
    assert_eq!(added.len(), expected.len() - 2);
    let names = invitee_names(&app);
    let mut seen = BTreeSet::new();
    for row in &added {
        let email = &row[0];
        assert!(seen.insert(email.clone()), "{email} inserted twice");
        assert!(
            expected.contains(email) && !known.contains(&email),
            "{email}"
        );
        assert!(
            names[email].contains(&(row[1].clone(), row[2].clone())),
            "{row:?} against {:?}",
            names[email]
        );
        assert_eq!(row[3..], ["1", "aktiv", "1", "1"], "{row:?}");
    }

    // The pages and the API show the school's whole table.
    let customers = all_customers(&app.http, &app.base).await;
    assert_eq!(customers.len(), 5 + added.len());
    assert_eq!(app.customer_total().await, 5 + added.len() as i64);
    let clara = app.get_json("/api/customers?q=wei%C3%9F").await;
    assert_eq!(clara["total"], 1);
    assert_eq!(clara["customers"][0]["email"], "  Clara.Weiss@Schule.AT ");
    assert_eq!(clara["customers"][0]["name"], "Clara Weiß");
    assert_eq!(clara["customers"][0]["bookings"], 0);
    assert_eq!(clara["customers"][0]["created_at"], Value::Null);
    let erika = app
        .get_json(&format!(
            "/api/customers?q={}",
            known[0].split('@').next().unwrap()
        ))
        .await;
    assert!(
        erika["customers"][0]["bookings"].as_i64().unwrap() >= 1,
        "{erika}"
    );
    let csv = app.get("/admin/customers.csv").await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + 5 + added.len());
    assert!(csv.contains("dora@schule.at") && csv.contains("DORA@schule.at"));

    // A second scan adds nothing.
    let again = app.start_scan_in("full").await;
    let end = app.follow(&again).await.last().unwrap().data.clone();
    assert_eq!(end["new_count"], 0, "{end}");
    assert_eq!(end["existing_count"], expected.len() as i64);
    assert_eq!(rows(&url, SCHOOL_ROWS).await, after);

    // Resuming the PHP-era scan reads every event again (it has no
    // checkpoint), with exact counts, below its old lines.
    let resumed = app.post(&format!("/api/scans/{STUCK}/resume")).await;
    assert_eq!(resumed.status(), 202);
    let events = app.follow(STUCK).await;
    let end = &events.last().unwrap().data;
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["events_scanned"], end["events_total"]);
    assert_eq!(end["emails_found"], expected.len() as i64);
    assert_eq!(end["new_count"], 0);
    let lines = log_lines(&events);
    assert_eq!(lines[0], (1, "🚀 Calendly Scan gestartet".to_owned()));
    assert_eq!(
        lines[1],
        (2, "✅ 20 Events von Calendly geladen".to_owned())
    );
    assert_eq!(rows(&url, SCHOOL_ROWS).await, after);
}

/// The PHP-era scans show in the history, the original's status route and
/// the stream; the one a dead request left running is interrupted.
async fn the_old_scans_are_history(app: &TestApp) {
    let history = app.history("scan_id").await;
    assert_eq!(history, ["scan_php0000000001", STUCK, DONE]);
    let status = app
        .get_json(&format!(
            "/admin/calendly_scan_api.php?action=status&scan_id={DONE}"
        ))
        .await;
    for (key, value) in [
        ("status", Value::from("completed")),
        ("progress", 100.into()),
        ("current_step", "Fertig!".into()),
        ("events_scanned", 87.into()),
        ("emails_found", 34.into()),
        ("new_count", 5.into()),
        ("existing_count", 29.into()),
        ("duration", 72.0.into()),
    ] {
        assert_eq!(status[key], value, "{key}: {status}");
    }
    let messages: Vec<&str> = status["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "🚀 Calendly Scan gestartet",
            "✅ 87 Events von Calendly geladen",
            "🎉 Scan abgeschlossen: 34 Emails, 5 neu"
        ]
    );
    let events = app.follow(DONE).await;
    assert_eq!(
        events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["snapshot", "done"]
    );
    assert_eq!(log_lines(&events).len(), 3);
    assert_eq!(events.last().unwrap().id, Some(4));
    let stuck = app.get_json(&format!("/api/scans/{STUCK}")).await;
    assert_eq!(stuck["status"], "interrupted", "{stuck}");
    let (code, page) = crate::helpers::page(app, &format!("/admin/scans/{DONE}"), "de").await;
    assert_eq!(code, 200);
    assert!(page.contains("87 Events von Calendly geladen"), "{page}");
    let (code, page) = crate::helpers::page(app, "/admin/scans", "de").await;
    assert_eq!(code, 200);
    assert!(page.contains(DONE) && page.contains(STUCK));
}

/// A scan the PHP page runs while calscan runs too: its lines get their
/// event ids, and a watcher sees it to its end.
async fn the_php_page_scanning_beside_calscan_streams_live(app: &TestApp) {
    const PHP: &str = "scan_php0000000002";
    exec(
        &app.database_url,
        &format!(
            "INSERT INTO scan_progress (scan_id, status, progress, current_step, started_at) \
             VALUES ('{PHP}', 'running', 0, 'Initialisiere...', UTC_TIMESTAMP()); \
             INSERT INTO scan_logs (scan_id, message, created_at) \
             VALUES ('{PHP}', '🚀 Calendly Scan gestartet', UTC_TIMESTAMP());"
        ),
    )
    .await;
    let mut stream = app.stream(PHP, None).await;
    let snapshot = stream.next().await.unwrap();
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["status"], "running", "{:?}", snapshot.data);
    exec(
        &app.database_url,
        &format!(
            "INSERT INTO scan_logs (scan_id, message, created_at) \
             VALUES ('{PHP}', '✅ 12 Events von Calendly geladen', UTC_TIMESTAMP()); \
             UPDATE scan_progress SET status = 'completed', progress = 100, \
             completed_at = UTC_TIMESTAMP() WHERE scan_id = '{PHP}';"
        ),
    )
    .await;
    let mut events = vec![snapshot];
    events.extend(stream.until_done().await);
    assert_eq!(
        log_lines(&events),
        [
            (1, "🚀 Calendly Scan gestartet".to_owned()),
            (2, "✅ 12 Events von Calendly geladen".to_owned())
        ],
        "{events:#?}"
    );
    let done = events.last().unwrap();
    assert_eq!(done.event, "done");
    assert_eq!(done.id, Some(3));
    assert_eq!(done.data["status"], "completed");
}

/// The first and last names each email's invitees gave, as a two-column
/// customer table should hold them.
fn invitee_names(app: &TestApp) -> BTreeMap<String, Vec<(String, String)>> {
    let mut names: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for invitee in app.sim.org().events.iter().flat_map(|e| &e.invitees) {
        let Some(email) = calscan::calendly::model::normalize_email(&invitee.email) else {
            continue;
        };
        let given = invitee.first_name.clone().filter(|f| !f.trim().is_empty());
        let (first, last) = match given {
            Some(first) => (first, invitee.last_name.clone().unwrap_or_default()),
            None => {
                let (f, l) = calscan::store::customers::split_name(&invitee.name);
                (f, l.unwrap_or_default())
            }
        };
        names.entry(email).or_default().push((first, last));
    }
    names
}

/// The school's table on each database: its layout detected, or named by the
/// settings.
#[tokio::test]
async fn a_customer_table_of_the_schools_own_is_used_on_every_database() {
    for named in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let database = fresh_database(&dir).await;
        let url = database.url.clone();
        let (key, table, mail, first, last) = if named {
            ("nr", "clients", "contact", "given", "family")
        } else {
            ("id", "kunden", "e_mail", "vorname", "nachname")
        };
        let serial = match backend() {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            Backend::MySql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        };
        exec(
            &url,
            &format!(
                "CREATE TABLE {table} ({key} {serial}, {first} VARCHAR(100), \
                 {last} VARCHAR(100) NOT NULL, {mail} VARCHAR(255) NOT NULL, \
                 status VARCHAR(20) NOT NULL DEFAULT 'aktiv'); \
                 INSERT INTO {table} ({first}, {last}, {mail}) VALUES ('Clara', 'Weiß', 'clara@schule.at');"
            ),
        )
        .await;
        let customers = CustomerSettings {
            table: table.into(),
            email_column: named.then(|| mail.into()),
            name_columns: named.then(|| format!("{first},{last}")),
        };
        let app = spawn_app(AppOptions {
            database_url: Some(url.clone()),
            customers,
            ..AppOptions::default()
        })
        .await;
        let expected = app.sim.expected_emails();
        let scan_id = app.start_scan_in("full").await;
        let end = app.follow(&scan_id).await.last().unwrap().data.clone();
        assert_eq!(end["new_count"], expected.len() as i64, "{end}");
        assert_eq!(end["existing_count"], 0);
        let stored = text(
            &rows(
                &url,
                &format!("SELECT {mail}, {first}, {last}, status FROM {table} ORDER BY {key}"),
            )
            .await,
        );
        assert_eq!(stored.len(), 1 + expected.len());
        assert_eq!(stored[0], ["clara@schule.at", "Clara", "Weiß", "aktiv"]);
        let names = invitee_names(&app);
        for row in &stored[1..] {
            assert!(
                names[&row[0]].contains(&(row[1].clone(), row[2].clone())),
                "{row:?}"
            );
            assert_eq!(row[3], "aktiv");
        }
        assert_eq!(app.customer_total().await, 1 + expected.len() as i64);
        let found = app.get_json("/api/customers?q=WEI%C3%9F").await;
        assert_eq!(found["total"], 1, "{found}");
        let again = app.start_scan_in("full").await;
        let end = app.follow(&again).await.last().unwrap().data.clone();
        assert_eq!(end["new_count"], 0, "{end}");
        assert_eq!(app.customer_total().await, 1 + expected.len() as i64);
    }
}

#[tokio::test]
async fn a_scan_progress_that_is_neither_the_php_scanners_nor_calscans_is_refused_untouched() {
    if !on_mysql() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    exec(
        &url,
        "CREATE TABLE scan_progress (id INT PRIMARY KEY, scan_id VARCHAR(50), what TEXT)",
    )
    .await;
    for args in [&["--check"][..], &[]] {
        let (code, said) = migrate(&url, args);
        assert_eq!(code, 1, "{said}");
        assert!(
            said.contains("`scan_progress` is neither the PHP scanner's nor calscan's")
                && said.contains("missing status"),
            "{said}"
        );
    }
    let tables = "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                  WHERE TABLE_SCHEMA = DATABASE()";
    assert_eq!(text(&rows(&url, tables).await), [["scan_progress"]]);
}

#[tokio::test]
async fn a_customer_the_php_page_inserts_at_the_same_moment_is_not_inserted_again() {
    use sqlx::{Connection, MySqlConnection};
    if !on_mysql() {
        return;
    }
    const KEY: &str = "webhook-signing-key-for-tests";
    let app = spawn_app(AppOptions {
        events: 10,
        webhook_key: Some(KEY),
        ..AppOptions::default()
    })
    .await;
    let invitee = app.sim.org().events[3].invitees[0].clone();
    let email = calscan::calendly::model::normalize_email(&invitee.email).unwrap();
    // The PHP page saves the same person, its transaction still open.
    let mut php = MySqlConnection::connect(&app.database_url).await.unwrap();
    let mut tx = php.begin().await.unwrap();
    sqlx::query("INSERT INTO customers (email, name) VALUES (?, 'vom PHP-Formular')")
        .bind(format!(" {} ", email.to_uppercase()))
        .execute(&mut *tx)
        .await
        .unwrap();
    // Calendly's delivery of that booking arrives meanwhile.
    let delivery = {
        let (sim, url) = (app.sim.sim.clone(), app.url("/webhooks/calendly"));
        tokio::spawn(async move { sim.deliver_webhook(&url, 3, 0, KEY.as_bytes()).await })
    };
    let mut watcher = MySqlConnection::connect(&app.database_url).await.unwrap();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND INFO LIKE 'SELECT 1 FROM `customers`%'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        // A delivery that did not wait has answered already.
        if waiting > 0 || delivery.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    tx.commit().await.unwrap();
    assert_eq!(delivery.await.unwrap().unwrap(), 200);
    let stored = text(
        &rows(
            &app.database_url,
            &format!("SELECT name FROM customers WHERE LOWER(TRIM(email)) = '{email}' ORDER BY id"),
        )
        .await,
    );
    assert_eq!(stored, [["vom PHP-Formular"]]);
    let found = app.get_json(&format!("/api/customers?q={email}")).await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["customers"][0]["bookings"], 1);
}

/// An email longer than the school's email column takes is never cut: the
/// scan leaves it out with a log line and saves every other one exactly.
#[tokio::test]
async fn an_email_the_customer_table_cannot_hold_is_left_out_saying_so() {
    let expected = crate::helpers::simulator(60, |_| {})
        .await
        .expected_emails();
    let mut lengths: Vec<usize> = expected.iter().map(|e| e.chars().count()).collect();
    lengths.sort();
    let limit = lengths[lengths.len() / 2];
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    exec(
        &url,
        &format!("CREATE TABLE kurz (email VARCHAR({limit}) NOT NULL, name VARCHAR(200))"),
    )
    .await;
    let app = spawn_app(AppOptions {
        database_url: Some(url.clone()),
        customers: CustomerSettings {
            table: "kurz".into(),
            ..CustomerSettings::default()
        },
        ..AppOptions::default()
    })
    .await;
    assert_eq!(app.sim.expected_emails(), expected);
    // SQLite keeps no length for VARCHAR: everything fits there.
    let fits: BTreeSet<&String> = expected
        .iter()
        .filter(|e| backend() == Backend::Sqlite || e.chars().count() <= limit)
        .collect();
    let scan_id = app.start_scan_in("full").await;
    let events = app.follow(&scan_id).await;
    let end = &events.last().unwrap().data;
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["emails_found"], fits.len() as i64);
    assert_eq!(end["new_count"], fits.len() as i64);
    let stored: BTreeSet<String> = text(&rows(&url, "SELECT email FROM kurz").await)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(stored.iter().collect::<BTreeSet<_>>(), fits);
    let skipped = log_lines(&events)
        .iter()
        .filter(|(_, line)| line.contains("länger als die Kundentabelle erlaubt"))
        .count();
    assert_eq!(skipped > 0, fits.len() < expected.len(), "{skipped}");
}

/// A scan and Calendly's webhook deliveries saving the same people at once,
/// into a school's table without a unique index: each email still gets one
/// row.
#[tokio::test]
async fn a_scan_and_parallel_webhook_deliveries_of_the_same_people_add_each_email_once() {
    const KEY: &str = "webhook-signing-key-for-tests";
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let url = database.url.clone();
    exec(
        &url,
        "CREATE TABLE kunden (e_mail VARCHAR(255) NOT NULL, vorname VARCHAR(100), \
         nachname VARCHAR(100))",
    )
    .await;
    let app = spawn_app(AppOptions {
        database_url: Some(url.clone()),
        webhook_key: Some(KEY),
        customers: CustomerSettings {
            table: "kunden".into(),
            ..CustomerSettings::default()
        },
        ..AppOptions::default()
    })
    .await;
    let expected = app.sim.expected_emails();
    let deliveries: Vec<(usize, usize)> = app
        .sim
        .org()
        .events
        .iter()
        .enumerate()
        .flat_map(|(e, event)| (0..event.invitees.len()).map(move |i| (e, i)))
        .collect();
    let scan_id = app.start_scan_in("full").await;
    let hook = app.url("/webhooks/calendly");
    let sent = futures::future::join_all(deliveries.iter().map(|&(event, invitee)| {
        let (sim, hook) = (app.sim.sim.clone(), hook.clone());
        tokio::spawn(async move {
            sim.deliver_webhook(&hook, event, invitee, KEY.as_bytes())
                .await
        })
    }))
    .await;
    for status in sent {
        assert_eq!(
            status.unwrap().unwrap(),
            200,
            "{}",
            crate::helpers::server_log()
                .lines()
                .filter(|l| l.contains("ERROR"))
                .take(2)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let end = app.follow(&scan_id).await.last().unwrap().data.clone();
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["emails_found"], expected.len() as i64);
    let stored: Vec<String> = text(&rows(&url, "SELECT e_mail FROM kunden").await)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let distinct: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), distinct.len(), "an email was inserted twice");
    assert_eq!(distinct, expected);
}
