//! `POST /webhooks/calendly`: signed deliveries become customers at once;
//! anything not signed right changes nothing.

use calscan::calendly::webhook;
use chrono::Utc;
use reqwest::StatusCode;

use crate::helpers::{AppOptions, TestApp, page, spawn_app};

pub const KEY: &str = "webhook-signing-key-for-tests";

/// calscan with `KEY` as its webhook signing key, `events` in the simulator.
async fn with_key(events: usize) -> TestApp {
    spawn_app(AppOptions {
        events,
        webhook_key: Some(KEY),
        ..AppOptions::default()
    })
    .await
}

pub async fn post_delivery(app: &TestApp, body: &[u8], signature: Option<&str>) -> StatusCode {
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

/// `calscan webhooks ARGS` against `app`'s simulator and database.
async fn webhooks_command(app: &TestApp, token: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::from(crate::cli::calscan())
        .arg("webhooks")
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("CALENDLY_TOKEN", token)
        .env("CALENDLY_API_BASE", app.sim.base_url())
        .output()
        .await
        .unwrap()
}

/// How many subscriptions calscan keeps a signing key for.
async fn stored_subscriptions(app: &TestApp) -> usize {
    app.state.store.webhook_subscriptions().await.unwrap().len()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn webhooks_subscribe_stores_a_hidden_key_and_the_simulators_deliveries_import_at_once() {
    use secrecy::ExposeSecret;
    let app = spawn_app(AppOptions::default()).await;
    let callback = app.url("/webhooks/calendly");

    // A bare address gets the route added.
    let output = webhooks_command(&app, "demo-token", &["subscribe", "--url", &app.base]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(app.sim.webhook_callbacks(), std::slice::from_ref(&callback));
    let stored = app.state.store.webhook_subscriptions().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].callback_url, callback);
    let key = stored[0].signing_key.expose_secret().to_owned();
    assert_eq!(key.len(), 43);
    let id = calscan::calendly::model::last_segment(&stored[0].uri).to_owned();
    let said = text(&output);
    assert!(said.contains(&id) && said.contains(&callback), "{said}");
    assert!(!said.contains(&key), "the signing key was printed: {said}");

    // A booking made at Calendly arrives signed and is a customer at once.
    let start = Utc::now() + chrono::Duration::days(3);
    app.sim.book("Nora Neu", "Nora.Neu@Example.org ", start);
    let deliveries = app.sim.wait_for_deliveries(1).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, Some(200), "{deliveries:?}");
    assert!(deliveries[0].signed);
    let found = app.get_json("/api/customers?q=nora.neu@example.org").await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["customers"][0]["name"], "Nora Neu");
    assert_eq!(app.customer_total().await, 1);

    // The history page names where Calendly sends bookings.
    let (_, history) = page(&app, "/admin/scans", "en").await;
    let setup = history.split("id=\"webhook-setup\"").nth(1).unwrap();
    assert!(setup.contains(&callback), "{setup}");

    // list shows it, with calscan holding its key; --json for scripts.
    let output = webhooks_command(&app, "demo-token", &["list", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["callback_url"], callback.as_str());
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["events"], serde_json::json!(["invitee.created"]));
    assert_eq!(listed[0]["key_stored"], true);
    assert!(!text(&output).contains(&key));

    // The same URL twice: Calendly's 409, explained; nothing new stored.
    let output = webhooks_command(&app, "demo-token", &["subscribe", "--url", &callback]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("already has a subscription"),
        "{}",
        text(&output)
    );
    assert_eq!(stored_subscriptions(&app).await, 1);

    // delete removes it at Calendly and forgets the key: deliveries signed
    // with it no longer verify, and new bookings are not sent.
    let output = webhooks_command(&app, "demo-token", &["delete", &stored[0].uri]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(app.sim.webhook_callbacks().is_empty());
    assert_eq!(stored_subscriptions(&app).await, 0);
    let (body, signature) = app
        .sim
        .signed_delivery(0, 0, key.as_bytes(), Utc::now().timestamp())
        .unwrap();
    assert_eq!(post_delivery(&app, &body, Some(&signature)).await, 503);
    app.sim.book("Otto Later", "otto@example.org", start);
    assert_eq!(app.sim.wait_for_deliveries(0).await.len(), 1);

    let output = webhooks_command(&app, "demo-token", &["delete", &id]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("no subscription"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn a_key_from_subscribe_and_the_configured_key_both_verify() {
    let app = with_key(5).await;
    let output = webhooks_command(&app, "demo-token", &["subscribe", "--url", &app.base]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let url = app.url("/webhooks/calendly");
    assert_eq!(
        app.sim
            .deliver_webhook(&url, 0, 0, KEY.as_bytes())
            .await
            .unwrap(),
        200
    );
    app.sim.book(
        "Nora Neu",
        "nora.neu@example.org",
        Utc::now() + chrono::Duration::days(1),
    );
    let deliveries = app.sim.wait_for_deliveries(1).await;
    assert_eq!(deliveries[0].status, Some(200), "{deliveries:?}");
    assert_eq!(app.customer_total().await, 2);
    let (body, wrong) = app
        .sim
        .signed_delivery(1, 0, b"neither key", Utc::now().timestamp())
        .unwrap();
    assert_eq!(post_delivery(&app, &body, Some(&wrong)).await, 401);
}

#[tokio::test]
async fn webhooks_subscribe_explains_calendlys_refusals_and_stores_nothing() {
    let app = spawn_app(AppOptions {
        tweak_sim: Box::new(|c| {
            c.webhooks_allowed = false;
            c.member_token = Some("member-token".into());
        }),
        ..AppOptions::default()
    })
    .await;
    let output = webhooks_command(&app, "demo-token", &["subscribe", "--url", &app.base]).await;
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output);
    assert!(
        said.contains("Please upgrade your Calendly account")
            && said.contains("paid Calendly plan"),
        "{said}"
    );
    let output = webhooks_command(&app, "wrong-token", &["list"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("rejected the access token"),
        "{}",
        text(&output)
    );
    assert!(!text(&output).contains("wrong-token"));
    assert!(app.sim.webhook_callbacks().is_empty());
    assert_eq!(stored_subscriptions(&app).await, 0);

    // A bad URL or event never reaches Calendly.
    for args in [
        &["subscribe", "--url", "not a url"][..],
        &[
            "subscribe",
            "--url",
            &app.base,
            "--events",
            "invitee.exploded",
        ],
    ] {
        let output = webhooks_command(&app, "demo-token", args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    }
    assert_eq!(app.sim.stats().requests, 2);
}

#[tokio::test]
async fn a_nul_in_a_delivered_name_is_left_out_not_a_500_and_in_an_email_it_is_no_email() {
    let app = with_key(4).await;
    let now = Utc::now().timestamp();
    let invitee = &app.sim.org().events[1].invitees[0];
    let email = invitee.email.trim().to_lowercase();
    let (body, _) = app.sim.signed_delivery(1, 0, KEY.as_bytes(), now).unwrap();
    let mut delivery: serde_json::Value = serde_json::from_slice(&body).unwrap();
    delivery["payload"]["name"] = serde_json::json!("Ann\u{0}a Nul");
    let body = serde_json::to_vec(&delivery).unwrap();
    let signature = webhook::sign(KEY.as_bytes(), now, &body);
    assert_eq!(post_delivery(&app, &body, Some(&signature)).await, 200);
    let found = app.get_json(&format!("/api/customers?q={email}")).await;
    assert_eq!(found["customers"][0]["name"], "Anna Nul", "{found}");

    let (body, _) = app.sim.signed_delivery(2, 0, KEY.as_bytes(), now).unwrap();
    let mut delivery: serde_json::Value = serde_json::from_slice(&body).unwrap();
    delivery["payload"]["email"] = serde_json::json!("nul\u{0}@example.org");
    let body = serde_json::to_vec(&delivery).unwrap();
    let signature = webhook::sign(KEY.as_bytes(), now, &body);
    let status = post_delivery(&app, &body, Some(&signature)).await;
    assert!(status.is_client_error() || status.is_success(), "{status}");
    assert_eq!(app.customer_total().await, 1);
}
