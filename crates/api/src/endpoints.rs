//! An institution's webhook endpoints, once: register (the secret is shown once), list, delete, rotate
//! the secret. The JSON routes (`routes::webhooks`) and the console's pages (`web::console`) both call
//! these with the caller they authenticated.

use store::{Endpoint, EndpointId, Role};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no webhook endpoint \"{}\"", domain::number::truncate_for_message(id)))
}

/// Registers an endpoint at `url` (https, outside any internal network), within the institution's
/// number of endpoints; the endpoint and its secret, which is never shown again.
pub async fn add(state: &AppState, caller: &Caller, url: &str) -> ApiResult<(Endpoint, String)> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let url = workers::webhooks::check_url(url, state.webhooks.allow_loopback).await.map_err(ApiError::invalid)?;
    let secret = workers::webhooks::new_secret();
    let e = state.store.add_endpoint(institution, url.as_str(), &secret, state.limits.webhook_endpoints_max).await?;
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
