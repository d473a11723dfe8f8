//! Real names: the carrier's record sent with `activated` / `transferred`, kept only as keyed hashes
//! for the current tenure; CAMARA KYC Match v0.4 (the scenarios of its test plan that apply to a
//! two-legged API, responses checked against the official definition); and rebinding an account to a
//! customer's new number.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::Method;
use serde_json::{Value, json};
use store::backend_tests;
use store::testing::TestDb;

use crate::{Resp, TestApp, assert_error};

const PATH: &str = "/kyc-match/v0.4/match";
const CORRELATOR: &str = "kyc-3c46-49c0";
/// Federica holds this number since 2025-01-15 (the definition's own example person).
const N: &str = "+8613800138000";
/// Her new number, from 2025-06-01.
const NEW: &str = "+8613800138999";

fn federica() -> Value {
    json!({
        "idDocument": "66666666q", "idDocumentType": "passport", "name": "Federica Sanchez Arjona",
        "givenName": "Federica", "familyName": "Sanchez Arjona", "birthdate": "1978-08-22"
    })
}

async fn setup(db: TestDb) -> (TestApp, String, String) {
    setup_app(TestApp::new(db)).await
}

async fn setup_app(app: TestApp) -> (TestApp, String, String) {
    let carrier = app.carrier().await;
    app.accept(
        &carrier,
        json!([
            {"eventId": "a1", "phoneNumber": N, "type": "activated", "date": "2025-01-15", "kyc": federica()},
            {"eventId": "a2", "phoneNumber": NEW, "type": "activated", "date": "2025-06-01", "kyc": federica()},
        ]),
    )
    .await;
    let bank = app.institution().await;
    (app, carrier, bank)
}

async fn kyc(app: &TestApp, key: Option<&str>, body: Option<Value>) -> Resp {
    app.request(
        Method::POST,
        PATH,
        key,
        &[("content-type", "application/json"), ("x-correlator", CORRELATOR)],
        body.map_or_else(Body::empty, |b| Body::from(b.to_string())),
    )
    .await
}

fn spec() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/camara/kyc-match-v0.4.0.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The response against the definition: a 200 has only `KYC_MatchResponse` properties with
/// `MatchResult` values; an error's code is among those the definition lists for its status.
fn conforms(r: &Resp) {
    let spec = spec();
    assert_eq!(r.headers["x-correlator"], CORRELATOR);
    if r.status == 200 {
        let props = spec["components"]["schemas"]["KYC_MatchResponse"]["properties"].as_object().unwrap();
        let values = &spec["components"]["schemas"]["MatchResult"]["enum"];
        for (k, v) in r.body.as_object().unwrap() {
            assert!(props.contains_key(k), "{k} is not a KYC_MatchResponse property");
            assert!(values.as_array().unwrap().contains(v), "{k}: {v} is not a MatchResult");
        }
        return;
    }
    let generic = format!("Generic{}", r.status);
    let codes = &spec["components"]["responses"][&generic]["content"]["application/json"]["schema"]["allOf"][1]["properties"]
        ["code"]["enum"];
    assert!(
        codes.as_array().unwrap_or_else(|| panic!("no {generic}")).contains(&r.body["code"]),
        "{} is not a {} code of the definition",
        r.body["code"],
        r.status
    );
}

backend_tests!(
    kyc_match_1_and_4_all_attributes_match,
    kyc_match_2_every_property_answers,
    kyc_match_5_false_for_what_differs,
    kyc_match_400_and_422_errors,
    kyc_match_401_without_a_valid_key,
    kyc_match_c02_02_number_without_a_holder,
    the_record_ends_with_the_tenure,
    a_customer_rebinds_to_a_new_number,
    kyc_goes_only_with_ownership_events,
    a_resent_event_with_another_record_is_a_conflict,
    kyc_match_is_not_an_oracle,
);

