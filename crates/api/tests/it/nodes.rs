//! Two nodes on one database: every response says the position its node's answers reflect
//! (`numlink-position`), and a request that names one (`numlink-min-position`) is answered by the
//! other node only from at least that state. Work either node may take — a file's job, an endpoint's
//! deliveries — is claimed by one node at a time, and taken over from where it stood when that
//! node's claim runs out.

use axum::body::Body;
use axum::http::Method;
use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::receiver::receiver;
use crate::{Resp, TestApp, assert_error};

backend_tests!(
    a_check_on_another_node_answers_from_the_position_of_a_write,
    a_position_not_reached_or_not_a_number_is_refused,
    a_key_revoked_through_one_node_is_refused_by_the_other,
    a_file_queued_on_one_node_is_run_by_the_other_and_read_on_either,
    a_job_whose_node_stopped_is_taken_over_from_its_checkpoint,
    an_endpoints_deliveries_are_attempted_by_one_node_at_a_time,
    a_clients_code_requests_count_on_every_node,
    a_code_queued_on_a_node_that_stopped_is_sent_by_the_other,
    a_second_process_under_a_nodes_name_is_told
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

/// The history of [`NUMBER`]: disconnected 2024-02-25, taken by a new subscriber 2024-09-21.
async fn recycled(app: &TestApp, carrier: &str) {
    app.accept(
        carrier,
        json!([
            {"eventId": "a-cancel", "phoneNumber": NUMBER, "type": "disconnected", "date": "2024-02-25"},
            {"eventId": "b-signs", "phoneNumber": NUMBER, "type": "activated", "date": "2024-09-21"},
        ]),
    )
    .await;
}

/// A check file of ten rows on [`NUMBER`], and its result.
fn ten_checks() -> (String, String) {
    let mut csv = String::from("phone_number,date\n");
    let mut expected = String::from("phone_number,date,answer\n");
    for i in 0..10 {
        let (d, answer) = if i % 2 == 0 { ("2023-12-22", "yes") } else { ("2024-10-01", "no") };
        csv.push_str(&format!("{NUMBER},{d}\n"));
        expected.push_str(&format!("{NUMBER},{d},{answer}\n"));
    }
    (csv, expected)
}

async fn upload_checks(app: &TestApp, key: &str, csv: &str) -> String {
    let r = app
        .request(
            Method::POST,
            "/v1/check-files",
            Some(key),
            &[("content-type", "text/csv")],
            Body::from(csv.to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body["jobId"].as_str().unwrap().to_string()
}

/// A check file uploaded to node A is answered by node B's runner (on PostgreSQL from the database's
/// copy, A's own being gone), and its result read through either node; a lifecycle file uploaded to B
/// is applied by A.
async fn a_file_queued_on_one_node_is_run_by_the_other_and_read_on_either(db: TestDb) {
    let a = TestApp::new(db);
    let b = a.another_node();
    let carrier = a.carrier().await;
    recycled(&a, &carrier).await;
    let bank = a.institution().await;
    let (csv, expected) = ten_checks();
    let id = upload_checks(&a, &bank, &csv).await;
    if a.store.shares_files() {
        assert!(std::fs::read_dir(a.spool.path()).unwrap().next().is_none(), "the database keeps the file, not A");
    }
    assert!(b.runner.run_once().await.unwrap());
    assert!(!b.runner.run_once().await.unwrap(), "nothing left");
    assert!(!a.runner.run_once().await.unwrap(), "nothing left for A either");
    for node in [&a, &b] {
        let job = node.get(&format!("/v1/jobs/{id}"), &bank).await;
        assert_eq!((job.body["state"].as_str(), job.body["accepted"].as_u64()), (Some("succeeded"), Some(10)));
        let r = node.get(&format!("/v1/jobs/{id}/result"), &bank).await;
        assert_eq!((r.status, r.text.as_str()), (200, expected.as_str()));
    }
    let other = "+8613800138077";
    let r =
        b.upload(&carrier, &format!("event_id,phone_number,type,date\nf-1,{other},disconnected,2025-01-02\n")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.body["jobId"].as_str().unwrap().to_string();
    assert!(a.runner.run_once().await.unwrap());
    let done = b.get(&format!("/v1/jobs/{job}"), &carrier).await.body;
    assert_eq!((done["state"].as_str(), done["accepted"].as_u64()), (Some("succeeded"), Some(1)), "{done}");
    assert_eq!(a.store.verify_audit().await.unwrap().first_broken, None);
    drop(b);
}

/// Node A claims a check file's job and commits its first chunk, then stops (as if killed). While
/// its claim lasts, B leaves the job alone; once it has run out, B takes the job from A's checkpoint:
/// every row answered and audited once, the result whole.
async fn a_job_whose_node_stopped_is_taken_over_from_its_checkpoint(db: TestDb) {
    let mut limits = api::Limits::default();
    limits.files.check_chunk_rows = 3;
    let a = TestApp::with_limits(db, limits);
    let b = a.another_node();
    let carrier = a.carrier().await;
    recycled(&a, &carrier).await;
    let bank = a.institution().await;
    let (csv, expected) = ten_checks();
    let id = upload_checks(&a, &bank, &csv).await;
    assert!(a.runner.run_chunks(1).await.unwrap());
    let job = a.get(&format!("/v1/jobs/{id}"), &bank).await;
    assert_eq!((job.body["state"].as_str(), job.body["rowsRead"].as_u64()), (Some("running"), Some(3)));
    assert!(!b.runner.run_once().await.unwrap(), "A's claim holds");
    a.advance(store::JOB_LEASE_SECS + 1);
    // B takes the job; A, alive after all, cannot move it from its checkpoint any more.
    let taken = b.store.next_job().await.unwrap().expect("A's claim ran out");
    assert_eq!((taken.rows_read, taken.claimed_by.as_deref()), (3, Some(b.store.node())), "from A's checkpoint");
    let to = store::Checkpoint {
        next_offset: taken.byte_offset + 1,
        next_line: taken.line + 1,
        finished: false,
        result_bytes: taken.result_bytes,
        rows_total: None,
    };
    let refused = a.store.apply_chunk(&taken, vec![], to).await.unwrap();
    assert_eq!((refused.byte_offset, refused.rows_read), (taken.byte_offset, 3), "not applied: B holds the job");
    b.runner.run_until_idle().await.unwrap();
    let job = b.get(&format!("/v1/jobs/{id}"), &bank).await;
    assert_eq!((job.body["state"].as_str(), job.body["rowsRead"].as_u64()), (Some("succeeded"), Some(10)));
    let r = a.get(&format!("/v1/jobs/{id}/result"), &bank).await;
    assert_eq!((r.status, r.text.as_str()), (200, expected.as_str()));
    assert_eq!(a.store.logged_checks(1000).await.unwrap().len(), 10, "each number audited once");
    assert_eq!(a.store.verify_audit().await.unwrap().first_broken, None);
    drop(b);
}

/// Both nodes' deliverers run a round at once: the endpoint's delivery is attempted by one of them,
/// once. A node that claimed an endpoint's deliveries and stopped before recording anything holds
/// them until its claim runs out; then the other node delivers them, with the same webhook-id.
async fn an_endpoints_deliveries_are_attempted_by_one_node_at_a_time(db: TestDb) {
    use domain::Clock;
    let a = TestApp::new(db);
    let b = a.another_node();
    let (rx, url) = receiver().await;
    let carrier = a.carrier().await;
    let bank = a.institution().await;
    let r = a.post("/v1/webhook-endpoints", &bank, json!({ "url": url })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = "+8613800138001";
    let bindings = json!({"bindings": [
        {"accountRef": "acct-1", "phoneNumber": NUMBER, "boundOn": "2023-01-01"},
        {"accountRef": "acct-2", "phoneNumber": second, "boundOn": "2023-01-01"},
    ]});
    assert_eq!(a.post("/v1/bindings", &bank, bindings).await.status, 200);
    let disconnect = |id: &str, number: &str| json!([{"eventId": id, "phoneNumber": number, "type": "disconnected", "date": "2024-02-25"}]);
    a.accept(&carrier, disconnect("d-1", NUMBER)).await;
    let (made_a, made_b) = tokio::join!(a.deliverer.run_once(), b.deliverer.run_once());
    assert_eq!(made_a.unwrap() + made_b.unwrap(), 1, "one attempt, by one node");
    assert_eq!(rx.received().len(), 1);
    // A takes the endpoint's deliveries for a lane, and stops before it attempts any.
    b.accept(&carrier, disconnect("d-2", second)).await;
    let now = a.clock.now().as_second();
    let taken = a.store.due_by_endpoint(now, 10, 10, vec![]).await.unwrap();
    assert_eq!(taken.iter().map(Vec::len).collect::<Vec<_>>(), vec![1]);
    let id = taken[0][0].notification.id.to_string();
    assert_eq!(b.deliverer.run_once().await.unwrap(), 0, "A's claim holds");
    a.advance(store::LANE_LEASE_SECS + 1);
    assert_eq!(b.deliverer.run_once().await.unwrap(), 1);
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].headers["webhook-id"].to_str().unwrap(), id, "the same webhook-id");
    assert_ne!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    drop(b);
}

/// A code request from a client address.
fn code_request(addr: &str, n: &str) -> axum::http::Request<Body> {
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/holder/otp")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "phoneNumber": n }).to_string()))
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr.parse::<std::net::SocketAddr>().unwrap()));
    req
}

/// One address's code requests (20 an hour) count the same whichever node they reach: ten through
/// each, and the next is refused by both; another address is not.
async fn a_clients_code_requests_count_on_every_node(db: TestDb) {
    let a = TestApp::new(db);
    let b = a.another_node();
    a.carrier().await;
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = node.send(code_request("198.51.100.7:40000", &format!("+86138001380{i:02}"))).await;
        assert_eq!(r.status, 201, "request {i}: {}", r.text);
    }
    for node in [&a, &b] {
        let r = node.send(code_request("198.51.100.7:40001", "+8613800138099")).await;
        assert_error(&r, 429, "TOO_MANY_REQUESTS");
        assert_eq!(r.headers["retry-after"], "3600");
    }
    assert_eq!(b.send(code_request("198.51.100.8:40000", "+8613800138099")).await.status, 201, "another address");
    drop(b);
}

