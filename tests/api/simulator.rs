//! The simulator speaks Calendly API v2 as Calendly serves it: shapes,
//! filters, pagination, errors, rate-limit headers, signatures.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use calscan::calendly::webhook;
use serde_json::{Value, json};

use crate::helpers::{get, get_as, simulator};

/// Calendly writes every timestamp with six fractional digits and `Z`.
fn is_calendly_timestamp(value: &Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    s.len() == 27
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn events_path(sim: &crate::helpers::TestSim, extra: &str) -> String {
    let org =
        url::form_urlencoded::byte_serialize(sim.organization_uri().as_bytes()).collect::<String>();
    format!("/scheduled_events?organization={org}{extra}")
}

#[tokio::test]
async fn users_me_names_the_caller_and_the_organization_on_the_simulators_base() {
    let sim = simulator(3, |_| {}).await;
    let response = get(&sim, "/users/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(response.headers().contains_key(header), "{header} missing");
    }
    let body: Value = response.json().await.unwrap();
    let user = &body["resource"];
    assert_eq!(user["resource_type"], "User");
    assert_eq!(user["current_organization"], sim.organization_uri());
    assert!(
        sim.organization_uri()
            .starts_with(&format!("{}/organizations/", sim.base_url()))
    );
    assert!(
        user["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/users/", sim.base_url()))
    );
    for key in [
        "name",
        "slug",
        "email",
        "scheduling_url",
        "timezone",
        "avatar_url",
        "created_at",
        "updated_at",
    ] {
        assert!(user.get(key).is_some(), "{key} missing");
    }
}

