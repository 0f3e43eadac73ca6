//! The admin pages as HTML (the browser tests drive them for real): access,
//! language, the panel's state, markup shown as text, the CSV export.

use serde_json::Value;

use crate::helpers::{AppOptions, page, spawn_app};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn pages_send_visitors_without_a_session_to_the_login() {
    let app = spawn_app(AppOptions::default()).await;
    for path in [
        "/",
        "/admin/customer_search",
        "/admin/scans",
        "/admin/scans/scan_0123456789ab",
        "/admin/customers.csv",
    ] {
        let response = no_redirects().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers()["location"].to_str().unwrap();
        let back: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        match path {
            "/" => assert_eq!(location, "/admin/customer_search"),
            _ => assert_eq!(location, format!("/login?next={back}"), "{path}"),
        }
    }
}

/// The login form posted by a client that follows no redirect.
async fn post_login(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    client
        .post(app.url("/login"))
        .header("Accept-Language", "en")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The session cookie a login set, as a `Cookie` header.
fn session_of(response: &reqwest::Response) -> String {
    let set = response.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_ended_session_is_said_and_the_login_returns_to_the_page_the_admin_was_on() {
    let app = spawn_app(AppOptions::default()).await;
    let client = no_redirects();
    let password = crate::helpers::PASSWORD;
    let in_ = post_login(
        &app,
        &client,
        &[("username", "admin"), ("password", password)],
    )
    .await;
    assert_eq!(in_.status(), 303);
    let cookie = session_of(&in_);
    // The session ends (as after CALSCAN_SESSION_IDLE_MIN) while the browser
    // keeps its cookie.
    let path = "/admin/scans?x=1";
    sqlx_end_sessions(&app).await;
    let response = client
        .get(app.url(path))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/login?next=%2Fadmin%2Fscans%3Fx%3D1&expired=1");

    let html = client
        .get(app.url(&location))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Your session has ended"), "{html}");
    assert!(
        html.contains(r#"name="next" value="/admin/scans?x=1""#),
        "{html}"
    );

    // A wrong password keeps the user name and where to go.
    let form = |password| {
        [
            ("username", "admin"),
            ("password", password),
            ("next", path),
        ]
    };
    let wrong = post_login(&app, &client, &form("wrong")).await;
    assert_eq!(wrong.status(), 401);
    let html = wrong.text().await.unwrap();
    assert!(
        html.contains(r#"value="admin""#),
        "the user name is gone: {html}"
    );
    assert!(
        html.contains(r#"name="next" value="/admin/scans?x=1""#),
        "{html}"
    );

    let back = post_login(&app, &client, &form(password)).await;
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], path);
}

#[tokio::test]
async fn a_login_never_sends_the_admin_to_another_site() {
    let app = spawn_app(AppOptions::default()).await;
    for next in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "evil",
        "/login?next=/admin",
    ] {
        let client = no_redirects();
        let form = [
            ("username", "admin"),
            ("password", crate::helpers::PASSWORD),
            ("next", next),
        ];
        let response = post_login(&app, &client, &form).await;
        assert_eq!(response.status(), 303, "{next}");
        assert_eq!(
            response.headers()["location"],
            "/admin/customer_search",
            "{next}"
        );
    }
}

/// Ends every session in the database, as the idle limit would.
async fn sqlx_end_sessions(app: &crate::helpers::TestApp) {
    crate::helpers::exec(&app.database_url, "DELETE FROM sessions").await;
}

#[tokio::test]
async fn the_customer_page_speaks_the_browsers_language_and_shows_an_idle_panel() {
    let app = spawn_app(AppOptions::default()).await;
    let (status, german) = page(&app, "/admin/customer_search", "de-DE,de;q=0.9").await;
    assert_eq!(status, 200);
    assert!(german.contains("<html lang=\"de\""));
    assert!(german.contains("Kundensuche") && german.contains("Calendly Scan starten"));
    // The button's icon is drawn, not an emoji a machine may lack a font for.
    assert!(german.contains("<svg class=\"icon\" aria-hidden=\"true\""));
    assert!(!german.contains("📡"));
    assert!(german.contains("data-scan-state=\"idle\""));
    assert!(german.contains("role=\"progressbar\"") && german.contains("aria-valuenow=\"0\""));
    assert!(german.contains("role=\"status\""));
    // The scan comes first, with a skip link to it; the empty list guides.
    let panel = german.find("id=\"scan-panel\"").unwrap();
    let list = german.find("id=\"customer-rows\"").unwrap();
    assert!(panel < list, "the scan panel comes after the customer list");
    assert!(
        german.contains("<a class=\"skip\" href=\"#scan-panel\">Zum Calendly-Scan springen</a>")
    );
    assert!(german.contains("Noch keine Kunden – starte oben einen Calendly-Scan."));
    assert!(german.contains("Noch kein Scan – der erste liest alle Events der Organisation."));
    assert!(
        german.contains("id=\"scan-log-box\" role=\"log\" tabindex=\"0\" hidden"),
        "an empty log is hidden"
    );
    // Calendly is set up here: no banner.
    assert!(!german.contains("id=\"scan-config\""));
    let (_, english) = page(&app, "/admin/customer_search", "en-US,en;q=0.8").await;
    assert!(english.contains("<html lang=\"en\"") && english.contains("Customer search"));
    // Neither named: CALSCAN_LANG (de here).
    let (_, fallback) = page(&app, "/admin/customer_search", "fr").await;
    assert!(fallback.contains("Kundensuche"));
}

#[tokio::test]
async fn after_a_scan_the_pages_show_its_result_and_markup_only_as_text() {
    let app = spawn_app(AppOptions {
        tweak_sim: Box::new(|c| c.first_invitee_name = Some("<img src=x onerror=alert(1)>".into())),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    let expected = app.sim.expected_emails().len();

    let (_, html) = page(&app, "/admin/customer_search", "de").await;
    assert!(html.contains("data-scan-state=\"completed\""));
    assert!(html.contains(&format!("<span id=\"customer-total\">{expected}</span>")));
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the name is shown escaped"
    );
    assert!(!html.contains("<img src=x"), "raw markup reached the page");
    assert!(html.contains("✅ 60 Events von Calendly geladen"));

    let (status, history) = page(&app, "/admin/scans", "en").await;
    assert_eq!(status, 200);
    assert!(history.contains(&format!("/admin/scans/{scan_id}")) && history.contains("completed"));
    // The first scan had no completed scan before it; the history says
    // which kind each was, and where the metrics are.
    assert!(history.contains("<td>incremental</td>"), "{history}");
    assert!(history.contains(r#"<a href="/metrics">/metrics</a>"#));
    let (status, detail) = page(&app, &format!("/admin/scans/{scan_id}"), "en").await;
    assert_eq!(status, 200);
    assert!(
        detail.contains("🎉 Scan completed"),
        "the full log, in the reader's language"
    );
    let (status, missing) = page(&app, "/admin/scans/scan_0123456789ab", "en").await;
    assert_eq!(status, 404);
    assert!(missing.contains("Page not found"));
}

#[tokio::test]
async fn the_csv_export_has_every_customer_and_defuses_formulas() {
    let app = spawn_app(AppOptions {
        tweak_sim: Box::new(|c| c.first_invitee_name = Some("=HYPERLINK(\"http://x\")".into())),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    let response = app.get("/admin/customers.csv").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = response.bytes().await.unwrap();
    assert!(
        body.starts_with(b"\xEF\xBB\xBFemail,name,"),
        "Excel needs the BOM"
    );
    let mut reader = csv::Reader::from_reader(&body[..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), app.sim.expected_emails().len());
    let emails: std::collections::BTreeSet<String> = rows.iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(emails, app.sim.expected_emails());
    assert!(
        rows.iter().any(|r| &r[1] == "'=HYPERLINK(\"http://x\")"),
        "a formula was not defused"
    );
}

#[tokio::test]
async fn unknown_pages_get_the_error_page_and_unknown_api_routes_json() {
    let app = spawn_app(AppOptions::default()).await;
    let (status, html) = page(&app, "/admin/nothing-here", "de").await;
    assert_eq!(status, 404);
    assert!(html.contains("Seite nicht gefunden"));
    let api = app.get("/api/nothing-here").await;
    assert_eq!(api.status(), 404);
    assert!(api.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn the_csv_export_takes_the_search_and_a_semicolon_for_german_excel() {
    let app = spawn_app(AppOptions::default()).await;
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    let email = app.sim.expected_emails().into_iter().next().unwrap();
    let (_, html) = page(&app, &format!("/admin/customer_search?q={email}"), "de").await;
    let q: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    let link = format!("/admin/customers.csv?q={q}&amp;sep=semicolon");
    assert!(html.contains(&link), "no link {link} in the page");

    let body = app
        .get(&format!("/admin/customers.csv?q={q}&sep=semicolon"))
        .await
        .bytes()
        .await
        .unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&body[..]);
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "email",
            "name",
            "bookings",
            "first_booking_at",
            "last_booking_at",
            "created_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let found = app.get_json(&format!("/api/customers?q={q}")).await;
    assert_eq!(
        rows.len() as i64,
        found["total"].as_i64().unwrap(),
        "what the search finds"
    );
    assert!(
        rows.len() < app.sim.expected_emails().len(),
        "the search narrowed nothing"
    );
    assert!(rows.iter().any(|r| r[0] == email));

    let response = app.get("/admin/customers.csv?sep=tab").await;
    assert_eq!(response.status(), 400);
}
