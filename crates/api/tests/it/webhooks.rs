//! Webhook delivery against a real HTTP receiver on a local port: signatures checked by an
//! independent implementation of the Standard Webhooks scheme, retries on the schedule (on the
//! injected clock), Retry-After, 410, timeouts, redirects, the 5-day disable, secret rotation,
//! replay, and the outbox surviving a restart.

use serde_json::{Value, json};
use store::testing::TestDb;
use store::{Role, backend_tests};
use workers::{Deliverer, DeliveryConfig};

use crate::receiver::{Reply, receiver, verify};
use crate::{TestApp, assert_error};

const N: &str = "+8613800138000";

/// A bank with an endpoint at the receiver and a binding on N; returns (bank key, endpoint secret, endpoint id).
async fn setup(app: &TestApp, url: &str) -> (String, String, String, String) {
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    let r = app.post("/v1/webhook-endpoints", &bank, json!({ "url": url })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = r.body["id"].as_str().unwrap().to_string();
    let b = app
        .post(
            "/v1/bindings",
            &bank,
            json!({"bindings": [{"accountRef": "acct-1", "phoneNumber": N, "boundOn": "2023-01-01"}]}),
        )
        .await;
    assert_eq!(b.status, 200);
    (carrier, bank, secret, id)
}

async fn disconnect(app: &TestApp, carrier: &str, id: &str, number: &str, date: &str) {
    app.accept(carrier, json!([{"eventId": id, "phoneNumber": number, "type": "disconnected", "date": date}])).await;
}

fn now(app: &TestApp) -> i64 {
    use domain::Clock;
    app.clock.now().as_second()
}

fn advance(app: &TestApp, secs: i64) {
    app.advance(secs);
}

async fn deliveries(app: &TestApp, notification_id: &str) -> Vec<store::DeliveryState> {
    app.store.deliveries_of(&store::NotificationId::parse(notification_id).unwrap()).await.unwrap()
}

backend_tests!(
    deliveries_are_signed_and_retried_on_the_schedule,
    retry_after_is_honoured,
    gone_disables_the_endpoint_and_the_feed_says_so,
    timeouts_and_redirects_are_failures,
    a_slow_endpoint_gets_a_bounded_share_of_a_round,
    an_endpoint_that_never_answers_does_not_hold_back_another_institutions,
    at_shutdown_the_attempts_made_are_recorded,
    an_endpoint_failing_for_five_days_is_disabled,
    a_rotated_secret_signs_beside_the_new_one_for_a_while,
    the_outbox_survives_a_restart,
    endpoints_are_checked_bounded_and_replayable,
    an_endpoint_is_tested_logged_replayed_and_enabled_again,
    an_endpoint_taking_batches_gets_them_signed_whole_and_retried_as_one,
);

async fn deliveries_are_signed_and_retried_on_the_schedule(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, _bank, secret, _) = setup(&app, &url).await;
    rx.then(&[Reply::Status(500), Reply::Status(500)]);
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    let t0 = now(&app);
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1, "delivered immediately");
    let got = rx.received();
    let id = got[0].headers["webhook-id"].to_str().unwrap().to_string();
    let d = &deliveries(&app, &id).await[0];
    assert_eq!((d.attempts, d.state.as_str(), d.last_status), (1, "pending", Some(500)));
    assert!(
        (t0 + 5..=t0 + 5).contains(&d.next_attempt_at) || (t0 + 5..=t0 + 5 + 1).contains(&d.next_attempt_at),
        "{d:?}"
    );
    // Nothing is due until the clock moves.
    assert_eq!(app.deliverer.run_once().await.unwrap(), 0);
    advance(&app, 6);
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1);
    let d = &deliveries(&app, &id).await[0];
    assert_eq!((d.attempts, d.state.as_str()), (2, "pending"));
    assert!((now(&app) + 300..=now(&app) + 330).contains(&d.next_attempt_at), "5 minutes, plus at most 10%: {d:?}");
    advance(&app, 331);
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1);
    assert_eq!(deliveries(&app, &id).await[0].state, "delivered");

    let got = rx.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.headers["webhook-id"], id.as_str(), "the same id on every attempt");
        assert_eq!(verify(&secret, r), 1, "signature verifies");
        assert_eq!(r.path, "/hook");
    }
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "number.disconnected");
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["data"]["accountRef"], "acct-1");
    assert_eq!(body["data"]["reissuableFrom"], "2024-05-25");
    assert!(!String::from_utf8_lossy(&got[0].body).contains("8613800138000"), "thin: never the number");
    // A tampered body does not verify.
    let mut forged = got[0].clone();
    forged.body = br#"{"forged":true}"#.to_vec();
    assert_eq!(verify(&secret, &forged), 0);
}

