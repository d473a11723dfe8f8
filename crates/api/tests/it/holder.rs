//! The holder's side over HTTP: one-time codes through a real SMS gateway receiver (every limit on the
//! injected clock), sessions scoped to one number, R5 (only bindings from before the tenure), unbind
//! requests from ask to answer, deadlines in working days, lookups, proofs of tenure verified by an
//! independent verifier against the JWKS, key rotation, and the regulator's report.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::Clock;
use serde_json::{Value, json};
use store::testing::TestDb;
use store::{Role, backend_tests};

use crate::receiver::{Receiver, receiver, verify};
use crate::{TestApp, assert_error};

backend_tests!(
    a_holder_unbinds_a_previous_holders_bank,
    the_code_request_answers_alike_for_every_number,
    otp_send_limits_per_hour_and_day,
    otp_guesses_expiry_and_single_use,
    a_hundred_wrong_codes_lock_the_number_for_a_day,
    r5_bindings_of_the_current_tenure_are_out_of_reach,
    each_party_sees_only_its_own,
    deadlines_count_working_days_and_turn_overdue,
    lookups_show_checks_of_this_tenure_only,
    proofs_of_tenure_survive_key_rotation_until_they_expire,
    a_clerk_checks_a_proof_on_the_verify_page_in_either_language,
    codes_follow_a_ported_number,
    a_session_ends_when_the_number_changes_hands,
    a_second_change_of_holder_on_the_same_day_ends_the_session,
    a_code_proves_possession_only_in_the_tenure_it_was_sent_in,
    a_loopback_gateway_is_not_called_once_loopback_is_not_allowed,
    one_client_address_cannot_ask_codes_for_everyone,
    a_flood_of_code_requests_from_elsewhere_does_not_lock_the_holder_out,
    requests_close_when_the_bindings_go_another_way,
);

/// The number whose second-hand holder the tests follow.
pub(crate) const N: &str = "+8613800138000";
/// A number that nobody holds (never activated, in the carrier's range).
const M: &str = "+8613800138001";

/// A carrier with an SMS gateway at a real receiver, N's history (a previous holder until 2024-09-01,
/// the current one since 2025-01-15), the previous holder's bank ("Old Bank", bound 2022) and the new
/// holder's bank ("New Bank", bound 2025-03-01, during the current tenure).
pub(crate) struct World {
    pub(crate) carrier: String,
    pub(crate) gateway: Receiver,
    pub(crate) gateway_secret: String,
    pub(crate) gateway_url: String,
    pub(crate) old_bank: String,
    pub(crate) old_bank_id: String,
    pub(crate) new_bank: String,
    pub(crate) regulator: String,
}

