//! `POST /v1/reassignment-checks`: answers in order, per-item errors, the batch limit, and the audit.

use serde_json::{Value, json};
use store::backend_tests;
use store::testing::TestDb;

use crate::{TestApp, assert_error};

backend_tests!(answers_in_order_with_item_errors, batch_limit, every_check_is_audited_before_the_answer);

async fn answers_in_order_with_item_errors(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    app.accept(
        &carrier,
        json!([
            {"eventId": "1", "phoneNumber": "+8613800000001", "type": "disconnected", "date": "2024-03-01"},
            {"eventId": "2", "phoneNumber": "+8613800000002", "type": "transferred", "date": "2024-03-01"},
            {"eventId": "3", "phoneNumber": "+8613800000003", "type": "ported_out", "date": "2024-03-01"},
            {"eventId": "4", "phoneNumber": "+8613800000003", "type": "ported_in", "date": "2024-03-01"},
        ]),
    )
    .await;
    let bank = app.institution().await;
    let items = json!([
        {"phoneNumber": "+8613800000001", "date": "2024-03-01"},
        {"phoneNumber": "+8613800000001", "date": "2024-03-02"},
        {"phoneNumber": "+8613800000002", "date": "2024-03-01"},
        {"phoneNumber": "+8613800000002", "date": "2024-03-02"},
        {"phoneNumber": "+8613800000003", "date": "2024-01-01"},
        {"phoneNumber": "+447700900123", "date": "2024-01-01"},
        {"phoneNumber": "+8613800000009", "date": "2019-01-01"},
        {"phoneNumber": "+86-bad", "date": "2024-01-01"},
        {"phoneNumber": "+8613800000001", "date": "2025-07-01"},
        {"phoneNumber": "+8613800000001"},
    ]);
    let r = app.post("/v1/reassignment-checks", &bank, json!({ "items": items })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    let got: Vec<Value> =
        results.iter().map(|x| x.get("answer").cloned().unwrap_or_else(|| x["error"]["code"].clone())).collect();
    assert_eq!(
        got,
        vec![
            json!("yes"),
            json!("yes"),
            json!("yes"),
            json!("no"),
            json!("no"),
            json!("no_data"),
            json!("no_data"),
            json!("INVALID_ARGUMENT"),
            json!("OUT_OF_RANGE"),
            json!("INVALID_ARGUMENT")
        ]
    );
    // Each result echoes its item.
    assert_eq!(results[7]["phoneNumber"], "+86-bad");
    assert!(results[7]["error"]["message"].as_str().unwrap().contains("\"+86-bad\""));
    assert_eq!(results[9]["error"]["message"], "date is required");
    // R6: nothing but the answer.
    assert_eq!(results[0].as_object().unwrap().len(), 3);
}

async fn batch_limit(db: TestDb) {
    let app = TestApp::new(db);
    let bank = app.institution().await;
    let item = json!({"phoneNumber": "+8613800000001", "date": "2024-03-01"});
    let r = app.post("/v1/reassignment-checks", &bank, json!({"items": vec![item.clone(); 1000]})).await;
    assert_eq!((r.status, r.body["results"].as_array().map(Vec::len)), (200, Some(1000)));
    let r = app.post("/v1/reassignment-checks", &bank, json!({"items": vec![item; 1001]})).await;
    assert_error(&r, 400, "TOO_MANY_ITEMS");
    assert!(r.body["message"].as_str().unwrap().contains("at most 1000"));
    let r = app.post("/v1/reassignment-checks", &bank, json!({"items": [], "more": true})).await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
}

async fn every_check_is_audited_before_the_answer(db: TestDb) {
    let app = TestApp::new(db);
    let (bank, key) = app.participant(store::Role::Institution, "Bank", &[]).await;
    let r = app
        .post(
            "/v1/reassignment-checks",
            &key,
            json!({"items": [
                {"phoneNumber": "+8613800000001", "date": "2024-03-01"},
                {"phoneNumber": "+8613800000002", "date": "2024-03-02"},
            ]}),
        )
        .await;
    assert_eq!(r.status, 200);
    // The answer was given: its records are already committed, one per number, in one chained record.
    let logged = app.store.logged_checks(1).await.unwrap();
    assert_eq!(
        logged.iter().map(|c| (c.actor.as_str(), c.date.to_string(), c.answer.as_str())).collect::<Vec<_>>(),
        // No carrier covers these numbers here.
        vec![
            (bank.id.as_str(), "2024-03-01".to_string(), "no_data"),
            (bank.id.as_str(), "2024-03-02".to_string(), "no_data")
        ]
    );
    let last = app.store.audit_tail(1).await.unwrap().pop().unwrap();
    assert_eq!((last.actor, last.action, last.seq), (bank.id.to_string(), "checks".to_string(), logged[0].seq));
}