async fn retry_after_is_honoured(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, ..) = setup(&app, &url).await;
    rx.then(&[Reply::RetryAfter(429, "120"), Reply::RetryAfter(503, "3600")]);
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    let t0 = now(&app);
    app.deliverer.run_once().await.unwrap();
    let id = rx.received()[0].headers["webhook-id"].to_str().unwrap().to_string();
    assert_eq!(deliveries(&app, &id).await[0].next_attempt_at, t0 + 120);
    advance(&app, 120);
    app.deliverer.run_once().await.unwrap();
    assert_eq!(deliveries(&app, &id).await[0].next_attempt_at, now(&app) + 3600);
}

async fn gone_disables_the_endpoint_and_the_feed_says_so(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, bank, _, endpoint) = setup(&app, &url).await;
    rx.then(&[Reply::Status(410)]);
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    app.deliverer.run_once().await.unwrap();
    let list = app.get("/v1/webhook-endpoints", &bank).await.body;
    assert_eq!(list["endpoints"][0]["enabled"], false);
    assert!(list["endpoints"][0]["disabledReason"].as_str().unwrap().contains("410"));
    assert!(list["endpoints"][0].get("secret").is_none(), "secrets are shown once");
    let feed = app.get("/v1/notifications", &bank).await.body;
    let last = feed["notifications"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["type"].as_str(), last["data"]["endpointId"].as_str()),
        (Some("webhook.endpoint_disabled"), Some(endpoint.as_str()))
    );
    // Nothing more goes to a disabled endpoint.
    disconnect(&app, &carrier, "d2", "+8613800000001", "2024-02-25").await;
    app.post(
        "/v1/bindings",
        &bank,
        json!({"bindings": [{"accountRef": "x", "phoneNumber": "+8613800000001", "boundOn": "2023-01-01"}]}),
    )
    .await;
    assert_eq!(app.deliverer.run_once().await.unwrap(), 0);
    assert_eq!(rx.received().len(), 1);
}

async fn timeouts_and_redirects_are_failures(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, ..) = setup(&app, &url).await;
    let quick = Deliverer::new(
        app.store.clone(),
        DeliveryConfig { allow_loopback: true, timeout_ms: 300, ..DeliveryConfig::default() },
    )
    .unwrap();
    rx.then(&[Reply::Hang, Reply::Redirect]);
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    assert_eq!(quick.run_once().await.unwrap(), 1);
    let id = rx.received()[0].headers["webhook-id"].to_str().unwrap().to_string();
    let d = &deliveries(&app, &id).await[0];
    assert_eq!((d.state.as_str(), d.last_status), ("pending", None));
    assert!(d.last_error.as_deref().unwrap().contains("no answer within 300 ms"), "{d:?}");
    advance(&app, 6);
    quick.run_once().await.unwrap();
    let d = &deliveries(&app, &id).await[0];
    assert_eq!((d.state.as_str(), d.last_status), ("pending", Some(302)));
    assert!(rx.received().iter().all(|r| r.path == "/hook"), "the redirect was not followed");
}

