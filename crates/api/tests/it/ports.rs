//! R3, a port takes both sides: a carrier's `ported_in` moves a number (and its one-time codes) only
//! once the serving carrier's `ported_out` of the same day is stored. The attack of a carrier taking a
//! subscriber's number on its own word, refused at each step; both arrival orders of a real port; a
//! donor naming its recipient; a pending port that expires; the number-portability database's whole
//! ports; lifecycle files.

use domain::PhoneNumber;
use serde_json::{Value, json};
use store::testing::TestDb;
use store::{Role, StoredEvent, backend_tests};

use crate::receiver::{Receiver, receiver};
use crate::{TestApp, assert_error};

backend_tests!(
    no_carrier_takes_a_number_on_its_own_word,
    a_port_is_the_same_whichever_half_arrives_first,
    a_donor_names_the_one_carrier_that_completes_its_port,
    a_pending_port_expires_unapplied,
    the_portability_database_reports_whole_ports,
    lifecycle_files_count_pending_ports,
);

/// A subscriber of carrier A, holding the number since 2025-01-15.
const N: &str = "+8613800138000";

struct Carriers {
    a: String,
    a_gateway: Receiver,
    b: String,
    b_id: String,
    b_gateway: Receiver,
    c: String,
}

async fn gateway(app: &TestApp, key: &str) -> Receiver {
    let (rx, url) = receiver().await;
    let r = app
        .request(
            axum::http::Method::PUT,
            "/v1/sms-gateway",
            Some(key),
            &[("content-type", "application/json")],
            axum::body::Body::from(json!({ "url": url }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    rx
}

/// Carrier A (+86138, serving N's holder), carriers B (+86139) and C (+86137), A and B with SMS gateways.
async fn carriers(app: &TestApp) -> Carriers {
    let a = app.carrier().await;
    let (b_participant, b) = app.participant(Role::Carrier, "Carrier B", &["+86139"]).await;
    let (_, c) = app.participant(Role::Carrier, "Carrier C", &["+86137"]).await;
    let (a_gateway, b_gateway) = (gateway(app, &a).await, gateway(app, &b).await);
    app.accept(&a, json!([{"eventId": "a1", "phoneNumber": N, "type": "activated", "date": "2025-01-15"}])).await;
    Carriers { a, a_gateway, b, b_id: b_participant.id.to_string(), b_gateway, c }
}

fn port(id: &str, n: &str, kind: &str, date: &str) -> Value {
    json!({"eventId": id, "phoneNumber": n, "type": kind, "date": date})
}

/// Which gateways a code for `n` goes to: (A's, B's) SMS counts after a code request.
async fn code_goes_to(app: &TestApp, c: &Carriers, n: &str) -> (usize, usize) {
    let (a0, b0) = (c.a_gateway.received().len(), c.b_gateway.received().len());
    let r = app
        .request(
            axum::http::Method::POST,
            "/v1/holder/otp",
            None,
            &[("content-type", "application/json")],
            axum::body::Body::from(json!({ "phoneNumber": n }).to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.sms.run_once().await.unwrap();
    (c.a_gateway.received().len() - a0, c.b_gateway.received().len() - b0)
}

fn number(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n).unwrap()
}

/// A history as (reporter, type, date, recipient), the event ids left out.
async fn history(app: &TestApp, n: &str) -> Vec<(String, String, String, Option<String>)> {
    let shown = |e: StoredEvent| (e.reporter_id, e.kind.as_str().to_string(), e.date.to_string(), e.recipient_id);
    app.store.events_of(number(n)).await.unwrap().into_iter().map(shown).collect()
}

async fn no_carrier_takes_a_number_on_its_own_word(db: TestDb) {
    let app = TestApp::new(db);
    let c = carriers(&app).await;
    let bank = app.institution().await;
    let r = app
        .post(
            "/v1/bindings",
            &bank,
            json!({"bindings": [{"accountRef": "acct", "phoneNumber": N, "boundOn": "2025-02-01"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // 1. Carrier B says the number ported in to it; carrier A said nothing. Kept pending, not applied.
    let r = app.events(&c.b, json!([port("steal", N, "ported_in", "2025-06-01")])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["accepted"].as_u64(), r.body["pending"].as_u64()), (Some(0), Some(1)), "{}", r.text);
    assert_eq!(r.body["pendingEvents"][0]["eventId"], "steal");
    assert_eq!(r.body["rejected"], json!([]));
    let listed = app.get("/v1/pending-ports", &c.b).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["pending"][0]["phoneNumber"], N);
    assert_eq!(listed.body["pending"][0]["date"], "2025-06-01");
    assert_eq!(app.get("/v1/pending-ports", &c.a).await.body["pending"], json!([]), "a carrier sees its own only");
    // Sent again, it is pending again; its id with another payload is a conflict.
    let r = app.events(&c.b, json!([port("steal", N, "ported_in", "2025-06-01")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);
    let r = app.events(&c.b, json!([port("steal", N, "ported_in", "2025-06-02")])).await;
    assert_eq!(r.body["rejected"][0]["code"], "CONFLICT", "{}", r.text);

    // 2. The number's one-time codes still go to the carrier that serves it.
    assert_eq!(code_goes_to(&app, &c, N).await, (1, 0));

    // 3. B cannot report the number disconnected: the bank hears nothing.
    let r = app.events(&c.b, json!([port("cut", N, "disconnected", "2025-06-10")])).await;
    assert_eq!(r.body["rejected"][0]["code"], "NOT_NUMBER_HOLDER", "{}", r.text);
    assert_eq!(app.get("/v1/notifications", &bank).await.body["notifications"], json!([]));

    // A claim on a disconnected number waits like any other: it tells B nothing of the number.
    let m = "+8613800138001";
    app.accept(&c.a, json!([port("m-a", m, "activated", "2025-01-15"), port("m-d", m, "disconnected", "2025-03-01")]))
        .await;
    let r = app.events(&c.b, json!([port("probe", m, "ported_in", "2025-06-01")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);

    // 4. A still reports on its own subscriber.
    app.accept(&c.a, json!([port("t1", N, "transferred", "2025-06-20")])).await;
    assert_eq!(history(&app, N).await.len(), 2, "the ported_in is not in the history");
    assert_eq!(app.store.verify_audit().await.unwrap().first_broken, None);
}

async fn a_port_is_the_same_whichever_half_arrives_first(db: TestDb) {
    let app = TestApp::new(db);
    let c = carriers(&app).await;
    let other = "+8613800138009";
    app.accept(&c.a, json!([port("a2", other, "activated", "2025-01-15")])).await;

    // The donor first, then the recipient.
    app.accept(&c.a, json!([port("out-1", N, "ported_out", "2025-05-01")])).await;
    app.accept(&c.b, json!([port("in-1", N, "ported_in", "2025-05-01")])).await;
    // The recipient first (kept pending), then the donor, whose ported_out completes the port.
    let r = app.events(&c.b, json!([port("in-2", other, "ported_in", "2025-05-01")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);
    app.accept(&c.a, json!([port("out-2", other, "ported_out", "2025-05-01")])).await;
    assert_eq!(app.get("/v1/pending-ports", &c.b).await.body["pending"], json!([]), "applied, no longer pending");

    let first = history(&app, N).await;
    assert_eq!(first, history(&app, other).await);
    assert_eq!(first.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(), ["activated", "ported_out", "ported_in"]);
    assert_eq!(first[2].0, c.b_id, "the ported_in is the recipient's");
    // Codes go to the recipient for both; the recipient reports on both, the donor on neither.
    assert_eq!(code_goes_to(&app, &c, N).await, (0, 1));
    assert_eq!(code_goes_to(&app, &c, other).await, (0, 1));
    for (n, id) in [(N, "d-1"), (other, "d-2")] {
        let r = app.events(&c.a, json!([port(id, n, "disconnected", "2025-06-01")])).await;
        assert_eq!(r.body["rejected"][0]["code"], "NOT_NUMBER_HOLDER", "{}", r.text);
        app.accept(&c.b, json!([port(id, n, "disconnected", "2025-06-01")])).await;
    }
    // Re-sent, each half is a duplicate.
    let r = app.events(&c.b, json!([port("in-2", other, "ported_in", "2025-05-01")])).await;
    assert_eq!(r.body["duplicates"], 1, "{}", r.text);
    // The completed ported_in is audited as the recipient's accepted event.
    assert_eq!(app.store.verify_audit().await.unwrap().first_broken, None);
    let tail = app.store.audit_tail(50).await.unwrap();
    assert!(
        tail.iter().any(|r| r.action == "events" && r.actor == c.b_id && r.detail.contains("completedPorts")),
        "{tail:?}"
    );
}

async fn a_donor_names_the_one_carrier_that_completes_its_port(db: TestDb) {
    let app = TestApp::new(db);
    let c = carriers(&app).await;
    // C races B for the port; the donor names B.
    let r = app.events(&c.c, json!([port("c-in", N, "ported_in", "2025-05-01")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);
    let r = app.events(&c.b, json!([port("b-in", N, "ported_in", "2025-05-01")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);
    let out =
        json!([{"eventId": "out", "phoneNumber": N, "type": "ported_out", "date": "2025-05-01", "recipient": c.b_id}]);
    app.accept(&c.a, out).await;
    let h = history(&app, N).await;
    assert_eq!(h[1], (h[1].0.clone(), "ported_out".into(), "2025-05-01".into(), Some(c.b_id.clone())));
    assert_eq!((h[2].0.as_str(), h[2].1.as_str()), (c.b_id.as_str(), "ported_in"), "the named recipient completed it");
    assert_eq!(code_goes_to(&app, &c, N).await, (0, 1));
    // C's waits on, and can no longer complete anything.
    assert_eq!(app.get("/v1/pending-ports", &c.c).await.body["pending"].as_array().unwrap().len(), 1);
    // A ported_out that names no recipient while two carriers wait applies neither.
    let m = "+8613800138002";
    app.accept(&c.a, json!([port("m1", m, "activated", "2025-01-15")])).await;
    app.events(&c.c, json!([port("c-m", m, "ported_in", "2025-05-02")])).await;
    app.events(&c.b, json!([port("b-m", m, "ported_in", "2025-05-02")])).await;
    app.accept(&c.a, json!([port("m-out", m, "ported_out", "2025-05-02")])).await;
    assert_eq!(history(&app, m).await.len(), 2, "activated and ported_out only");
    // B sends its own again, now that the ported_out is stored: it completes the port, and waits no more.
    app.accept(&c.b, json!([port("b-m", m, "ported_in", "2025-05-02")])).await;
    let pending = app.get("/v1/pending-ports", &c.b).await.body["pending"].clone();
    assert!(pending.as_array().unwrap().iter().all(|p| p["eventId"] != "b-m"), "{pending}");
    // C's, sent again, still waits: B serves the number now, and no ported_out of B's names C.
    let r = app.events(&c.c, json!([port("c-m", m, "ported_in", "2025-05-02")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);
    assert_eq!(history(&app, m).await[2].0, c.b_id);
    // A recipient that is no carrier is refused.
    let bad = json!([{"eventId": "x", "phoneNumber": m, "type": "ported_out", "date": "2025-05-03", "recipient": "car_nope"}]);
    let r = app.events(&c.a, bad).await;
    assert_eq!(r.body["rejected"][0]["code"], "INVALID_ARGUMENT", "{}", r.text);
}

async fn a_pending_port_expires_unapplied(db: TestDb) {
    let app = TestApp::new(db);
    let c = carriers(&app).await;
    let r = app.events(&c.b, json!([port("late", N, "ported_in", "2025-06-01")])).await;
    assert_eq!(r.body["pending"], 1, "{}", r.text);
    let expires = app.get("/v1/pending-ports", &c.b).await.body["pending"][0]["expiresAt"].clone();
    assert!(expires.as_str().unwrap().starts_with("2025-07-30"), "30 days after it was received: {expires}");
    app.advance(31 * 86_400);
    // Not applied once expired, whether or not the sweep has run yet...
    assert_eq!(app.get("/v1/pending-ports", &c.b).await.body["pending"], json!([]));
    // ...and the upkeep drops it, audited.
    let upkeep = workers::Upkeep::new(app.store.clone(), workers::UpkeepConfig::default());
    assert!(!upkeep.run_once().await.unwrap(), "one step was enough");
    let tail = app.store.audit_tail(5).await.unwrap();
    assert!(tail.iter().any(|r| r.action == "port.expired" && r.actor == c.b_id), "{tail:?}");
    app.accept(&c.a, json!([port("out", N, "ported_out", "2025-06-01")])).await;
    let kinds: Vec<String> = history(&app, N).await.into_iter().map(|e| e.1).collect();
    assert_eq!(kinds, ["activated", "ported_out"]);
    // Nobody serves a number ported away and never ported in: no code is sent.
    assert_eq!(code_goes_to(&app, &c, N).await, (0, 0));
    // Sent again now, B's ported_in completes the port.
    app.accept(&c.b, json!([port("late", N, "ported_in", "2025-06-01")])).await;
    assert_eq!(code_goes_to(&app, &c, N).await, (0, 1));
    assert_eq!(app.store.verify_audit().await.unwrap().first_broken, None);
}

async fn the_portability_database_reports_whole_ports(db: TestDb) {
    let app = TestApp::new(db);
    let c = carriers(&app).await;
    let (_, npdb) = app.participant(Role::Portability, "National NPDB", &[]).await;
    let whole = |id: &str, recipient: &str| json!([{"eventId": id, "phoneNumber": N, "type": "ported_in", "date": "2025-05-01", "recipient": recipient}]);
    app.accept(&npdb, whole("np-1", &c.b_id)).await;
    assert_eq!(code_goes_to(&app, &c, N).await, (0, 1));
    app.accept(&c.b, json!([port("d", N, "disconnected", "2025-06-01")])).await;
    // The database reports whole ports only; a carrier names a recipient only on its ported_out.
    for (key, events) in [
        (&npdb, json!([port("np-2", N, "disconnected", "2025-06-02")])),
        (&npdb, json!([port("np-3", N, "ported_in", "2025-06-02")])),
        (&c.a, whole("a-in", &c.b_id)),
    ] {
        let r = app.events(key, events).await;
        assert_eq!(r.body["rejected"][0]["code"], "INVALID_ARGUMENT", "{}", r.text);
    }
    // It reports, it does not check or bind.
    let r =
        app.post("/v1/reassignment-checks", &npdb, json!({"items": [{"phoneNumber": N, "date": "2025-01-01"}]})).await;
    assert_error(&r, 403, "PERMISSION_DENIED");
    // A whole port of a number in no carrier's range: coverage starts with it.
    let outside = "+447700900123";
    let r = app
        .events(&npdb, json!([{"eventId": "np-4", "phoneNumber": outside, "type": "ported_in", "date": "2025-05-01", "recipient": c.b_id}]))
        .await;
    assert_eq!(r.body["accepted"], 1, "{}", r.text);
    let r = app.events(&c.b, json!([port("in-uk", outside, "ported_in", "2025-05-02")])).await;
    assert_eq!(r.body["pending"], 1, "a carrier's own word is not enough outside the ranges either: {}", r.text);
}

async fn lifecycle_files_count_pending_ports(db: TestDb) {
    let app = TestApp::new(db);
    let c = carriers(&app).await;
    let other = "+8613800138009";
    app.accept(&c.a, json!([port("a2", other, "activated", "2025-01-15")])).await;
    let job = app
        .upload_and_apply(
            &c.b,
            &format!(
                "event_id,phone_number,type,date\nin-1,{N},ported_in,2025-05-01\nin-2,{other},ported_in,2025-05-01\n"
            ),
        )
        .await;
    assert_eq!((job["accepted"].as_u64(), job["pending"].as_u64()), (Some(0), Some(2)), "{job}");
    // The donor's file names the recipient in the fifth column, on one row of two.
    let csv = format!(
        "event_id,phone_number,type,date,recipient\nout-1,{N},ported_out,2025-05-01,{}\nout-2,{other},ported_out,2025-05-01,\n",
        c.b_id
    );
    let job = app.upload_and_apply(&c.a, &csv).await;
    assert_eq!((job["accepted"].as_u64(), job["rejected"].as_u64()), (Some(2), Some(0)), "{job}");
    assert_eq!(app.get("/v1/pending-ports", &c.b).await.body["pending"], json!([]));
    assert_eq!(code_goes_to(&app, &c, N).await, (0, 1));
    assert_eq!(code_goes_to(&app, &c, other).await, (0, 1));
}
