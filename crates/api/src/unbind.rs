//! The institution's side of unbind requests, once: its requests, one request with the bindings it is
//! about and the holder's proof, and its answer. The JSON routes (`routes::unbind`) and the console's
//! pages (`web::console`) both call these with the caller they authenticated, so a page authorises
//! exactly as its route does and refuses with the same `ApiError`.

use domain::RejectReason;
use store::{Resolution, Resolved, Role, UnbindRequest, UnbindRequestId};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no unbind request \"{}\"", domain::number::truncate_for_message(id)))
}

/// The caller's unbind requests in id order after the cursor `after`.
pub async fn list(state: &AppState, caller: &Caller, after: &str, limit: u32) -> ApiResult<Vec<UnbindRequest>> {
    let institution = caller.require(&[Role::Institution])?;
    Ok(state.store.unbind_requests(institution.seq, after, limit).await?)
}

/// The caller's requests as its operators work through them: the open ones by deadline (at most
/// `open_max`), then the answered ones, newest first (at most `answered_max`).
pub async fn queue(
    state: &AppState,
    caller: &Caller,
    open_max: u32,
    answered_max: u32,
) -> ApiResult<store::UnbindQueue> {
    let institution = caller.require(&[Role::Institution])?;
    Ok(state.store.unbind_queue(institution.seq, open_max, answered_max).await?)
}

/// One of the caller's requests. Another's, or none, is the same 404.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<UnbindRequest> {
    let institution = caller.require(&[Role::Institution])?;
    let Some(request_id) = UnbindRequestId::parse(id) else { return Err(not_found(id)) };
    state.store.unbind_request(institution.seq, &request_id).await?.ok_or_else(|| not_found(id))
}

/// The holder's proof of tenure sent with one of the caller's requests, if still kept.
pub async fn proof(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Option<String>> {
    let institution = caller.require(&[Role::Institution])?;
    let Some(request_id) = UnbindRequestId::parse(id) else { return Err(not_found(id)) };
    Ok(state.store.unbind_proof(institution.seq, &request_id).await?)
}

/// An answer as it is sent: `unbound`, or `rejected` with one of the reasons.
pub fn resolution(outcome: &str, reason: Option<&str>) -> ApiResult<Resolution> {
    let reasons: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
    match (outcome, reason) {
        ("unbound", None) => Ok(Resolution::Unbound),
        ("unbound", Some(_)) => Err(ApiError::invalid("reason goes only with outcome \"rejected\"")),
        ("rejected", Some(r)) => Ok(Resolution::Rejected(RejectReason::parse(r).ok_or_else(|| {
            ApiError::invalid(format!(
                "reason \"{}\" is not one of {}",
                domain::number::truncate_for_message(r),
                reasons.join(", ")
            ))
        })?)),
        ("rejected", None) => {
            Err(ApiError::invalid(format!("a rejection needs a reason: one of {}", reasons.join(", "))))
        }
        (other, _) => Err(ApiError::invalid(format!(
            "outcome \"{}\" is not \"unbound\" or \"rejected\"",
            domain::number::truncate_for_message(other)
        ))),
    }
}

/// Answers one of the caller's requests; the request as answered and the bindings removed. The first
/// answer stands: a second is 409.
pub async fn resolve(
    state: &AppState,
    caller: &Caller,
    id: &str,
    resolution: Resolution,
) -> ApiResult<(UnbindRequest, u64)> {
    let institution = caller.require(&[Role::Institution])?.clone();
    let Some(request_id) = UnbindRequestId::parse(id) else { return Err(not_found(id)) };
    match state.store.resolve_unbind(institution, &request_id, resolution).await? {
        Resolved::NotFound => Err(not_found(id)),
        Resolved::AlreadyResolved(r) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("unbind request \"{}\" was answered before ({})", r.id, r.state.as_str()),
        )),
        Resolved::Done { request, bindings_removed } => Ok((request, bindings_removed)),
    }
}