async fn an_endpoint_failing_for_five_days_is_disabled(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, bank, _, _) = setup(&app, &url).await;
    rx.then(&vec![Reply::Status(500); 1000]);
    // A new notification every day keeps the endpoint busy (and failing).
    let numbers: Vec<String> = (0..8).map(|i| format!("+86138000000{i:02}")).collect();
    let items: Vec<Value> =
        numbers.iter().map(|n| json!({"accountRef": n, "phoneNumber": n, "boundOn": "2023-01-01"})).collect();
    app.post("/v1/bindings", &bank, json!({ "bindings": items })).await;
    let start = now(&app);
    let mut disabled_after = None;
    for (day, number) in numbers.iter().enumerate() {
        disconnect(&app, &carrier, &format!("d{day}"), number, "2024-02-25").await;
        // Let every due attempt of the day happen, hour by hour.
        for _ in 0..24 {
            while app.deliverer.run_once().await.unwrap() > 0 {}
            advance(&app, 3600);
        }
        let list = app.get("/v1/webhook-endpoints", &bank).await.body;
        if list["endpoints"][0]["enabled"] == false && disabled_after.is_none() {
            disabled_after = Some(now(&app) - start);
        }
    }
    let after = disabled_after.expect("the endpoint was disabled");
    assert!((5 * 86_400..=6 * 86_400).contains(&after), "disabled after {after} s of failures");
    let list = app.get("/v1/webhook-endpoints", &bank).await.body;
    assert!(list["endpoints"][0]["disabledReason"].as_str().unwrap().contains("5 days"));
}

async fn a_rotated_secret_signs_beside_the_new_one_for_a_while(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, bank, old, endpoint) = setup(&app, &url).await;
    let r = app.post(&format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"), &bank, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    app.deliverer.run_once().await.unwrap();
    let first = &rx.received()[0];
    assert_eq!((verify(&old, first), verify(&new, first)), (1, 1), "both signatures during the overlap");
    advance(&app, 86_401);
    disconnect(&app, &carrier, "d2", "+8613800000001", "2024-02-25").await;
    app.post(
        "/v1/bindings",
        &bank,
        json!({"bindings": [{"accountRef": "x", "phoneNumber": "+8613800000001", "boundOn": "2023-01-01"}]}),
    )
    .await;
    app.deliverer.run_once().await.unwrap();
    let second = rx.received().last().unwrap().clone();
    assert_eq!((verify(&old, &second), verify(&new, &second)), (0, 1), "only the new one after it");
    assert_error(&app.post("/v1/webhook-endpoints/whe_nope/rotate-secret", &bank, json!({})).await, 404, "NOT_FOUND");
}

async fn the_outbox_survives_a_restart(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, ..) = setup(&app, &url).await;
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    // The process stops before any delivery; the notification and its delivery were committed.
    let app = app.restart();
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1);
    assert_eq!(rx.received().len(), 1);
}

async fn endpoints_are_checked_bounded_and_replayable(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, bank, ..) = setup(&app, &url).await;
    for bad in ["http://8.8.8.8/hook", "https://10.0.0.7/hook", "https://169.254.169.254/latest", "ftp://8.8.8.8/"] {
        assert_error(&app.post("/v1/webhook-endpoints", &bank, json!({ "url": bad })).await, 400, "INVALID_ARGUMENT");
    }
    assert_error(&app.post("/v1/webhook-endpoints", &carrier, json!({ "url": url })).await, 403, "PERMISSION_DENIED");
    for _ in 1..10 {
        assert_eq!(app.post("/v1/webhook-endpoints", &bank, json!({ "url": url })).await.status, 201);
    }
    let r = app.post("/v1/webhook-endpoints", &bank, json!({ "url": url })).await;
    assert_error(&r, 400, "TOO_MANY_ITEMS");
    assert!(r.body["message"].as_str().unwrap().contains("webhook_endpoints_max"));
    // Keep one endpoint.
    let list = app.get("/v1/webhook-endpoints", &bank).await.body;
    for e in &list["endpoints"].as_array().unwrap()[1..] {
        let id = e["id"].as_str().unwrap();
        let del = app.delete(&format!("/v1/webhook-endpoints/{id}"), &bank).await;
        assert_eq!(del.status, 204);
    }
    let other = app.participant(Role::Institution, "Other", &[]).await.1;
    assert_eq!(app.get("/v1/webhook-endpoints", &other).await.body["endpoints"], json!([]));

    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    app.deliverer.run_once().await.unwrap();
    let id = rx.received()[0].headers["webhook-id"].to_str().unwrap().to_string();
    assert_eq!(deliveries(&app, &id).await[0].state, "delivered");
    // Replay: the same message again, same id.
    let r = app.post(&format!("/v1/notifications/{id}/replay"), &bank, json!({})).await;
    assert_eq!((r.status, r.body["deliveries"].as_u64()), (202, Some(1)), "{}", r.text);
    app.deliverer.run_once().await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].headers["webhook-id"], id.as_str());
    assert_error(&app.post(&format!("/v1/notifications/{id}/replay"), &other, json!({})).await, 404, "NOT_FOUND");
}

