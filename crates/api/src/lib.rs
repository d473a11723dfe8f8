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

/// A router's routes and their table, from one list of `method "path" => handler`: the table
/// (`[("get", "/v1/bindings"), …]`) is what the tests walk (every route documented, every route in the
/// authorisation matrix), so a route cannot be served without appearing in it.
macro_rules! route_table {
    ($(#[$doc:meta])* $table:ident, $build:ident; $($method:ident $path:literal => $handler:path,)*) => {
        $(#[$doc])*
        pub const $table: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn $build() -> axum::Router<$crate::state::AppState> {
            axum::Router::new()$(.route($path, axum::routing::$method($handler)))*
        }
    };
}
pub(crate) use route_table;

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

/// Who a request comes from, and whether it is let in ([`admit::admit`]).
async fn admission(State(state): State<AppState>, req: Request, next: Next) -> Response {
    admit::admit(&state.admission, &state.store, req, next).await
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

route_table! {
    /// Every API route: (method, path), as the router serves it.
    API_ROUTES, api_routes;
    post "/number-recycling/v0.2/check" => routes::camara::check,
    post "/v1/reassignment-checks" => routes::checks::reassignment_checks,
    post "/v1/lifecycle-events" => routes::events::lifecycle_events,
    get "/v1/lifecycle-events" => routes::events::reported,
    get "/v1/pending-ports" => routes::events::pending_ports,
    post "/v1/lifecycle-files" => routes::files::upload_lifecycle_file,
    post "/v1/binding-files" => routes::files::upload_binding_file,
    post "/v1/check-files" => routes::files::upload_check_file,
    get "/v1/jobs/{id}/result" => routes::files::job_result,
    post "/v1/bindings" => routes::bindings::register,
    get "/v1/bindings" => routes::bindings::list_bindings,
    get "/v1/bindings/{id}" => routes::bindings::get_binding,
    delete "/v1/bindings/{id}" => routes::bindings::delete_binding,
    get "/v1/notifications" => routes::notifications::feed,
    post "/v1/notifications/{id}/ack" => routes::notifications::ack,
    post "/v1/notifications/{id}/replay" => routes::webhooks::replay,
    post "/v1/webhook-endpoints" => routes::webhooks::add,
    get "/v1/webhook-endpoints" => routes::webhooks::list,
    get "/v1/webhook-endpoints/{id}" => routes::webhooks::get,
    delete "/v1/webhook-endpoints/{id}" => routes::webhooks::delete,
    get "/v1/webhook-endpoints/{id}/deliveries" => routes::webhooks::deliveries,
    post "/v1/webhook-endpoints/{id}/test" => routes::webhooks::test,
    post "/v1/webhook-endpoints/{id}/deliveries/{notificationId}/replay" => routes::webhooks::replay_delivery,
    post "/v1/webhook-endpoints/{id}/enable" => routes::webhooks::enable,
    post "/v1/webhook-endpoints/{id}/rotate-secret" => routes::webhooks::rotate,
    post "/v1/bindings/{id}/rebind" => routes::kyc::rebind,
    post "/kyc-match/v0.4/match" => routes::kyc::kyc_match,
    put "/v1/sms-gateway" => routes::sms::put_gateway,
    get "/v1/sms-gateway" => routes::sms::get_gateway,
    get "/v1/sms-gateway/codes" => routes::sms::codes,
    post "/v1/sms-gateway/test" => routes::sms::test,
    post "/v1/holder/otp" => routes::holder::request_otp,
    post "/v1/holder/session" => routes::holder::session,
    get "/v1/holder/bindings" => routes::holder::bindings,
    post "/v1/holder/unbind-requests" => routes::holder::request_unbind,
    get "/v1/holder/unbind-requests" => routes::holder::unbind_requests,
    get "/v1/holder/lookups" => routes::holder::lookups,
    get "/v1/holder/attestation" => routes::holder::attestation,
    get "/.well-known/jwks.json" => routes::holder::jwks,
    get "/v1/unbind-requests" => routes::unbind::list,
    get "/v1/unbind-requests/{id}" => routes::unbind::get,
    post "/v1/unbind-requests/{id}/resolve" => routes::unbind::resolve,
    get "/v1/reports/institutions" => routes::reports::institutions,
    get "/v1/jobs" => routes::files::list_jobs,
    get "/v1/jobs/{id}" => routes::files::get_job,
    delete "/v1/jobs/{id}" => routes::files::delete_job,
    get "/v1/jobs/{id}/rejections" => routes::files::job_rejections,
    get "/healthz" => routes::ops::healthz,
    get "/metrics" => routes::ops::metrics,
}

pub fn router(state: AppState) -> Router {
    let api = api_routes()
        .route_layer(middleware::from_fn(track))
        // Inside the wait for a position: a key revoked on another node is refused once this node has
        // reached the revocation.
        .route_layer(middleware::from_fn_with_state(state.clone(), admission))
        .route_layer(middleware::from_fn_with_state(state.clone(), position))
        .fallback(not_found)
        .with_state(state.clone());
    let admit = middleware::from_fn_with_state(state.clone(), admission);
    // The pages for people are not part of the API document: their own router.
    let pages = web::router(state).route_layer(middleware::from_fn(track)).route_layer(admit.clone());
    let docs = Router::from(SwaggerUi::new("/docs").url("/openapi.json", openapi::document())).route_layer(admit);
    api.merge(pages).merge(docs).layer(middleware::from_fn(correlator)).layer(TraceLayer::new_for_http())
}
