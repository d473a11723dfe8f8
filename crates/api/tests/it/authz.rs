//! The authorisation matrix: every API route the router serves (`api::API_ROUTES`) × every kind of
//! caller × an object of its own or another's, against the expectations in
//! `tests/authorisation.txt`, which is reviewed like code. A route without a row fails, and so does a
//! row without a route. A refused request must be answered exactly as the same request naming objects
//! that do not exist: a refusal reveals nothing of what another participant holds.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::Method;
use serde_json::{Value, json};
use store::testing::TestDb;
use store::{Role, backend_tests};

use crate::console::signed_in;
use crate::holder::{N, login, world};
use crate::portal::{Browser, Jar, csrf_of};
use crate::{Resp, TestApp};

backend_tests!(every_route_answers_every_caller_as_the_matrix_says, every_page_answers_every_caller_as_the_matrix_says);

const TABLE: &str = include_str!("../authorisation.txt");

/// The callers, in the table's column order.
const CALLERS: [&str; 10] = [
    "carrier",
    "other-carrier",
    "bank",
    "other-bank",
    "regulator",
    "portability",
    "holder",
    "other-holder",
    "anonymous",
    "revoked",
];

/// What a caller is told: let in (`ok`: 2xx, and 3xx from the API), sent on to another page (`in`)
/// or to a sign-in or start page (`out`), or a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    In,
    Out,
    Status(u16),
}

impl Outcome {
    fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "in" => Outcome::In,
            "out" => Outcome::Out,
            n => Outcome::Status(n.parse().unwrap_or_else(|_| panic!("{n:?} is not ok, in, out or a status"))),
        }
    }

    /// An API response's.
    fn of(status: u16) -> Outcome {
        if status < 400 { Outcome::Ok } else { Outcome::Status(status) }
    }

    /// A page's: where a redirect goes tells a page let in from one sent to sign in.
    fn of_page(r: &Resp) -> Outcome {
        match r.status {
            200..=299 => Outcome::Ok,
            300..=399 => {
                let location = r.headers["location"].to_str().unwrap();
                let page = location.split('?').next().unwrap();
                if page == "/console" || page == "/" { Outcome::Out } else { Outcome::In }
            }
            s => Outcome::Status(s),
        }
    }

    /// Refused: the request names an object it may not reach, or a caller that may not ask.
    fn refused(self) -> bool {
        matches!(self, Outcome::Out | Outcome::Status(401 | 403 | 404))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::In => f.write_str("in"),
            Outcome::Out => f.write_str("out"),
            Outcome::Status(s) => write!(f, "{s}"),
        }
    }
}

/// A table: (method, path) → an outcome per caller.
fn expectations(table: &str, name: &str) -> BTreeMap<(String, String), Vec<Outcome>> {
    let mut rows = BTreeMap::new();
    for (i, line) in table.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 2 + CALLERS.len(), "{name} line {}: {line}", i + 1);
        let key = (cells[0].to_lowercase(), cells[1].to_string());
        let outcomes = cells[2..].iter().map(|c| Outcome::parse(c)).collect();
        assert!(rows.insert(key, outcomes).is_none(), "{name} line {}: a second row for {line}", i + 1);
    }
    rows
}

/// The objects the routes name, all of them the bank's ("Old Bank") or about its number.
struct Objects {
    binding: String,
    endpoint: String,
    job: String,
    notification: String,
    unbind_request: String,
}

