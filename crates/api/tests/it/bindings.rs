//! Bindings and notifications (R4): registration, staleness, ownership, the pull feed, and that the
//! set of notifications does not depend on the order events and bindings arrive in.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use store::testing::{Backend, TestDb};
use store::{Role, backend_tests};

use crate::{TestApp, assert_error};

const N: &str = "+8613800138000";

backend_tests!(
    bindings_are_idempotent_owned_and_listed,
    events_notify_bindings_made_before_them,
    a_binding_stale_on_arrival_is_notified_at_once,
    notifications_do_not_depend_on_arrival_order,
    the_feed_pages_and_acknowledgements_stick,
    binding_files_are_jobs,
    numbers_are_not_recoverable_from_binding_tables,
    an_id_of_no_issued_form_is_unknown,
);

async fn bind(app: &TestApp, key: &str, items: Value) -> Vec<Value> {
    let r = app.post("/v1/bindings", key, json!({ "bindings": items })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["results"].as_array().unwrap().clone()
}

async fn feed(app: &TestApp, key: &str) -> Vec<Value> {
    let r = app.get("/v1/notifications?limit=1000", key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["notifications"].as_array().unwrap().clone()
}

async fn bindings_are_idempotent_owned_and_listed(db: TestDb) {
    let app = TestApp::new(db);
    let bank = app.institution().await;
    let other = app.participant(Role::Institution, "Other Bank", &[]).await.1;
    let carrier = app.carrier().await;
    let first = bind(
        &app,
        &bank,
        json!([
            {"accountRef": "acct-1", "phoneNumber": N, "boundOn": "2023-12-22"},
            {"accountRef": "acct-2", "phoneNumber": "+8613800000002", "boundOn": "2024-01-01"},
            {"accountRef": "acct-3", "phoneNumber": "+86bad", "boundOn": "2024-01-01"},
            {"accountRef": "acct-4", "phoneNumber": N, "boundOn": "2025-07-01"},
        ]),
    )
    .await;
    assert_eq!((first[0]["created"].as_bool(), first[0]["stale"].as_bool()), (Some(true), Some(false)));
    assert_eq!(first[2]["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(first[3]["error"]["code"], "OUT_OF_RANGE");
    let id = first[0]["id"].as_str().unwrap().to_string();
    assert!(first[0].get("phoneNumber").is_none(), "the number is not echoed back");
    // Registering the same triple again returns the same binding.
    let again = bind(&app, &bank, json!([{"accountRef": "acct-1", "phoneNumber": N, "boundOn": "2023-12-22"}])).await;
    assert_eq!((again[0]["id"].as_str(), again[0]["created"].as_bool()), (Some(id.as_str()), Some(false)));

    let r = app.get(&format!("/v1/bindings/{id}"), &bank).await;
    assert_eq!(
        (r.status, r.body["accountRef"].as_str(), r.body["boundOn"].as_str()),
        (200, Some("acct-1"), Some("2023-12-22"))
    );
    // Another institution's binding is as unknown as an unknown id.
    assert_error(&app.get(&format!("/v1/bindings/{id}"), &other).await, 404, "NOT_FOUND");
    let del = app
        .request(
            axum::http::Method::DELETE,
            &format!("/v1/bindings/{id}"),
            Some(&other),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_error(&del, 404, "NOT_FOUND");
    assert_error(&app.post("/v1/bindings", &carrier, json!({"bindings": []})).await, 403, "PERMISSION_DENIED");

    // Listing with a cursor: one per page.
    let p1 = app.get("/v1/bindings?limit=1", &bank).await.body;
    let cursor = p1["nextCursor"].as_str().unwrap().to_string();
    let p2 = app.get(&format!("/v1/bindings?limit=1&after={cursor}"), &bank).await.body;
    let p3 = app.get(&format!("/v1/bindings?limit=1&after={}", p2["nextCursor"].as_str().unwrap()), &bank).await.body;
    let ids: BTreeSet<&str> = [&p1, &p2].iter().map(|p| p["bindings"][0]["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(p3["bindings"], json!([]));
    assert_eq!(app.get("/v1/bindings", &other).await.body["bindings"], json!([]));
    assert_error(&app.get("/v1/bindings?limit=100000", &bank).await, 400, "INVALID_ARGUMENT");
    // A query string that does not parse is the API's error too, not the framework's plain text.
    for q in ["limit=abc", "limit=-1", "after=x&sort=asc"] {
        let r = app.get(&format!("/v1/bindings?{q}"), &bank).await;
        assert_error(&r, 400, "INVALID_ARGUMENT");
        assert!(r.body["message"].as_str().unwrap().starts_with("the query string is not valid"), "{q}: {}", r.text);
    }

    let del = app.delete(&format!("/v1/bindings/{id}"), &bank).await;
    assert_eq!(del.status, 204);
    assert_error(&app.get(&format!("/v1/bindings/{id}"), &bank).await, 404, "NOT_FOUND");
}

async fn events_notify_bindings_made_before_them(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    let other_bank = app.participant(Role::Institution, "Other", &[]).await.1;
    let b = bind(
        &app,
        &bank,
        json!([
            {"accountRef": "before", "phoneNumber": N, "boundOn": "2023-12-22"},
            {"accountRef": "on-the-day", "phoneNumber": N, "boundOn": "2024-02-25"},
        ]),
    )
    .await;
    bind(&app, &other_bank, json!([{"accountRef": "theirs", "phoneNumber": N, "boundOn": "2020-05-05"}])).await;
    assert_eq!(feed(&app, &bank).await, Vec::<Value>::new());
    app.accept(&carrier, json!([{"eventId": "d", "phoneNumber": N, "type": "disconnected", "date": "2024-02-25"}]))
        .await;
    let got = feed(&app, &bank).await;
    assert_eq!(got.len(), 2, "a disconnection on boundOn counts (R2's inclusive boundary)");
    let e = &got[0];
    assert_eq!(
        (e["specversion"].as_str(), e["source"].as_str(), e["type"].as_str()),
        (Some("1.0"), Some("numlink"), Some("number.disconnected"))
    );
    assert_eq!(
        e["data"],
        json!({"bindingId": b[0]["id"], "accountRef": "before", "eventDate": "2024-02-25", "reissuableFrom": "2024-05-25"})
    );
    assert!(!e.to_string().contains("8613800138000"), "never the number: {e}");
    // The bank's binding is now stale.
    let r = app.get(&format!("/v1/bindings/{}", b[0]["id"].as_str().unwrap()), &bank).await;
    assert_eq!(r.body["stale"], true);
    // The reissue notifies again (a new tenure); a duplicate report does not.
    app.accept(&carrier, json!([{"eventId": "a", "phoneNumber": N, "type": "activated", "date": "2024-09-21"}])).await;
    let r = app
        .events(&carrier, json!([{"eventId": "d", "phoneNumber": N, "type": "disconnected", "date": "2024-02-25"}]))
        .await;
    assert_eq!(r.body["duplicates"], 1);
    let types: Vec<(String, String)> = feed(&app, &bank)
        .await
        .iter()
        .map(|e| (e["data"]["accountRef"].as_str().unwrap().to_string(), e["type"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        types,
        [
            ("before", "number.disconnected"),
            ("on-the-day", "number.disconnected"),
            ("before", "number.reassigned"),
            ("on-the-day", "number.reassigned")
        ]
        .map(|(a, t)| (a.to_string(), t.to_string()))
    );
    // Each institution sees its own only; ports notify nobody.
    assert_eq!(feed(&app, &other_bank).await.len(), 2);
    app.accept(&carrier, json!([{"eventId": "p", "phoneNumber": N, "type": "ported_out", "date": "2024-10-01"}])).await;
    assert_eq!(feed(&app, &bank).await.len(), 4);
}

async fn a_binding_stale_on_arrival_is_notified_at_once(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    app.accept(
        &carrier,
        json!([
            {"eventId": "d", "phoneNumber": N, "type": "disconnected", "date": "2024-02-25"},
            {"eventId": "a", "phoneNumber": N, "type": "activated", "date": "2024-09-21"},
        ]),
    )
    .await;
    let b = bind(
        &app,
        &bank,
        json!([
            {"accountRef": "old", "phoneNumber": N, "boundOn": "2023-12-22"},
            {"accountRef": "new", "phoneNumber": N, "boundOn": "2024-10-01"},
        ]),
    )
    .await;
    assert_eq!((b[0]["stale"].as_bool(), b[1]["stale"].as_bool()), (Some(true), Some(false)));
    let got: Vec<(&str, &str)> = Vec::new();
    let events = feed(&app, &bank).await;
    let got = events.iter().map(|e| (e["data"]["accountRef"].as_str().unwrap(), e["type"].as_str().unwrap())).fold(
        got,
        |mut v, x| {
            v.push(x);
            v
        },
    );
    assert_eq!(got, vec![("old", "number.disconnected"), ("old", "number.reassigned")]);
}

/// The notifications of a run, as a set independent of ids and times.
async fn notification_set(app: &TestApp, key: &str) -> BTreeSet<(String, String, String)> {
    feed(app, key)
        .await
        .iter()
        .map(|e| {
            (
                e["data"]["accountRef"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
                e["data"]["eventDate"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn notifications_do_not_depend_on_arrival_order(db: TestDb) {
    // The same events and bindings, in three arrival orders, each on a fresh database.
    let events = [
        json!({"eventId": "d1", "phoneNumber": N, "type": "disconnected", "date": "2023-01-10"}),
        json!({"eventId": "a1", "phoneNumber": N, "type": "activated", "date": "2023-06-01"}),
        json!({"eventId": "t1", "phoneNumber": N, "type": "transferred", "date": "2024-03-01"}),
    ];
    let bindings = [
        json!({"accountRef": "b2022", "phoneNumber": N, "boundOn": "2022-05-01"}),
        json!({"accountRef": "b2023", "phoneNumber": N, "boundOn": "2023-07-01"}),
        json!({"accountRef": "b2024", "phoneNumber": N, "boundOn": "2024-06-01"}),
    ];
    let mut sets = Vec::new();
    for order in [[0usize, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2], [5, 1, 3, 0, 4, 2]] {
        let fresh = match db.backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres().expect("the PostgreSQL half runs with a server"),
        };
        let app = TestApp::new(fresh);
        let carrier = app.carrier().await;
        let bank = app.institution().await;
        for i in order {
            if i < 3 {
                // Each order of the events is one R3 accepts (a late disconnection before a reissue).
                let r = app.events(&carrier, json!([events[i]])).await;
                assert_eq!(r.body["accepted"], 1, "{}", r.text);
            } else {
                bind(&app, &bank, json!([bindings[i - 3]])).await;
            }
        }
        sets.push(notification_set(&app, &bank).await);
    }
    let expected: BTreeSet<(String, String, String)> = [
        ("b2022", "number.disconnected", "2023-01-10"),
        ("b2022", "number.reassigned", "2023-06-01"),
        ("b2022", "number.transferred", "2024-03-01"),
        ("b2023", "number.transferred", "2024-03-01"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    for s in &sets {
        assert_eq!(s, &expected);
    }
}

async fn the_feed_pages_and_acknowledgements_stick(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    let other = app.participant(Role::Institution, "Other", &[]).await.1;
    let items: Vec<Value> =
        (0..5).map(|i| json!({"accountRef": format!("a{i}"), "phoneNumber": N, "boundOn": "2023-01-01"})).collect();
    bind(&app, &bank, json!(items)).await;
    app.accept(&carrier, json!([{"eventId": "d", "phoneNumber": N, "type": "disconnected", "date": "2024-02-25"}]))
        .await;
    let p1 = app.get("/v1/notifications?limit=3", &bank).await.body;
    assert_eq!(p1["notifications"].as_array().unwrap().len(), 3);
    let p2 =
        app.get(&format!("/v1/notifications?limit=3&after={}", p1["nextCursor"].as_str().unwrap()), &bank).await.body;
    assert_eq!(p2["notifications"].as_array().unwrap().len(), 2);
    let p3 = app.get(&format!("/v1/notifications?after={}", p2["nextCursor"].as_str().unwrap()), &bank).await.body;
    assert_eq!(
        (p3["notifications"].clone(), p3["nextCursor"].clone()),
        (json!([]), p2["nextCursor"].clone()),
        "an empty page keeps the cursor"
    );
    assert_error(&app.get("/v1/notifications?after=abc", &bank).await, 400, "INVALID_ARGUMENT");

    let id = p1["notifications"][0]["id"].as_str().unwrap();
    let ack = app.post(&format!("/v1/notifications/{id}/ack"), &bank, json!({"action": "unbound"})).await;
    assert_eq!((ack.status, ack.body["action"].as_str()), (200, Some("unbound")), "{}", ack.text);
    let again = app.post(&format!("/v1/notifications/{id}/ack"), &bank, json!({"action": "contact_suspended"})).await;
    assert_eq!(
        (again.body["action"].clone(), again.body["ackedAt"].clone()),
        (json!("unbound"), ack.body["ackedAt"].clone()),
        "the first acknowledgement stands"
    );
    assert_error(
        &app.post(&format!("/v1/notifications/{id}/ack"), &bank, json!({"action": "ignored"})).await,
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        &app.post(&format!("/v1/notifications/{id}/ack"), &other, json!({"action": "unbound"})).await,
        404,
        "NOT_FOUND",
    );
}

async fn binding_files_are_jobs(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    app.accept(&carrier, json!([{"eventId": "d", "phoneNumber": N, "type": "disconnected", "date": "2024-02-25"}]))
        .await;
    let csv = format!(
        "account_ref,phone_number,bound_on\nacct-1,{N},2023-01-01\nacct-2,+86bad,2023-01-01\nacct-3,+8613800000001,2024-01-01\n"
    );
    let r = app
        .request(
            axum::http::Method::POST,
            "/v1/binding-files",
            Some(&bank),
            &[("content-type", "text/csv")],
            axum::body::Body::from(csv.clone()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["jobId"].as_str().unwrap().to_string();
    app.runner.run_until_idle().await.unwrap();
    let job = app.get(&format!("/v1/jobs/{id}"), &bank).await.body;
    assert_eq!(
        (job["kind"].as_str(), job["state"].as_str(), job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some("bindings"), Some("succeeded"), Some(2), Some(1)),
        "{job}"
    );
    let rej = app.get(&format!("/v1/jobs/{id}/rejections"), &bank).await;
    assert!(rej.text.contains("\n3,INVALID_ARGUMENT,"), "{}", rej.text);
    // The stale binding from the file was notified at once.
    assert_eq!(feed(&app, &bank).await.len(), 1);
    // Carriers upload lifecycle files, institutions binding files.
    let r = app
        .request(axum::http::Method::POST, "/v1/binding-files", Some(&carrier), &[], axum::body::Body::from(csv))
        .await;
    assert_error(&r, 403, "PERMISSION_DENIED");
    let r = app.upload(&bank, "phone_number,disconnect_date\n").await;
    assert_error(&r, 403, "PERMISSION_DENIED");
}

/// Binding tables, and the audit log, hold no number in a form readable without the key (the
/// registry's own `events` and `numbers` tables hold numbers by design).
async fn numbers_are_not_recoverable_from_binding_tables(db: TestDb) {
    let app = TestApp::new(db);
    let carrier = app.carrier().await;
    let bank = app.institution().await;
    bind(&app, &bank, json!([{"accountRef": "acct-1", "phoneNumber": N, "boundOn": "2023-01-01"}])).await;
    // The disconnection arrives in an RND-style file, whose rows have no id of their own.
    let job = app.upload_and_apply(&carrier, &format!("phone_number,disconnect_date\n{N},2024-02-25\n")).await;
    assert_eq!(job["accepted"], 1, "{job}");
    let r =
        app.post("/v1/reassignment-checks", &bank, json!({"items": [{"phoneNumber": N, "date": "2023-01-01"}]})).await;
    assert_eq!(r.body["results"][0]["answer"], "yes");
    let digits = &N[1..];
    // Every form that does not need the key: plain, with +, masked, and unkeyed SHA-256 (raw and hex).
    let mut forms: Vec<Vec<u8>> =
        vec![digits.into(), N.into(), format!("+*********{}", &digits[digits.len() - 4..]).into()];
    for s in [N, digits] {
        let h = store::sha256(s.as_bytes());
        forms.push(h.to_vec());
        forms.push(hex_lower(&h).into_bytes());
    }
    let rows = dump_tables(&app, &["bindings", "notifications", "deliveries", "audit"]).await;
    assert!(rows.len() >= 2, "the flow wrote bindings and notifications");
    for (table, cell) in rows {
        for f in &forms {
            assert!(!contains(&cell, f), "{table} holds the number in a form readable without the key");
        }
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every cell of the given tables, as bytes, read straight from the database.
pub(crate) async fn dump_tables(app: &TestApp, tables: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    match &app.db.url {
        store::DbUrl::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            for t in tables {
                let mut stmt = c.prepare(&format!("SELECT * FROM {t}")).unwrap();
                let cols = stmt.column_count();
                let mut rows = stmt.query([]).unwrap();
                while let Some(r) = rows.next().unwrap() {
                    for i in 0..cols {
                        let cell = match r.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
                            rusqlite::types::ValueRef::Integer(v) => v.to_string().into_bytes(),
                            _ => Vec::new(),
                        };
                        out.push((t.to_string(), cell));
                    }
                }
            }
        }
        store::DbUrl::Postgres(url) => {
            let url = url.clone();
            let tables: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
            out = std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let mut out = Vec::new();
                for t in tables {
                    // Every column as text; bytea renders as \x-hex, so compare hex forms too.
                    for r in c.query(&format!("SELECT row_to_json(x)::text FROM {t} x"), &[]).unwrap() {
                        let s: String = r.get(0);
                        out.push((t.clone(), s.into_bytes()));
                    }
                }
                out
            })
            .join()
            .unwrap();
        }
    }
    out
}

/// Ids in paths are parsed at the edge: one of no form numlink issues (another kind's prefix, the
/// wrong length, a path trick) is answered as an unknown one, whatever the route.
async fn an_id_of_no_issued_form_is_unknown(db: TestDb) {
    let app = TestApp::new(db);
    let bank = app.institution().await;
    for id in [
        "job_00112233445566778899",
        "bnd_0011",
        "bnd_00112233445566778899ff",
        "..%2F..%2Fetc",
        "BND_00112233445566778899",
    ] {
        assert_error(&app.get(&format!("/v1/bindings/{id}"), &bank).await, 404, "NOT_FOUND");
        assert_error(&app.get(&format!("/v1/jobs/{id}"), &bank).await, 404, "NOT_FOUND");
        assert_error(&app.get(&format!("/v1/unbind-requests/{id}"), &bank).await, 404, "NOT_FOUND");
        let del = app.delete(&format!("/v1/webhook-endpoints/{id}"), &bank).await;
        assert_error(&del, 404, "NOT_FOUND");
    }
    // A well-formed id of nothing is unknown too.
    assert_error(&app.get("/v1/bindings/bnd_00112233445566778899", &bank).await, 404, "NOT_FOUND");
}
