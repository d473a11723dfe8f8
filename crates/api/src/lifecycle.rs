//! A carrier's own view of what it reported, once: its ranges, and the events it reported for a
//! number. The JSON route (`routes::events::reported`) and the carrier's console (`web::console`) both
//! call these with the caller they authenticated.

use domain::PhoneNumber;
use store::{Participant, Role, StoredEvent};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// The calling carrier (or the number-portability database) as registered, with its ranges.
pub async fn profile(state: &AppState, caller: &Caller) -> ApiResult<Participant> {
    let me = caller.require(&[Role::Carrier, Role::Portability])?;
    state
        .store
        .participant(me.seq)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "the participant of this key is gone"))
}

/// The events the caller reported for `n`, in R1 order; never another carrier's.
pub async fn reported(state: &AppState, caller: &Caller, n: PhoneNumber) -> ApiResult<Vec<StoredEvent>> {
    let me = caller.require(&[Role::Carrier, Role::Portability])?;
    let events = state.store.events_of(n).await?;
    Ok(events.into_iter().filter(|e| e.reporter_id == me.id.as_str()).collect())
}
