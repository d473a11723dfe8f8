//! HTTP-level tests: the router called in-process, on SQLite and on PostgreSQL (each test in a fresh
//! database), through the typed helpers of [`TestApp`].

mod admission;
mod auth;
mod authz;
mod bindings;
mod camara;
mod check_files;
mod checks;
mod connections;
mod console;
mod events;
mod files;
mod holder;
mod kyc;
mod nodes;
mod ops;
mod portal;
mod ports;
mod receiver;
mod webhooks;

use std::sync::Arc;

use api::admit::TrustedProxies;
use api::{AppState, HolderConfig, HolderState, Limits};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use domain::{Clock, Day, FixedClock};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use store::testing::TestDb;
use store::{NewParticipant, Participant, Role, Store};
use tower::ServiceExt;
use workers::{Deliverer, DeliveryConfig, JobRunner, SmsSender, SmsSink};

/// "Today" in every test, unless a test moves the clock.
pub const TODAY: &str = "2025-06-30";

pub struct TestApp {
    pub store: Store,
    pub clock: Arc<FixedClock>,
    pub runner: JobRunner,
    pub deliverer: Deliverer,
    /// Sends the one-time codes queued by the API: `sms.run_once()` delivers them.
    pub sms: SmsSender,
    pub holder: HolderConfig,
    pub spool: tempfile::TempDir,
    pub limits: Limits,
    /// Whose `X-Forwarded-For` this app believes.
    pub trusted: TrustedProxies,
    router: Router,
    pub db: TestDb,
    /// The server's shutdown signal, as the binary sets it.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl TestApp {
    pub fn new(db: TestDb) -> TestApp {
        TestApp::with_limits(db, Limits::default())
    }

    pub fn with_limits(db: TestDb, limits: Limits) -> TestApp {
        TestApp::configured(db, limits, HolderConfig::default())
    }

    /// The writer does no upkeep when idle here, so that what a test sees does not depend on how fast
    /// it runs: a test moves checks or files notifications itself (`Store::compact_lookups`,
    /// `Store::file_notifications`).
    pub fn configured(db: TestDb, limits: Limits, holder: HolderConfig) -> TestApp {
        let clock = Arc::new(FixedClock::at_day(domain::Day::parse(TODAY).unwrap()));
        let store = db.open_without_idle_upkeep(clock.clone());
        let spool = tempfile::tempdir().unwrap();
        TestApp::assemble(db, store, clock, spool, limits, holder, TrustedProxies::default())
    }

    /// Behind these proxies (`X-Forwarded-For` from them names the client).
    pub fn behind(db: TestDb, limits: Limits, trusted: &[&str]) -> TestApp {
        let app = TestApp::with_limits(db, limits);
        let TestApp { db, store, clock, spool, limits, holder, .. } = app;
        TestApp::assemble(db, store, clock, spool, limits, holder, TrustedProxies::parse(trusted).unwrap())
    }

    fn assemble(
        db: TestDb,
        store: Store,
        clock: Arc<FixedClock>,
        spool: tempfile::TempDir,
        limits: Limits,
        holder: HolderConfig,
        trusted: TrustedProxies,
    ) -> TestApp {
        let runner = JobRunner::new(store.clone(), limits.files);
        let webhooks = DeliveryConfig { allow_loopback: true, timeout_ms: 2_000, ..DeliveryConfig::default() };
        let deliverer = Deliverer::new(store.clone(), webhooks).unwrap();
        let (queue, sms) = SmsSender::new(store.clone(), SmsSink::Gateways(webhooks), 100).unwrap();
        let holder_state = HolderState::new(holder.clone(), store::testing::test_hash_key(), queue);
        let stopping = Arc::new(tokio::sync::watch::Sender::new(false));
        let state = AppState::new(api::StateParts {
            store: store.clone(),
            limits,
            spool_dir: spool.path().to_path_buf(),
            jobs_wake: runner.waker(),
            deliveries_wake: deliverer.waker(),
            webhooks,
            metrics: None,
            holder: Arc::new(holder_state),
            stopping: stopping.clone(),
            job_progress: runner.progress(),
            following: Arc::default(),
            sign_in_failures: api::limit::ClientLimiter::new(
                "console-sign-in-failure",
                limits.console_sign_in_failures_per_client_per_hour_max,
                3600,
            ),
            admission: api::admit::Admission::new(limits.rates, trusted.clone()),
        });
        TestApp {
            router: api::router(state),
            store,
            clock,
            runner,
            deliverer,
            sms,
            holder,
            spool,
            limits,
            trusted,
            db,
            stopping,
        }
    }

