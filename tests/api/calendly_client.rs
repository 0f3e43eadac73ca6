//! The Calendly client against the simulator: exact results, pacing, retries
//! and the errors an admin sees.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use calscan::calendly::{CalendlyClient, CalendlyError, Fault};
use futures::TryStreamExt;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{client, scanned_emails, settings, simulator};

#[tokio::test]
async fn the_client_collects_exactly_the_simulators_emails_across_pages() {
    // 300 events: three pages of events, one group event with 130 invitees
    // (two pages of invitees).
    let sim = simulator(300, |_| {}).await;
    let org = sim.org();
    let big = org.events.iter().filter(|e| e.invitees.len() > 100).count();
    assert_eq!(big, 1);
    let client = client(&sim);

    let organization = client.organization(None).await.unwrap();
    let pages: Vec<_> = client
        .events(&organization, None)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 100]
    );
    let events: Vec<_> = pages.into_iter().flatten().collect();
    let uris: HashSet<_> = events.iter().map(|e| e.uri.clone()).collect();
    assert_eq!(uris.len(), 300, "every event once");

    let with_invitees: Vec<_> = client.invitees_of(events).try_collect().await.unwrap();
    assert_eq!(with_invitees.len(), 300);
    let invitee_records: usize = with_invitees.iter().map(|e| e.invitees.len()).sum();
    assert_eq!(
        invitee_records,
        org.invitee_count(),
        "every invitee record, every status"
    );
    let emails: std::collections::BTreeSet<_> = with_invitees
        .iter()
        .flat_map(|e| &e.invitees)
        .filter_map(|i| i.normalized_email())
        .collect();
    assert_eq!(emails, sim.expected_emails());

    // /users/me, 3 event pages, 300 invitee listings plus a second page for
    // the big group: nothing more.
    let stats = client.stats();
    assert_eq!(stats.requests, 1 + 3 + 300 + 1);
    assert_eq!(sim.stats().requests, stats.requests);
    assert_eq!(
        (stats.retries, stats.rate_limited, stats.restarts),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_configured_organization_is_used_without_asking_users_me() {
    let sim = simulator(5, |_| {}).await;
    let client = client(&sim);
    let uri = sim.organization_uri();
    assert_eq!(client.organization(Some(&uri)).await.unwrap(), uri);
    assert_eq!(sim.stats().requests, 0);
    assert_eq!(client.organization(None).await.unwrap(), uri);
    assert_eq!(sim.stats().requests, 1);

    let err = client.organization(Some("not a uri")).await.unwrap_err();
    assert!(err.to_string().contains("CALENDLY_ORG_URI"), "{err}");
}

// The throttling tests run on paused time: tokio's clock jumps to the next
// timer whenever every task waits, so minutes of rate-limit windows pass in
// milliseconds, exactly, with no real sleeping. The simulator's windows run
// on the same clock.

#[tokio::test(start_paused = true)]
async fn a_tight_rate_limit_is_paced_by_the_headers_without_429s() {
    // 25 requests per 10 s window; the scan needs 63 calls, so three windows,
    // with several events fetched at a time.
    let sim = simulator(60, |c| {
        c.rate_limit = 25;
        c.rate_window = Duration::from_secs(10);
    })
    .await;
    let client = client(&sim);
    let started = tokio::time::Instant::now();
    let real = std::time::Instant::now();
    assert_eq!(scanned_emails(&client).await, sim.expected_emails());
    let (elapsed, real) = (started.elapsed(), real.elapsed());
    let stats = sim.stats();
    assert_eq!(stats.requests, 63, "{stats:?}");
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(stats.max_in_window, 25, "{stats:?}");
    // 63 calls fill two windows and start a third: 20 s and a moment, with
    // no idle second lost at either reset.
    assert!(
        elapsed >= Duration::from_secs(20) && elapsed < Duration::from_secs(21),
        "{elapsed:?}"
    );
    assert!(real < Duration::from_secs(10), "slept for real: {real:?}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_the_result_is_still_exact() {
    let sim = simulator(40, |_| {}).await;
    for fault in [
        Fault::ServerError(500),
        Fault::ServerError(503),
        Fault::HtmlBadGateway,
        Fault::ResetConnection,
        Fault::Stall(Duration::from_secs(5)),
    ] {
        sim.inject(fault, 1);
    }
    // The five faults hit the first request five times in a row: six
    // attempts let it through.
    let mut settings = settings(&sim);
    settings.max_attempts = 6;
    settings.request_timeout = Duration::from_millis(500);
    let client = CalendlyClient::new(settings).unwrap();

    assert_eq!(scanned_emails(&client).await, sim.expected_emails());
    assert_eq!(client.stats().retries, 5);
    assert_eq!(sim.stats().faults, 5);
}

#[tokio::test]
async fn random_5xx_from_fail_rate_are_survived() {
    let sim = simulator(80, |c| c.fail_rate = 0.1).await;
    let mut settings = settings(&sim);
    settings.max_attempts = 8;
    let client = CalendlyClient::new(settings).unwrap();
    assert_eq!(scanned_emails(&client).await, sim.expected_emails());
    let faults = sim.stats().faults;
    assert!(faults > 0, "a 10 % fail rate over ~85 calls failed none");
    assert_eq!(client.stats().retries, faults);
}

#[tokio::test]
async fn failures_past_the_retry_budget_stop_with_a_message_that_says_what_to_do() {
    let sim = simulator(5, |_| {}).await;
    sim.inject(Fault::ServerError(503), 3);
    let mut settings = settings(&sim);
    settings.max_attempts = 3;
    let client = CalendlyClient::new(settings).unwrap();
    let err = client.current_user().await.unwrap_err();
    assert!(
        matches!(err, CalendlyError::Unavailable { attempts: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("503") && text.contains("try again later"),
        "{text}"
    );
    assert_eq!(sim.stats().requests, 3);
}

#[tokio::test]
async fn a_401_fails_at_once_with_calendlys_message_and_no_retry() {
    let sim = simulator(5, |_| {}).await;
    let mut settings = settings(&sim);
    settings.token = SecretString::from("eyJwrong.token.value");
    let client = CalendlyClient::new(settings).unwrap();
    let err = client.organization(None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, CalendlyError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert!(text.contains("The access token is invalid"), "{text}");
    assert!(text.contains("CALENDLY_TOKEN"), "says what to do: {text}");
    assert!(
        !text.contains("eyJwrong"),
        "the token leaked into the message"
    );
    assert!(
        !format!("{err:?} {client:?}").contains("eyJwrong"),
        "the token leaked into Debug"
    );
    assert_eq!(client.stats().requests, 1, "a 401 is never retried");

    // A token revoked in the middle of a scan: the same, at once.
    sim.inject(Fault::Unauthenticated, 1);
    let client = crate::helpers::client(&sim);
    let err = client.current_user().await.unwrap_err();
    assert!(
        matches!(err, CalendlyError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert_eq!(client.stats().requests, 1);
}

#[tokio::test]
async fn a_member_token_gets_calendlys_permission_message_for_an_org_scan() {
    let sim = simulator(5, |c| c.member_token = Some("member-token".into())).await;
    let mut settings = settings(&sim);
    settings.token = SecretString::from("member-token");
    let client = CalendlyClient::new(settings).unwrap();
    let org = client.organization(None).await.unwrap();
    let err = client.all_invitees(&org).await.unwrap_err();
    assert!(
        matches!(err, CalendlyError::PermissionDenied { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("You do not have permission to access this resource.")
            && text.contains("owner or admin"),
        "{text}"
    );
    assert_eq!(
        client.stats().requests,
        2,
        "/users/me and one refused listing"
    );
}

#[tokio::test]
async fn a_stale_event_page_token_restarts_from_the_watermark_without_duplicates() {
    let sim = simulator(250, |_| {}).await;
    sim.inject(Fault::RejectPageToken, 1);
    let client = client(&sim);
    let org = client.organization(None).await.unwrap();
    let events: Vec<_> = client.events(&org, None).try_concat().await.unwrap();
    assert_eq!(events.len(), 250);
    let uris: HashSet<_> = events.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(uris.len(), 250, "no event twice");
    assert_eq!(client.stats().restarts, 1);
    assert!(
        events
            .windows(2)
            .all(|w| w[0].start_time <= w[1].start_time),
        "oldest first"
    );
}

#[tokio::test]
async fn a_stale_invitee_page_token_restarts_that_listing_without_duplicates() {
    let sim = simulator(10, |_| {}).await;
    let client = client(&sim);
    let org = client.organization(None).await.unwrap();
    let events: Vec<_> = client.events(&org, None).try_concat().await.unwrap();
    let big = events
        .iter()
        .find(|e| e.invitees_counter.is_some_and(|c| c.total > 100))
        .cloned()
        .unwrap();
    sim.inject(Fault::RejectPageToken, 1);
    let invitees = client.invitees(&big).await.unwrap();
    assert_eq!(invitees.len(), 130);
    let uris: HashSet<_> = invitees.iter().map(|i| i.uri.as_str()).collect();
    assert_eq!(uris.len(), 130);
    assert_eq!(client.stats().restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_429_is_waited_out_by_retry_after_or_by_the_reset_header() {
    let sim = simulator(20, |_| {}).await;
    sim.inject(
        Fault::RateLimited {
            reset_s: 30,
            retry_after_s: Some(7),
        },
        1,
    );
    sim.inject(
        Fault::RateLimited {
            reset_s: 11,
            retry_after_s: None,
        },
        1,
    );
    let client = client(&sim);
    let started = tokio::time::Instant::now();
    assert_eq!(scanned_emails(&client).await, sim.expected_emails());
    let elapsed = started.elapsed();
    assert_eq!(client.stats().rate_limited, 2);
    assert_eq!(client.stats().retries, 0, "a 429 is not a failure");
    // Retry-After (7 s) won over the 30 s reset; then the 11 s reset. The
    // scan itself takes no time on this clock.
    assert!(
        elapsed >= Duration::from_secs(18) && elapsed < Duration::from_secs(19),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_asking_for_longer_than_allowed_stops_with_a_resumable_error() {
    let sim = simulator(5, |_| {}).await;
    sim.inject(
        Fault::RateLimited {
            reset_s: 600,
            retry_after_s: None,
        },
        1,
    );
    let mut settings = settings(&sim);
    settings.max_rate_limit_wait = Duration::from_secs(60);
    let client = CalendlyClient::new(settings).unwrap();
    let started = tokio::time::Instant::now();
    let err = client.current_user().await.unwrap_err();
    assert!(
        matches!(err, CalendlyError::RateLimitWaitTooLong { .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("600 s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it waited first"
    );
}

#[tokio::test]
async fn a_next_page_on_another_host_is_refused_and_never_contacted() {
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_addr = evil.local_addr().unwrap();
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", fake.local_addr().unwrap());
    let page = json!({
        "collection": [{"uri": format!("{base}/scheduled_events/a"), "status": "active",
                        "start_time": "2025-01-01T10:00:00.000000Z"}],
        "pagination": {"count": 1, "next_page": format!("http://{evil_addr}/scheduled_events?page_token=x"),
                       "next_page_token": "x", "previous_page": null, "previous_page_token": null}
    });
    let app =
        axum::Router::new().route("/scheduled_events", get(move || async move { Json(page) }));
    tokio::spawn(async move { axum::serve(fake, app).await });

    let mut settings =
        calscan::calendly::ClientSettings::new(base.parse().unwrap(), SecretString::from("t"));
    settings.backoff_min = Duration::from_millis(1);
    let client = CalendlyClient::new(settings).unwrap();
    let result: Result<Vec<_>, _> = client
        .events(&format!("{base}/organizations/o"), None)
        .try_collect()
        .await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, CalendlyError::ForeignNextPage { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("CALENDLY_API_BASE"), "{err}");
    // Nobody knocked on the other host.
    let knocked = tokio::time::timeout(Duration::from_millis(50), evil.accept()).await;
    assert!(knocked.is_err(), "the client contacted the foreign host");
}

#[tokio::test]
async fn invitees_are_fetched_with_bounded_concurrency() {
    // With 20 ms latency, one-at-a-time would keep a single request in flight;
    // the client keeps up to `concurrency` and never more.
    let sim = simulator(40, |c| c.latency = Duration::from_millis(20)).await;
    let mut settings = settings(&sim);
    settings.concurrency = 6;
    let client = CalendlyClient::new(settings).unwrap();
    assert_eq!(scanned_emails(&client).await, sim.expected_emails());
    let peak = sim.stats().max_in_flight;
    assert!((2..=6).contains(&peak), "peak concurrency {peak}");
}

/// Each kind of failure Calendly (or the network before it) produces, alone:
/// four in a row are retried and the result is exact; five in a row exhaust
/// the attempts and say what failed. On paused time, so the stalls and the
/// backoff cost nothing real.
#[tokio::test(start_paused = true)]
async fn each_kind_of_failure_alone_is_retried_and_five_in_a_row_stop_saying_what_failed() {
    let kinds = [
        (Fault::ServerError(500), "HTTP 500"),
        (Fault::ServerError(503), "HTTP 503"),
        (Fault::HtmlBadGateway, "non-JSON body"),
        (Fault::ResetConnection, "connection closed"),
        (Fault::Stall(Duration::from_secs(60)), "timed out"),
    ];
    for (fault, says) in kinds {
        let sim = simulator(20, |_| {}).await;
        sim.inject(fault.clone(), 4);
        let mut settings = settings(&sim);
        settings.max_attempts = 5;
        settings.request_timeout = Duration::from_secs(2);
        let client = CalendlyClient::new(settings.clone()).unwrap();
        assert_eq!(
            scanned_emails(&client).await,
            sim.expected_emails(),
            "{fault:?}"
        );
        assert_eq!(client.stats().retries, 4, "{fault:?}");
        assert_eq!(sim.stats().faults, 4, "{fault:?}");

        let sim = simulator(5, |_| {}).await;
        sim.inject(fault.clone(), 5);
        settings.api_base = sim.base_url().parse().unwrap();
        let client = CalendlyClient::new(settings).unwrap();
        let err = client.current_user().await.unwrap_err();
        assert!(
            matches!(err, CalendlyError::Unavailable { attempts: 5, .. }),
            "{fault:?}: {err:?}"
        );
        assert!(err.is_retryable(), "{fault:?}");
        let text = err.to_string();
        assert!(text.contains(says), "{fault:?}: {text}");
        assert_eq!(sim.stats().requests, 5, "{fault:?}");
    }
}