async fn a_slow_endpoint_gets_a_bounded_share_of_a_round(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, bank, ..) = setup(&app, &url).await;
    let numbers: Vec<String> = (0..6).map(|i| format!("+86138000000{i:02}")).collect();
    let items: Vec<Value> =
        numbers.iter().map(|n| json!({"accountRef": n, "phoneNumber": n, "boundOn": "2023-01-01"})).collect();
    app.post("/v1/bindings", &bank, json!({ "bindings": items })).await;
    let events: Vec<Value> = numbers
        .iter()
        .map(|n| json!({"eventId": format!("d-{n}"), "phoneNumber": n, "type": "disconnected", "date": "2024-02-25"}))
        .collect();
    app.accept(&carrier, json!(events)).await;
    rx.then(&vec![Reply::Hang; 6]);
    let config = DeliveryConfig {
        allow_loopback: true,
        timeout_ms: 300,
        in_flight_per_endpoint_max: 2,
        round_budget_ms: 100,
        ..DeliveryConfig::default()
    };
    let slow = Deliverer::new(app.store.clone(), config).unwrap();
    // The first wave starts at once; the second would start after a 300 ms timeout, past the budget.
    assert_eq!(slow.run_once().await.unwrap(), 2);
    let due = app.store.due_by_endpoint(now(&app), 100, 10, vec![]).await.unwrap();
    assert_eq!(due.iter().map(Vec::len).collect::<Vec<_>>(), [4], "the rest wait for the next round");
}

/// One bank's endpoint accepts connections and never answers, with more due deliveries than a round
/// takes, created first; another bank's deliveries come after. With the deliverer running as the
/// server runs it, the second bank is served within seconds, and so is a notification that arrives
/// while the first bank's attempts still hang.
async fn an_endpoint_that_never_answers_does_not_hold_back_another_institutions(db: TestDb) {
    use std::time::Duration;
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let (hang_rx, hang_url) = receiver().await;
    let (quick_rx, quick_url) = receiver().await;
    let (_, hang_bank) = app.participant(Role::Institution, "Hang Bank", &[]).await;
    let (_, quick_bank) = app.participant(Role::Institution, "Quick Bank", &[]).await;
    // Eight endpoints that never answer: as many attempts in flight as the old shared limit allowed.
    for _ in 0..8 {
        assert_eq!(app.post("/v1/webhook-endpoints", &hang_bank, json!({ "url": hang_url })).await.status, 201);
    }
    assert_eq!(app.post("/v1/webhook-endpoints", &quick_bank, json!({ "url": quick_url })).await.status, 201);
    hang_rx.then(&vec![Reply::Hang; 8 * 1_200]);
    let number = |i: usize| format!("+861380{i:07}");
    let bind_and_disconnect = |bank: &str, range: std::ops::Range<usize>| {
        let numbers: Vec<String> = range.map(number).collect();
        let (app, carrier, bank) = (&app, &carrier, bank.to_string());
        async move {
            for part in numbers.chunks(600) {
                let items: Vec<Value> =
                    part.iter().map(|n| json!({"accountRef": n, "phoneNumber": n, "boundOn": "2023-01-01"})).collect();
                assert_eq!(app.post("/v1/bindings", &bank, json!({ "bindings": items })).await.status, 200);
                let events: Vec<Value> = part
                    .iter()
                    .map(|n| json!({"eventId": format!("d{n}"), "phoneNumber": n, "type": "disconnected", "date": "2024-02-25"}))
                    .collect();
                app.accept(carrier, json!(events)).await;
            }
        }
    };
    bind_and_disconnect(&hang_bank, 0..1_200).await;
    bind_and_disconnect(&quick_bank, 1_200..1_205).await;
    let deliverer = slow_deliverer(&app);
    let wake = deliverer.waker();
    let (stop, running) = run_in_background(deliverer);
    assert!(quick_rx.wait_for(5, Duration::from_secs(10)).await, "served within seconds");
    assert!(hang_rx.wait_for(64, Duration::from_secs(10)).await, "the hanging endpoints' attempts are in flight");
    // A notification while the other bank's attempts still hang goes out as promptly.
    bind_and_disconnect(&quick_bank, 1_205..1_206).await;
    wake.notify_one();
    assert!(quick_rx.wait_for(6, Duration::from_secs(10)).await, "the next one too");
    let _ = stop.send(());
    running.await.unwrap();
}