#[tokio::test]
async fn a_missing_or_unknown_token_gets_calendlys_401_body() {
    let sim = simulator(3, |_| {}).await;
    let anonymous = reqwest::get(format!("{}/users/me", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(
        body,
        json!({"title": "Unauthenticated", "message": "The access token is invalid"})
    );
    let wrong = get_as(&sim, "/users/me", "nope").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sim.stats().requests,
        0,
        "unauthenticated requests are not counted"
    );
}

#[tokio::test]
async fn event_pages_carry_all_five_pagination_keys_and_next_page_can_be_followed_verbatim() {
    let sim = simulator(45, |_| {}).await;
    let mut url = format!("{}{}", sim.base_url(), events_path(&sim, "&count=20"));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let body: Value = get(&sim, &url).await.json().await.unwrap();
        pages += 1;
        let p = &body["pagination"];
        let keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "count",
                "next_page",
                "next_page_token",
                "previous_page",
                "previous_page_token"
            ]
        );
        assert_eq!(
            p["count"].as_u64().unwrap() as usize,
            body["collection"].as_array().unwrap().len()
        );
        assert_eq!(p["previous_page"].is_null(), pages == 1);
        for event in body["collection"].as_array().unwrap() {
            assert!(
                is_calendly_timestamp(&event["start_time"]),
                "{}",
                event["start_time"]
            );
            seen.push(event["uri"].as_str().unwrap().to_owned());
        }
        match p["next_page"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!(
                        "{}/scheduled_events?count=20&organization=",
                        sim.base_url()
                    )),
                    "{next}"
                );
                assert!(!next.contains("sort="), "the sort travels in the token");
                assert_eq!(
                    p["next_page_token"].as_str().map(|t| next.ends_with(t)),
                    Some(true)
                );
                url = next.to_owned();
            }
            None => {
                assert!(p["next_page_token"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 45);
}

#[tokio::test]
async fn a_page_token_works_only_with_the_filters_it_was_issued_for() {
    let sim = simulator(30, |_| {}).await;
    let first: Value = get(&sim, &events_path(&sim, "&count=10"))
        .await
        .json()
        .await
        .unwrap();
    let token = first["pagination"]["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Rebuilt with the same filters: accepted.
    let same = get(
        &sim,
        &events_path(&sim, &format!("&count=10&page_token={token}")),
    )
    .await;
    assert_eq!(same.status(), StatusCode::OK);

    // Other filters, or garbage: Calendly's 400 naming page_token.
    for extra in [
        format!("&count=20&page_token={token}"),
        "&count=10&page_token=garbage".to_owned(),
    ] {
        let refused = get(&sim, &events_path(&sim, &extra)).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["title"], "Invalid Argument");
        assert_eq!(body["details"][0]["parameter"], "page_token");
    }
}

#[tokio::test(start_paused = true)]
async fn a_page_token_expires_after_its_lifetime() {
    let sim = simulator(30, |c| c.page_token_ttl = Duration::from_secs(600)).await;
    let first: Value = get(&sim, &events_path(&sim, "&count=10"))
        .await
        .json()
        .await
        .unwrap();
    let next = first["pagination"]["next_page"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(get(&sim, &next).await.status(), StatusCode::OK);
    tokio::time::advance(Duration::from_secs(2)).await;
    let stale = get(&sim, &next).await;
    assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(
        body["details"][0],
        json!({"parameter": "page_token", "message": "is invalid"})
    );
}

#[tokio::test]
async fn bad_parameters_get_400_invalid_argument_naming_the_parameter() {
    let sim = simulator(3, |_| {}).await;
    let cases = [
        ("/scheduled_events?count=10".to_owned(), "organization"),
        (events_path(&sim, "&count=0"), "count"),
        (events_path(&sim, "&count=101"), "count"),
        (events_path(&sim, "&count=ten"), "count"),
        (events_path(&sim, "&sort=name:asc"), "sort"),
        (events_path(&sim, "&status=deleted"), "status"),
        (
            events_path(&sim, "&min_start_time=yesterday"),
            "min_start_time",
        ),
    ];
    for (path, parameter) in cases {
        let response = get(&sim, &path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["title"], "Invalid Argument", "{path}");
        assert_eq!(body["message"], "The supplied parameters are invalid.");
        assert_eq!(body["details"][0]["parameter"], parameter, "{path}");
    }
}

#[tokio::test]
async fn filters_by_status_time_window_and_invitee_email_match_the_data() {
    let sim = simulator(120, |_| {}).await;
    let org = sim.org();
    let count = |v: &Value| v["collection"].as_array().unwrap().len();

    let canceled: Value = get(&sim, &events_path(&sim, "&status=canceled&count=100"))
        .await
        .json()
        .await
        .unwrap();
    let want = org.events.iter().filter(|e| e.canceled).count();
    assert!(want > 0);
    assert_eq!(count(&canceled), want);
    for e in canceled["collection"].as_array().unwrap() {
        assert_eq!(e["status"], "canceled");
        assert!(e["cancellation"].is_object());
    }

    // Both bounds are inclusive.
    let at = org.events[10].start;
    let stamp = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let window: Value = get(
        &sim,
        &events_path(
            &sim,
            &format!("&min_start_time={stamp}&max_start_time={stamp}"),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        count(&window),
        org.events.iter().filter(|e| e.start == at).count()
    );

    let person = org.events[3].invitees[0].email.clone();
    let encoded: String =
        url::form_urlencoded::byte_serialize(person.trim().to_uppercase().as_bytes()).collect();
    let booked: Value = get(
        &sim,
        &events_path(&sim, &format!("&invitee_email={encoded}&count=100")),
    )
    .await
    .json()
    .await
    .unwrap();
    let want = org
        .events
        .iter()
        .filter(|e| {
            e.invitees
                .iter()
                .any(|i| i.email.trim().eq_ignore_ascii_case(person.trim()))
        })
        .count();
    assert_eq!(count(&booked), want);
}

#[tokio::test]
async fn invitees_have_calendlys_shape_and_unknown_events_get_404() {
    let sim = simulator(60, |_| {}).await;
    let org = sim.org();
    let rescheduled = org
        .events
        .iter()
        .find(|e| e.invitees.iter().any(|i| i.rescheduled))
        .unwrap();
    let body: Value = get(
        &sim,
        &format!("/scheduled_events/{}/invitees", rescheduled.uuid),
    )
    .await
    .json()
    .await
    .unwrap();
    let invitee = &body["collection"][0];
    for key in [
        "uri",
        "email",
        "name",
        "first_name",
        "last_name",
        "status",
        "questions_and_answers",
        "timezone",
        "event",
        "created_at",
        "updated_at",
        "tracking",
        "text_reminder_number",
        "rescheduled",
        "old_invitee",
        "new_invitee",
        "cancel_url",
        "reschedule_url",
        "routing_form_submission",
        "payment",
        "no_show",
        "reconfirmation",
    ] {
        assert!(invitee.get(key).is_some(), "invitee lacks {key}");
    }
    assert_eq!(invitee["status"], "canceled");
    assert_eq!(invitee["rescheduled"], true);
    let new_uri = invitee["new_invitee"].as_str().unwrap();
    let new: Value = get(&sim, new_uri).await.json().await.unwrap();
    assert_eq!(new["resource"]["old_invitee"], invitee["uri"]);
    assert_eq!(new["resource"]["status"], "active");

    let missing = get(
        &sim,
        "/scheduled_events/00000000-0000-4000-8000-000000000000/invitees",
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        body,
        json!({"title": "Resource Not Found", "message": "The server could not find the requested resource."})
    );
}

#[tokio::test]
async fn the_window_answers_429_past_the_limit_with_remaining_zero() {
    let sim = simulator(3, |c| {
        c.rate_limit = 3;
        c.rate_window = Duration::from_secs(60);
    })
    .await;
    for remaining in ["2", "1", "0"] {
        let ok = get(&sim, "/users/me").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["x-ratelimit-remaining"], remaining);
        assert_eq!(ok.headers()["x-ratelimit-limit"], "3");
    }
    let throttled = get(&sim, "/users/me").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["x-ratelimit-remaining"], "0");
    let reset: u64 = throttled.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    assert_eq!(sim.stats().rate_limited, 1);
    assert_eq!(sim.stats().max_in_window, 4);
}

#[tokio::test]
async fn a_member_who_is_not_an_admin_gets_calendlys_403_texts() {
    let sim = simulator(10, |c| c.member_token = Some("member".into())).await;
    let org_wide = get_as(&sim, &events_path(&sim, ""), "member").await;
    assert_eq!(org_wide.status(), StatusCode::FORBIDDEN);
    let body: Value = org_wide.json().await.unwrap();
    assert_eq!(
        body,
        json!({"title": "Permission Denied", "message": "You do not have permission to access this resource."})
    );

    let owner: Value = get(&sim, "/users/me").await.json().await.unwrap();
    let owner_uri: String =
        url::form_urlencoded::byte_serialize(owner["resource"]["uri"].as_str().unwrap().as_bytes())
            .collect();
    let other_user = get_as(
        &sim,
        &format!("/scheduled_events?user={owner_uri}"),
        "member",
    )
    .await;
    assert_eq!(other_user.status(), StatusCode::FORBIDDEN);
    let body: Value = other_user.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Please also specify organization when requesting events for a user within your organization."
    );

    // Their own events they may list.
    let me: Value = get_as(&sim, "/users/me", "member")
        .await
        .json()
        .await
        .unwrap();
    let me_uri: String =
        url::form_urlencoded::byte_serialize(me["resource"]["uri"].as_str().unwrap().as_bytes())
            .collect();
    let own = get_as(
        &sim,
        &format!("/scheduled_events?user={me_uri}&count=100"),
        "member",
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
}

#[tokio::test]
async fn signed_webhook_deliveries_verify_with_the_key_and_carry_the_invitee() {
    let key = b"whsec-test-key";
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let receiver = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let sim = simulator(5, |_| {}).await;
    assert_eq!(
        sim.deliver_webhook(&url, 0, 0, key).await.unwrap(),
        StatusCode::OK
    );
    let (headers, body) = rx.recv().await.unwrap();
    let signature = headers[webhook::SIGNATURE_HEADER].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        webhook::verify(key, signature, &body, now, webhook::DEFAULT_TOLERANCE),
        Ok(())
    );
    assert_eq!(
        webhook::verify(b"wrong", signature, &body, now, webhook::DEFAULT_TOLERANCE),
        Err(webhook::SignatureError::Mismatch)
    );

    let delivery: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(delivery["event"], "invitee.created");
    let invitee = &sim.org().events[0].invitees[0];
    assert_eq!(delivery["payload"]["email"], invitee.email.as_str());
    assert_eq!(
        delivery["payload"]["scheduled_event"]["uri"],
        delivery["payload"]["event"]
    );
    assert!(sim.signed_delivery(0, 999, key, now).is_none());
}