async fn kyc_match_1_and_4_all_attributes_match(db: TestDb) {
    let (app, _, bank) = setup(db).await;
    let mut body = federica();
    body["phoneNumber"] = json!(N);
    // Case, spacing and punctuation do not matter.
    body["name"] = json!("  FEDERICA  sanchez-arjona ");
    body["idDocument"] = json!("66666666-Q");
    let r = kyc(&app, Some(&bank), Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    conforms(&r);
    assert_eq!(
        r.body,
        json!({"idDocumentMatch": "true", "idDocumentTypeMatch": "true", "nameMatch": "true", "givenNameMatch": "true",
               "familyNameMatch": "true", "birthdateMatch": "true"})
    );
}

async fn kyc_match_2_every_property_answers(db: TestDb) {
    // One call per property, all about one number: more than a day's matches.
    let limits = api::Limits { kyc_matches_per_number_per_day_max: 100, ..api::Limits::default() };
    let (app, _, bank) = setup_app(TestApp::with_limits(db, limits)).await;
    let spec = spec();
    let props = spec["components"]["schemas"]["KYC_MatchRequestBody"]["properties"].as_object().unwrap().clone();
    let sample = |name: &str| match name {
        "idDocumentType" => json!("passport"),
        "idDocumentExpiryDate" | "birthdate" => json!("2027-07-12"),
        "email" => json!("abc@example.com"),
        "gender" => json!("FEMALE"),
        _ => json!("X"),
    };
    for name in props.keys().filter(|k| *k != "phoneNumber") {
        let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": N, name.as_str(): sample(name)}))).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        conforms(&r);
        let obj = r.body.as_object().unwrap();
        assert_eq!(obj.len(), 1, "only the attribute asked: {}", r.text);
        assert!(obj.contains_key(&format!("{name}Match")), "{name}: {}", r.text);
    }
}

async fn kyc_match_5_false_for_what_differs(db: TestDb) {
    let (app, _, bank) = setup(db).await;
    let r = kyc(
        &app,
        Some(&bank),
        Some(json!({"phoneNumber": N, "idDocument": "77777777x", "name": "Federica Sanchez Arjona", "birthdate": "1978-08-23", "email": "f@example.com"})),
    )
    .await;
    conforms(&r);
    assert_eq!(
        r.body,
        json!({"idDocumentMatch": "false", "nameMatch": "true", "birthdateMatch": "false", "emailMatch": "not_available"})
    );
}

async fn kyc_match_400_and_422_errors(db: TestDb) {
    let (app, _, bank) = setup(db).await;
    for (body, status, code) in [
        (None, 400, "INVALID_ARGUMENT"),
        (Some(json!({})), 400, "INVALID_ARGUMENT"),
        (Some(json!({"phoneNumber": N})), 400, "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION"),
        (Some(json!({"phoneNumber": "13800138000", "name": "X"})), 400, "INVALID_ARGUMENT"),
        (Some(json!({"phoneNumber": N, "idDocumentType": "library_card"})), 400, "INVALID_ARGUMENT"),
        (Some(json!({"phoneNumber": N, "birthdate": "22/08/1978"})), 400, "INVALID_ARGUMENT"),
        (Some(json!({"phoneNumber": N, "gender": "F"})), 400, "INVALID_ARGUMENT"),
        (Some(json!({"phoneNumber": N, "shoeSize": "38"})), 400, "INVALID_ARGUMENT"),
        (Some(json!({"name": "Federica"})), 422, "MISSING_IDENTIFIER"),
    ] {
        let r = kyc(&app, Some(&bank), body).await;
        assert_error(&r, status, code);
        conforms(&r);
    }
}

async fn kyc_match_401_without_a_valid_key(db: TestDb) {
    let (app, carrier, _) = setup(db).await;
    let body = json!({"phoneNumber": N, "name": "Federica"});
    for key in [None, Some("nlk_0000")] {
        let r = kyc(&app, key, Some(body.clone())).await;
        assert_error(&r, 401, "UNAUTHENTICATED");
        conforms(&r);
    }
    let r = kyc(&app, Some(&carrier), Some(body)).await;
    assert_error(&r, 403, "PERMISSION_DENIED");
    conforms(&r);
}

async fn kyc_match_c02_02_number_without_a_holder(db: TestDb) {
    let (app, carrier, bank) = setup(db).await;
    let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": "+4915112345678", "name": "X"}))).await;
    assert_error(&r, 404, "IDENTIFIER_NOT_FOUND");
    conforms(&r);
    // In range, held since before coverage, but the carrier sent no record: not_available.
    let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": "+8613800138001", "name": "X"}))).await;
    assert_eq!(r.body, json!({"nameMatch": "not_available"}), "{}", r.text);
    app.accept(&carrier, json!([{"eventId": "d1", "phoneNumber": N, "type": "disconnected", "date": "2025-06-20"}]))
        .await;
    let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": N, "name": "Federica Sanchez Arjona"}))).await;
    assert_error(&r, 404, "IDENTIFIER_NOT_FOUND");
}

async fn the_record_ends_with_the_tenure(db: TestDb) {
    let (app, carrier, bank) = setup(db).await;
    // A transfer to someone else, without a record: Federica's is gone.
    app.accept(&carrier, json!([{"eventId": "t1", "phoneNumber": N, "type": "transferred", "date": "2025-06-10"}]))
        .await;
    let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": N, "name": "Federica Sanchez Arjona"}))).await;
    assert_eq!(r.body, json!({"nameMatch": "not_available"}), "{}", r.text);
    // A transfer with the new holder's record: only theirs matches.
    app.accept(
        &carrier,
        json!([{"eventId": "t2", "phoneNumber": N, "type": "transferred", "date": "2025-06-20",
                "kyc": {"name": "Li Wei", "idDocument": "G1234567"}}]),
    )
    .await;
    let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": N, "name": "li wei", "idDocument": "66666666q"}))).await;
    assert_eq!(r.body, json!({"nameMatch": "true", "idDocumentMatch": "false"}), "{}", r.text);
    // A late disconnection before that transfer would not fit the history; a late one after it ends the tenure.
    app.accept(&carrier, json!([{"eventId": "d9", "phoneNumber": N, "type": "disconnected", "date": "2025-06-25"}]))
        .await;
    let r = kyc(&app, Some(&bank), Some(json!({"phoneNumber": N, "name": "li wei"}))).await;
    assert_error(&r, 404, "IDENTIFIER_NOT_FOUND");
    // Only keyed hashes were ever stored: no attribute in clear in the database.
    let cells = crate::bindings::dump_tables(&app, &["kyc_records", "audit", "events"]).await;
    for (table, cell) in cells {
        for clear in ["Federica", "federica", "66666666", "Li Wei", "li wei", "G1234567", "1978-08-22"] {
            assert!(!String::from_utf8_lossy(&cell).contains(clear), "{table} holds {clear} in clear");
        }
    }
}

async fn a_customer_rebinds_to_a_new_number(db: TestDb) {
    let (app, carrier, bank) = setup(db).await;
    let r = app
        .post(
            "/v1/bindings",
            &bank,
            json!({"bindings": [{"accountRef": "card-7", "phoneNumber": N, "boundOn": "2025-02-01"}]}),
        )
        .await;
    let id = r.body["results"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/bindings/{id}/rebind");
    // A wrong name: 422 naming it, nothing changes.
    let r = app
        .post(&path, &bank, json!({"newPhoneNumber": NEW, "idDocument": "66666666Q", "name": "Federico Sanchez"}))
        .await;
    assert_error(&r, 422, "KYC_MISMATCH");
    assert!(r.body["message"].as_str().unwrap().contains("name does not match"), "{}", r.text);
    assert!(!r.body["message"].as_str().unwrap().contains("idDocument"), "{}", r.text);
    // A number whose holder has no record: not available, refused.
    let r = app
        .post(
            &path,
            &bank,
            json!({"newPhoneNumber": "+8613800138001", "idDocument": "66666666Q", "name": "Federica Sanchez Arjona"}),
        )
        .await;
    assert_error(&r, 422, "KYC_MISMATCH");
    assert!(r.body["message"].as_str().unwrap().contains("not available"), "{}", r.text);
    let unchanged = app.get(&format!("/v1/bindings/{id}"), &bank).await;
    assert_eq!(unchanged.body["boundOn"], "2025-02-01");
    // The customer gave up the old number, which went to someone else: the binding is notified, and
    // stale, until it is rebound.
    app.accept(&carrier, json!([{"eventId": "t-old", "phoneNumber": N, "type": "transferred", "date": "2025-03-01"}]))
        .await;
    assert_eq!(app.get(&format!("/v1/bindings/{id}"), &bank).await.body["stale"], true);
    let ours_in = |feed: &Value| -> usize {
        feed["notifications"].as_array().unwrap().iter().filter(|n| n["data"]["bindingId"] == id.as_str()).count()
    };
    let notified_before = ours_in(&app.get("/v1/notifications", &bank).await.body);
    assert_eq!(notified_before, 1);
    // Both match: the binding moves, bound today.
    let r = app
        .post(
            &path,
            &bank,
            json!({"newPhoneNumber": NEW, "idDocument": "66666666Q", "name": "federica sanchez arjona"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["boundOn"].as_str(), r.body["stale"].as_bool()), (Some(crate::TODAY), Some(false)));
    // It now follows the new number: its disconnection notifies the binding; the old number's does not.
    app.accept(
        &carrier,
        json!([
            {"eventId": "d-old", "phoneNumber": N, "type": "disconnected", "date": crate::TODAY},
            {"eventId": "d-new", "phoneNumber": NEW, "type": "disconnected", "date": crate::TODAY},
        ]),
    )
    .await;
    let feed = app.get("/v1/notifications", &bank).await;
    let ours: Vec<&Value> = feed.body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["data"]["bindingId"] == id.as_str())
        .collect();
    assert_eq!(ours.len(), notified_before + 1, "{}", feed.text);
    assert_eq!(ours.last().unwrap()["data"]["eventDate"], crate::TODAY, "{}", feed.text);
    // Stale again, by the new number's notification.
    assert_eq!(app.get(&format!("/v1/bindings/{id}"), &bank).await.body["stale"], true);
    // Other institutions cannot rebind it; the audit log has it.
    let other = app.institution().await;
    assert_error(
        &app.post(&path, &other, json!({"newPhoneNumber": NEW, "idDocument": "x", "name": "y"})).await,
        404,
        "NOT_FOUND",
    );
    let actions: Vec<String> = app.store.audit_tail(50).await.unwrap().into_iter().map(|a| a.action).collect();
    assert!(actions.contains(&"binding.rebound".to_string()), "{actions:?}");
}

async fn kyc_goes_only_with_ownership_events(db: TestDb) {
    let (app, carrier, _) = setup(db).await;
    let r = app
        .events(&carrier, json!([{"eventId": "d1", "phoneNumber": N, "type": "disconnected", "date": "2025-06-20", "kyc": federica()}]))
        .await;
    assert_eq!(r.body["rejected"][0]["code"], "INVALID_ARGUMENT", "{}", r.text);
    let r = app
        .events(&carrier, json!([{"eventId": "a9", "phoneNumber": "+8613800138002", "type": "activated", "date": "2025-06-20", "kyc": {}}]))
        .await;
    assert_eq!(r.body["rejected"][0]["code"], "INVALID_ARGUMENT", "{}", r.text);
}

async fn a_resent_event_with_another_record_is_a_conflict(db: TestDb) {
    let (app, carrier, _) = setup(db).await;
    let resend = |kyc: Value| json!([{"eventId": "a1", "phoneNumber": N, "type": "activated", "date": "2025-01-15", "kyc": kyc}]);
    let r = app.events(&carrier, resend(federica())).await;
    assert_eq!(r.body["duplicates"], 1, "{}", r.text);
    // The same record in another spelling is the same record.
    let mut respelled = federica();
    respelled["name"] = json!("FEDERICA SANCHEZ-ARJONA");
    assert_eq!(app.events(&carrier, resend(respelled)).await.body["duplicates"], 1);
    let mut other = federica();
    other["idDocument"] = json!("12345678z");
    let r = app.events(&carrier, resend(other)).await;
    assert_eq!(r.body["rejected"][0]["code"], "CONFLICT", "{}", r.text);
    let r = app
        .events(&carrier, json!([{"eventId": "a1", "phoneNumber": N, "type": "activated", "date": "2025-01-15"}]))
        .await;
    assert_eq!(r.body["rejected"][0]["code"], "CONFLICT", "without the record it is another event: {}", r.text);
}

/// An institution unrelated to the number guesses the holder's birth date one day at a time: five
/// matches a day answer (each seen by the holder), the sixth is refused until tomorrow (UTC), rebinding
/// to the number included; another institution is not held back.
async fn kyc_match_is_not_an_oracle(db: TestDb) {
    let (app, _, bank) = setup(db).await;
    let (_, snoop) = app.participant(store::Role::Institution, "Snoop", &[]).await;
    let guess = |i: i32| {
        let d = domain::Day::parse("1978-08-17").unwrap().plus_days(i);
        json!({"phoneNumber": N, "birthdate": d.to_string()})
    };
    let mut answers = Vec::new();
    for i in 0..5 {
        let r = kyc(&app, Some(&snoop), Some(guess(i))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        answers.push(r.body["birthdateMatch"].as_str().unwrap().to_string());
    }
    assert_eq!(answers, ["false"; 5]);
    let r = kyc(&app, Some(&snoop), Some(guess(5))).await;
    assert_error(&r, 429, "TOO_MANY_REQUESTS");
    assert!(r.body["message"].as_str().unwrap().contains("kyc_matches_per_number_per_day_max"), "{}", r.text);
    // Until the next midnight UTC.
    let now = app.store.clock().now().as_second();
    let midnight = jiff::civil::date(2025, 7, 1).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_second();
    assert_eq!(r.headers["retry-after"].to_str().unwrap(), (midnight - now).to_string());
    // Rebinding to the number asks the same question: refused too.
    let bound = app
        .post(
            "/v1/bindings",
            &snoop,
            json!({"bindings": [{"accountRef": "x", "phoneNumber": NEW, "boundOn": "2025-06-01"}]}),
        )
        .await;
    let id = bound.body["results"][0]["id"].as_str().unwrap().to_string();
    let rebind = json!({"newPhoneNumber": N, "idDocument": "66666666Q", "name": "Federica Sanchez Arjona"});
    assert_error(&app.post(&format!("/v1/bindings/{id}/rebind"), &snoop, rebind).await, 429, "TOO_MANY_REQUESTS");
    // The holder sees each match that was made.
    let since = app.store.clock().now().as_second() - 86_400;
    let n = domain::PhoneNumber::parse(N).unwrap();
    let mark = app.store.tenure_mark(n).await.unwrap();
    let seen = app.store.lookups(n, mark, since, 100).await.unwrap().expect("the same tenure");
    assert_eq!(seen.iter().filter(|l| l.institution_name == "Snoop" && l.action == "kyc.match").count(), 5);
    // Another institution is not held back; tomorrow the count starts again.
    assert_eq!(kyc(&app, Some(&bank), Some(guess(5))).await.status, 200);
    app.advance(86_400);
    let r = kyc(&app, Some(&snoop), Some(guess(5))).await;
    assert_eq!((r.status, r.body["birthdateMatch"].as_str()), (200, Some("true")), "{}", r.text);
}
