//! Every scenario of the CAMARA Number Recycling v0.2.0 test plan
//! (`crates/api/tests/camara/number-recycling-v0.2.0.feature`, vendored), one test each, named by its tag; and the
//! responses checked against the official OpenAPI definition beside it.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::Method;
use serde_json::{Value, json};
use store::backend_tests;
use store::testing::TestDb;

use crate::{Resp, TestApp, assert_error};

const PATH: &str = "/number-recycling/v0.2/check";
const NUMBER: &str = "+8613800138000";

/// The Background: a valid correlator header and token. User A held NUMBER from before 2020; it was
/// cancelled on 2024-02-25 and issued to user B on 2024-09-21 (the API's own Scenario 2).
async fn setup(db: TestDb) -> (TestApp, String) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    app.accept(
        &carrier,
        json!([
            {"eventId": "a-cancel", "phoneNumber": NUMBER, "type": "disconnected", "date": "2024-02-25"},
            {"eventId": "b-signs", "phoneNumber": NUMBER, "type": "activated", "date": "2024-09-21"},
        ]),
    )
    .await;
    let bank = app.institution().await;
    (app, bank)
}

async fn check(app: &TestApp, key: Option<&str>, body: Option<Value>) -> Resp {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.request(
        Method::POST,
        PATH,
        key,
        &[("content-type", "application/json"), ("x-correlator", "b4333c46-49c0-4f62-80d7-f0ef930f1c46")],
        body,
    )
    .await
}

fn camara_yaml() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/camara/number-recycling-v0.2.0.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap()
}

/// Checks a response against the official definition: the 200 body's shape, and for errors, that the
/// status and code are among those the definition lists for that status.
fn conforms(r: &Resp) {
    let spec = camara_yaml();
    assert_eq!(r.headers["x-correlator"], "b4333c46-49c0-4f62-80d7-f0ef930f1c46", "x-correlator is echoed");
    if r.status == 200 {
        let required = &spec["components"]["schemas"]["CheckNumRecyclingInfo"]["required"];
        assert_eq!(required, &json!(["phoneNumberRecycled"]));
        let obj = r.body.as_object().unwrap();
        assert_eq!(obj.len(), 1, "nothing but phoneNumberRecycled: {}", r.text);
        assert!(obj["phoneNumberRecycled"].is_boolean());
        return;
    }
    let generic = format!("Generic{}", r.status);
    let codes = &spec["components"]["responses"][&generic]["content"]["application/json"]["schema"]["allOf"][1]["properties"]
        ["code"]["enum"];
    let codes: Vec<&str> = codes
        .as_array()
        .unwrap_or_else(|| panic!("no {generic} in the definition"))
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&r.body["code"].as_str().unwrap()),
        "{} is not a {} code of the definition: {codes:?}",
        r.body["code"],
        r.status
    );
    let mut keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "status"]);
}

backend_tests!(
    check_number_recycling_01_false_when_linked_to_the_user,
    check_number_recycling_02_true_when_cancelled_and_reissued,
    check_number_recycling_400_01_invalid_specified_date,
    check_number_recycling_400_2_no_request_body,
    check_number_recycling_400_3_empty_request_body,
    check_number_recycling_400_4_out_of_range,
    check_number_recycling_400_5_invalid_argument,
    check_number_recycling_401_1_expired_access_token,
    check_number_recycling_401_2_invalid_access_token,
    check_number_recycling_401_3_no_header_authorization,
    check_number_recycling_403_1_invalid_token_permissions,
    check_number_recycling_c02_01_phone_number_not_schema_compliant,
    check_number_recycling_c02_03_unnecessary_phone_number,
    check_number_recycling_c02_04_missing_phone_number,
    check_number_recycling_c02_05_phone_number_not_supported,
    r2_mapping_of_no_data,
);

