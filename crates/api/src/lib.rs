//! The HTTP interface: router, wire types, authentication, the error table, and the OpenAPI document.
//!
//! A request flows: socket → axum → layers (trace, metrics, `x-correlator`) → extractors (API key →
//! [`auth::Caller`], strict JSON) → handler (parse into domain types) → [`store::Store`] (the writer's
//! next group commit) → wire types. This crate knows no SQL and holds no rules.

/// `Debug` that prints only the type's name: for wire types that carry a code, a token or a real name,
/// so that no log line can hold them.
macro_rules! redacted_debug {
    ($($t:ty),* $(,)?) => {
        $(impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        })*
    };
}
pub(crate) use redacted_debug;

pub mod admit;
pub mod attest;
pub mod auth;
pub mod endpoints;
pub mod error;
pub mod feed;
pub mod holder;
pub mod json;
pub mod lifecycle;
pub mod limit;
pub mod openapi;
pub mod report;
pub mod routes;
pub mod serve;
pub mod state;
pub mod unbind;
pub mod web;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, ErrorCode};
pub use state::{AppState, HolderConfig, HolderState, Limits, MetricsRender, StateParts};

const X_CORRELATOR: &str = "x-correlator";
/// On every API response: the change of the registry this node's answers reflect (see
/// [`store::Store::wait_for_position`]). Any node given it in [`MIN_POSITION`] answers from at least
/// that state.
pub const POSITION: &str = "numlink-position";
/// On any API request: answer only once this node's index reflects that position (read your writes
/// across nodes), waiting at most [`POSITION_WAIT`]; otherwise `503 POSITION_NOT_REACHED`, which may
/// be retried on this node or another.
pub const MIN_POSITION: &str = "numlink-min-position";
pub const POSITION_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// CAMARA's `XCorrelator`: `^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$`.
fn valid_correlator(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    b.len() <= 256 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_:;./<>{}".contains(c))
}

/// Echoes `x-correlator` on every response, and rejects one that breaks CAMARA's pattern.
async fn correlator(req: Request, next: Next) -> Response {
    let value = req.headers().get(X_CORRELATOR).cloned();
    let mut resp = match &value {
        Some(v) if !valid_correlator(v) => {
            ApiError::invalid("x-correlator must match ^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$").into_response()
        }
        _ => next.run(req).await,
    };
    if let Some(v) = value.filter(valid_correlator) {
        resp.headers_mut().insert(X_CORRELATOR, v);
    }
    resp
}

/// Holds a request with `numlink-min-position` until this node's index has reached it, and tells
/// every response the position this node had reached when it answered.
async fn position(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(v) = req.headers().get(MIN_POSITION) {
        let Some(wanted) = v.to_str().ok().and_then(|v| v.parse::<u64>().ok()) else {
            return ApiError::invalid(format!("{MIN_POSITION} must be a whole number, as {POSITION} gives it"))
                .into_response();
        };
        if !state.store.wait_for_position(wanted, POSITION_WAIT).await {
            return ApiError::new(
                ErrorCode::PositionNotReached,
                format!(
                    "this node has not reached position {wanted} within {} s (it is at {}); try again, here or on another node",
                    POSITION_WAIT.as_secs(),
                    state.store.position()
                ),
            )
            .into_response();
        }
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(POSITION, HeaderValue::from(state.store.position()));
    resp
}

/// Counts requests and their latency per route and status.
async fn track(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("numlink_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("numlink_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such resource")
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/number-recycling/v0.2/check", post(routes::camara::check))
        .route("/v1/reassignment-checks", post(routes::checks::reassignment_checks))
        .route("/v1/lifecycle-events", post(routes::events::lifecycle_events).get(routes::events::reported))
        .route("/v1/pending-ports", get(routes::events::pending_ports))
        .route("/v1/lifecycle-files", post(routes::files::upload_lifecycle_file))
        .route("/v1/binding-files", post(routes::files::upload_binding_file))
        .route("/v1/check-files", post(routes::files::upload_check_file))
        .route("/v1/jobs/{id}/result", get(routes::files::job_result))
        .route("/v1/bindings", post(routes::bindings::register).get(routes::bindings::list_bindings))
        .route("/v1/bindings/{id}", get(routes::bindings::get_binding).delete(routes::bindings::delete_binding))
        .route("/v1/notifications", get(routes::notifications::feed))
        .route("/v1/notifications/{id}/ack", post(routes::notifications::ack))
        .route("/v1/notifications/{id}/replay", post(routes::webhooks::replay))
        .route("/v1/webhook-endpoints", post(routes::webhooks::add).get(routes::webhooks::list))
        .route("/v1/webhook-endpoints/{id}", get(routes::webhooks::get).delete(routes::webhooks::delete))
        .route("/v1/webhook-endpoints/{id}/deliveries", get(routes::webhooks::deliveries))
        .route("/v1/webhook-endpoints/{id}/test", post(routes::webhooks::test))
        .route("/v1/webhook-endpoints/{id}/deliveries/{notificationId}/replay", post(routes::webhooks::replay_delivery))
        .route("/v1/webhook-endpoints/{id}/enable", post(routes::webhooks::enable))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(routes::webhooks::rotate))
        .route("/v1/bindings/{id}/rebind", post(routes::kyc::rebind))
        .route("/kyc-match/v0.4/match", post(routes::kyc::kyc_match))
        .route("/v1/sms-gateway", axum::routing::put(routes::sms::put_gateway).get(routes::sms::get_gateway))
        .route("/v1/sms-gateway/codes", get(routes::sms::codes))
        .route("/v1/sms-gateway/test", post(routes::sms::test))
        .route("/v1/holder/otp", post(routes::holder::request_otp))
        .route("/v1/holder/session", post(routes::holder::session))
        .route("/v1/holder/bindings", get(routes::holder::bindings))
        .route("/v1/holder/unbind-requests", post(routes::holder::request_unbind).get(routes::holder::unbind_requests))
        .route("/v1/holder/lookups", get(routes::holder::lookups))
        .route("/v1/holder/attestation", get(routes::holder::attestation))
        .route("/.well-known/jwks.json", get(routes::holder::jwks))
        .route("/v1/unbind-requests", get(routes::unbind::list))
        .route("/v1/unbind-requests/{id}", get(routes::unbind::get))
        .route("/v1/unbind-requests/{id}/resolve", post(routes::unbind::resolve))
        .route("/v1/reports/institutions", get(routes::reports::institutions))
        .route("/v1/jobs", get(routes::files::list_jobs))
        .route("/v1/jobs/{id}", get(routes::files::get_job).delete(routes::files::delete_job))
        .route("/v1/jobs/{id}/rejections", get(routes::files::job_rejections))
        .route("/healthz", get(routes::ops::healthz))
        .route("/metrics", get(routes::ops::metrics))
        .route_layer(middleware::from_fn(track))
        // Inside the wait for a position: a key revoked on another node is refused once this node has
        // reached the revocation.
        .route_layer(middleware::from_fn_with_state(state.clone(), admit::admit))
        .route_layer(middleware::from_fn_with_state(state.clone(), position))
        .fallback(not_found)
        .with_state(state.clone());
    let admit = middleware::from_fn_with_state(state.clone(), admit::admit);
    // The pages for people are not part of the API document: their own router.
    let pages = web::router(state).route_layer(middleware::from_fn(track)).route_layer(admit.clone());
    let docs = Router::from(SwaggerUi::new("/docs").url("/openapi.json", openapi::document())).route_layer(admit);
    api.merge(pages).merge(docs).layer(middleware::from_fn(correlator)).layer(TraceLayer::new_for_http())
}
