//! Roles are enforced on every operation: wrong role 403, bad or revoked key 401.

use axum::body::Body;
use axum::http::Method;
use serde_json::json;
use store::testing::TestDb;
use store::{Role, backend_tests};

use crate::{TestApp, assert_error};

backend_tests!(roles_are_enforced, keys_rotate_and_revoke);

async fn roles_are_enforced(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    let regulator = app.participant(Role::Regulator, "Regulator", &[]).await.1;
    let check = json!({"items": [{"phoneNumber": "+8613800138000", "date": "2024-01-01"}]});
    let event = json!({"events": []});
    // Institutions and regulators check; carriers do not.
    assert_eq!(app.post("/v1/reassignment-checks", &bank, check.clone()).await.status, 200);
    assert_eq!(app.post("/v1/reassignment-checks", &regulator, check.clone()).await.status, 200);
    assert_error(&app.post("/v1/reassignment-checks", &carrier, check).await, 403, "PERMISSION_DENIED");
    // Carriers report; nobody else does.
    assert_eq!(app.post("/v1/lifecycle-events", &carrier, event.clone()).await.status, 200);
    assert_error(&app.post("/v1/lifecycle-events", &bank, event.clone()).await, 403, "PERMISSION_DENIED");
    assert_error(&app.post("/v1/lifecycle-events", &regulator, event).await, 403, "PERMISSION_DENIED");
    assert_error(&app.upload(&bank, "phone_number,disconnect_date\n").await, 403, "PERMISSION_DENIED");
    // Authentication comes before anything else.
    let r = app.request(Method::POST, "/v1/lifecycle-events", None, &[], Body::from("garbage")).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    let r = app.request(Method::GET, "/v1/jobs/job_x", None, &[("authorization", "Basic abc")], Body::empty()).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    // The scheme is case-insensitive (RFC 9110): `bearer` and `BEARER` are `Bearer`.
    for scheme in ["bearer", "BEARER"] {
        let auth = format!("{scheme} {bank}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let body = Body::from(json!({"items": []}).to_string());
        let r = app.request(Method::POST, "/v1/reassignment-checks", None, &headers, body).await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.text);
    }
}

async fn keys_rotate_and_revoke(db: TestDb) {
    let app = TestApp::new(db);
    let (bank, old) = app.participant(Role::Institution, "Bank", &[]).await;
    let check = json!({"items": []});
    assert_eq!(app.post("/v1/reassignment-checks", &old, check.clone()).await.status, 200);
    let new = app.store.rotate_key(&bank.id).await.unwrap();
    assert_error(&app.post("/v1/reassignment-checks", &old, check.clone()).await, 401, "UNAUTHENTICATED");
    assert_eq!(app.post("/v1/reassignment-checks", new.expose(), check.clone()).await.status, 200);
    app.store.revoke_keys(&bank.id).await.unwrap();
    assert_error(&app.post("/v1/reassignment-checks", new.expose(), check).await, 401, "UNAUTHENTICATED");
}
