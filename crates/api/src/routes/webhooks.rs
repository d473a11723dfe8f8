//! Webhook endpoints of an institution: register (the secret is shown once), list, delete, rotate the
//! secret, send a test event, read the delivery log, replay a delivery, enable again; and replaying a
//! notification. URLs must be `https` and must not point inside a network.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::number::truncate_for_message;
use serde::{Deserialize, Serialize};
use store::{Endpoint, NotificationId, Role};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::endpoints;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::{StrictJson, StrictQuery};
use crate::routes::bindings::{PageQuery, page_limit};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// `https://…`, resolving to a public address.
    #[schema(example = "https://bank.example/numlink/webhooks")]
    pub url: String,
    /// Notifications one request may carry, 1 to 100 (default 1). Above 1, deliveries go as a
    /// CloudEvents batch (`application/cloudevents-batch+json`, a JSON array of events), signed as one
    /// message under a `webhook-id` of its own; each event keeps its `id`, by which to deduplicate.
    #[serde(rename = "batchEvents", default)]
    #[schema(minimum = 1, maximum = 100, example = 100)]
    pub batch_events: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCreated {
    pub id: String,
    pub url: String,
    /// `whsec_…`: verify signatures with it (Standard Webhooks). Shown only now.
    pub secret: String,
    /// Notifications one request may carry.
    pub batch_events: u32,
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
    /// Notifications one request may carry (1: each alone).
    pub batch_events: u32,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            id: e.id.into(),
            url: e.url,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            batch_events: e.batch_events,
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

/// A delivery in an endpoint's log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The notification delivered: its id is the delivery's `webhook-id` (to an endpoint taking
    /// batches, the event's `id` inside the batch).
    pub notification_id: String,
    /// The notification's type, as in its CloudEvent.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the notification was made (RFC 3339).
    pub created_at: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt's answer, if one came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// What went wrong with the last attempt, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The next attempt (unix seconds), while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// When the delivery last changed (RFC 3339).
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryLog {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `after` for older deliveries; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSent {
    /// The test notification (`webhook.test`), also the delivery's `webhook-id` (to an endpoint taking
    /// batches, the event's `id` inside the batch).
    pub notification_id: String,
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
        (status = 400, description = "INVALID_ARGUMENT: not https, internal address, batchEvents outside 1 to 100, or over webhook_endpoints_max", body = ErrorInfo),
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
    let (e, secret) = endpoints::add(&state, &caller, &req.url, req.batch_events).await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointCreated { id: e.id.into(), url: e.url, secret, batch_events: e.batch_events }),
    ))
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
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
    ),
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
    responses(
        (status = 200, body = SecretRotated),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
    ),
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
    responses(
        (status = 202, body = Replayed),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
    ),
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

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    tag = "Webhooks",
    summary = "One of your webhook endpoints",
    params(("id" = String, Path, description = "The endpoint id")),
    responses(
        (status = 200, body = EndpointView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    Ok(Json(endpoints::get(&state, &caller, &id).await?.into()))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/deliveries",
    tag = "Webhooks",
    summary = "The endpoint's delivery log, newest first",
    description = "Each notification sent to the endpoint: its attempts so far, the status code of the last answer, \
                   what went wrong, and the next attempt while one is due.",
    params(("id" = String, Path, description = "The endpoint id"), PageQuery),
    responses(
        (status = 200, body = DeliveryLog),
        (status = 400, description = "INVALID_ARGUMENT: a bad cursor or limit", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictQuery(q): StrictQuery<PageQuery>,
) -> ApiResult<Json<DeliveryLog>> {
    let limit = page_limit(&state, q.limit)?;
    let after = match q.after.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid(format!("after \"{}\" is not a cursor this log gave", truncate_for_message(c)))
        })?),
    };
    let (_, rows) = endpoints::deliveries(&state, &caller, &id, after, limit).await?;
    let next_cursor = (rows.len() == limit as usize).then(|| rows.last().map(|d| d.seq.to_string())).flatten();
    let deliveries = rows
        .into_iter()
        .map(|d| DeliveryView {
            notification_id: d.notification_id.into(),
            kind: d.kind.as_str().to_string(),
            created_at: d.created_at,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            updated_at: d.updated_at,
        })
        .collect();
    Ok(Json(DeliveryLog { deliveries, next_cursor }))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/test",
    tag = "Webhooks",
    summary = "Send a test event to the endpoint alone",
    description = "A `webhook.test` notification, signed and retried like any other, sent to this endpoint only. It is \
                   in the feed already acknowledged: a test asks nothing of you.",
    params(("id" = String, Path, description = "The endpoint id")),
    responses(
        (status = 202, description = "Queued for delivery", body = TestSent),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
        (status = 409, description = "CONFLICT: the endpoint is disabled; enable it first", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<TestSent>)> {
    let n = endpoints::test(&state, &caller, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { notification_id: n.into() })))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/deliveries/{notificationId}/replay",
    tag = "Webhooks",
    summary = "Deliver one notification to this endpoint again, from the first attempt",
    params(
        ("id" = String, Path, description = "The endpoint id"),
        ("notificationId" = String, Path, description = "The notification, as in the endpoint's delivery log"),
    ),
    responses(
        (status = 202, description = "Queued again, with the same webhook-id (to an endpoint taking batches: the same event id, in whichever batch it goes)", body = Replayed),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such delivery of yours", body = ErrorInfo),
        (status = 409, description = "CONFLICT: the endpoint is disabled; enable it first", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn replay_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, notification)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    endpoints::replay(&state, &caller, &id, &notification).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { deliveries: 1 })))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/enable",
    tag = "Webhooks",
    summary = "Enable a disabled endpoint again",
    description = "Its failing streak is forgotten and new notifications are delivered to it. Deliveries that failed \
                   while it was disabled stay failed: replay the ones you need from its delivery log.",
    params(("id" = String, Path, description = "The endpoint id")),
    responses(
        (status = 200, body = EndpointView),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: none of yours has this id", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    Ok(Json(endpoints::enable(&state, &caller, &id).await?.into()))
}