#[test]
fn calscan_simulate_prints_its_base_url_and_serves_the_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calscan"))
        .args([
            "simulate",
            "--bind",
            "127.0.0.1:0",
            "--token",
            "cli-token",
            "--events",
            "7",
            "--seed",
            "9",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base:?}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/users/me"))
            .bearer_auth("cli-token")
            .send()
            .await
            .map(|r| r.status())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status.unwrap(), StatusCode::OK);
}

/// A request with a JSON body to the simulator, as `token`.
async fn send_as(
    sim: &calscan::calendly::Simulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    token: &str,
) -> (StatusCode, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", sim.base_url())
    };
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /webhook_subscriptions` with `body`, as `token`.
async fn subscribe_as(
    sim: &calscan::calendly::Simulator,
    body: Value,
    token: &str,
) -> (StatusCode, Value) {
    send_as(
        sim,
        reqwest::Method::POST,
        "/webhook_subscriptions",
        Some(body),
        token,
    )
    .await
}

#[tokio::test]
async fn webhook_subscriptions_are_created_listed_page_by_page_read_and_deleted() {
    let sim = simulator(3, |_| {}).await;
    let org = sim.organization_uri();
    let me: Value = get(&sim, "/users/me").await.json().await.unwrap();
    let me = me["resource"]["uri"].as_str().unwrap().to_owned();
    let create = |url: &str| {
        json!({"url": url, "events": ["invitee.created", "invitee.canceled"],
               "organization": org, "scope": "organization", "signing_key": "k"})
    };
    let mut uris = Vec::new();
    for n in 0..3 {
        let (status, body) = subscribe_as(
            &sim,
            create(&format!("https://calscan.example.com/hook{n}")),
            "demo-token",
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let hook = &body["resource"];
        for key in [
            "uri",
            "callback_url",
            "created_at",
            "updated_at",
            "retry_started_at",
            "state",
            "events",
            "scope",
            "organization",
            "user",
            "creator",
        ] {
            assert!(hook.get(key).is_some(), "{key} missing in {hook}");
        }
        assert_eq!(hook["state"], "active");
        assert_eq!(hook["scope"], "organization");
        assert_eq!(hook["organization"], org.as_str());
        assert_eq!(hook["creator"], me.as_str());
        assert_eq!(hook["user"], Value::Null);
        assert_eq!(
            hook["events"],
            json!(["invitee.created", "invitee.canceled"])
        );
        assert!(is_calendly_timestamp(&hook["created_at"]));
        assert!(hook.get("signing_key").is_none(), "the key came back");
        uris.push(hook["uri"].as_str().unwrap().to_owned());
    }

    // The same URL again: 409.
    let (status, body) = subscribe_as(
        &sim,
        create("https://calscan.example.com/hook1"),
        "demo-token",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"title": "Already Exists", "message": "Hook with this url already exists"})
    );

    // One per page, following next_page verbatim.
    let org_q: String = url::form_urlencoded::byte_serialize(org.as_bytes()).collect();
    let mut next = Some(format!(
        "/webhook_subscriptions?organization={org_q}&scope=organization&count=1"
    ));
    let mut listed = Vec::new();
    while let Some(url) = next {
        let (status, page) = send_as(&sim, reqwest::Method::GET, &url, None, "demo-token").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["collection"].as_array().unwrap().len(), 1);
        listed.push(page["collection"][0]["uri"].as_str().unwrap().to_owned());
        next = page["pagination"]["next_page"].as_str().map(str::to_owned);
    }
    assert_eq!(listed, uris);

    let (status, one) = send_as(&sim, reqwest::Method::GET, &uris[1], None, "demo-token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["resource"]["uri"], uris[1].as_str());
    let (status, _) = send_as(&sim, reqwest::Method::DELETE, &uris[1], None, "demo-token").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, body) = send_as(&sim, method, &uris[1], None, "demo-token").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["title"], "Resource Not Found");
    }
    assert_eq!(
        sim.webhook_callbacks(),
        [
            "https://calscan.example.com/hook0",
            "https://calscan.example.com/hook2"
        ]
    );
}

#[tokio::test]
async fn webhook_subscription_requests_are_checked_as_calendly_checks_them() {
    let sim = simulator(3, |c| c.member_token = Some("member".into())).await;
    let org = sim.organization_uri();
    let valid = json!({"url": "https://calscan.example.com/hook", "events": ["invitee.created"],
                       "organization": org, "scope": "organization"});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    for (body, parameter) in [
        (without("url"), "url"),
        (with("url", json!("not a url")), "url"),
        (without("events"), "events"),
        (with("events", json!([])), "events"),
        (with("events", json!(["invitee.exploded"])), "events"),
        (without("organization"), "organization"),
        (without("scope"), "scope"),
        (with("scope", json!("planet")), "scope"),
        (with("scope", json!("user")), "user"),
    ] {
        let (status, answer) = subscribe_as(&sim, body.clone(), "demo-token").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["title"], "Invalid Argument");
        assert_eq!(answer["details"][0]["parameter"], parameter, "{body}");
    }
    let other_org = with(
        "organization",
        json!(format!("{}/organizations/someone-else", sim.base_url())),
    );
    let (status, answer) = subscribe_as(&sim, other_org, "demo-token").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // Organization scope needs an owner or admin.
    let (status, answer) = subscribe_as(&sim, valid.clone(), "member").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["title"], "Permission Denied");
    // Listing needs organization and scope.
    let (status, answer) = send_as(
        &sim,
        reqwest::Method::GET,
        "/webhook_subscriptions?scope=organization",
        None,
        "demo-token",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["details"][0]["parameter"], "organization");
    assert!(sim.webhook_callbacks().is_empty());

    // A plan without webhooks.
    let free = simulator(3, |c| c.webhooks_allowed = false).await;
    let (status, answer) = subscribe_as(
        &free,
        with("organization", json!(free.organization_uri())),
        "demo-token",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer,
        json!({"title": "Permission Denied", "message": "Please upgrade your Calendly account to Standard"})
    );
}

#[tokio::test]
async fn a_booking_is_delivered_signed_to_each_subscription_that_wants_it() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, HeaderMap, Bytes)>();
    let receiver = axum::Router::new().route(
        "/{name}",
        post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((name, headers, body));
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let sim = simulator(3, |_| {}).await;
    let org = sim.organization_uri();
    for (name, events, key) in [
        ("signed", json!(["invitee.created"]), Some("key-one")),
        ("unsigned", json!(["invitee.created"]), None),
        (
            "cancellations",
            json!(["invitee.canceled"]),
            Some("key-two"),
        ),
    ] {
        let mut body = json!({"url": format!("{base}/{name}"), "events": events,
                              "organization": org, "scope": "organization"});
        if let Some(key) = key {
            body["signing_key"] = json!(key);
        }
        let (status, _) = subscribe_as(&sim, body, "demo-token").await;
        assert_eq!(status, StatusCode::CREATED);
    }

    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let event_uri = sim.book("Nora Neu", "nora.neu@example.org", start);
    let deliveries = sim.wait_for_deliveries(2).await;
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
    let mut got = [rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let (signed, unsigned) = (&got[0], &got[1]);
    assert_eq!(
        (signed.0.as_str(), unsigned.0.as_str()),
        ("signed", "unsigned")
    );
    assert!(!unsigned.1.contains_key(webhook::SIGNATURE_HEADER));
    let signature = signed.1[webhook::SIGNATURE_HEADER].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        webhook::verify(
            b"key-one",
            signature,
            &signed.2,
            now,
            webhook::DEFAULT_TOLERANCE
        ),
        Ok(())
    );
    let delivery: Value = serde_json::from_slice(&signed.2).unwrap();
    assert_eq!(delivery["event"], "invitee.created");
    assert_eq!(delivery["payload"]["email"], "nora.neu@example.org");
    assert_eq!(
        delivery["payload"]["scheduled_event"]["uri"],
        event_uri.as_str()
    );
    assert!(is_calendly_timestamp(&delivery["created_at"]));
    // Nothing went to the subscription for cancellations.
    assert!(rx.try_recv().is_err());
}
