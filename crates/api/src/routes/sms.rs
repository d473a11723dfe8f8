//! A carrier's SMS gateway: where numlink sends the one-time codes of the carrier's subscribers.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::StrictJson;
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
    let carrier = caller.require(&[Role::Carrier])?;
    let (url, updated_at) = state.store.sms_gateway(carrier.seq).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "no SMS gateway is set: PUT /v1/sms-gateway, or your subscribers get no codes",
        )
    })?;
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
    let carrier = caller.require(&[Role::Carrier])?.clone();
    let url = workers::webhooks::check_url(&req.url, state.webhooks.allow_loopback).await.map_err(ApiError::invalid)?;
    let secret = workers::webhooks::new_secret();
    state.store.put_sms_gateway(carrier, url.as_str(), &secret).await?;
    Ok(Json(GatewaySet { url: url.to_string(), secret }))
}
