//! The JSON body of every API operation that takes one, through the real router on a real (SQLite)
//! store, as each kind of caller: a carrier, an institution, the regulator, the portability database,
//! a holder's session, or no one. The first byte picks the operation, the second the caller; the rest
//! is the body. However malformed, a body is answered with a status below 500 and an error body with
//! a stable code: never a panic, never `INTERNAL`.
#![no_main]

use std::sync::{Arc, OnceLock};

use api::{AppState, HolderConfig, HolderState, Limits};
use axum::body::Body;
use axum::http::Request;
use domain::{Day, FixedClock, PhoneNumber, Prefix};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use store::testing::TestDb;
use store::{NewParticipant, Role};
use tower::ServiceExt;
use workers::{Deliverer, DeliveryConfig, JobRunner, SmsSender, SmsSink};

struct World {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    /// Carrier, institution, regulator, portability database, holder session; none after them.
    credentials: Vec<String>,
    /// The operations that take a body, their ids filled in: (method, path).
    operations: Vec<(&'static str, String)>,
    _db: TestDb,
    _spool: std::path::PathBuf,
}

const N: &str = "+8613800138000";

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let db = TestDb::sqlite();
        let clock = Arc::new(FixedClock::at_day(Day::parse("2025-06-30").unwrap()));
        let store = db.open_without_idle_upkeep(clock);
        let spool = std::env::temp_dir().join(format!("numlink-fuzz-spool-{}", std::process::id()));
        std::fs::create_dir_all(&spool).unwrap();
        let (router, credentials, binding) = rt.block_on(async {
            let limits = Limits::default();
            let runner = JobRunner::new(store.clone(), limits.files);
            let webhooks = DeliveryConfig { allow_loopback: true, ..DeliveryConfig::default() };
            let deliverer = Deliverer::new(store.clone(), webhooks).unwrap();
            let (queue, _sms) = SmsSender::new(store.clone(), SmsSink::Gateways(webhooks), 100).unwrap();
            let holder = HolderState::new(HolderConfig::default(), store::testing::test_hash_key(), queue);
            let state = AppState::new(api::StateParts {
                store: store.clone(),
                limits,
                spool_dir: spool.clone(),
                jobs_wake: runner.waker(),
                deliveries_wake: deliverer.waker(),
                webhooks,
                metrics: None,
                holder: Arc::new(holder),
                stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
                job_progress: runner.progress(),
                following: Arc::default(),
                sign_in_failures: api::limit::ClientLimiter::new("console-sign-in-failure", 20, 3600),
                admission: api::admit::Admission::new(
                    api::admit::RateLimits {
                        carrier: api::admit::Rate::new(0, 1),
                        institution: api::admit::Rate::new(0, 1),
                        regulator: api::admit::Rate::new(0, 1),
                        portability: api::admit::Rate::new(0, 1),
                        anonymous_per_client: api::admit::Rate::new(0, 1),
                    },
                    api::admit::TrustedProxies::default(),
                ),
            });
            let add = |role, name: &str, prefixes: Vec<Prefix>| {
                let store = store.clone();
                let name = name.to_string();
                async move {
                    let since = (role == Role::Carrier).then(|| Day::parse("2020-01-01").unwrap());
                    let new = NewParticipant { role, name, prefixes, reporting_since: since };
                    store.add_participant(new).await.unwrap()
                }
            };
            let (carrier, carrier_key) = add(Role::Carrier, "Carrier", vec![Prefix::parse("+86138").unwrap()]).await;
            let (_, bank_key) = add(Role::Institution, "Bank", vec![]).await;
            let (_, regulator_key) = add(Role::Regulator, "Regulator", vec![]).await;
            let (_, portability_key) = add(Role::Portability, "Portability", vec![]).await;
            let n = PhoneNumber::parse(N).unwrap();
            let activated = workers::files::parse_event_id("fuzz-a1").unwrap();
            let event = store::NewEvent {
                event_id: activated,
                number: n,
                kind: domain::EventKind::Activated,
                date: Day::parse("2021-01-01").unwrap(),
                kyc: None,
                recipient: None,
            };
            store.report_events(carrier, vec![event]).await.unwrap();
            let router = api::router(state);
            // A binding of the bank's, for the routes that name one.
            let req = Request::post("/v1/bindings")
                .header("authorization", format!("Bearer {}", bank_key.expose()))
                .header("content-type", "application/json")
                .body(Body::from(format!(
                    r#"{{"bindings":[{{"accountRef":"fuzz-1","phoneNumber":"{N}","boundOn":"2022-01-01"}}]}}"#
                )))
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let body: serde_json::Value =
                serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
            let binding = body["bindings"][0]["id"].as_str().unwrap_or("bnd_00000000000000000000").to_string();
            let mark = store.tenure_mark(n).await.unwrap();
            let holder = api::holder::session_token(&store::testing::test_hash_key(), n, mark, 1_900_000_000);
            let credentials = vec![
                carrier_key.expose().to_string(),
                bank_key.expose().to_string(),
                regulator_key.expose().to_string(),
                portability_key.expose().to_string(),
                holder,
            ];
            (router, credentials, binding)
        });
        let operations = api::API_ROUTES
            .iter()
            .filter(|(method, _)| matches!(*method, "post" | "put"))
            .map(|(method, path)| {
                let path = path
                    .replace("/v1/bindings/{id}", &format!("/v1/bindings/{binding}"))
                    .replace("{id}", "x_00000000000000000000")
                    .replace("{notificationId}", "ntf_00000000000000000000");
                (*method, path)
            })
            .collect();
        World { rt, router, credentials, operations, _db: db, _spool: spool }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let [op, caller, body @ ..] = data else { return };
    let (method, path) = &w.operations[usize::from(*op) % w.operations.len()];
    let mut req = Request::builder().method(method.to_uppercase().as_str()).uri(path.as_str());
    if let Some(credential) = w.credentials.get(usize::from(*caller) % (w.credentials.len() + 1)) {
        req = req.header("authorization", format!("Bearer {credential}"));
    }
    let req = req.header("content-type", "application/json").body(Body::from(body.to_vec())).unwrap();
    let (status, bytes) = w.rt.block_on(async {
        let resp = w.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    });
    assert!(status < 500, "{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
    if status >= 400 {
        let error: serde_json::Value = serde_json::from_slice(&bytes).expect("an error body is JSON");
        assert!(error["code"].as_str().is_some_and(|c| !c.is_empty()), "{method} {path}: {error}");
    }
});