/// The deliverer stops while an endpoint has answered one attempt and hangs on the next: the answered
/// one is recorded as delivered (not sent again after the restart), the hanging one stays due.
async fn at_shutdown_the_attempts_made_are_recorded(db: TestDb) {
    use std::time::Duration;
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (carrier, bank, ..) = setup(&app, &url).await;
    let other = "+8613800000001";
    app.post(
        "/v1/bindings",
        &bank,
        json!({"bindings": [{"accountRef": "acct-2", "phoneNumber": other, "boundOn": "2023-01-01"}]}),
    )
    .await;
    disconnect(&app, &carrier, "d1", N, "2024-02-25").await;
    disconnect(&app, &carrier, "d2", other, "2024-02-25").await;
    rx.then(&[Reply::Status(204), Reply::Hang]);
    let (stop, running) = run_in_background(slow_deliverer(&app));
    assert!(rx.wait_for(2, Duration::from_secs(10)).await);
    let _ = stop.send(());
    running.await.unwrap();
    let got = rx.received();
    let states: Vec<String> = {
        let mut out = Vec::new();
        for r in &got {
            let id = r.headers["webhook-id"].to_str().unwrap();
            out.push(deliveries(&app, id).await[0].state.clone());
        }
        out
    };
    assert_eq!(states, ["delivered", "pending"], "the answered attempt was recorded");
}

/// A deliverer whose attempts wait a minute for an answer, and which stops promptly.
fn slow_deliverer(app: &TestApp) -> Deliverer {
    let config = DeliveryConfig {
        allow_loopback: true,
        timeout_ms: 60_000,
        shutdown_grace_ms: 200,
        ..DeliveryConfig::default()
    };
    Deliverer::new(app.store.clone(), config).unwrap()
}

/// The deliverer's background loop, as the server runs it; what stops it, and its task.
fn run_in_background(deliverer: Deliverer) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(deliverer.run(async move {
        let _ = stopped.await;
    }));
    (stop, running)
}

