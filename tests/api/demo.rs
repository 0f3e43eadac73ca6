//! `calscan demo`: a simulated organization that stays the same across
//! restarts, with upcoming bookings.

use serde_json::Value;

use crate::helpers::{Process, all_customers};

/// How many customers there are, and how many bookings they have in all.
async fn bookings(demo: &Process) -> (usize, i64) {
    let customers = all_customers(&demo.http, &demo.base).await;
    let booked = customers
        .iter()
        .map(|c| c["bookings"].as_i64().unwrap())
        .sum();
    (customers.len(), booked)
}

/// Starts a full scan and waits for its end.
async fn full_scan(demo: &Process) -> Value {
    let started: Value = demo
        .http
        .post(format!("{}/api/scans", demo.base))
        .bearer_auth(crate::helpers::API_TOKEN)
        .json(&serde_json::json!({"mode": "full"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan_id = started["scan_id"].as_str().unwrap();
    let events = demo.stream(scan_id).await.until_done().await;
    let done = events.last().unwrap().data.clone();
    assert_eq!(done["status"], "completed", "{done}");
    done
}

#[tokio::test]
async fn a_restarted_demo_finds_its_own_bookings_and_counts_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());

    let first = Process::demo(&url, 30).await;
    let done = full_scan(&first).await;
    // 30 events, and the three upcoming lessons booked at the start.
    assert_eq!(done["events_scanned"], 33, "{done}");
    let (customers, booked) = bookings(&first).await;
    assert!(customers > 3, "{customers}");
    let everyone = all_customers(&first.http, &first.base).await;
    assert!(
        everyone
            .iter()
            .any(|c| c["email"] == "lena.hofer@example.org"),
        "the upcoming lesson's customer is missing"
    );
    drop(first);

    // Another port, the same organization: nothing new, nothing doubled.
    let second = Process::demo(&url, 30).await;
    let done = full_scan(&second).await;
    assert_eq!(done["events_scanned"], 33, "{done}");
    assert_eq!(done["new_count"], 0, "{done}");
    assert_eq!(bookings(&second).await, (customers, booked));
}