impl Objects {
    /// The path with its ids: the bank's objects, or (`real` false) ids of the same shape that name
    /// nothing.
    fn path(&self, template: &str, real: bool) -> String {
        let id = |real_id: &str| if real { real_id.to_string() } else { nonexistent(real_id) };
        let by_prefix = [
            ("/v1/bindings/", &self.binding),
            ("/v1/webhook-endpoints/", &self.endpoint),
            ("/v1/jobs/", &self.job),
            ("/v1/notifications/", &self.notification),
            ("/v1/unbind-requests/", &self.unbind_request),
            ("/console/bindings/", &self.binding),
            ("/console/endpoints/", &self.endpoint),
            ("/console/jobs/", &self.job),
            ("/console/requests/", &self.unbind_request),
        ];
        let mut path = template.to_string();
        if let Some((_, value)) = by_prefix.iter().find(|(p, _)| template.starts_with(p)) {
            path = path.replacen("{id}", &id(value), 1);
        }
        // Not objects: the same in both.
        path = path.replace("{kind}", "bindings").replace("{tag}", "en");
        path.replace("{notificationId}", &id(&self.notification)).replace("{notification}", &id(&self.notification))
    }
}

impl Objects {
    /// Every id of an object, or of its nonexistent counterpart.
    fn ids(&self, real: bool) -> Vec<String> {
        [&self.binding, &self.endpoint, &self.job, &self.notification, &self.unbind_request]
            .into_iter()
            .map(|id| if real { id.clone() } else { nonexistent(id) })
            .collect()
    }
}

/// An id of the same shape that names nothing: its prefix, then zeros.
fn nonexistent(id: &str) -> String {
    let (prefix, rest) = id.split_once('_').unwrap_or(("", id));
    let zeros: String = rest.chars().map(|c| if c.is_ascii_alphanumeric() { '0' } else { c }).collect();
    if prefix.is_empty() { zeros } else { format!("{prefix}_{zeros}") }
}

/// A body each route's permitted caller would send (valid, so that a refusal is about the caller).
fn body(method: &str, path: &str, caller: usize) -> Option<(&'static str, String)> {
    let json = |v: Value| Some(("application/json", v.to_string()));
    let csv = |s: &str| Some(("text/csv", s.to_string()));
    match (method, path) {
        ("post", "/number-recycling/v0.2/check") => json(json!({"phoneNumber": N, "specifiedDate": "2024-01-01"})),
        ("post", "/v1/reassignment-checks") => json(json!({"items": [{"phoneNumber": N, "date": "2024-01-01"}]})),
        ("post", "/v1/lifecycle-events") => json(json!({"events": [{
            "eventId": format!("matrix-{caller}"), "phoneNumber": "+8613800138500", "type": "activated", "date": "2025-06-01"
        }]})),
        ("post", "/v1/lifecycle-files") => csv("phone_number,disconnect_date\n+8613800138501,2025-06-01\n"),
        ("post", "/v1/binding-files") => {
            csv(&format!("account_ref,phone_number,bound_on\nmatrix-{caller},{N},2025-03-01\n"))
        }
        ("post", "/v1/check-files") => csv(&format!("phone_number,date\n{N},2024-01-01\n")),
        ("post", "/v1/bindings") => json(json!({"bindings": [{
            "accountRef": format!("matrix-{caller}"), "phoneNumber": N, "boundOn": "2025-03-01"
        }]})),
        ("post", "/v1/notifications/{id}/ack") => json(json!({"action": "unbound"})),
        ("post", "/v1/webhook-endpoints") => json(json!({"url": format!("http://127.0.0.1:9/matrix-{caller}")})),
        ("post", "/v1/bindings/{id}/rebind") => json(json!({
            "newPhoneNumber": "+8613800138502", "idDocument": "66666666Q", "name": "Federica Sanchez Arjona"
        })),
        ("post", "/kyc-match/v0.4/match") => json(json!({"phoneNumber": N, "name": "Federica Sanchez Arjona"})),
        ("put", "/v1/sms-gateway") => json(json!({"url": "http://127.0.0.1:9/sms"})),
        ("post", "/v1/sms-gateway/test") => json(json!({"phoneNumber": N})),
        // A number of its own for each caller: the per-number send limits are not what is tested.
        ("post", "/v1/holder/otp") => json(json!({"phoneNumber": format!("+86138001386{caller:02}")})),
        ("post", "/v1/holder/session") => {
            json(json!({"phoneNumber": N, "challengeId": "otp_00000000000000000000000000", "code": "000000"}))
        }
        ("post", "/v1/holder/unbind-requests") => json(json!({"all": true})),
        ("post", "/v1/unbind-requests/{id}/resolve") => json(json!({"outcome": "unbound"})),
        ("post", _) | ("put", _) => json(json!({})),
        _ => None,
    }
}