    /// The router, to serve on a real socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The same database and spool, opened afresh: what a restarted process sees.
    pub fn restart(self) -> TestApp {
        let TestApp { db, clock, spool, limits, store, holder, trusted, .. } = self;
        // The same node, restarted: it takes back at once what it had claimed.
        let node = store.node().to_string();
        drop(store);
        let store = db.open_configured(clock.clone(), |c| {
            c.upkeep_when_idle = false;
            c.node = Some(node);
        });
        TestApp::assemble(db, store, clock, spool, limits, holder, trusted)
    }

    /// A second node on the same database: its own store (index, writer), spool and router, on
    /// this one's clock. Drop it before this one.
    pub fn another_node(&self) -> TestApp {
        let store = self.db.beside().open_without_idle_upkeep(self.clock.clone());
        let spool = tempfile::tempdir().unwrap();
        TestApp::assemble(
            self.db.beside(),
            store,
            self.clock.clone(),
            spool,
            self.limits,
            self.holder.clone(),
            self.trusted.clone(),
        )
    }

    /// Moves the injected clock forward.
    pub fn advance(&self, secs: i64) {
        let t = self.clock.now().checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
        self.clock.set(t);
    }

    pub async fn participant(&self, role: Role, name: &str, prefixes: &[&str]) -> (Participant, String) {
        let (p, key) = self
            .store
            .add_participant(NewParticipant {
                role,
                name: name.into(),
                prefixes: prefixes.iter().map(|p| domain::Prefix::parse(p).unwrap()).collect(),
                reporting_since: (role == Role::Carrier).then(|| Day::parse("2020-01-01").unwrap()),
            })
            .await
            .unwrap();
        (p, key.expose().to_string())
    }

    /// A carrier holding `+86138`, reporting since 2020-01-01.
    pub async fn carrier(&self) -> String {
        self.participant(Role::Carrier, "Carrier A", &["+86138"]).await.1
    }

    pub async fn institution(&self) -> String {
        self.participant(Role::Institution, "Bank", &[]).await.1
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        self.send(req.body(body).unwrap()).await
    }

    /// A GET whose response body is read by the caller, as it arrives.
    pub async fn get_streamed(&self, path: &str, key: &str) -> axum::response::Response {
        let req = Request::builder().uri(path).header("authorization", format!("Bearer {key}")).body(Body::empty());
        self.router.clone().oneshot(req.unwrap()).await.unwrap()
    }

    /// Sends a request built by the caller (for extensions such as the client's address).
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, text, body }
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.request(
            Method::POST,
            path,
            Some(key),
            &[("content-type", "application/json")],
            Body::from(body.to_string()),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.request(Method::GET, path, Some(key), &[], Body::empty()).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.request(Method::DELETE, path, Some(key), &[], Body::empty()).await
    }

    pub async fn events(&self, key: &str, events: Value) -> Resp {
        self.post("/v1/lifecycle-events", key, json!({ "events": events })).await
    }

    /// Reports events and insists they were all accepted.
    pub async fn accept(&self, key: &str, events: Value) {
        let n = events.as_array().unwrap().len();
        let r = self.events(key, events).await;
        assert_eq!((r.status, r.body["accepted"].as_u64()), (200, Some(n as u64)), "{}", r.text);
    }

    pub async fn upload(&self, key: &str, csv: &str) -> Resp {
        self.request(
            Method::POST,
            "/v1/lifecycle-files",
            Some(key),
            &[("content-type", "text/csv")],
            Body::from(csv.to_string()),
        )
        .await
    }

    /// Uploads, lets the runner apply everything, and returns the job.
    pub async fn upload_and_apply(&self, key: &str, csv: &str) -> Value {
        let r = self.upload(key, csv).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let id = r.body["jobId"].as_str().unwrap().to_string();
        self.runner.run_until_idle().await.unwrap();
        self.get(&format!("/v1/jobs/{id}"), key).await.body
    }
}

/// Asserts an `ErrorInfo` body with this status and code, and a message a person can read.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!((r.status, r.body["code"].as_str()), (status, Some(code)), "{}", r.text);
    assert_eq!(r.body["status"].as_u64(), Some(u64::from(status)));
    assert!(r.body["message"].as_str().is_some_and(|m| m.len() > 10), "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
}
