//! Webhook endpoints of an institution: register (the secret is shown once), list, delete, rotate the
//! secret; and replaying a notification. URLs must be `https` and must not point inside a network.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{Endpoint, NotificationId, Role};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::endpoints;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::StrictJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// `https://…`, resolving to a public address.
    #[schema(example = "https://bank.example/numlink/webhooks")]
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCreated {
    pub id: String,
    pub url: String,
    /// `whsec_…`: verify signatures with it (Standard Webhooks). Shown only now.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    /// Why the endpoint was disabled, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub created_at: String,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            id: e.id.into(),
            url: e.url,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRotated {
    pub id: String,
    /// The new secret. Deliveries carry signatures with both secrets until `previousSecretValidUntil`.
    pub secret: String,
    pub previous_secret_valid_until: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries queued.
    pub deliveries: u64,
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no {what} \"{}\"", domain::number::truncate_for_message(id)))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    tag = "Webhooks",
    summary = "Register a webhook endpoint",
    request_body = EndpointRequest,
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = EndpointCreated),
        (status = 400, description = "INVALID_ARGUMENT: not https, internal address, or over webhook_endpoints_max", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<EndpointRequest>,
) -> ApiResult<(StatusCode, Json<EndpointCreated>)> {
    let (e, secret) = endpoints::add(&state, &caller, &req.url).await?;
    Ok((StatusCode::CREATED, Json(EndpointCreated { id: e.id.into(), url: e.url, secret })))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    tag = "Webhooks",
    summary = "Your webhook endpoints",
    responses((status = 200, body = EndpointList), (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo)),
    security(("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<EndpointList>> {
    let list = endpoints::list(&state, &caller).await?;
    Ok(Json(EndpointList { endpoints: list.into_iter().map(Into::into).collect() }))
}

#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    tag = "Webhooks",
    summary = "Delete a webhook endpoint and its pending deliveries",
    params(("id" = String, Path, description = "The endpoint id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "NOT_FOUND", body = ErrorInfo)),
    security(("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    endpoints::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/rotate-secret",
    tag = "Webhooks",
    summary = "Replace the endpoint's secret; both sign for a while",
    params(("id" = String, Path, description = "The endpoint id")),
    responses((status = 200, body = SecretRotated), (status = 404, description = "NOT_FOUND", body = ErrorInfo)),
    security(("apiKey" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretRotated>> {
    let (e, secret) = endpoints::rotate(&state, &caller, &id).await?;
    Ok(Json(SecretRotated {
        id: e.id.into(),
        secret,
        previous_secret_valid_until: e.previous_secret_until.unwrap_or_default(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/notifications/{id}/replay",
    tag = "Webhooks",
    summary = "Deliver a notification again to every enabled endpoint, from the first attempt",
    params(("id" = String, Path, description = "The notification id")),
    responses((status = 202, body = Replayed), (status = 404, description = "NOT_FOUND", body = ErrorInfo)),
    security(("apiKey" = []))
)]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let Some(notification_id) = NotificationId::parse(&id) else { return Err(not_found("notification", &id)) };
    let deliveries =
        state.store.replay(institution, &notification_id).await?.ok_or_else(|| not_found("notification", &id))?;
    state.deliveries_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Replayed { deliveries })))
}
