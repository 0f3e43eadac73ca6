//! Who gets in, and what bad input gets back: login, sessions, the API
//! token, cross-site refusals, throttling, ids, the original PHP routes,
//! health.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{API_TOKEN, AppOptions, PASSWORD, TestApp, spawn_app};

const SCAN_ID: &str = "scan_0123456789abcdef";

/// Every API route, with a method and a well-formed scan id.
fn api_routes() -> Vec<(reqwest::Method, String)> {
    use reqwest::Method;
    vec![
        (Method::POST, "/api/scans".into()),
        (Method::GET, "/api/scans".into()),
        (Method::GET, format!("/api/scans/{SCAN_ID}")),
        (Method::GET, format!("/api/scans/{SCAN_ID}/events")),
        (Method::POST, format!("/api/scans/{SCAN_ID}/cancel")),
        (Method::POST, format!("/api/scans/{SCAN_ID}/resume")),
        (Method::GET, "/api/customers".into()),
        (
            Method::POST,
            "/admin/calendly_scan_api.php?action=start".into(),
        ),
        (
            Method::GET,
            format!("/admin/calendly_scan_api.php?action=status&scan_id={SCAN_ID}"),
        ),
        (
            Method::GET,
            format!("/admin/calendly_scan_api?action=status&scan_id={SCAN_ID}"),
        ),
    ]
}

pub async fn login(app: &TestApp, password: &str) -> reqwest::Response {
    login_as(app, "admin", password).await
}

async fn login_as(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    post_login(
        &app.base,
        reqwest::Client::builder(),
        &[],
        username,
        password,
    )
    .await
}

/// The login form posted to `base` by the client `client` builds (never
/// following the redirect), with `headers`.
async fn post_login(
    base: &str,
    client: reqwest::ClientBuilder,
    headers: &[(&str, &str)],
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = client
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("username", username)
                .append_pair("password", password)
                .finish(),
        )
        .send()
        .await
        .unwrap()
}

