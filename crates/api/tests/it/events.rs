//! `POST /v1/lifecycle-events`: each event on its own, rejections with index, code and message.

use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::{TestApp, assert_error};

backend_tests!(each_event_is_validated_on_its_own, duplicates_and_conflicts, batch_limits_and_strictness);

async fn each_event_is_validated_on_its_own(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let n = "+8613800138000";
    let r = app
        .events(
            &carrier,
            json!([
                {"eventId": "ok-1", "phoneNumber": n, "type": "disconnected", "date": "2024-01-10"},
                {"eventId": "bad-number", "phoneNumber": "+86abc", "type": "disconnected", "date": "2024-01-10"},
                {"eventId": "bad-type", "phoneNumber": n, "type": "reissued", "date": "2024-01-10"},
                {"eventId": "future", "phoneNumber": n, "type": "activated", "date": "2025-07-01"},
                {"eventId": "not-mine", "phoneNumber": "+8613900138000", "type": "disconnected", "date": "2024-01-10"},
                {"eventId": "twice", "phoneNumber": n, "type": "disconnected", "date": "2024-02-10"},
                {"eventId": "too-soon", "phoneNumber": n, "type": "activated", "date": "2024-03-01"},
                {"eventId": "ok-2", "phoneNumber": n, "type": "activated", "date": "2024-04-10"},
                {"phoneNumber": n, "type": "disconnected", "date": "2024-05-10"},
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()), (Some(2), Some(0)));
    let rejected: Vec<(u64, Option<&str>, &str)> = r.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["index"].as_u64().unwrap(), x["eventId"].as_str(), x["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, Some("bad-number"), "INVALID_ARGUMENT"),
            (2, Some("bad-type"), "INVALID_ARGUMENT"),
            (3, Some("future"), "OUT_OF_RANGE"),
            (4, Some("not-mine"), "NOT_NUMBER_HOLDER"),
            (5, Some("twice"), "STATE_CONFLICT"),
            (6, Some("too-soon"), "AGING_VIOLATION"),
            (8, None, "INVALID_ARGUMENT"),
        ]
    );
    for x in r.body["rejected"].as_array().unwrap() {
        assert!(x["message"].as_str().unwrap().len() > 10, "{x}");
    }
}

async fn duplicates_and_conflicts(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let e = json!({"eventId": "e1", "phoneNumber": "+8613800138000", "type": "disconnected", "date": "2024-01-10"});
    app.accept(&carrier, json!([e.clone()])).await;
    let r = app.events(&carrier, json!([e, {"eventId": "e1", "phoneNumber": "+8613800138000", "type": "disconnected", "date": "2024-01-11"}])).await;
    assert_eq!((r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()), (Some(0), Some(1)), "{}", r.text);
    assert_eq!(r.body["rejected"][0]["code"], "CONFLICT");
    assert_eq!(r.body["rejected"][0]["index"], 1);
}

async fn batch_limits_and_strictness(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let events: Vec<_> = (0..1001)
        .map(|i| json!({"eventId": format!("e{i}"), "phoneNumber": format!("+86138{i:08}"), "type": "disconnected", "date": "2024-01-10"}))
        .collect();
    assert_error(&app.events(&carrier, json!(events)).await, 400, "TOO_MANY_ITEMS");
    let r = app.events(&carrier, json!(events[..1000])).await;
    assert_eq!(r.body["accepted"], 1000, "{}", &r.text[..200.min(r.text.len())]);
    let r = app.events(&carrier, json!([{"eventId": "x", "phoneNumber": "+8613800138000", "type": "disconnected", "date": "2024-01-10", "note": "hi"}])).await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    assert!(r.body["message"].as_str().unwrap().contains("note"), "{}", r.text);
    let r = app.post("/v1/lifecycle-events", &carrier, json!({"events": "none"})).await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    // Bodies over body_bytes_max are refused before parsing.
    let big = format!("{{\"events\": [], \"pad\": \"{}\"}}", "x".repeat(app.limits.body_bytes_max));
    let r = app
        .request(
            axum::http::Method::POST,
            "/v1/lifecycle-events",
            Some(&carrier),
            &[("content-type", "application/json")],
            axum::body::Body::from(big),
        )
        .await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
}
