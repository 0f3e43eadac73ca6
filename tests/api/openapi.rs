//! `/api/openapi.json` describes exactly the API the router serves.

use std::collections::BTreeSet;

use crate::helpers::{AppOptions, spawn_app};

/// Every JSON route, as method and path template.
const API: [(&str, &str); 14] = [
    ("post", "/api/scans"),
    ("get", "/api/scans"),
    ("get", "/api/scans/{scan_id}"),
    ("get", "/api/scans/{scan_id}/events"),
    ("post", "/api/scans/{scan_id}/cancel"),
    ("post", "/api/scans/{scan_id}/resume"),
    ("get", "/api/customers"),
    ("get", "/admin/calendly_scan_api.php"),
    ("post", "/admin/calendly_scan_api.php"),
    ("post", "/webhooks/calendly"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    // Described elsewhere, not JSON: the OpenAPI document itself and the
    // Prometheus text.
    ("get", "/api/openapi.json"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_description_names_every_json_route_and_its_answers() {
    let app = spawn_app(AppOptions::default()).await;
    // Public, like the API's own documentation anywhere.
    let response = reqwest::get(app.url("/api/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = API[..12]
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);

    // Every route the list names answers (none is a 404 from the router),
    // so the list is the router's.
    for (method, path) in API {
        let url = app.url(&path.replace("{scan_id}", "scan_0123456789ab"));
        let request = match method {
            "post" => app.http.post(url),
            _ => app.http.get(url),
        };
        let response = request
            .bearer_auth(crate::helpers::API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status != 404 || body.contains("no scan"),
            "{method} {path}: {status} {body}"
        );
    }

    // The answers a client relies on are described, with their schemas.
    let start = &doc["paths"]["/api/scans"]["post"]["responses"];
    for code in ["202", "400", "401", "403", "409"] {
        assert!(start[code].is_object(), "POST /api/scans lacks {code}");
    }
    let schemas = &doc["components"]["schemas"];
    let status_keys: BTreeSet<&str> = schemas["StatusObject"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let added = [
        "scan_id",
        "last_event_id",
        "mode",
        "started_at",
        "events_total",
    ];
    for key in crate::helpers::ORIGINAL_STATUS_KEYS
        .into_iter()
        .chain(added)
    {
        assert!(status_keys.contains(key), "StatusObject lacks {key}");
    }
    assert_eq!(
        schemas["ScanStatus"]["enum"],
        serde_json::json!(["running", "completed", "error", "cancelled", "interrupted"])
    );
    let security = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(security["session"]["name"], "calscan_session");
    assert_eq!(security["bearer"]["scheme"], "bearer");
}