/// Query strings some reads need.
fn query(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("get", "/v1/lifecycle-events") => "?phoneNumber=%2B8613800138000",
        ("get", "/v1/reports/institutions") => "?from=2025-06-01&to=2025-07-31",
        ("get", "/v1/sms-gateway/codes") => "?days=1",
        _ => "",
    }
}

/// Routes that change or remove their object: run after the others, in this order, so that every
/// other route still finds it.
const LAST: [(&str, &str); 6] = [
    ("post", "/v1/bindings/{id}/rebind"),
    ("post", "/v1/notifications/{id}/ack"),
    ("post", "/v1/unbind-requests/{id}/resolve"),
    ("delete", "/v1/webhook-endpoints/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("delete", "/v1/bindings/{id}"),
];

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    credential: Option<&str>,
    caller: usize,
    template: &str,
) -> Resp {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let lower = method.as_str().to_lowercase();
    let body = body(&lower, template, caller);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some((ct, _)) = &body {
        headers.push(("content-type", ct));
    }
    let uri = format!("{path}{}", query(&lower, template));
    app.request(method, &uri, credential, &headers, body.map_or_else(Body::empty, |(_, b)| Body::from(b))).await
}

/// The same answer, but for the ids it names.
fn same_refusal(a: &Resp, b: &Resp, objects: &Objects) -> bool {
    let message = |r: &Resp, real: bool| {
        objects
            .ids(real)
            .iter()
            .fold(r.body["message"].as_str().unwrap_or("").to_string(), |m, id| m.replace(id, "<id>"))
    };
    a.status == b.status && a.body["code"] == b.body["code"] && message(a, true) == message(b, false)
}

/// The world the matrices run in: the objects the routes name, and every caller's credential.
struct World {
    objects: Objects,
    /// Per caller (in [`CALLERS`] order): its API key or holder token.
    credentials: [Option<String>; 10],
    /// A participant's key whose console session the pages' matrix revokes ("revoked" there).
    revoked_console: (store::Participant, String),
    /// The bank's participant id (a holder's unbind form names it).
    bank_id: String,
}

