//! An institution's webhook endpoints, once: register (the secret is shown once), list, delete, rotate
//! the secret, send a test event, read the delivery log, replay a delivery, enable again. The JSON routes (`routes::webhooks`) and the console's pages (`web::console`) both call
//! these with the caller they authenticated.

use store::{Endpoint, EndpointAction, EndpointId, LoggedDelivery, NotificationId, Role};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no webhook endpoint \"{}\"", domain::number::truncate_for_message(id)))
}

fn disabled() -> ApiError {
    ApiError::new(ErrorCode::Conflict, "the webhook endpoint is disabled: enable it first")
}

/// One of the caller's endpoints. Another's, or none, is the same 404.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Endpoint> {
    let institution = caller.require(&[Role::Institution])?;
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    state.store.endpoint(institution.seq, &endpoint_id).await?.ok_or_else(|| not_found(id))
}

/// One of the caller's endpoints and a page of its delivery log, newest first: at most `limit`
/// deliveries, those older than the cursor `after` (the `seq` of the last one seen) if given.
pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: &str,
    after: Option<i64>,
    limit: u32,
) -> ApiResult<(Endpoint, Vec<LoggedDelivery>)> {
    let institution = caller.require(&[Role::Institution])?;
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    state.store.endpoint_deliveries(institution.seq, &endpoint_id, after, limit).await?.ok_or_else(|| not_found(id))
}

/// Sends a `webhook.test` notification to one enabled endpoint of the caller's, and to it alone; the
/// deliverer is woken. The notification's id, which is the delivery's `webhook-id` (or the event's id
/// in a batch, for an endpoint taking batches).
pub async fn test(state: &AppState, caller: &Caller, id: &str) -> ApiResult<NotificationId> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    match state.store.test_endpoint(institution, &endpoint_id).await? {
        EndpointAction::Done(n) => {
            state.deliveries_wake.notify_one();
            Ok(n)
        }
        EndpointAction::NotFound => Err(not_found(id)),
        EndpointAction::Disabled => Err(disabled()),
    }
}

/// Queues one delivery in an endpoint's log again, from the first attempt, with the same `webhook-id`.
pub async fn replay(state: &AppState, caller: &Caller, id: &str, notification: &str) -> ApiResult<()> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let no_delivery = || {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no delivery of \"{}\" to this endpoint", domain::number::truncate_for_message(notification)),
        )
    };
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    let Some(notification_id) = NotificationId::parse(notification) else { return Err(no_delivery()) };
    match state.store.replay_delivery(institution, &endpoint_id, &notification_id).await? {
        EndpointAction::Done(()) => {
            state.deliveries_wake.notify_one();
            Ok(())
        }
        EndpointAction::NotFound => Err(no_delivery()),
        EndpointAction::Disabled => Err(disabled()),
    }
}

/// Enables one of the caller's endpoints again (a disabled one, or one already enabled: the same).
pub async fn enable(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Endpoint> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    let e = state.store.enable_endpoint(institution, &endpoint_id).await?.ok_or_else(|| not_found(id))?;
    state.deliveries_wake.notify_one();
    Ok(e)
}

/// Registers an endpoint at `url` (https, outside any internal network), sent up to `batch_events`
/// notifications a request (1 if not said), within the institution's number of endpoints; the endpoint
/// and its secret, which is never shown again.
pub async fn add(
    state: &AppState,
    caller: &Caller,
    url: &str,
    batch_events: Option<u32>,
) -> ApiResult<(Endpoint, String)> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let max = workers::webhooks::BATCH_EVENTS_MAX;
    let batch_events = batch_events.unwrap_or(1);
    if !(1..=max).contains(&batch_events) {
        return Err(ApiError::invalid(format!("batchEvents must be from 1 to {max}, not {batch_events}")));
    }
    let url = workers::webhooks::check_url(url, state.webhooks.allow_loopback).await.map_err(ApiError::invalid)?;
    let secret = workers::webhooks::new_secret();
    let e = state
        .store
        .add_endpoint(institution, url.as_str(), &secret, state.limits.webhook_endpoints_max, batch_events)
        .await?;
    Ok((e, secret))
}

/// The caller's endpoints.
pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<Vec<Endpoint>> {
    let institution = caller.require(&[Role::Institution])?;
    Ok(state.store.endpoints(institution.seq).await?)
}

/// Deletes one of the caller's endpoints and its pending deliveries. Another's, or none, is the same
/// 404.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    if state.store.delete_endpoint(institution, &endpoint_id).await? { Ok(()) } else { Err(not_found(id)) }
}

/// Gives one of the caller's endpoints a new secret; the previous one signs too until the endpoint's
/// `previous_secret_until`. The endpoint and the new secret, shown once.
pub async fn rotate(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(Endpoint, String)> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let Some(endpoint_id) = EndpointId::parse(id) else { return Err(not_found(id)) };
    let secret = workers::webhooks::new_secret();
    let e = state
        .store
        .rotate_endpoint_secret(institution, &endpoint_id, &secret, state.webhooks.secret_overlap_secs)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok((e, secret))
}