/// The endpoint's own tools: a test event reaches it alone, signed, and is in its log with the
/// receiver's status; a delivery is sent again with the same webhook-id; a disabled endpoint refuses
/// tests and replays until it is enabled again. Another institution reaches none of it: the same 404
/// as an id no one has.
async fn an_endpoint_is_tested_logged_replayed_and_enabled_again(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let (other_rx, other_url) = receiver().await;
    let (carrier, bank, secret, endpoint) = setup(&app, &url).await;
    let second = app.post("/v1/webhook-endpoints", &bank, json!({ "url": other_url })).await;
    assert_eq!(second.status, 201);

    let empty = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), &bank).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body["deliveries"], json!([]));

    rx.then(&[Reply::Status(503)]);
    let sent = app.post(&format!("/v1/webhook-endpoints/{endpoint}/test"), &bank, json!({})).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let test_id = sent.body["notificationId"].as_str().unwrap().to_string();
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert!(other_rx.received().is_empty(), "a test goes to its endpoint alone");
    assert_eq!(got[0].headers["webhook-id"], test_id.as_str());
    assert_eq!(verify(&secret, &got[0]), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.test");

    let log = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), &bank).await.body;
    let d = &log["deliveries"][0];
    assert_eq!(d["notificationId"], test_id.as_str());
    assert_eq!(
        (d["type"].as_str(), d["state"].as_str(), d["attempts"].as_u64()),
        (Some("webhook.test"), Some("pending"), Some(1))
    );
    assert_eq!(d["lastStatus"], 503);
    assert!(d["nextAttemptAt"].as_i64().unwrap() > now(&app));

    // Sent again now, from the first attempt, with the same id.
    let again =
        app.post(&format!("/v1/webhook-endpoints/{endpoint}/deliveries/{test_id}/replay"), &bank, json!({})).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1);
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].headers["webhook-id"], test_id.as_str());
    let d = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), &bank).await.body["deliveries"][0].clone();
    assert_eq!(
        (d["state"].as_str(), d["attempts"].as_u64(), d["lastStatus"].as_u64()),
        (Some("delivered"), Some(1), Some(200))
    );
    assert!(d.get("nextAttemptAt").is_none());

    // Pages of the log: one at a time, then the cursor runs out.
    app.post(&format!("/v1/webhook-endpoints/{endpoint}/test"), &bank, json!({})).await;
    let first = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=1"), &bank).await.body;
    assert_eq!(first["deliveries"].as_array().unwrap().len(), 1);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest =
        app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=1&after={cursor}"), &bank).await.body;
    assert_eq!(rest["deliveries"][0]["notificationId"], test_id.as_str(), "older after newer");
    let bad = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries?after=x"), &bank).await;
    assert_error(&bad, 400, "INVALID_ARGUMENT");

    // Disabled (it answered 410): tests and replays are refused until it is enabled again.
    rx.then(&[Reply::Status(410)]);
    app.deliverer.run_once().await.unwrap();
    let e = app.get(&format!("/v1/webhook-endpoints/{endpoint}"), &bank).await.body;
    assert_eq!(e["enabled"], false);
    assert_error(&app.post(&format!("/v1/webhook-endpoints/{endpoint}/test"), &bank, json!({})).await, 409, "CONFLICT");
    let replay = format!("/v1/webhook-endpoints/{endpoint}/deliveries/{test_id}/replay");
    assert_error(&app.post(&replay, &bank, json!({})).await, 409, "CONFLICT");
    let enabled = app.post(&format!("/v1/webhook-endpoints/{endpoint}/enable"), &bank, json!({})).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.body["enabled"], true);
    assert!(enabled.body.get("disabledReason").is_none());
    assert_eq!(app.post(&replay, &bank, json!({})).await.status, 202);
    assert_eq!(app.deliverer.run_once().await.unwrap(), 1);
    assert_eq!(rx.received().last().unwrap().headers["webhook-id"], test_id.as_str());

    // Another institution: every one of these is the 404 of an id no one has.
    let other = app.institution().await;
    let unknown = "whe_00000000000000000000";
    for id in [endpoint.as_str(), unknown] {
        for (method, path) in [
            ("GET", format!("/v1/webhook-endpoints/{id}")),
            ("GET", format!("/v1/webhook-endpoints/{id}/deliveries")),
            ("POST", format!("/v1/webhook-endpoints/{id}/test")),
            ("POST", format!("/v1/webhook-endpoints/{id}/enable")),
            ("POST", format!("/v1/webhook-endpoints/{id}/deliveries/{test_id}/replay")),
        ] {
            let r =
                if method == "GET" { app.get(&path, &other).await } else { app.post(&path, &other, json!({})).await };
            assert_error(&r, 404, "NOT_FOUND");
        }
    }
    let unknown_delivery = format!("/v1/webhook-endpoints/{endpoint}/deliveries/ntf_00000000000000000000/replay");
    assert_error(&app.post(&unknown_delivery, &bank, json!({})).await, 404, "NOT_FOUND");
    // A carrier is not an institution.
    assert_error(
        &app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), &carrier).await,
        403,
        "PERMISSION_DENIED",
    );
}