async fn setup(app: &TestApp) -> World {
    let w = world(app).await;
    // The bank ("Old Bank") holds a binding of N from before N's current tenure, so the holder of N may
    // ask it to unbind; other-bank ("New Bank") holds one of its own.
    let (_, other_carrier) = app.participant(Role::Carrier, "Carrier B", &["+86139"]).await;
    let (_, portability) = app.participant(Role::Portability, "Portability database", &[]).await;
    let (revoked_bank, revoked) = app.participant(Role::Institution, "Revoked bank", &[]).await;
    app.store.revoke_keys(&revoked_bank.id).await.unwrap();
    let bank = w.old_bank.clone();
    // Its webhook endpoint, then a number it binds that its carrier disconnects: a notification, and a
    // delivery of it to the endpoint.
    let (_hooks, hook_url) = crate::receiver::receiver().await;
    let r = app.post("/v1/webhook-endpoints", &bank, json!({"url": hook_url})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let endpoint = r.body["id"].as_str().unwrap().to_string();
    const BOUND: &str = "+8613800138300";
    app.accept(
        &w.carrier,
        json!([{"eventId": "m-a", "phoneNumber": BOUND, "type": "activated", "date": "2021-01-01"}]),
    )
    .await;
    let r = app
        .post(
            "/v1/bindings",
            &bank,
            json!({"bindings": [{"accountRef": "m-1", "phoneNumber": BOUND, "boundOn": "2022-01-01"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.accept(
        &w.carrier,
        json!([{"eventId": "m-d", "phoneNumber": BOUND, "type": "disconnected", "date": "2025-06-01"}]),
    )
    .await;
    // The disconnection's notification, delivered to the endpoint (the feed holds others of N's,
    // from before the endpoint).
    let deliveries = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), &bank).await;
    let disconnected =
        deliveries.body["deliveries"].as_array().unwrap().iter().find(|d| d["type"] == "number.disconnected");
    let notification =
        disconnected.expect("the disconnection's delivery")["notificationId"].as_str().unwrap().to_string();
    let listed = app.get("/v1/bindings", &bank).await;
    let bindings = listed.body["bindings"].as_array().unwrap();
    let binding =
        bindings.iter().find(|b| b["accountRef"] == "m-1").expect("the binding")["id"].as_str().unwrap().to_string();
    let r = app
        .request(
            Method::POST,
            "/v1/check-files",
            Some(&bank),
            &[("content-type", "text/csv")],
            Body::from(format!("phone_number,date\n{N},2024-01-01\n")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.body["jobId"].as_str().unwrap().to_string();
    app.runner.run_until_idle().await.unwrap();
    // The holder of N, and of another number of the carrier's.
    let holder = login(app, &w, N).await;
    const OTHER: &str = "+8613800138400";
    app.accept(
        &w.carrier,
        json!([{"eventId": "m-o", "phoneNumber": OTHER, "type": "activated", "date": "2021-01-01"}]),
    )
    .await;
    let other_holder = login(app, &w, OTHER).await;
    let r = app.post("/v1/holder/unbind-requests", &holder, json!({"all": true})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let unbind_request = r.body["requests"][0]["id"].as_str().unwrap().to_string();
    let objects = Objects { binding, endpoint, job, notification, unbind_request };
    let credentials = [
        Some(w.carrier.clone()),
        Some(other_carrier),
        Some(bank),
        Some(w.new_bank.clone()),
        Some(w.regulator.clone()),
        Some(portability),
        Some(holder),
        Some(other_holder),
        None,
        Some(revoked),
    ];
    let revoked_console = app.participant(Role::Institution, "Bank signed in, then revoked", &[]).await;
    World { objects, credentials, revoked_console, bank_id: w.old_bank_id.clone() }
}

async fn every_route_answers_every_caller_as_the_matrix_says(db: TestDb) {
    let app = TestApp::new(db);
    let World { objects, credentials, .. } = setup(&app).await;

    let expected = expectations(TABLE, "authorisation.txt");
    let served: Vec<(String, String)> = api::API_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    for route in &served {
        assert!(expected.contains_key(route), "{} {} is served but has no row in authorisation.txt", route.0, route.1);
    }
    for route in expected.keys() {
        assert!(served.contains(route), "authorisation.txt has a row for {} {}, which is not served", route.0, route.1);
    }
    let mut order: Vec<&(String, String)> =
        served.iter().filter(|(m, p)| !LAST.contains(&(m.as_str(), p.as_str()))).collect();
    let last: Vec<(String, String)> = LAST.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    order.extend(last.iter());

    let mut wrong = Vec::new();
    for (method, template) in order {
        let outcomes = &expected[&(method.clone(), template.clone())];
        // The refused first, then those let in: a removal by its owner comes after every refusal.
        let mut callers: Vec<usize> = (0..CALLERS.len()).collect();
        callers.sort_by_key(|&c| outcomes[c] == Outcome::Ok);
        let mut seen = vec![Outcome::Ok; CALLERS.len()];
        for c in callers {
            let path = objects.path(template, true);
            let r = send(&app, method, &path, credentials[c].as_deref(), c, template).await;
            seen[c] = Outcome::of(r.status);
            if seen[c] != outcomes[c] {
                wrong.push(format!("{method} {template} as {}: {} ({})", CALLERS[c], r.status, r.text));
                continue;
            }
            if seen[c].refused() && template.contains('{') {
                let absent = objects.path(template, false);
                let n = send(&app, method, &absent, credentials[c].as_deref(), c, template).await;
                if !same_refusal(&r, &n, &objects) {
                    wrong.push(format!(
                        "{method} {template} as {}: {} {} for the bank's object, but {} {} for none",
                        CALLERS[c], r.status, r.text, n.status, n.text
                    ));
                }
            }
        }
        if seen != *outcomes {
            let row: Vec<String> = seen.iter().map(ToString::to_string).collect();
            wrong.push(format!("  seen: {method} {template} {}", row.join(" ")));
        }
    }
    assert!(wrong.is_empty(), "the matrix does not hold:\n{}", wrong.join("\n"));
}

const PAGE_TABLE: &str = include_str!("../authorisation-pages.txt");

/// A form each page's permitted caller would post (besides its token), and whether it is a file.
fn form(path: &str, caller: usize, bank_id: &str) -> Vec<(&'static str, String)> {
    match path {
        // A number of its own for each caller: the per-number send limits are not what is tested.
        "/code" => vec![("phone", format!("+86138001387{caller:02}"))],
        "/session" => vec![("code", "000000".into())],
        "/unbind/confirm" | "/unbind" => vec![("institution", bank_id.to_string())],
        "/console/sign-in" => vec![("key", "nlk_0000000000000000000000000000000000000000000".into())],
        "/console/requests/{id}/resolve" => vec![("outcome", "unbound".into())],
        "/console/notifications/ack" => vec![("action", "unbound".into())],
        "/console/endpoints" => vec![("url", format!("http://127.0.0.1:9/page-{caller}"))],
        "/console/sms" => vec![("url", "http://127.0.0.1:9/sms-page".into())],
        "/console/sms/test" => vec![("number", N.into())],
        _ => vec![],
    }
}

/// Pages that change or remove their object, or end the session: after the others, in this order.
const PAGES_LAST: [(&str, &str); 9] = [
    ("post", "/console/requests/{id}/resolve"),
    ("post", "/console/notifications/ack"),
    ("post", "/console/endpoints/{id}/delete"),
    ("post", "/console/bindings/{id}/delete"),
    ("post", "/session"),
    ("post", "/unbind"),
    ("post", "/console/sign-in"),
    ("post", "/sign-out"),
    ("post", "/console/sign-out"),
];

/// Forms that end a session (and renew the form token): each browser's token is taken again first.
const SIGN_OUTS: [&str; 2] = ["/sign-out", "/console/sign-out"];

/// The form token of a browser's session: from the first of its pages that has a form.
async fn csrf(b: &mut Browser<'_>) -> String {
    for page in ["/console/home", "/institutions", "/"] {
        let r = b.get(page).await;
        if r.status == 200 && r.text.contains(r#"name="csrf""#) {
            return csrf_of(&r);
        }
    }
    panic!("no page with a form")
}

/// A page's answer, for comparing: its `<main>` (the frame holds the form token), or where it sends.
fn page_shape(r: &Resp, ids: &[String]) -> String {
    let shape = match r.headers.get("location") {
        Some(l) => l.to_str().unwrap().to_string(),
        None => r.text.find("<main").map_or_else(|| r.text.clone(), |at| r.text[at..].to_string()),
    };
    let shape = ids.iter().fold(shape, |s, id| s.replace(id.as_str(), "<id>"));
    format!("{} {shape}", r.status)
}

/// Opens a page, or posts its form (a file for an upload).
async fn ask(
    b: &mut Browser<'_>,
    method: &str,
    template: &str,
    path: &str,
    fields: &[(&str, String)],
    caller: usize,
) -> Resp {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match (method, template) {
        ("get", _) => b.get(path).await,
        (_, "/console/files/{kind}") => {
            let file = format!("account_ref,phone_number,bound_on\npage-{caller},{N},2025-03-01\n");
            b.post_file(path, &fields, Some(("b.csv", file.as_bytes()))).await
        }
        _ => b.post(path, &fields).await,
    }
}

async fn every_page_answers_every_caller_as_the_matrix_says(db: TestDb) {
    let app = TestApp::new(db);
    let World { objects, credentials, revoked_console, bank_id } = setup(&app).await;
    // A browser per caller: a console session of each participant, the holders' portal sessions, none,
    // and a console session whose key was revoked after it signed in.
    let mut browsers = Vec::new();
    for (c, credential) in credentials.iter().enumerate() {
        let b = match (CALLERS[c], credential) {
            ("holder" | "other-holder", Some(token)) => {
                Browser { app: &app, jar: Jar(vec![("nl_session".into(), token.clone())]) }
            }
            ("anonymous", _) => Browser { app: &app, jar: Jar::default() },
            ("revoked", _) => signed_in(&app, &revoked_console.1).await,
            (_, Some(key)) => signed_in(&app, key).await,
            (caller, None) => unreachable!("{caller} has a credential"),
        };
        browsers.push(b);
    }
    app.store.revoke_keys(&revoked_console.0.id).await.unwrap();
    let mut tokens = Vec::new();
    for b in &mut browsers {
        tokens.push(csrf(b).await);
    }

    let expected = expectations(PAGE_TABLE, "authorisation-pages.txt");
    let served: Vec<(String, String)> =
        api::web::PAGE_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    for route in &served {
        assert!(
            expected.contains_key(route),
            "{} {} is served but has no row in authorisation-pages.txt",
            route.0,
            route.1
        );
    }
    for route in expected.keys() {
        assert!(served.contains(route), "authorisation-pages.txt has a row for {} {}, not served", route.0, route.1);
    }
    let mut order: Vec<&(String, String)> =
        served.iter().filter(|(m, p)| !PAGES_LAST.contains(&(m.as_str(), p.as_str()))).collect();
    let last: Vec<(String, String)> = PAGES_LAST.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    order.extend(last.iter());

    let mut wrong = Vec::new();
    for (method, template) in order {
        let outcomes = &expected[&(method.clone(), template.clone())];
        if SIGN_OUTS.contains(&template.as_str()) {
            for (b, token) in browsers.iter_mut().zip(tokens.iter_mut()) {
                *token = csrf(b).await;
            }
        }
        let mut callers: Vec<usize> = (0..CALLERS.len()).collect();
        callers.sort_by_key(|&c| outcomes[c] == Outcome::Ok || outcomes[c] == Outcome::In);
        let mut seen = vec![Outcome::Ok; CALLERS.len()];
        for c in callers {
            let mut fields = form(template, c, &bank_id);
            fields.push(("csrf", tokens[c].clone()));
            if template == "/console/notifications/ack" {
                fields.push(("id", objects.notification.clone()));
            }
            let path = objects.path(template, true);
            let r = ask(&mut browsers[c], method, template, &path, &fields, c).await;
            seen[c] = Outcome::of_page(&r);
            if seen[c] != outcomes[c] {
                let to = r.headers.get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
                let text = r.text.find("<main").map_or(r.text.as_str(), |at| &r.text[at..]);
                wrong.push(format!(
                    "{method} {template} as {}: {} {to} {}",
                    CALLERS[c],
                    r.status,
                    &text[..text.len().min(600)]
                ));
                continue;
            }
            if seen[c].refused() && template.contains("{id}") {
                let n = ask(&mut browsers[c], method, template, &objects.path(template, false), &fields, c).await;
                let (mine, none) = (page_shape(&r, &objects.ids(true)), page_shape(&n, &objects.ids(false)));
                if mine != none {
                    wrong.push(format!(
                        "{method} {template} as {}: the bank's object\n{mine}\nnone\n{none}",
                        CALLERS[c]
                    ));
                }
            }
        }
        if seen != *outcomes {
            let row: Vec<String> = seen.iter().map(ToString::to_string).collect();
            wrong.push(format!("  seen: {method} {template} {}", row.join(" ")));
        }
    }
    assert!(wrong.is_empty(), "the pages' matrix does not hold:\n{}", wrong.join("\n"));
}