pub(crate) async fn world(app: &TestApp) -> World {
    let carrier = app.carrier().await;
    let (gateway, url) = receiver().await;
    let r = app.request(
        axum::http::Method::PUT,
        "/v1/sms-gateway",
        Some(&carrier),
        &[("content-type", "application/json")],
        axum::body::Body::from(json!({ "url": url }).to_string()),
    );
    let r = r.await;
    assert_eq!(r.status, 200, "{}", r.text);
    let gateway_secret = r.body["secret"].as_str().unwrap().to_string();
    let shown = app.get("/v1/sms-gateway", &carrier).await;
    assert_eq!((shown.status, shown.body["url"].as_str()), (200, Some(url.as_str())), "{}", shown.text);
    assert!(shown.body.get("secret").is_none(), "the secret is shown only when set");
    app.accept(
        &carrier,
        json!([
            {"eventId": "a1", "phoneNumber": N, "type": "activated", "date": "2021-03-01"},
            {"eventId": "d1", "phoneNumber": N, "type": "disconnected", "date": "2024-09-01"},
            {"eventId": "a2", "phoneNumber": N, "type": "activated", "date": "2025-01-15"},
        ]),
    )
    .await;
    let (old, old_bank) = app.participant(Role::Institution, "Old Bank", &[]).await;
    let (_, new_bank) = app.participant(Role::Institution, "New Bank", &[]).await;
    let (_, regulator) = app.participant(Role::Regulator, "Regulator", &[]).await;
    for (key, account, day) in [
        (&old_bank, "old-acct-1", "2022-05-01"),
        (&old_bank, "old-acct-2", "2023-01-01"),
        (&new_bank, "new-acct", "2025-03-01"),
    ] {
        let r = app
            .post("/v1/bindings", key, json!({"bindings": [{"accountRef": account, "phoneNumber": N, "boundOn": day}]}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    World {
        carrier,
        gateway,
        gateway_secret,
        gateway_url: url,
        old_bank,
        old_bank_id: old.id.to_string(),
        new_bank,
        regulator,
    }
}

async fn public_post(app: &TestApp, path: &str, body: Value) -> crate::Resp {
    app.request(
        axum::http::Method::POST,
        path,
        None,
        &[("content-type", "application/json")],
        axum::body::Body::from(body.to_string()),
    )
    .await
}

/// Asks for a code; returns the challenge id.
pub(crate) async fn ask_code(app: &TestApp, n: &str) -> String {
    let r = public_post(app, "/v1/holder/otp", json!({ "phoneNumber": n })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["challengeId"].as_str().unwrap().to_string()
}

/// The code of the last SMS the gateway received for `n`, after checking its signature.
pub(crate) async fn last_code(app: &TestApp, w: &World, n: &str) -> String {
    app.sms.run_once().await.unwrap();
    let got = w.gateway.received();
    let last = got.last().expect("the gateway received an SMS");
    assert_eq!(verify(&w.gateway_secret, last), 1, "the SMS is signed with the gateway's secret");
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["phoneNumber"], n);
    let text = body["text"].as_str().unwrap();
    let code: String = text.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{text}");
    code
}

async fn session(app: &TestApp, n: &str, challenge: &str, code: &str) -> crate::Resp {
    public_post(app, "/v1/holder/session", json!({ "phoneNumber": n, "challengeId": challenge, "code": code })).await
}

/// Proves possession of `n`; returns the holder token.
pub(crate) async fn login(app: &TestApp, w: &World, n: &str) -> String {
    let challenge = ask_code(app, n).await;
    let code = last_code(app, w, n).await;
    let r = session(app, n, &challenge, &code).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["phoneNumber"], n);
    r.body["token"].as_str().unwrap().to_string()
}

/// A wrong code for a challenge whose right code is `right`.
fn wrong(right: &str) -> String {
    let d: u32 = right.parse().unwrap();
    format!("{:06}", (d + 1) % 1_000_000)
}

/// Verifies a compact JWS the way an institution would, independently of numlink's verifier: the key
/// by `kid` from the JWK Set, Ed25519 over `header.payload`. Returns the claims.
fn verify_offline(token: &str, jwks: &Value) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts[..] else { return Err("not three parts".into()) };
    let header: Value =
        serde_json::from_slice(&B64.decode(h).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if header["alg"] != "EdDSA" {
        return Err("alg".into());
    }
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).ok_or("no such kid")?;
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let x: [u8; 32] = B64.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|e| e.to_string())?;
    let sig: [u8; 64] = B64.decode(s).map_err(|e| e.to_string())?.try_into().map_err(|_| "sig length")?;
    key.verify_strict(format!("{h}.{p}").as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&B64.decode(p).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

async fn jwks(app: &TestApp) -> Value {
    let r = app.request(axum::http::Method::GET, "/.well-known/jwks.json", None, &[], axum::body::Body::empty()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn a_holder_unbinds_a_previous_holders_bank(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let (bank_rx, bank_url) = receiver().await;
    let r = app.post("/v1/webhook-endpoints", &w.old_bank, json!({ "url": bank_url })).await;
    let bank_secret = r.body["secret"].as_str().unwrap().to_string();
    let token = login(&app, &w, N).await;

    // The holder sees the previous holder's bank, with a count, and nothing else.
    let r = app.get("/v1/holder/bindings", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["phoneNumber"], N);
    let list = r.body["institutions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.text);
    assert_eq!((list[0]["name"].as_str(), list[0]["bindings"].as_u64()), (Some("Old Bank"), Some(2)));
    assert!(!r.text.contains("old-acct") && !r.text.contains("New Bank"), "{}", r.text);

    // One action asks every such institution.
    let r = app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let req = &r.body["requests"][0];
    assert_eq!((req["state"].as_str(), req["overdue"].as_bool()), (Some("open"), Some(false)));
    // 2025-06-30 is a Monday: five working days later is the next Monday.
    assert_eq!(req["deadline"], "2025-07-07");
    let request_id = req["id"].as_str().unwrap().to_string();

    // The bank hears it by webhook, signed, with the holder's proof of tenure, and in its feed.
    app.deliverer.run_once().await.unwrap();
    let got = bank_rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(verify(&bank_secret, &got[0]), 1);
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["type"], "unbind.requested");
    assert_eq!(event["data"]["unbindRequestId"], request_id.as_str());
    assert_eq!(event["data"]["deadline"], "2025-07-07");
    let claims = verify_offline(event["data"]["attestation"].as_str().unwrap(), &jwks(&app).await).unwrap();
    assert_eq!((claims["sub"].as_str(), claims["held_since"].as_str()), (Some(N), Some("2025-02-01")));
    let feed = app.get("/v1/notifications", &w.old_bank).await;
    assert!(
        feed.body["notifications"].as_array().unwrap().iter().any(|n| n["type"] == "unbind.requested"),
        "{}",
        feed.text
    );

    // The bank reads which of its accounts are concerned, and unbinds them two hours later.
    let r = app.get(&format!("/v1/unbind-requests/{request_id}"), &w.old_bank).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refs: Vec<&str> =
        r.body["bindings"].as_array().unwrap().iter().map(|b| b["accountRef"].as_str().unwrap()).collect();
    assert_eq!(refs.len(), 2, "{}", r.text);
    assert!(refs.contains(&"old-acct-1") && refs.contains(&"old-acct-2"));
    app.advance(7200);
    // Half of the notifications about them filed by binding, half waiting (the writer's upkeep moves
    // them): unbinding answers both.
    assert_eq!(app.store.file_notifications_step(2).await.unwrap(), 2);
    let r = app
        .post(&format!("/v1/unbind-requests/{request_id}/resolve"), &w.old_bank, json!({"outcome": "unbound"}))
        .await;
    assert_eq!((r.status, r.body["bindingsRemoved"].as_u64()), (200, Some(2)), "{}", r.text);
    let again = app
        .post(&format!("/v1/unbind-requests/{request_id}/resolve"), &w.old_bank, json!({"outcome": "unbound"}))
        .await;
    assert_error(&again, 409, "CONFLICT");
    assert_eq!(app.get("/v1/bindings", &w.old_bank).await.body["bindings"], json!([]));
    assert_eq!(app.get("/v1/bindings", &w.new_bank).await.body["bindings"].as_array().unwrap().len(), 1);

    // The holder sees it done (in a new session: the first lasted 15 minutes).
    assert_error(&app.get("/v1/holder/unbind-requests", &token).await, 401, "UNAUTHENTICATED");
    let token = login(&app, &w, N).await;
    let r = app.get("/v1/holder/unbind-requests", &token).await;
    assert_eq!(r.body["requests"][0]["state"], "unbound", "{}", r.text);
    let r = app.get("/v1/holder/bindings", &token).await;
    assert_eq!(r.body["institutions"][0]["bindings"], 0);
    assert_eq!(r.body["institutions"][0]["unbindRequest"]["state"], "unbound");

    // The regulator counts it.
    let r = app.get("/v1/reports/institutions", &w.regulator).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let line = r.body["institutions"].as_array().unwrap().iter().find(|l| l["name"] == "Old Bank").unwrap().clone();
    assert_eq!(
        (line["resolved"].as_u64(), line["open"].as_u64(), line["resolveSecondsMedian"].as_i64()),
        (Some(1), Some(0), Some(7200)),
        "{line}"
    );
    assert_error(&app.get("/v1/reports/institutions", &w.old_bank).await, 403, "PERMISSION_DENIED");
    // Unbinding answered the notifications about those bindings too: none counts against the bank later.
    app.advance(10 * 86_400);
    let r = app.get("/v1/reports/institutions", &w.regulator).await;
    let line = r.body["institutions"].as_array().unwrap().iter().find(|l| l["name"] == "Old Bank").unwrap().clone();
    assert_eq!(
        (line["notificationsUnackedOverdue"].as_u64(), line["resolvedLate"].as_u64()),
        (Some(0), Some(0)),
        "{line}"
    );

    // Nothing of the flow stored the number, or the proof that states it, readably without the key.
    let digits = &N[1..];
    let forms: Vec<Vec<u8>> = vec![
        digits.into(),
        N.into(),
        store::sha256(N.as_bytes()).to_vec(),
        store::sha256(digits.as_bytes()).to_vec(),
        b"eyJ".to_vec(), // the start of any JWS, whose payload states the number
    ];
    let tables = [
        "otp_challenges",
        "otp_numbers",
        "unbind_requests",
        "unbind_request_bindings",
        "notifications",
        "deliveries",
        "audit",
    ];
    let cells = crate::bindings::dump_tables(&app, &tables).await;
    assert!(cells.iter().any(|(t, _)| t == "unbind_requests"));
    for (table, cell) in cells {
        for f in &forms {
            assert!(!cell.windows(f.len()).any(|w| w == f.as_slice()), "{table} holds the number or a proof in clear");
        }
    }
}

async fn the_code_request_answers_alike_for_every_number(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // N: held and bound. M: in range, never activated (no holder). A number no carrier ever reported. A
    // disconnected one.
    let d = "+8613800138002";
    app.accept(&w.carrier, json!([{"eventId": "dd", "phoneNumber": d, "type": "disconnected", "date": "2025-06-01"}]))
        .await;
    let mut shapes = Vec::new();
    for n in [N, M, "+8613899999999", d] {
        let r = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": n })).await;
        let keys: Vec<String> = r.body.as_object().unwrap().keys().cloned().collect();
        let id = r.body["challengeId"].as_str().unwrap();
        shapes.push((
            r.status,
            keys,
            id.len(),
            r.body["expiresInSeconds"].clone(),
            r.headers.get("content-type").cloned(),
        ));
    }
    assert!(shapes.windows(2).all(|p| p[0] == p[1]), "{shapes:?}");
    // Codes go only where someone may hold the number: N, and the numbers of the range no event names
    // (held since before coverage); never to the disconnected one.
    app.sms.run_once().await.unwrap();
    // (Sent at once, they arrive in any order.)
    let mut to: Vec<String> = w
        .gateway
        .received()
        .iter()
        .map(|m| serde_json::from_slice::<Value>(&m.body).unwrap()["phoneNumber"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    let mut expected = vec![N.to_string(), M.to_string(), "+8613899999999".to_string()];
    expected.sort();
    assert_eq!(to, expected);
    let bad = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": "13800138000" })).await;
    assert_error(&bad, 400, "INVALID_ARGUMENT");
    // A number in no carrier's range: numlink says it does not cover it (ranges are public), and sends
    // nothing.
    let uncovered = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": "+4915112345678" })).await;
    assert_error(&uncovered, 422, "SERVICE_NOT_APPLICABLE");
}

async fn otp_send_limits_per_hour_and_day(db: TestDb) {
    let app = TestApp::new(db);
    world(&app).await;
    for _ in 0..5 {
        ask_code(&app, N).await;
        app.advance(60);
    }
    let r = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": N })).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    // The first of the five was 300 s ago: it leaves the hour in 3,300 s.
    assert_eq!(r.headers["retry-after"], "3300");
    // Another number is not affected.
    ask_code(&app, M).await;
    app.advance(3600);
    for _ in 0..5 {
        ask_code(&app, N).await;
    }
    // Ten in the day (now 7,500 s after the first).
    app.advance(3600);
    let r = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": N })).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    assert!(r.body["message"].as_str().unwrap().contains("10 per day"), "{}", r.text);
    assert_eq!(r.headers["retry-after"], (86_400 - 7_500).to_string());
    // A day after the first send, one slot frees, and only one.
    app.advance(86_400 - 7_500 + 1);
    ask_code(&app, N).await;
    let r = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": N })).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
}

async fn otp_guesses_expiry_and_single_use(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // Five wrong guesses use a challenge up, even for the right code after them.
    let challenge = ask_code(&app, N).await;
    let code = last_code(&app, &w, N).await;
    for left in (0..5).rev() {
        let r = session(&app, N, &challenge, &wrong(&code)).await;
        assert_error(&r, 400, "OTP_VERIFICATION_FAILED");
        assert!(r.body["message"].as_str().unwrap().contains(&format!("{left} more")), "{}", r.text);
    }
    let out = session(&app, N, &challenge, &code).await;
    assert_error(&out, 400, "OTP_VERIFICATION_EXPIRED");
    assert!(out.body["message"].as_str().unwrap().contains("out of tries"), "{}", out.text);
    // A code is bound to its challenge and its number.
    let c1 = ask_code(&app, N).await;
    let code1 = last_code(&app, &w, N).await;
    let c2 = ask_code(&app, N).await;
    let code2 = last_code(&app, &w, N).await;
    if code1 != code2 {
        assert_error(&session(&app, N, &c2, &code1).await, 400, "OTP_VERIFICATION_FAILED");
    }
    assert_error(&session(&app, M, &c1, &code1).await, 400, "OTP_VERIFICATION_EXPIRED");
    // Single use.
    assert_eq!(session(&app, N, &c1, &code1).await.status, 201);
    assert_error(&session(&app, N, &c1, &code1).await, 400, "OTP_VERIFICATION_EXPIRED");
    // Ten minutes, then expired.
    app.advance(601);
    assert_error(&session(&app, N, &c2, &code2).await, 400, "OTP_VERIFICATION_EXPIRED");
    // Malformed codes are refused without counting.
    assert_error(&session(&app, N, &c2, "12345").await, 400, "INVALID_ARGUMENT");
    // The session token lives 15 minutes.
    let token = login(&app, &w, N).await;
    assert_eq!(app.get("/v1/holder/bindings", &token).await.status, 200);
    app.advance(901);
    assert_error(&app.get("/v1/holder/bindings", &token).await, 401, "UNAUTHENTICATED");
}

async fn a_hundred_wrong_codes_lock_the_number_for_a_day(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // 20 challenges × 5 wrong guesses, spread so that no send limit is hit (8 per 24 hours).
    let mut last = (String::new(), String::new());
    for i in 0..20 {
        let c = ask_code(&app, N).await;
        let code = last_code(&app, &w, N).await;
        for g in 0..5 {
            let r = session(&app, N, &c, &wrong(&code)).await;
            if i == 19 && g == 4 {
                assert_error(&r, 429, "TOO_MANY_REQUESTS");
                assert_eq!(r.headers["retry-after"], "86400");
            } else {
                assert_error(&r, 400, "OTP_VERIFICATION_FAILED");
            }
        }
        last = (c, code);
        app.advance(3 * 3600);
    }
    // Locked: no code is sent and none is accepted, whatever the challenge.
    let r = public_post(&app, "/v1/holder/otp", json!({ "phoneNumber": N })).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    assert_error(&session(&app, N, &last.0, &last.1).await, 429, "TOO_MANY_REQUESTS");
    // A day after the lock, codes work again; a success resets the count.
    app.advance(86_400 - 3 * 3600);
    login(&app, &w, N).await;
}

async fn r5_bindings_of_the_current_tenure_are_out_of_reach(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // The old bank also bound the number to an account of the new holder, on the tenure's first day and later.
    for (acct, day) in [("holder-own-1", "2025-01-15"), ("holder-own-2", "2025-04-01")] {
        app.post(
            "/v1/bindings",
            &w.old_bank,
            json!({"bindings": [{"accountRef": acct, "phoneNumber": N, "boundOn": day}]}),
        )
        .await;
    }
    let token = login(&app, &w, N).await;
    let r = app.get("/v1/holder/bindings", &token).await;
    assert_eq!(r.body["institutions"].as_array().unwrap().len(), 1, "{}", r.text);
    assert_eq!(r.body["institutions"][0]["bindings"], 2, "only the two made before 2025-01-15: {}", r.text);
    // The new bank holds only a binding of this tenure: it cannot be asked.
    let new_bank_id =
        app.store.list_participants().await.unwrap().into_iter().find(|p| p.name == "New Bank").unwrap().id.to_string();
    let r = app.post("/v1/holder/unbind-requests", &token, json!({ "institutionIds": [new_bank_id] })).await;
    assert_error(&r, 404, "NOT_FOUND");
    let r = app.post("/v1/holder/unbind-requests", &token, json!({ "institutionIds": [w.old_bank_id] })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Asking again while it is open answers the same request.
    let again = app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    assert_eq!(again.body["requests"][0]["id"], r.body["requests"][0]["id"]);
    assert_eq!(again.body["requests"].as_array().unwrap().len(), 1);
    let id = r.body["requests"][0]["id"].as_str().unwrap();
    let r = app.post(&format!("/v1/unbind-requests/{id}/resolve"), &w.old_bank, json!({"outcome": "unbound"})).await;
    assert_eq!(r.body["bindingsRemoved"], 2, "{}", r.text);
    let mut left: Vec<String> = app.get("/v1/bindings", &w.old_bank).await.body["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["accountRef"].as_str().unwrap().to_string())
        .collect();
    left.sort();
    assert_eq!(left, vec!["holder-own-1", "holder-own-2"], "the holder's own bindings stay");
    // Bad bodies.
    for body in
        [json!({}), json!({"all": false}), json!({"all": true, "institutionIds": ["x"]}), json!({"institutionIds": []})]
    {
        assert_error(&app.post("/v1/holder/unbind-requests", &token, body).await, 400, "INVALID_ARGUMENT");
    }
}

async fn each_party_sees_only_its_own(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let token = login(&app, &w, N).await;
    let r = app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    let id = r.body["requests"][0]["id"].as_str().unwrap().to_string();
    // Another institution cannot read or answer it.
    assert_error(&app.get(&format!("/v1/unbind-requests/{id}"), &w.new_bank).await, 404, "NOT_FOUND");
    let r = app.post(&format!("/v1/unbind-requests/{id}/resolve"), &w.new_bank, json!({"outcome": "unbound"})).await;
    assert_error(&r, 404, "NOT_FOUND");
    assert_eq!(app.get("/v1/unbind-requests", &w.new_bank).await.body["requests"], json!([]));
    assert_eq!(app.get("/v1/unbind-requests", &w.old_bank).await.body["requests"].as_array().unwrap().len(), 1);
    // A rejection needs a listed reason.
    let bad = app.post(&format!("/v1/unbind-requests/{id}/resolve"), &w.old_bank, json!({"outcome": "rejected"})).await;
    assert_error(&bad, 400, "INVALID_ARGUMENT");
    let bad = app
        .post(
            &format!("/v1/unbind-requests/{id}/resolve"),
            &w.old_bank,
            json!({"outcome": "rejected", "reason": "nope"}),
        )
        .await;
    assert_error(&bad, 400, "INVALID_ARGUMENT");
    let ok = app
        .post(
            &format!("/v1/unbind-requests/{id}/resolve"),
            &w.old_bank,
            json!({"outcome": "rejected", "reason": "legal_hold"}),
        )
        .await;
    assert_eq!(
        (ok.status, ok.body["state"].as_str(), ok.body["reason"].as_str()),
        (200, Some("rejected"), Some("legal_hold"))
    );
    let holder_view = app.get("/v1/holder/unbind-requests", &token).await;
    assert_eq!(holder_view.body["requests"][0]["reason"], "legal_hold");
    assert!(!holder_view.text.contains("old-acct"), "never an account reference: {}", holder_view.text);
    // A holder token cannot be read or altered: it does not show the number, and any change voids it.
    assert!(!token.contains(&N[1..]), "{token}");
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    assert_error(&app.get("/v1/holder/bindings", std::str::from_utf8(&forged).unwrap()).await, 401, "UNAUTHENTICATED");
    // A rejection stands 30 days: asking all again answers it, without a new notification.
    let again = app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    assert_eq!(
        (again.body["requests"][0]["id"].as_str(), again.body["requests"][0]["state"].as_str()),
        (Some(id.as_str()), Some("rejected"))
    );
    let report = app.get("/v1/reports/institutions", &w.regulator).await;
    let line =
        report.body["institutions"].as_array().unwrap().iter().find(|l| l["name"] == "Old Bank").unwrap().clone();
    assert_eq!(
        (line["rejected"].as_u64(), line["rejectedByReason"].clone()),
        (Some(1), json!({"legal_hold": 1})),
        "{line}"
    );
    app.advance(31 * 86_400);
    let token = login(&app, &w, N).await;
    let later = app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    assert_ne!(later.body["requests"][0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(later.body["requests"][0]["state"], "open");
    // Participants' keys are not holder tokens, and holder tokens are not keys.
    assert_error(&app.get("/v1/holder/bindings", &w.old_bank).await, 401, "UNAUTHENTICATED");
    assert_error(&app.get("/v1/bindings", &token).await, 401, "UNAUTHENTICATED");
    assert_error(&app.get("/v1/unbind-requests", &w.carrier).await, 403, "PERMISSION_DENIED");
}

async fn deadlines_count_working_days_and_turn_overdue(db: TestDb) {
    let config = api::HolderConfig {
        unbind_deadline_working_days: domain::DaysByCallingCode::new(5, []).with_code("86", 2),
        ..api::HolderConfig::default()
    };
    let app = TestApp::configured(db, api::Limits::default(), config);
    let w = world(&app).await;
    // Friday 2025-07-04: two working days end on Tuesday.
    app.advance(4 * 86_400);
    let token = login(&app, &w, N).await;
    let r = app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    assert_eq!(r.body["requests"][0]["deadline"], "2025-07-08", "{}", r.text);
    // On the deadline it is not overdue yet; the day after, it is.
    app.advance(4 * 86_400);
    let token = login(&app, &w, N).await;
    assert_eq!(app.get("/v1/holder/unbind-requests", &token).await.body["requests"][0]["overdue"], false);
    app.advance(86_400);
    let token = login(&app, &w, N).await;
    let r = app.get("/v1/holder/unbind-requests", &token).await;
    assert_eq!(
        (r.body["requests"][0]["state"].as_str(), r.body["requests"][0]["overdue"].as_bool()),
        (Some("open"), Some(true))
    );
    let report = app.get("/v1/reports/institutions", &w.regulator).await;
    let line =
        report.body["institutions"].as_array().unwrap().iter().find(|l| l["name"] == "Old Bank").unwrap().clone();
    assert_eq!((line["open"].as_u64(), line["overdue"].as_u64()), (Some(1), Some(1)), "{line}");
    // The binding notifications of the disconnection and the reissue, never acknowledged, are more
    // than five working days old by now (2025-06-30 → 2025-07-09 is seven).
    assert_eq!(line["notificationsUnackedOverdue"], 4, "{line}");
}

async fn lookups_show_checks_of_this_tenure_only(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let check = |key: String| {
        let app = &app;
        async move {
            let r = app
                .post("/number-recycling/v0.2/check", &key, json!({"phoneNumber": N, "specifiedDate": "2024-01-01"}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    };
    let today = app.clock.now();
    // A check between the previous tenure and this one (within 180 days, but not this holder's business).
    app.clock.set(domain::FixedClock::at_day(domain::Day::parse("2025-01-10").unwrap()).now());
    check(w.old_bank.clone()).await;
    app.clock.set(today);
    check(w.new_bank.clone()).await;
    check(w.old_bank.clone()).await;
    let token = login(&app, &w, N).await;
    let r = app.get("/v1/holder/lookups", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> =
        r.body["lookups"].as_array().unwrap().iter().map(|l| l["institutionName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Old Bank", "New Bank"], "newest first, none before the tenure: {}", r.text);
    assert_eq!(r.body["lookups"][0]["kind"], "check");
    // The same once the checks' tags have moved into the lookups table (the writer does it when idle),
    // and with checks on both sides of that move.
    app.store.compact_lookups().await.unwrap();
    assert_eq!(app.get("/v1/holder/lookups", &token).await.body, r.body);
    let r = app
        .post(
            "/v1/reassignment-checks",
            &w.new_bank,
            json!({"items": [{"phoneNumber": M, "date": "2024-01-01"}, {"phoneNumber": N, "date": "2024-01-01"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/v1/holder/lookups", &token).await;
    let names: Vec<&str> =
        r.body["lookups"].as_array().unwrap().iter().map(|l| l["institutionName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["New Bank", "Old Bank", "New Bank"], "{}", r.text);
    // Not another number's: M's holder sees only the check of M.
    let m_token = login(&app, &w, M).await;
    let m = app.get("/v1/holder/lookups", &m_token).await.body;
    assert_eq!(m["lookups"].as_array().map(|l| l.len()), Some(1), "{m}");
    // 181 days later, those checks are out of the window.
    app.advance(181 * 86_400);
    let token = login(&app, &w, N).await;
    assert_eq!(app.get("/v1/holder/lookups", &token).await.body["lookups"], json!([]));
}

async fn proofs_of_tenure_survive_key_rotation_until_they_expire(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let token = login(&app, &w, N).await;
    let r = app.get("/v1/holder/attestation", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = r.body["attestation"].as_str().unwrap().to_string();
    assert_eq!(r.body["heldSince"], "2025-02-01", "the month after the tenure began, never earlier");
    let claims = verify_offline(&first, &jwks(&app).await).unwrap();
    assert_eq!(claims["phone_number"], N);
    let ttl = app.holder.attestation_ttl_secs;
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), ttl);
    assert!(claims["jti"].as_str().unwrap().starts_with("att_"));
    // numlink's own verifier agrees, and refuses any altered byte (unit-tested in full).
    let now = claims["iat"].as_i64().unwrap();
    assert!(api::attest::verify(&first, &jwks(&app).await, now, Some("numlink")).is_ok());
    let mut altered = first.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    assert!(verify_offline(std::str::from_utf8(&altered).unwrap(), &jwks(&app).await).is_err());

    // Rotation: new tokens use the new key; the old key stays published while its tokens live.
    let attester = api::attest::Attester::new(store::testing::test_hash_key(), "numlink", ttl);
    attester.rotate(&app.store).await.unwrap();
    app.advance(86_400);
    let token = login(&app, &w, N).await;
    let second = app.get("/v1/holder/attestation", &token).await.body["attestation"].as_str().unwrap().to_string();
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    verify_offline(&first, &keys).unwrap();
    verify_offline(&second, &keys).unwrap();
    // Once every token of the old key has expired, it is no longer published.
    app.advance(ttl);
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert!(verify_offline(&first, &keys).is_err());
    verify_offline(&second, &keys).unwrap();
}

async fn codes_follow_a_ported_number(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let (_, recipient) = app.participant(Role::Carrier, "Carrier B", &["+86139"]).await;
    let (b_gateway, b_url) = receiver().await;
    let r = app
        .request(
            axum::http::Method::PUT,
            "/v1/sms-gateway",
            Some(&recipient),
            &[("content-type", "application/json")],
            axum::body::Body::from(json!({ "url": b_url }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A port takes both sides: the donor's ported_out, then the recipient's ported_in.
    app.accept(&w.carrier, json!([{"eventId": "p0", "phoneNumber": N, "type": "ported_out", "date": "2025-05-01"}]))
        .await;
    app.accept(&recipient, json!([{"eventId": "p1", "phoneNumber": N, "type": "ported_in", "date": "2025-05-01"}]))
        .await;
    ask_code(&app, N).await;
    app.sms.run_once().await.unwrap();
    assert_eq!(b_gateway.received().len(), 1, "the recipient carrier sends the code now");
    assert_eq!(w.gateway.received().len(), 0, "the donor does not");
}

async fn a_session_ends_when_the_number_changes_hands(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let token = login(&app, &w, N).await;
    assert_eq!(app.get("/v1/holder/bindings", &token).await.status, 200);
    // A transfer reported while the session is open: the session belonged to the previous tenure.
    app.accept(&w.carrier, json!([{"eventId": "t1", "phoneNumber": N, "type": "transferred", "date": "2025-06-29"}]))
        .await;
    assert_error(&app.get("/v1/holder/bindings", &token).await, 401, "UNAUTHENTICATED");
    assert_error(&app.get("/v1/holder/attestation", &token).await, 401, "UNAUTHENTICATED");
    // The new holder logs in and sees the banks of both earlier tenures.
    let token = login(&app, &w, N).await;
    let names: Vec<String> = app.get("/v1/holder/bindings", &token).await.body["institutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["New Bank", "Old Bank"]);
}

async fn a_second_change_of_holder_on_the_same_day_ends_the_session(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    app.accept(&w.carrier, json!([{"eventId": "t1", "phoneNumber": N, "type": "transferred", "date": "2025-06-29"}]))
        .await;
    let token = login(&app, &w, N).await;
    assert_eq!(app.get("/v1/holder/attestation", &token).await.status, 200);
    // The number passes to someone else again, on the same day: the tenure's first day is unchanged.
    app.accept(&w.carrier, json!([{"eventId": "t2", "phoneNumber": N, "type": "transferred", "date": "2025-06-29"}]))
        .await;
    for path in ["/v1/holder/bindings", "/v1/holder/lookups", "/v1/holder/attestation", "/v1/holder/unbind-requests"] {
        let r = app.get(path, &token).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
        assert!(r.body["message"].as_str().unwrap().contains("changed hands"), "{path}: {}", r.text);
    }
    let r = app.post("/v1/holder/unbind-requests", &token, json!({"all": true})).await;
    assert_error(&r, 401, "UNAUTHENTICATED");
    // Porting is not a change of holder: a session survives it.
    let token = login(&app, &w, N).await;
    app.accept(&w.carrier, json!([{"eventId": "p1", "phoneNumber": N, "type": "ported_out", "date": "2025-06-30"}]))
        .await;
    assert_eq!(app.get("/v1/holder/bindings", &token).await.status, 200);
}

async fn a_code_proves_possession_only_in_the_tenure_it_was_sent_in(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // A code goes to the holder of today; the number then passes to someone else.
    let challenge = ask_code(&app, N).await;
    let code = last_code(&app, &w, N).await;
    app.accept(&w.carrier, json!([{"eventId": "t1", "phoneNumber": N, "type": "transferred", "date": "2025-06-30"}]))
        .await;
    // A wrong code says nothing of the number: it is a wrong code.
    let r = session(&app, N, &challenge, &wrong(&code)).await;
    assert_error(&r, 400, "OTP_VERIFICATION_FAILED");
    assert!(!r.body["message"].as_str().unwrap().contains("changed hands"), "{}", r.text);
    let r = session(&app, N, &challenge, &code).await;
    assert_error(&r, 400, "OTP_VERIFICATION_EXPIRED");
    assert!(r.body["message"].as_str().unwrap().contains("changed hands"), "{}", r.text);
    // The challenge is spent: the right code does not open a session later either.
    assert_error(&session(&app, N, &challenge, &code).await, 400, "OTP_VERIFICATION_EXPIRED");
    // The new holder proves possession with a code of their own.
    let token = login(&app, &w, N).await;
    assert_eq!(app.get("/v1/holder/lookups", &token).await.status, 200);
}

/// The carrier's gateway was registered while loopback addresses were allowed (the test server allows
/// them); a server started without that flag checks the address again when it sends, and does not call.
async fn a_loopback_gateway_is_not_called_once_loopback_is_not_allowed(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let issued =
        app.store.request_otp(domain::PhoneNumber::parse(N).unwrap(), app.holder.otp, None).await.unwrap().unwrap();
    assert!(issued.gateway.is_some());
    let strict = workers::DeliveryConfig { allow_loopback: false, ..workers::DeliveryConfig::default() };
    let (queue, sender) = workers::SmsSender::new(app.store.clone(), workers::SmsSink::Gateways(strict), 10).unwrap();
    let expires_at = domain::Clock::now(app.clock.as_ref()).as_second() + 600;
    queue
        .push(workers::SmsMessage {
            phone_number: N.into(),
            text: "123456".into(),
            gateway: issued.gateway,
            expires_at,
        })
        .await
        .unwrap();
    assert_eq!(sender.run_once().await.unwrap(), 0, "not sent");
    assert!(w.gateway.received().is_empty(), "the loopback gateway was not called");
}

async fn one_client_address_cannot_ask_codes_for_everyone(db: TestDb) {
    let app = TestApp::new(db);
    world(&app).await;
    let from = otp_from;
    // 20 an hour from one address, whatever the numbers.
    for i in 0..20 {
        let r = app.send(from("198.51.100.7:40000", &format!("+86138001380{i:02}"))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = app.send(from("198.51.100.7:40001", "+8613800138099")).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    assert_eq!(r.headers["retry-after"], "3600");
    assert_eq!(app.send(from("198.51.100.8:40000", "+8613800138099")).await.status, 201, "another address");
    app.advance(3600);
    assert_eq!(app.send(from("198.51.100.7:40000", "+8613800138099")).await.status, 201, "the next hour");
}

/// A code request from a given client address.
fn otp_from(addr: &str, n: &str) -> axum::http::Request<axum::body::Body> {
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/holder/otp")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({ "phoneNumber": n }).to_string()))
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr.parse::<std::net::SocketAddr>().unwrap()));
    req
}

/// Someone else asks codes for the holder's number until refused: from one address, from many in one
/// IPv6 /64; the holder, from their own address, still gets a code. Only a flood from more addresses
/// than the number-wide ceiling allows for reaches that ceiling.
async fn a_flood_of_code_requests_from_elsewhere_does_not_lock_the_holder_out(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    for _ in 0..5 {
        assert_eq!(app.send(otp_from("198.51.100.7:40000", N)).await.status, 201);
    }
    let r = app.send(otp_from("198.51.100.7:40000", N)).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    assert!(r.body["message"].as_str().unwrap().contains("from your address"), "{}", r.text);
    // One IPv6 /64 is one client, whichever of its addresses asks.
    for i in 1..=5 {
        assert_eq!(app.send(otp_from(&format!("[2001:db8:1:2::{i}]:40000"), N)).await.status, 201);
    }
    assert_error(&app.send(otp_from("[2001:db8:1:2:ffff::9]:40000", N)).await, 429, "TOO_MANY_REQUESTS");
    // The holder's own address has its own share.
    app.sms.run_once().await.unwrap();
    let before = w.gateway.received().len();
    assert_eq!(app.send(otp_from("203.0.113.5:50000", N)).await.status, 201, "the holder still gets a code");
    app.sms.run_once().await.unwrap();
    assert_eq!(w.gateway.received().len(), before + 1);
    // Thirty a day reach the number at most, whoever asks.
    for i in 0..19 {
        let addr = format!("192.0.2.{}:40000", i + 1);
        assert_eq!(app.send(otp_from(&addr, N)).await.status, 201, "{addr}");
    }
    let r = app.send(otp_from("192.0.2.200:40000", N)).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    assert!(r.body["message"].as_str().unwrap().contains("from all addresses"), "{}", r.text);
}

async fn requests_close_when_the_bindings_go_another_way(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let token = login(&app, &w, N).await;
    app.post("/v1/holder/unbind-requests", &token, json!({ "all": true })).await;
    let ids: Vec<String> = app.get("/v1/bindings", &w.old_bank).await.body["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    // The bank deletes the bindings itself: the request is done once the last one is gone.
    let r = app
        .request(
            axum::http::Method::DELETE,
            &format!("/v1/bindings/{}", ids[0]),
            Some(&w.old_bank),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.get("/v1/holder/unbind-requests", &token).await.body["requests"][0]["state"], "open");
    app.request(
        axum::http::Method::DELETE,
        &format!("/v1/bindings/{}", ids[1]),
        Some(&w.old_bank),
        &[],
        axum::body::Body::empty(),
    )
    .await;
    let r = app.get("/v1/holder/unbind-requests", &token).await;
    assert_eq!(r.body["requests"][0]["state"], "unbound", "{}", r.text);
}

async fn page(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> crate::Resp {
    app.request(axum::http::Method::GET, path, None, headers, axum::body::Body::empty()).await
}

/// `GET /verify` is public: a clerk pastes a proof (or opens its QR code's link) and reads, in their
/// language, whether numlink issued it and what it states; an altered one is refused, and says why.
async fn a_clerk_checks_a_proof_on_the_verify_page_in_either_language(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let token = login(&app, &w, N).await;
    let proof = app.get("/v1/holder/attestation", &token).await.body["attestation"].as_str().unwrap().to_string();
    let url = format!("/verify?token={proof}");

    // English, asked for by the browser: the verdict, what it states, dates in English.
    let en = page(&app, &url, &[("accept-language", "en-GB,en;q=0.9")]).await;
    assert_eq!(en.status, 200);
    assert!(en.text.contains(r#"<html lang="en">"#), "{}", en.text);
    assert!(en.text.contains("✓ Valid") && en.text.contains(N), "{}", en.text);
    assert!(en.text.contains("1 February 2025"), "held since, in English: {}", en.text);
    assert!(en.text.contains("UTC"), "{}", en.text);
    let csp = en.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let scripts: Vec<&str> = en.text.split("<script").skip(1).collect();
    assert!(
        scripts.iter().all(|s| s.starts_with(r#" src="/assets/portal.js" defer></script>"#)),
        "no inline script, only numlink's own file: {scripts:?}"
    );
    assert_eq!(en.headers["referrer-policy"], "no-referrer");
    assert_eq!(en.headers["content-language"], "en");

    // Chinese by default; the same proof, the same verdict.
    let zh = page(&app, &url, &[]).await;
    assert!(zh.text.contains(r#"<html lang="zh-CN">"#) && zh.text.contains("✓ 有效"), "{}", zh.text);
    assert!(zh.text.contains("2025年2月1日"), "held since, in Chinese: {}", zh.text);

    // One byte changed: not valid, and the reason in plain words.
    let mut altered = proof.clone().into_bytes();
    let at = altered.len() - 10;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let bad = page(&app, &format!("/verify?token={altered}"), &[("accept-language", "en")]).await;
    assert!(bad.text.contains("✗ Not valid") && !bad.text.contains("✓"), "{}", bad.text);
    assert!(bad.text.contains("changed after numlink signed it"), "{}", bad.text);
    let junk = page(&app, "/verify?token=hello", &[("accept-language", "en")]).await;
    assert!(junk.text.contains("This is not a proof of tenure"), "{}", junk.text);
    // Whatever was pasted is shown escaped, never as markup.
    let html = page(&app, "/verify?token=%3Cb%3Ehi%3C%2Fb%3E", &[("accept-language", "en")]).await;
    assert!(html.text.contains("&#60;b&#62;hi&#60;/b&#62;") && !html.text.contains("<b>hi"), "{}", html.text);

    // The switch: remembered in a cookie, back to the same page, never to another site.
    let switch = page(&app, "/lang/en?back=%2Fverify", &[]).await;
    assert_eq!(switch.status, 303);
    assert_eq!(switch.headers["location"], "/verify");
    let cookie = switch.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("lang=en;") && cookie.contains("HttpOnly"), "{cookie}");
    let chosen = page(&app, "/verify", &[("cookie", "lang=en"), ("accept-language", "zh-CN")]).await;
    assert!(chosen.text.contains(r#"<html lang="en">"#));
    for elsewhere in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%09\\evil.example",
    ] {
        let r = page(&app, &format!("/lang/en?back={elsewhere}"), &[]).await;
        assert_eq!(r.headers["location"], "/", "{elsewhere}: home instead");
    }
    let css = page(&app, "/assets/portal.css", &[]).await;
    assert_eq!((css.status, css.headers["content-type"].to_str().unwrap()), (200, "text/css; charset=utf-8"));
}
