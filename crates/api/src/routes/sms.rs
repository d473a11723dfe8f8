//! A carrier's SMS gateway: where numlink sends the one-time codes of the carrier's subscribers; a
//! test message through it; and how many codes went to the carrier's numbers per day (never a code).
//! The functions here serve the JSON routes and the carrier's console alike.

use axum::Json;
use axum::extract::State;
use domain::{Day, PhoneNumber};
use serde::{Deserialize, Serialize};
use store::Participant;
use store::Role;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::{StrictJson, StrictQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayRequest {
    /// `https://…`, resolving to a public address.
    #[schema(example = "https://sms.carrier.example/numlink")]
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GatewaySet {
    pub url: String,
    /// `whsec_…`: each message is signed with it (Standard Webhooks headers `webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`). A new secret on every PUT; shown only now.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayView {
    pub url: String,
    pub updated_at: String,
}

/// Days of code counts one request may ask for.
pub(crate) const CODE_DAYS_MAX: u32 = 366;
/// The text of a test message.
const TEST_TEXT: &str = "numlink: a test message sent through your SMS gateway. No code, nothing to do.";

fn no_gateway() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no SMS gateway is set: PUT /v1/sms-gateway, or your subscribers get no codes")
}

/// The caller's gateway: its URL and when it was set.
pub(crate) async fn gateway(state: &AppState, caller: &Caller) -> ApiResult<Option<(String, String)>> {
    let carrier = caller.require(&[Role::Carrier])?;
    Ok(state.store.sms_gateway(carrier.seq).await?)
}

/// Sets the caller's gateway at `url` (https, outside any internal network) with a new secret; the
/// URL as kept, and the secret, shown only now. The same URL again is a new secret.
pub(crate) async fn set(state: &AppState, caller: &Caller, url: &str) -> ApiResult<(String, String)> {
    let carrier = caller.require(&[Role::Carrier])?.clone();
    let url = workers::webhooks::check_url(url, state.webhooks.allow_loopback).await.map_err(ApiError::invalid)?;
    let secret = workers::webhooks::new_secret();
    state.store.put_sms_gateway(carrier, url.as_str(), &secret).await?;
    Ok((url.to_string(), secret))
}

/// The codes issued for the caller's numbers on each of the last `days` UTC days (today included),
/// oldest first, days without a code included: (day, codes, of which found no gateway set).
pub(crate) async fn codes_per_day(state: &AppState, caller: &Caller, days: u32) -> ApiResult<Vec<(Day, u64, u64)>> {
    let carrier = caller.require(&[Role::Carrier])?;
    if !(1..=CODE_DAYS_MAX).contains(&days) {
        return Err(ApiError::invalid(format!("days must be 1 to {CODE_DAYS_MAX}")));
    }
    let today = state.store.clock().today();
    let since = today.plus_days(1 - days as i32);
    let counted = state.store.sms_codes_daily(carrier.seq, since).await?;
    let mut counted = counted.into_iter().peekable();
    Ok((0..days as i32)
        .map(|i| {
            let day = since.plus_days(i);
            match counted.next_if(|c| c.0 == day) {
                Some(c) => c,
                None => (day, 0, 0),
            }
        })
        .collect())
}

/// What a test message came to: the status the gateway answered, or why none came.
pub(crate) type TestOutcome = Result<u16, String>;

/// Sends a test message to `number`, one of the caller's, through its gateway, now.
pub(crate) async fn send_test(state: &AppState, caller: &Caller, number: PhoneNumber) -> ApiResult<TestOutcome> {
    let carrier = caller.require(&[Role::Carrier])?;
    let me: Participant = state
        .store
        .participant(carrier.seq)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "the participant of this key is gone"))?;
    if !me.prefixes.iter().any(|p| number.has_prefix(p)) {
        return Err(ApiError::invalid(format!(
            "{number} is in none of your ranges: send a test to one of your numbers"
        )));
    }
    let g = state.store.sms_gateway_with_secret(carrier.seq).await?.ok_or_else(no_gateway)?;
    let outcome = workers::sms::send_test(&state.webhooks, &g, &number.to_string(), TEST_TEXT).await;
    tracing::info!(carrier = %g.carrier_id, outcome = ?outcome, "a test message was sent through an SMS gateway");
    Ok(outcome)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CodesQuery {
    /// The last this many UTC days, today included: 1 to 366, default 30.
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodesDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// One-time codes numlink issued for numbers you serve.
    pub codes: u64,
    /// Of those, the codes that found no SMS gateway set, and were not sent.
    pub without_gateway: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodesPerDay {
    /// Oldest first, every day of the period.
    pub days: Vec<CodesDay>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestRequest {
    /// One of your numbers: the gateway is asked to send it a short text without a code.
    #[schema(example = "+8613800138000")]
    pub phone_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// The gateway answered 2xx.
    pub delivered: bool,
    /// The status the gateway answered, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/sms-gateway/codes",
    tag = "Carriers",
    summary = "How many one-time codes went to your numbers per day (never a code)",
    params(CodesQuery),
    responses(
        (status = 200, body = CodesPerDay),
        (status = 400, description = "INVALID_ARGUMENT: days out of range", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn codes(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<CodesQuery>,
) -> ApiResult<Json<CodesPerDay>> {
    let days = codes_per_day(&state, &caller, q.days.unwrap_or(30)).await?;
    Ok(Json(CodesPerDay {
        days: days
            .into_iter()
            .map(|(d, codes, without_gateway)| CodesDay { date: d.to_string(), codes, without_gateway })
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/sms-gateway/test",
    tag = "Carriers",
    summary = "Send a test message through your SMS gateway, now",
    description = "Signed as a code's message is, to one of your numbers, with a text that carries no code. The answer \
                   says what the gateway answered.",
    request_body = TestRequest,
    responses(
        (status = 200, body = TestResult),
        (status = 400, description = "INVALID_ARGUMENT: not a number, or not in your ranges", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no SMS gateway is set", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<TestRequest>,
) -> ApiResult<Json<TestResult>> {
    let number = crate::routes::phone("phoneNumber", &req.phone_number)?;
    Ok(Json(match send_test(&state, &caller, number).await? {
        Ok(status) if (200..300).contains(&status) => TestResult { delivered: true, status: Some(status), error: None },
        Ok(status) => {
            TestResult { delivered: false, status: Some(status), error: Some(format!("the gateway answered {status}")) }
        }
        Err(e) => TestResult { delivered: false, status: None, error: Some(e) },
    }))
}

#[utoipa::path(
    get,
    path = "/v1/sms-gateway",
    tag = "Carriers",
    summary = "Your SMS gateway",
    responses(
        (status = 200, body = GatewayView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none set; your subscribers get no codes", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn get_gateway(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<GatewayView>> {
    let (url, updated_at) = gateway(&state, &caller).await?.ok_or_else(no_gateway)?;
    Ok(Json(GatewayView { url, updated_at }))
}

#[utoipa::path(
    put,
    path = "/v1/sms-gateway",
    tag = "Carriers",
    summary = "Set your SMS gateway",
    description = "numlink POSTs `{\"phoneNumber\", \"text\"}` (JSON, signed like webhooks) to this URL for every one-time \
                   code to a number you serve now (porting respected).",
    request_body = GatewayRequest,
    responses(
        (status = 200, body = GatewaySet),
        (status = 400, description = "INVALID_ARGUMENT: not https, or an internal address", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn put_gateway(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<GatewayRequest>,
) -> ApiResult<Json<GatewaySet>> {
    let (url, secret) = set(&state, &caller, &req.url).await?;
    Ok(Json(GatewaySet { url, secret }))
}
