//! An institution's notifications, once: acknowledging one, and the newest of a kind. The JSON routes
//! (`routes::notifications`) and the console's pages (`web::console`) both call these with the caller
//! they authenticated.

use store::{ACK_ACTIONS, Notification, NotificationFilter, NotificationId, Role};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// Acknowledges one of the caller's notifications with the action taken (one of `ACK_ACTIONS`). The
/// first acknowledgement stands; another's notification, or none, is the same 404.
pub async fn ack(state: &AppState, caller: &Caller, id: &str, action: &str) -> ApiResult<Notification> {
    let institution = caller.require(&[Role::Institution])?.clone();
    if !ACK_ACTIONS.contains(&action) {
        return Err(ApiError::invalid(format!(
            "action \"{}\" is not known: expected one of {}",
            domain::number::truncate_for_message(action),
            ACK_ACTIONS.join(", ")
        )));
    }
    let not_found = || {
        ApiError::new(ErrorCode::NotFound, format!("no notification \"{}\"", domain::number::truncate_for_message(id)))
    };
    let Some(notification_id) = NotificationId::parse(id) else { return Err(not_found()) };
    state.store.ack_notification(institution, &notification_id, action).await?.ok_or_else(not_found)
}

/// The caller's notifications that pass `filter`, newest first, before the feed position `before`.
pub async fn newest(
    state: &AppState,
    caller: &Caller,
    filter: NotificationFilter,
    before: i64,
    limit: u32,
) -> ApiResult<Vec<Notification>> {
    let institution = caller.require(&[Role::Institution])?;
    Ok(state.store.newest_notifications(institution.seq, filter, before, limit).await?)
}
