//! `POST /webhooks/calendly`: signed deliveries become customers at once;
//! anything not signed right changes nothing.

use calscan::calendly::webhook;
use chrono::Utc;
use reqwest::StatusCode;

use crate::helpers::{AppOptions, TestApp, page, spawn_app};

const KEY: &str = "webhook-signing-key-for-tests";

/// calscan with `KEY` as its webhook signing key, `events` in the simulator.
async fn with_key(events: usize) -> TestApp {
    spawn_app(AppOptions {
        events,
        webhook_key: Some(KEY),
        ..AppOptions::default()
    })
    .await
}

async fn post_delivery(app: &TestApp, body: &[u8], signature: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(app.url("/webhooks/calendly"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header(webhook::SIGNATURE_HEADER, signature);
    }
    request.send().await.unwrap().status()
}

/// Customers and imported deliveries, to show that nothing changed.
async fn state_of(app: &TestApp) -> (i64, String) {
    let customers = app.get_json("/api/customers").await.to_string();
    let (_, history) = page(app, "/admin/scans", "en").await;
    let imports = history
        .split("id=\"webhook-imports\"")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (app.customer_total().await, customers + &imports)
}

#[tokio::test]
async fn a_signed_delivery_imports_the_invitee_at_once_and_a_repeat_changes_nothing() {
    let app = with_key(10).await;
    let invitee = &app.sim.org().events[3].invitees[0];
    let email = invitee.email.trim().to_lowercase();
    let url = app.url("/webhooks/calendly");
    assert_eq!(
        app.sim
            .deliver_webhook(&url, 3, 0, KEY.as_bytes())
            .await
            .unwrap(),
        200
    );
    let found = app.get_json(&format!("/api/customers?q={email}")).await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["customers"][0]["email"], email.as_str());
    assert_eq!(found["customers"][0]["name"], invitee.name.as_str());
    assert_eq!(found["customers"][0]["bookings"], 1);
    assert_eq!(app.customer_total().await, 1);

    // Calendly retries: the same delivery again, newly signed.
    let before = state_of(&app).await;
    assert_eq!(
        app.sim
            .deliver_webhook(&url, 3, 0, KEY.as_bytes())
            .await
            .unwrap(),
        200
    );
    assert_eq!(state_of(&app).await, before, "a repeat changed something");

    // The admin page lists the import, the name as text.
    let (_, history) = page(&app, "/admin/scans", "en").await;
    let imports = history.split("id=\"webhook-imports\"").nth(1).unwrap();
    assert!(
        imports.contains(&email) && imports.contains("invitee.created"),
        "{imports}"
    );

    // A scan later finds the same booking: it counts once.
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    let found = app.get_json(&format!("/api/customers?q={email}")).await;
    let bookings = app
        .sim
        .org()
        .events
        .iter()
        .flat_map(|e| &e.invitees)
        .filter(|i| i.email.trim().eq_ignore_ascii_case(&email))
        .count();
    assert_eq!(
        found["customers"][0]["bookings"], bookings as i64,
        "{found}"
    );

    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("calscan_webhook_deliveries_total{result=\"accepted\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tampered_wrongly_signed_old_or_malformed_deliveries_are_refused_and_change_nothing() {
    let app = with_key(5).await;
    let now = Utc::now().timestamp();
    let before = state_of(&app).await;
    let (body, signature) = app.sim.signed_delivery(1, 0, KEY.as_bytes(), now).unwrap();

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'@').unwrap();
    tampered[at - 1] ^= 1;
    assert_eq!(post_delivery(&app, &tampered, Some(&signature)).await, 401);

    let (_, wrong_key) = app.sim.signed_delivery(1, 0, b"another key", now).unwrap();
    assert_eq!(post_delivery(&app, &body, Some(&wrong_key)).await, 401);

    let (old_body, old) = app
        .sim
        .signed_delivery(1, 0, KEY.as_bytes(), now - 181)
        .unwrap();
    assert_eq!(post_delivery(&app, &old_body, Some(&old)).await, 401);

    for malformed in ["", "t=abc,v1=00", "v1=deadbeef", "t=1,v1=", "garbage"] {
        assert_eq!(
            post_delivery(&app, &body, Some(malformed)).await,
            401,
            "{malformed:?}"
        );
    }
    assert_eq!(post_delivery(&app, &body, None).await, 401);

    // Signed, but not a delivery calscan can use.
    let junk = br#"{"event": "invitee.created", "payload": {"nothing": 1}}"#;
    let signed = webhook::sign(KEY.as_bytes(), now, junk);
    assert_eq!(post_delivery(&app, junk, Some(&signed)).await, 400);

    assert_eq!(
        state_of(&app).await,
        before,
        "a refused delivery changed something"
    );
    assert_eq!(before.0, 0);
    // The one right delivery still goes in.
    assert_eq!(post_delivery(&app, &body, Some(&signature)).await, 200);
    assert_eq!(app.customer_total().await, 1);
}

#[tokio::test]
async fn without_a_signing_key_deliveries_answer_503() {
    let app = spawn_app(AppOptions::default()).await;
    let (body, signature) = app
        .sim
        .signed_delivery(0, 0, KEY.as_bytes(), Utc::now().timestamp())
        .unwrap();
    assert_eq!(post_delivery(&app, &body, Some(&signature)).await, 503);
    assert_eq!(app.customer_total().await, 0);
}