/// The JSON lines an SMS outbox file holds.
fn outbox_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Codes wait in the database's outbox, sealed: node A queues one and claims it, then stops before
/// sending; node B sends it once A's claim has run out. Both nodes' senders at once send a code once.
/// A full outbox takes no more; a code that expired unsent is dropped.
async fn a_code_queued_on_a_node_that_stopped_is_sent_by_the_other(db: TestDb) {
    use domain::Clock;
    let a = TestApp::new(db);
    let b = a.another_node();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sms.jsonl");
    let sink = || workers::SmsSink::File(file.clone());
    let (queue_a, sender_a) = workers::SmsSender::new(a.store.clone(), sink(), 2).unwrap();
    let (_, sender_b) = workers::SmsSender::new(b.store.clone(), sink(), 2).unwrap();
    let now = a.clock.now().as_second();
    let code = |text: &str, expires_at: i64| workers::SmsMessage {
        phone_number: NUMBER.into(),
        text: text.into(),
        gateway: None,
        expires_at,
    };
    queue_a.push(code("111111 is your code", now + 600)).await.unwrap();
    let sealed: Vec<String> = a.db.query_texts("SELECT sealed FROM sms_outbox");
    assert!(sealed.len() == 1 && !sealed[0].contains("111111"), "the code is sealed in the outbox");
    assert_eq!(a.store.claim_sms(16).await.unwrap().len(), 1, "A claims it, and stops");
    assert_eq!(sender_b.run_once().await.unwrap(), 0, "A's claim holds");
    a.advance(store::SMS_LEASE_SECS + 1);
    assert_eq!(sender_b.run_once().await.unwrap(), 1);
    assert_eq!(outbox_lines(&file), vec![json!({"phoneNumber": NUMBER, "text": "111111 is your code"})]);
    // Both senders at once: one of them sends it.
    let now = a.clock.now().as_second();
    queue_a.push(code("222222 is your code", now + 600)).await.unwrap();
    let (sent_a, sent_b) = tokio::join!(sender_a.run_once(), sender_b.run_once());
    assert_eq!(sent_a.unwrap() + sent_b.unwrap(), 1);
    assert_eq!(outbox_lines(&file).len(), 2);
    // Two may wait; a third is not kept. One whose code expires unsent is dropped.
    for text in ["333333", "444444", "555555"] {
        queue_a.push(code(text, now + 600)).await.unwrap();
    }
    assert_eq!(a.db.query_texts("SELECT sealed FROM sms_outbox").len(), 2, "the third was not kept");
    a.advance(601);
    assert_eq!(sender_b.run_once().await.unwrap(), 0, "expired, not sent");
    assert_eq!(outbox_lines(&file).len(), 2);
    assert!(a.db.query_texts("SELECT sealed FROM sms_outbox").is_empty(), "and gone from the outbox");
    drop(b);
}

/// A node's name is held by the process running as it: a second process under the same name hears
/// of the first as long as the first renews its hold; once it stops renewing (it died), the second
/// takes the name over.
async fn a_second_process_under_a_nodes_name_is_told(db: TestDb) {
    let a = TestApp::new(db);
    let same = a.db.beside().open_configured(a.clock.clone(), |c| c.node = Some(a.store.node().to_string()));
    assert_eq!(a.store.announce_node("boot-1".into()).await.unwrap(), None, "the first holds the name");
    let held = same.announce_node("boot-2".into()).await.unwrap();
    assert!(held.is_some(), "the second hears of the first");
    a.advance(10);
    assert_eq!(a.store.announce_node("boot-1".into()).await.unwrap(), None, "the first renews");
    let renewed = same.announce_node("boot-2".into()).await.unwrap();
    assert!(renewed > held, "and the second sees the hold move on: two processes, one name");
    a.advance(store::NODE_NAME_LEASE_SECS + 1);
    assert_eq!(same.announce_node("boot-2".into()).await.unwrap(), None, "the first's hold ran out");
    drop(same);
}