async fn an_endpoint_taking_batches_gets_them_signed_whole_and_retried_as_one(db: TestDb) {
    let app = TestApp::new(db);
    let (rx, url) = receiver().await;
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    // batchEvents is 1 to 100.
    for bad in [json!(0), json!(101), json!("3"), json!(-1)] {
        let r = app.post("/v1/webhook-endpoints", &bank, json!({ "url": url, "batchEvents": bad })).await;
        assert_error(&r, 400, "INVALID_ARGUMENT");
    }
    let r = app.post("/v1/webhook-endpoints", &bank, json!({ "url": url, "batchEvents": 3 })).await;
    assert_eq!((r.status, r.body["batchEvents"].as_u64()), (201, Some(3)), "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let listed = app.get("/v1/webhook-endpoints", &bank).await;
    assert_eq!(listed.body["endpoints"][0]["batchEvents"], 3, "{}", listed.text);
    // Seven bound numbers, all disconnected at once: seven notifications, in requests of 3, 3 and 1.
    let numbers: Vec<String> = (0..7).map(|i| format!("+86138001380{i:02}")).collect();
    let bindings: Vec<Value> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"accountRef": format!("acct-{i}"), "phoneNumber": n, "boundOn": "2023-01-01"}))
        .collect();
    assert_eq!(app.post("/v1/bindings", &bank, json!({ "bindings": bindings })).await.status, 200);
    let events: Vec<Value> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"eventId": format!("d{i}"), "phoneNumber": n, "type": "disconnected", "date": "2024-02-25"}))
        .collect();
    app.accept(&carrier, Value::Array(events)).await;
    let feed = app.get("/v1/notifications", &bank).await;
    let mut notified: Vec<String> =
        feed.body["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect();
    notified.sort();
    assert_eq!(notified.len(), 7, "{}", feed.text);

    // The first request to arrive fails: its events, and only they, are sent again, together.
    rx.then(&[Reply::Status(500)]);
    assert_eq!(app.deliverer.run_once().await.unwrap(), 7, "seven deliveries attempted");
    let first = rx.received();
    let mut sizes: Vec<usize> = Vec::new();
    let mut sent: Vec<String> = Vec::new();
    let ids_of = |r: &crate::receiver::Received| -> Vec<String> {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        body.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
    };
    for r in &first {
        assert_eq!(r.headers["content-type"], "application/cloudevents-batch+json");
        assert!(r.headers["webhook-id"].to_str().unwrap().starts_with("bat_"), "{:?}", r.headers);
        assert_eq!(verify(&secret, r), 1, "the batch's signature verifies");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        for e in body.as_array().unwrap() {
            assert_eq!((e["specversion"].as_str(), e["type"].as_str()), (Some("1.0"), Some("number.disconnected")));
        }
        sizes.push(body.as_array().unwrap().len());
        sent.extend(ids_of(r));
    }
    sizes.sort();
    assert_eq!(sizes, [1, 3, 3]);
    sent.sort();
    assert_eq!(sent, notified, "each notification once, with its own id");
    let failed = &first[0];
    let failed_ids = ids_of(failed);
    for id in &notified {
        let d = &deliveries(&app, id).await[0];
        let expected = if failed_ids.contains(id) { (1, "pending") } else { (1, "delivered") };
        assert_eq!((d.attempts, d.state.as_str()), expected, "{id}");
    }
    // The batch's id is derived from its events' ids.
    let expected_id = workers::webhooks::batch_id(failed_ids.iter().map(String::as_str));
    assert_eq!(failed.headers["webhook-id"], expected_id.as_str());
    // Five seconds on, the failed batch goes again and fails again; five minutes and their jitter on, a
    // third time: each time the same events under the same webhook-id.
    rx.then(&[Reply::Status(503)]);
    advance(&app, 6);
    assert_eq!(app.deliverer.run_once().await.unwrap(), failed_ids.len());
    advance(&app, 331);
    assert_eq!(app.deliverer.run_once().await.unwrap(), failed_ids.len());
    let again = &rx.received()[first.len()..];
    assert_eq!(again.len(), 2);
    for r in again {
        assert_eq!(r.headers["webhook-id"], expected_id.as_str());
        assert_eq!(ids_of(r), failed_ids);
        assert_eq!(verify(&secret, r), 1);
    }
    for id in &notified {
        assert_eq!(deliveries(&app, id).await[0].state, "delivered", "{id}");
    }
}
