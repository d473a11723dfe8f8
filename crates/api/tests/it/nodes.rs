//! Two nodes on one database: every response says the position its node's answers reflect
//! (`numlink-position`), and a request that names one (`numlink-min-position`) is answered by the
//! other node only from at least that state.

use axum::body::Body;
use axum::http::Method;
use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::{Resp, TestApp, assert_error};

backend_tests!(
    a_check_on_another_node_answers_from_the_position_of_a_write,
    a_position_not_reached_or_not_a_number_is_refused,
    a_key_revoked_through_one_node_is_refused_by_the_other
);

const NUMBER: &str = "+8613800138000";

async fn check(app: &TestApp, key: &str, min_position: Option<&str>) -> Resp {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(p) = min_position {
        headers.push(("numlink-min-position", p));
    }
    let body = json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"});
    app.request(Method::POST, "/number-recycling/v0.2/check", Some(key), &headers, Body::from(body.to_string())).await
}

fn position(r: &Resp) -> u64 {
    r.headers["numlink-position"].to_str().unwrap().parse().unwrap()
}

async fn a_check_on_another_node_answers_from_the_position_of_a_write(db: TestDb) {
    let a = TestApp::new(db);
    let b = a.another_node();
    let carrier = a.carrier().await;
    let bank = b.institution().await;
    let before = check(&b, &bank, None).await;
    // In the carrier's range with no event since it reports: the same holder all along.
    assert_eq!((before.status, &before.body), (200, &json!({"phoneNumberRecycled": false})), "{}", before.text);
    let reported = a
        .events(
            &carrier,
            json!([
                {"eventId": "a-cancel", "phoneNumber": NUMBER, "type": "disconnected", "date": "2024-02-25"},
                {"eventId": "b-signs", "phoneNumber": NUMBER, "type": "activated", "date": "2024-09-21"},
            ]),
        )
        .await;
    assert_eq!(reported.status, 200, "{}", reported.text);
    let written = position(&reported);
    assert!(written > position(&before), "a write moves the position: {written} after {}", position(&before));
    let after = check(&b, &bank, Some(&written.to_string())).await;
    assert_eq!((after.status, &after.body), (200, &json!({"phoneNumberRecycled": true})), "{}", after.text);
    assert!(position(&after) >= written);
    // And the other way: a number the second node disconnects is known to the first from there on.
    let ended = b
        .events(
            &carrier,
            json!([{"eventId": "b-ends", "phoneNumber": NUMBER, "type": "disconnected", "date": "2025-03-01"}]),
        )
        .await;
    assert_eq!((ended.status, ended.body["accepted"].as_u64()), (200, Some(1)), "{}", ended.text);
    assert!(a.store.wait_for_position(position(&ended), api::POSITION_WAIT).await);
    let item = (domain::PhoneNumber::parse(NUMBER).unwrap(), domain::Day::parse("2025-01-01").unwrap());
    let answer = a.store.answer_many(&[item]);
    assert_eq!(answer, a.store.check_from_tables(vec![item]).await.unwrap());
    assert_ne!(answer, vec![Ok(domain::Answer::No)], "the disconnection changed the answer");
    drop(b);
}

async fn a_position_not_reached_or_not_a_number_is_refused(db: TestDb) {
    let a = TestApp::new(db);
    let b = a.another_node();
    let bank = a.institution().await;
    let r = check(&a, &bank, Some("soon")).await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    let ahead = position(&check(&b, &bank, None).await) + 1_000;
    let r = check(&b, &bank, Some(&ahead.to_string())).await;
    assert_error(&r, 503, "POSITION_NOT_REACHED");
    assert!(r.text.contains(&ahead.to_string()), "{}", r.text);
    drop(b);
}

async fn a_key_revoked_through_one_node_is_refused_by_the_other(db: TestDb) {
    let a = TestApp::new(db);
    let b = a.another_node();
    let (bank, key) = a.participant(store::Role::Institution, "Bank", &[]).await;
    // The second node has read the key and remembers it.
    let first = check(&b, &key, None).await;
    assert_eq!(first.status, 404, "{}", first.text);
    a.store.revoke_keys(&bank.id).await.unwrap();
    let revoked_at = a.store.position();
    let r = check(&b, &key, Some(&revoked_at.to_string())).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    drop(b);
}