/// The status of `GET /api/scans` with the session `cookie`.
async fn with_session(app: &TestApp, cookie: &str) -> reqwest::StatusCode {
    app.http
        .get(app.url("/api/scans"))
        .header("Cookie", cookie.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let value = header.split(';').next().unwrap().to_owned();
    (value, header)
}

#[tokio::test]
async fn every_api_route_answers_401_json_without_a_session_or_token() {
    let app = spawn_app(AppOptions::default()).await;
    for (method, path) in api_routes() {
        for token in [None, Some("wrong-token")] {
            let mut request = app.http.request(method.clone(), app.url(&path));
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert!(body["error"].is_string(), "{method} {path}: {body}");
        }
    }
    assert_eq!(
        app.state.store.scans(10).await.unwrap().len(),
        0,
        "nothing was started"
    );
}

#[tokio::test]
async fn bad_ids_and_cursors_get_400_and_unknown_ids_404_all_as_json() {
    let app = spawn_app(AppOptions::default()).await;
    for path in [
        "/api/scans/nope".to_owned(),
        "/api/scans/scan_SHOUTING1".to_owned(),
        "/api/scans/scan_abc".to_owned(),
        format!("/api/scans/scan_{}", "a".repeat(41)),
        format!("/api/scans/{SCAN_ID}?after=-1"),
        format!("/api/scans/{SCAN_ID}?after=ten"),
        "/admin/calendly_scan_api.php?action=status".to_owned(),
        "/admin/calendly_scan_api.php?action=status&scan_id=x".to_owned(),
        "/admin/calendly_scan_api.php?action=dance".to_owned(),
        "/api/customers?page=0".to_owned(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}");
    }
    let bad_cursor = app
        .http
        .get(app.url(&format!("/api/scans/{SCAN_ID}/events")))
        .bearer_auth(API_TOKEN)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_cursor.status(), 400);
    for path in [
        format!("/api/scans/{SCAN_ID}"),
        format!("/api/scans/{SCAN_ID}/events"),
        format!("/admin/calendly_scan_api.php?action=status&scan_id={SCAN_ID}"),
    ] {
        assert_eq!(app.get(&path).await.status(), 404, "{path}");
    }
    for path in [
        format!("/api/scans/{SCAN_ID}/cancel"),
        format!("/api/scans/{SCAN_ID}/resume"),
    ] {
        assert_eq!(app.post(&path).await.status(), 404, "{path}");
    }
    let bad_body = app
        .http
        .post(app.url("/api/scans"))
        .bearer_auth(API_TOKEN)
        .body("{\"mode\": \"sideways\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), 400);
    assert_eq!(app.get("/no/such/route").await.status(), 404);
    let undecodable = app.get("/api/scans/%FF%FE").await;
    assert_eq!(undecodable.status(), 400);
    assert!(undecodable.json::<Value>().await.unwrap()["error"].is_string());
    let empty_login = app.http.post(app.url("/login")).send().await.unwrap();
    assert_eq!(empty_login.status(), 400);
    assert_eq!(app.state.store.scans(10).await.unwrap().len(), 0);
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_with_a_new_id_and_logout_ends_it() {
    let app = spawn_app(AppOptions::default()).await;
    let wrong = login(&app, "guess").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let ok = login(&app, PASSWORD).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/admin/customer_search");
    let (cookie, header) = session_cookie(&ok);
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    let with_cookie = |cookie: &str| {
        app.http
            .get(app.url("/api/scans"))
            .header("Cookie", cookie.to_owned())
            .send()
    };
    assert_eq!(with_cookie(&cookie).await.unwrap().status(), 200);

    // A second login gets another id.
    let (second, _) = session_cookie(&login(&app, PASSWORD).await);
    assert_ne!(cookie, second);

    // Logout ends the session on the server: the cookie is worthless after.
    let out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/logout"))
        .header("Cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(with_cookie(&cookie).await.unwrap().status(), 401);
    assert_eq!(with_cookie(&second).await.unwrap().status(), 200);
}

#[tokio::test]
async fn behind_tls_the_cookie_is_secure_and_an_idle_session_ends_on_the_server() {
    let idle = Duration::from_secs(1);
    let app = spawn_app(AppOptions {
        cookie_secure: true,
        session_idle: idle,
        ..AppOptions::default()
    })
    .await;
    let (cookie, header) = session_cookie(&login(&app, PASSWORD).await);
    assert!(header.contains("Secure"), "{header}");
    let status = || with_session(&app, &cookie);
    assert_eq!(status().await, 200);
    // What is awaited here is the passing of the idle time itself.
    tokio::time::sleep(idle + Duration::from_millis(200)).await;
    assert_eq!(status().await, 401);
}

#[tokio::test]
async fn logins_are_throttled_after_five_failures_per_client() {
    let app = spawn_app(AppOptions::default()).await;
    for _ in 0..5 {
        assert_eq!(login(&app, "wrong").await.status(), 401);
    }
    assert_eq!(login(&app, "wrong").await.status(), 429);
    // Even the right password waits out the window.
    assert_eq!(login(&app, PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_answer_alike_in_similar_time() {
    let app = spawn_app(AppOptions {
        login_attempts: 1_000,
        ..AppOptions::default()
    })
    .await;
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    let mut answers = std::collections::BTreeSet::new();
    // Interleaved, so a busy moment of the machine hits both alike.
    for _ in 0..9 {
        for (user, times) in [("nobody", &mut unknown), ("admin", &mut wrong)] {
            let t = std::time::Instant::now();
            let response = login_as(&app, user, "not the password").await;
            times.push(t.elapsed());
            let status = response.status();
            // The form gives back the name the visitor typed (their own
            // input); apart from that the answers must not differ.
            let body = response
                .text()
                .await
                .unwrap()
                .replace(&format!("value=\"{user}\""), "value=\"…\"");
            answers.insert((status.as_u16(), body));
        }
    }
    // One answer for both: nothing tells a valid user name.
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers.first().unwrap().0, 401);
    // Both pay for a full password hash check: medians within 2× (the hash
    // takes tens of milliseconds; an unchecked user would take microseconds).
    let median = |v: &mut Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (unknown, wrong) = (median(&mut unknown), median(&mut wrong));
    assert!(
        unknown * 2 > wrong && wrong * 2 > unknown,
        "unknown user {unknown:?}, wrong password {wrong:?}"
    );
}

#[tokio::test]
async fn state_changing_requests_from_another_origin_are_refused_and_change_nothing() {
    let app = spawn_app(AppOptions::default()).await;
    let refused = [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ];
    for (name, value) in refused {
        for path in [
            "/api/scans",
            "/admin/calendly_scan_api.php?action=start",
            "/logout",
            "/login",
        ] {
            let response = app
                .http
                .post(app.url(path))
                .bearer_auth(API_TOKEN)
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{name}: {value} on {path}");
        }
    }
    assert_eq!(app.state.store.scans(10).await.unwrap().len(), 0);

    // The guard stands in front of the router, not on a list of routes: every
    // state-changing method on every path, a route added later included, is
    // refused before routing.
    let mut paths: Vec<String> = api_routes().into_iter().map(|(_, path)| path).collect();
    paths.extend(
        [
            "/login",
            "/logout",
            "/admin/scans",
            "/api/a-route-added-later",
        ]
        .map(String::from),
    );
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        for path in &paths {
            let response = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(API_TOKEN)
                .header("Origin", "http://evil.example")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{method} {path}");
        }
    }
    assert_eq!(app.state.store.scans(10).await.unwrap().len(), 0);

    // The page's own origin passes.
    let origin = app.base.clone();
    let same = app
        .http
        .post(app.url("/api/scans"))
        .bearer_auth(API_TOKEN)
        .header("Origin", origin)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 202);
}

#[tokio::test]
async fn the_original_php_api_starts_and_reports_with_the_original_json() {
    let app = spawn_app(AppOptions::default()).await;
    let started = app.post("/admin/calendly_scan_api.php?action=start").await;
    assert_eq!(started.status(), 202);
    let body: Value = started.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Scan gestartet");
    let scan_id = body["scan_id"].as_str().unwrap().to_owned();
    app.follow(&scan_id).await;
    for path in ["calendly_scan_api.php", "calendly_scan_api"] {
        let status = app
            .get_json(&format!("/admin/{path}?action=status&scan_id={scan_id}"))
            .await;
        for key in crate::helpers::ORIGINAL_STATUS_KEYS {
            assert!(status.get(key).is_some(), "{key} missing");
        }
        assert_eq!(status["status"], "completed");
        assert_eq!(status["progress"], 100);
    }
}

#[tokio::test]
async fn health_answers_and_readiness_includes_the_database() {
    let app = spawn_app(AppOptions::default()).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], crate::helpers::backend().name());
}

#[tokio::test]
async fn customers_are_searchable_by_email_and_name() {
    let app = spawn_app(AppOptions {
        tweak_sim: Box::new(|c| c.first_invitee_name = Some("Özlem Çelik".into())),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    app.follow(&scan_id).await;
    let org = app.sim.org();
    let invitee = &org.events[0].invitees[0];
    let email = invitee.email.trim().to_lowercase();
    let by_email = app
        .get_json(&format!("/api/customers?q={}", email.to_uppercase()))
        .await;
    assert_eq!(by_email["total"], 1);
    assert_eq!(by_email["customers"][0]["email"], email.as_str());
    let last_name = invitee.name.split(' ').next_back().unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(last_name.as_bytes()).collect();
    let by_name = app.get_json(&format!("/api/customers?q={encoded}")).await;
    assert!(by_name["total"].as_i64().unwrap() >= 1);
    // Case is folded beyond ASCII.
    for q in ["%C3%B6zlem%20%C3%A7elik", "%C3%96ZLEM%20%C3%87ELIK"] {
        let found = app.get_json(&format!("/api/customers?q={q}")).await;
        assert_eq!(found["total"], 1, "{q}");
        assert_eq!(found["customers"][0]["name"], "Özlem Çelik");
    }
    let nobody = app.get_json("/api/customers?q=%25_%25").await;
    assert_eq!(nobody["total"], 0, "LIKE wildcards are taken literally");
}

/// A login as `admin` with `password`, sent from `from` (any 127/8
/// address is this machine's).
async fn login_from(base: &str, from: std::net::IpAddr, password: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().local_address(from);
    post_login(base, client, &[], "admin", password).await
}

/// How many of `responses` have each status.
fn tally(responses: &[reqwest::Response]) -> std::collections::BTreeMap<u16, usize> {
    let mut tally = std::collections::BTreeMap::new();
    for response in responses {
        *tally.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    tally
}

#[tokio::test]
async fn parallel_wrong_logins_of_one_client_are_checked_no_more_often_than_the_limit() {
    let app = spawn_app(AppOptions::default()).await;
    let guesses = (0..24).map(|i| login(&app, if i % 2 == 0 { "guess" } else { "other" }));
    let answers = futures::future::join_all(guesses).await;
    // Five checked and wrong; the other 19 refused without a check.
    assert_eq!(
        tally(&answers),
        std::collections::BTreeMap::from([(401, 5), (429, 19)])
    );
    let refused = answers.iter().find(|a| a.status() == 429).unwrap();
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((14 * 60..=15 * 60).contains(&wait), "{wait}");
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn two_hundred_parallel_failed_logins_from_as_many_addresses_leave_memory_as_it_was() {
    let sim = crate::helpers::simulator(0, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let database = crate::helpers::fresh_database(&dir).await;
    let process = crate::helpers::Process::spawn(&database.url, sim.base_url(), 15).await;
    let pid = process.child.id().unwrap();
    let address =
        |i: u32| std::net::IpAddr::from([127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8]);
    // Warmed up by one check.
    assert_eq!(
        login_from(&process.base, address(999), "no").await.status(),
        401
    );
    let before = rss(pid);
    let attempts = (0..200).map(|i| login_from(&process.base, address(i), "wrong"));
    let answers = futures::future::join_all(attempts).await;
    let after = rss(pid);
    let counts = tally(&answers);
    // Each was checked and refused, or told to come back (503, Retry-After).
    assert_eq!(
        counts.get(&401).unwrap_or(&0) + counts.get(&503).unwrap_or(&0),
        200,
        "{counts:?}"
    );
    assert!(counts.get(&401).is_some_and(|n| *n >= 2), "{counts:?}");
    if let Some(busy) = answers.iter().find(|a| a.status() == 503) {
        assert_eq!(busy.headers()["retry-after"], "2");
    }
    let grown = after.saturating_sub(before);
    eprintln!(
        "RSS {} MiB before, {} MiB after 200 parallel failed logins ({counts:?})",
        before >> 20,
        after >> 20
    );
    assert!(grown < 60 << 20, "grew by {} MiB", grown >> 20);
    // And the admin gets in right after.
    assert_eq!(
        login_from(&process.base, address(1000), PASSWORD)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_private_data_is_never_cached() {
    let app = spawn_app(AppOptions::default()).await;
    let (cookie, _) = session_cookie(&login(&app, PASSWORD).await);
    let scan_id = app.start_scan().await;
    let get = |path: String| {
        app.http
            .get(app.url(&path))
            .header("Cookie", cookie.clone())
            .send()
    };
    let cases = [
        ("/login".to_owned(), Some("no-store")),
        ("/admin/customer_search".to_owned(), Some("no-store")),
        ("/admin/scans".to_owned(), Some("no-store")),
        ("/admin/customers.csv".to_owned(), Some("no-store")),
        ("/api/scans".to_owned(), Some("no-store")),
        ("/api/customers".to_owned(), Some("no-store")),
        (format!("/api/scans/{scan_id}"), Some("no-store")),
        ("/nowhere".to_owned(), Some("no-store")),
        // The assets keep theirs; the event stream is never cached.
        ("/assets/app.css".to_owned(), Some("public, max-age=300")),
        ("/assets/scan.js".to_owned(), Some("public, max-age=300")),
        (format!("/api/scans/{scan_id}/events"), Some("no-cache")),
    ];
    for (path, cache) in cases {
        let response = get(path.clone()).await.unwrap();
        let headers = response.headers();
        assert_eq!(
            headers["content-security-policy"], "default-src 'self'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(
            headers.get("cache-control").and_then(|v| v.to_str().ok()),
            cache,
            "{path}"
        );
    }
    app.follow(&scan_id).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_as_json_on_the_api_and_the_webhook_route() {
    let app = spawn_app(AppOptions {
        webhook_key: Some("a-key"),
        ..AppOptions::default()
    })
    .await;
    let big = vec![b' '; 3 << 20];
    for path in ["/api/scans", "/webhooks/calendly"] {
        let response = app
            .http
            .post(app.url(path))
            .bearer_auth(API_TOKEN)
            .header("Content-Type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    // Nothing started.
    assert_eq!(
        app.get_json("/api/scans").await["scans"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed_and_health_still_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(AppOptions::default()).await;
    let scan_id = app.start_scan().await;
    // An event stream open throughout: it is not a slow client.
    let stream = app.stream(&scan_id, None).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..1_010 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Slowloris: a header a few bytes at a time, never finished.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    let started = std::time::Instant::now();
    let trickle = async {
        for tcp in &mut slow {
            // Ends with an error once the server closed it; either is fine.
            let _ = tcp.write_all(b"X-A: b\r\n").await;
        }
    };
    trickle.await;
    // Each is closed by the server once the header-read timeout passes.
    let closed = |mut tcp: tokio::net::TcpStream| async move {
        let mut byte = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut byte)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => continue, // a 408 before the close
                Err(_) => return false,
            }
        }
    };
    let all = idle.into_iter().chain(slow).map(closed);
    let results = futures::future::join_all(all).await;
    assert!(results.iter().all(|c| *c), "some connections stayed open");
    let took = started.elapsed();
    assert!(
        took >= calscan::app::HEADER_READ_TIMEOUT - Duration::from_secs(1),
        "closed after {took:?}"
    );
    // The stream was not cut: it goes on to its end.
    let events = stream.until_done().await;
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_search_too_long_or_with_a_nul_is_a_400_saying_so_on_every_backend() {
    let app = spawn_app(AppOptions::default()).await;
    let long = "a".repeat(50_001);
    for (q, says) in [
        (long.as_str(), "at most 200 characters"),
        ("ab\u{0}cd", "control characters"),
    ] {
        let path = format!(
            "/api/customers?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", q)
                .finish()
        );
        let response = app.get(&path).await;
        assert_eq!(response.status(), 400, "{says}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
    // 200 characters is still a search.
    let fine = format!("/api/customers?q={}", "a".repeat(200));
    assert_eq!(app.get(&fine).await.status(), 200);
}

#[tokio::test]
async fn a_used_session_outlives_its_idle_time_but_not_its_absolute_end() {
    let idle = Duration::from_secs(2);
    let max = Duration::from_secs(5);
    let app = spawn_app(AppOptions {
        session_idle: idle,
        session_max: max,
        ..AppOptions::default()
    })
    .await;
    let (cookie, _) = session_cookie(&login(&app, PASSWORD).await);
    let logged_in = std::time::Instant::now();
    let status = || with_session(&app, &cookie);
    // Used every 400 ms, it lives past its idle time (the expiry slides
    // exactly, not in minute steps)…
    while logged_in.elapsed() < max - Duration::from_millis(600) {
        assert_eq!(status().await, 200, "after {:?}", logged_in.elapsed());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // …and ends at its absolute end however much it is used.
    tokio::time::sleep((max + Duration::from_millis(200)).saturating_sub(logged_in.elapsed()))
        .await;
    assert_eq!(status().await, 401);
}

/// A login as `admin` with `password` through a proxy that says the client
/// is `forwarded` (an `X-Forwarded-For` value).
async fn login_forwarded(app: &TestApp, forwarded: &str, password: &str) -> reqwest::Response {
    let headers = [("X-Forwarded-For", forwarded)];
    post_login(
        &app.base,
        reqwest::Client::builder(),
        &headers,
        "admin",
        password,
    )
    .await
}

#[tokio::test]
async fn forwarding_headers_name_the_client_only_behind_a_trusted_proxy() {
    // Not trusted: the header is anyone's to forge, so the peer counts.
    let open = spawn_app(AppOptions::default()).await;
    for i in 0..5 {
        let status = login_forwarded(&open, &format!("203.0.113.{i}"), "wrong")
            .await
            .status();
        assert_eq!(status, 401);
    }
    assert_eq!(
        login_forwarded(&open, "203.0.113.99", "wrong")
            .await
            .status(),
        429
    );

    // Behind a trusted proxy (this machine): each client counts alone, so
    // one client's failures do not lock out the admin.
    let proxied = spawn_app(AppOptions {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..AppOptions::default()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            login_forwarded(&proxied, "203.0.113.7", "wrong")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        login_forwarded(&proxied, "203.0.113.7", "wrong")
            .await
            .status(),
        429
    );
    // A forged entry on the left is not read: the nearest untrusted one is the client.
    assert_eq!(
        login_forwarded(&proxied, "198.51.100.1, 203.0.113.7", "wrong")
            .await
            .status(),
        429
    );
    assert_eq!(
        login_forwarded(&proxied, "203.0.113.7, 198.51.100.1", PASSWORD)
            .await
            .status(),
        303
    );
    // `Forwarded` works as well.
    let headers = [("Forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
    let forwarded = post_login(
        &proxied.base,
        reqwest::Client::builder(),
        &headers,
        "admin",
        PASSWORD,
    )
    .await;
    assert_eq!(forwarded.status(), 303);
}

#[tokio::test]
async fn guesses_from_many_addresses_slow_the_account_down_without_locking_the_admin_out() {
    let app = spawn_app(AppOptions {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..AppOptions::default()
    })
    .await;
    // Ten failures of the account are free, from ten addresses.
    for i in 0..10 {
        let status = login_forwarded(&app, &format!("198.51.100.{i}"), "wrong")
            .await
            .status();
        assert_eq!(status, 401);
    }
    // The next check waits a second, the one after two.
    let started = std::time::Instant::now();
    assert_eq!(
        login_forwarded(&app, "198.51.100.50", "wrong")
            .await
            .status(),
        401
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The admin still gets in, after the account's current delay (2 s).
    let started = std::time::Instant::now();
    assert_eq!(
        login_forwarded(&app, "192.0.2.1", PASSWORD).await.status(),
        303
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_body_that_stalls_is_cut_off_with_408_and_an_event_stream_is_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(AppOptions {
        // A scan that runs far longer than the request timeout.
        tweak_sim: Box::new(|c| c.latency = Duration::from_secs(2)),
        ..AppOptions::default()
    })
    .await;
    let scan_id = app.start_scan().await;
    let mut stream = app.stream(&scan_id, None).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Its head complete, its body promised and never sent in full.
    tcp.write_all(
        b"POST /webhooks/calendly HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"event\":",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.ends_with(r#"{"error":"request timeout"}"#),
        "{answer}"
    );
    assert!(
        took >= calscan::app::REQUEST_TIMEOUT - Duration::from_secs(1),
        "cut off after {took:?}"
    );
    // The stream, open longer than that, still carries the scan to its end.
    assert_eq!(
        app.post(&format!("/api/scans/{scan_id}/cancel"))
            .await
            .status(),
        202
    );
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    let last = last.unwrap();
    assert_eq!(last.event, "done");
    assert_eq!(last.data["status"], "cancelled");
}