async fn check_number_recycling_01_false_when_linked_to_the_user(db: TestDb) {
    let (app, bank) = setup(db).await;
    // User B signed on 2024-09-21: on that date and after, the holder is unchanged.
    for date in ["2024-09-21", "2025-01-01"] {
        let r = check(&app, Some(&bank), Some(json!({"phoneNumber": NUMBER, "specifiedDate": date}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.body, json!({"phoneNumberRecycled": false}));
        conforms(&r);
    }
}

async fn check_number_recycling_02_true_when_cancelled_and_reissued(db: TestDb) {
    let (app, bank) = setup(db).await;
    // User A signed with the ASP on 2023-12-22; also any day in the gap before B.
    for date in ["2023-12-22", "2024-02-25", "2024-05-01", "2024-09-20"] {
        let r = check(&app, Some(&bank), Some(json!({"phoneNumber": NUMBER, "specifiedDate": date}))).await;
        assert_eq!(r.body, json!({"phoneNumberRecycled": true}), "{date}: {}", r.text);
        conforms(&r);
    }
}

async fn check_number_recycling_400_01_invalid_specified_date(db: TestDb) {
    let (app, bank) = setup(db).await;
    for bad in ["2024-13-01", "2024-02-30", "20240101", "2024-01-01T00:00:00Z", "yesterday", ""] {
        let r = check(&app, Some(&bank), Some(json!({"phoneNumber": NUMBER, "specifiedDate": bad}))).await;
        assert_error(&r, 400, "INVALID_ARGUMENT");
        conforms(&r);
    }
}

async fn check_number_recycling_400_2_no_request_body(db: TestDb) {
    let (app, bank) = setup(db).await;
    let r = check(&app, Some(&bank), None).await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    conforms(&r);
}

async fn check_number_recycling_400_3_empty_request_body(db: TestDb) {
    let (app, bank) = setup(db).await;
    let r = check(&app, Some(&bank), Some(json!({}))).await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    conforms(&r);
}

async fn check_number_recycling_400_4_out_of_range(db: TestDb) {
    let (app, bank) = setup(db).await;
    let r = check(&app, Some(&bank), Some(json!({"phoneNumber": NUMBER, "specifiedDate": "2025-07-01"}))).await;
    assert_error(&r, 400, "OUT_OF_RANGE");
    conforms(&r);
}

async fn check_number_recycling_400_5_invalid_argument(db: TestDb) {
    let (app, bank) = setup(db).await;
    for body in [
        json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01", "extra": 1}),
        json!({"phoneNumber": 8613800138000u64, "specifiedDate": "2024-01-01"}),
        json!({"phoneNumber": NUMBER, "specifiedDate": 20240101}),
        json!([NUMBER, "2024-01-01"]),
        json!("check"),
    ] {
        let r = check(&app, Some(&bank), Some(body.clone())).await;
        assert_error(&r, 400, "INVALID_ARGUMENT");
        conforms(&r);
    }
    let r = app
        .request(
            Method::POST,
            PATH,
            Some(&bank),
            &[("content-type", "application/json"), ("x-correlator", "b4333c46-49c0-4f62-80d7-f0ef930f1c46")],
            Body::from("{\"phoneNumber\": "),
        )
        .await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
    conforms(&r);
}

async fn check_number_recycling_401_1_expired_access_token(db: TestDb) {
    // numlink's credentials do not expire by time; a revoked key is the expired token's equivalent.
    let (app, _) = setup(db).await;
    let (bank, key) = app.participant(store::Role::Institution, "Old Bank", &[]).await;
    app.store.revoke_keys(&bank.id).await.unwrap();
    let r = check(&app, Some(&key), Some(json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"}))).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    conforms(&r);
}

async fn check_number_recycling_401_2_invalid_access_token(db: TestDb) {
    let (app, _) = setup(db).await;
    for key in ["nlk_0000000000000000000000000000000000000000000000000", "not-a-key"] {
        let r = check(&app, Some(key), Some(json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"}))).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
        conforms(&r);
    }
}

async fn check_number_recycling_401_3_no_header_authorization(db: TestDb) {
    let (app, _) = setup(db).await;
    let r = check(&app, None, Some(json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"}))).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    conforms(&r);
}

async fn check_number_recycling_403_1_invalid_token_permissions(db: TestDb) {
    let (app, _) = setup(db).await;
    // A carrier's key reports events; it may not check.
    let carrier = app.participant(store::Role::Carrier, "Carrier B", &["+86139"]).await.1;
    let r = check(&app, Some(&carrier), Some(json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"}))).await;
    assert_error(&r, 403, "PERMISSION_DENIED");
    conforms(&r);
}

async fn check_number_recycling_c02_01_phone_number_not_schema_compliant(db: TestDb) {
    let (app, bank) = setup(db).await;
    for bad in ["8613800138000", "+0123456", "+1234", "+1234567890123456", "+86 138 0013 8000", "+86abc"] {
        let r = check(&app, Some(&bank), Some(json!({"phoneNumber": bad, "specifiedDate": "2024-01-01"}))).await;
        assert_error(&r, 400, "INVALID_ARGUMENT");
        conforms(&r);
    }
}

async fn check_number_recycling_c02_03_unnecessary_phone_number(db: TestDb) {
    // "Only with a 3-legged access token": numlink issues two-legged credentials only, which never
    // identify a number, so a number in the body is always necessary and never UNNECESSARY_IDENTIFIER.
    let (app, bank) = setup(db).await;
    let r = check(&app, Some(&bank), Some(json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    conforms(&r);
}

async fn check_number_recycling_c02_04_missing_phone_number(db: TestDb) {
    let (app, bank) = setup(db).await;
    let r = check(&app, Some(&bank), Some(json!({"specifiedDate": "2024-01-01"}))).await;
    assert_error(&r, 422, "MISSING_IDENTIFIER");
    conforms(&r);
}

async fn check_number_recycling_c02_05_phone_number_not_supported(db: TestDb) {
    // The service applies to every number a carrier reports on; for a number nobody reports on, R2
    // maps `no_data` to 404 IDENTIFIER_NOT_FOUND rather than 422 SERVICE_NOT_APPLICABLE.
    let (app, bank) = setup(db).await;
    let r =
        check(&app, Some(&bank), Some(json!({"phoneNumber": "+447700900123", "specifiedDate": "2024-01-01"}))).await;
    assert_error(&r, 404, "IDENTIFIER_NOT_FOUND");
    conforms(&r);
}

async fn r2_mapping_of_no_data(db: TestDb) {
    let (app, bank) = setup(db).await;
    // A covered number without events, D before its carrier's reportingSince (2020-01-01).
    let r =
        check(&app, Some(&bank), Some(json!({"phoneNumber": "+8613800999999", "specifiedDate": "2019-12-31"}))).await;
    assert_error(&r, 400, "OUT_OF_RANGE");
    conforms(&r);
    let r =
        check(&app, Some(&bank), Some(json!({"phoneNumber": "+8613800999999", "specifiedDate": "2020-01-01"}))).await;
    assert_eq!(r.body, json!({"phoneNumberRecycled": false}));
    // An invalid x-correlator is refused.
    let r = app
        .request(
            Method::POST,
            PATH,
            Some(&bank),
            &[("content-type", "application/json"), ("x-correlator", "has spaces")],
            Body::from(json!({"phoneNumber": NUMBER, "specifiedDate": "2024-01-01"}).to_string()),
        )
        .await;
    assert_error(&r, 400, "INVALID_ARGUMENT");
}
