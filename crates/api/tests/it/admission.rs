//! Rate limits per participant and per client address, and who the client is behind a proxy.

use api::Limits;
use api::admit::{Rate, RateLimits};
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::{Resp, TestApp, assert_error};

backend_tests!(
    a_participant_past_its_rate_is_answered_429_and_others_are_not,
    a_client_is_limited_by_its_own_address_whatever_it_forwards,
    behind_a_trusted_proxy_the_forwarded_client_is_counted,
);

const CHECK: &str = "/number-recycling/v0.2/check";

fn limits(rates: RateLimits) -> Limits {
    Limits { rates, ..Limits::default() }
}

/// A request as it comes off a socket from `peer`, with these headers.
fn from(peer: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer.parse::<std::net::SocketAddr>().unwrap()));
    req
}

fn check_body() -> String {
    json!({ "phoneNumber": "+8613800138000", "specifiedDate": "2024-01-01" }).to_string()
}

#[track_caller]
fn assert_limited(r: &Resp, retry_after: &str) {
    assert_error(r, 429, "TOO_MANY_REQUESTS");
    assert_eq!(r.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some(retry_after), "{r:?}");
}

/// An institution spends its burst, is refused with 429 and `Retry-After`, and its refusal touches
/// neither another institution nor a carrier; the same address without a key is another bucket.
async fn a_participant_past_its_rate_is_answered_429_and_others_are_not(db: TestDb) {
    let rates = RateLimits { institution: Rate::new(1, 3), ..RateLimits::default() };
    let app = TestApp::with_limits(db, limits(rates));
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    let other = app.participant(store::Role::Institution, "Other bank", &[]).await.1;
    for _ in 0..3 {
        assert_eq!(app.post(CHECK, &bank, serde_json::from_str(&check_body()).unwrap()).await.status, 200);
    }
    let r = app.post(CHECK, &bank, serde_json::from_str(&check_body()).unwrap()).await;
    assert_limited(&r, "1");
    // Any route: the limit is the participant's, not the operation's.
    assert_limited(&app.get("/v1/bindings", &bank).await, "1");
    assert_eq!(app.post(CHECK, &other, serde_json::from_str(&check_body()).unwrap()).await.status, 200);
    assert_eq!(app.get("/v1/lifecycle-events?phoneNumber=%2B8613800138000", &carrier).await.status, 200);
    // A request without a key, from anywhere, is not the institution's.
    let r = app.send(from("198.51.100.1:1000", "GET", "/healthz", &[], "")).await;
    assert_eq!(r.status, 200);
}

/// Without a valid key, a client is counted by its socket's address: what it writes in
/// `X-Forwarded-For` is ignored when no proxy is trusted, and a wrong key counts as no key.
async fn a_client_is_limited_by_its_own_address_whatever_it_forwards(db: TestDb) {
    let rates = RateLimits { anonymous_per_client: Rate::new(1, 2), ..RateLimits::default() };
    let app = TestApp::with_limits(db, limits(rates));
    app.carrier().await;
    let bank = app.institution().await;
    for forwarded in ["203.0.113.1", "203.0.113.2"] {
        let r = app.send(from("198.51.100.1:1000", "GET", "/healthz", &[("x-forwarded-for", forwarded)], "")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = app.send(from("198.51.100.1:1001", "GET", "/healthz", &[("x-forwarded-for", "203.0.113.3")], "")).await;
    assert_limited(&r, "1");
    // A wrong key is no way around it, and is not looked up again.
    let wrong = [("authorization", "Bearer nlk_not_a_key_of_anyones")];
    assert_limited(&app.send(from("198.51.100.1:1002", "GET", "/v1/bindings", &wrong, "")).await, "1");
    // Another address is another client.
    let r = app.send(from("198.51.100.2:1000", "GET", "/v1/bindings", &wrong, "")).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    // A valid key from the limited address is the participant's own bucket.
    let headers = [("authorization", format!("Bearer {bank}")), ("content-type", "application/json".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(h, v)| (*h, v.as_str())).collect();
    let r = app.send(from("198.51.100.1:1003", "POST", CHECK, &headers, &check_body())).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Pages are counted alike.
    assert_limited(&app.send(from("198.51.100.1:1004", "GET", "/", &[], "")).await, "1");
}

/// Behind a trusted proxy every client arrives from the proxy's address; the client it names in
/// `X-Forwarded-For` is the one counted, so one client's flood does not shut out the others.
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted(db: TestDb) {
    let rates = RateLimits { anonymous_per_client: Rate::new(1, 2), ..RateLimits::default() };
    let app = TestApp::behind(db, limits(rates), &["10.0.0.0/8"]);
    let via_proxy = |client: &'static str| from("10.1.2.3:5000", "GET", "/healthz", &[("x-forwarded-for", client)], "");
    for _ in 0..2 {
        assert_eq!(app.send(via_proxy("203.0.113.1")).await.status, 200);
    }
    assert_limited(&app.send(via_proxy("203.0.113.1")).await, "1");
    // What the client wrote before the proxy appended its address is not believed.
    assert_limited(&app.send(via_proxy("192.0.2.99, 203.0.113.1")).await, "1");
    assert_eq!(app.send(via_proxy("203.0.113.2")).await.status, 200, "another client behind the same proxy");
    // A forwarded-for from an address that is not a trusted proxy is ignored.
    let direct =
        |n: u16| from(&format!("198.51.100.9:{n}"), "GET", "/healthz", &[("x-forwarded-for", "203.0.113.7")], "");
    assert_eq!(app.send(direct(1)).await.status, 200);
    assert_eq!(app.send(direct(2)).await.status, 200);
    assert_limited(&app.send(direct(3)).await, "1");
    assert_eq!(app.send(via_proxy("203.0.113.7")).await.status, 200, "203.0.113.7 itself was never counted");
}
