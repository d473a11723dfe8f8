//! The pull feed of notifications, for institutions without webhooks, and acknowledgements.
//! Each notification is a thin CloudEvents 1.0 event: ids, the institution's own accountRef and the
//! event date, never the phone number.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorInfo};
use crate::feed;
use crate::json::{StrictJson, StrictQuery};
use crate::routes::bindings::{PageQuery, page_limit};
use crate::state::AppState;

/// A CloudEvents 1.0 event in structured JSON mode, as the feed and webhooks carry it (built by
/// `workers::webhooks::cloud_event`; this type documents its shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct CloudEvent {
    #[schema(example = "1.0")]
    pub specversion: String,
    /// The notification id; the same on every delivery attempt (the `webhook-id`, except to an endpoint
    /// taking batches, whose batch has an id of its own).
    pub id: String,
    #[schema(example = "numlink")]
    pub source: String,
    /// `number.disconnected`, `number.transferred`, `number.reassigned`, `unbind.requested`,
    /// `webhook.endpoint_disabled`, or `webhook.test` (sent from the endpoint's test, acknowledged as made).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the notification was created (RFC 3339).
    pub time: String,
    #[schema(example = "application/json")]
    pub datacontenttype: String,
    pub data: NotificationData,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    /// Binding notifications: the binding.
    pub binding_id: Option<String>,
    /// Binding notifications: the institution's own reference of the account.
    pub account_ref: Option<String>,
    /// Binding notifications: the date of the lifecycle event.
    pub event_date: Option<String>,
    /// `number.disconnected`: the first day the aging period allows the number to be reissued.
    pub reissuable_from: Option<String>,
    /// `webhook.endpoint_disabled`: the endpoint.
    pub endpoint_id: Option<String>,
    /// `webhook.endpoint_disabled`: why.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsPage {
    #[schema(value_type = Vec<CloudEvent>)]
    pub notifications: Vec<serde_json::Value>,
    /// Pass as `after` next time: the position after the last notification seen.
    pub next_cursor: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// `unbound`, `customer_reverified` or `contact_suspended`.
    #[schema(example = "unbound")]
    pub action: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AckView {
    pub id: String,
    pub action: String,
    pub acked_at: String,
}

#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "Notifications",
    summary = "Your notifications after a cursor, oldest first",
    params(PageQuery),
    responses(
        (status = 200, description = "A page", body = NotificationsPage),
        (status = 400, description = "INVALID_ARGUMENT: bad cursor or limit", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for institutions", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<PageQuery>,
) -> ApiResult<Json<NotificationsPage>> {
    let institution = caller.require(&[Role::Institution])?;
    let limit = page_limit(&state, q.limit)?;
    let after: i64 = match q.after.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse().ok().filter(|v| *v >= 0).ok_or_else(|| {
            ApiError::invalid(format!(
                "after \"{}\" is not a cursor from this feed",
                domain::number::truncate_for_message(c)
            ))
        })?,
    };
    let page = state.store.notifications(institution.seq, after, limit).await?;
    let next = page.last().map_or(after, |n| n.seq);
    Ok(Json(NotificationsPage {
        notifications: page.iter().map(workers::webhooks::cloud_event).collect(),
        next_cursor: next.to_string(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/notifications/{id}/ack",
    tag = "Notifications",
    summary = "Acknowledge a notification with the action taken",
    description = "The time from creation to acknowledgement is kept for the regulator. The first acknowledgement stands.",
    params(("id" = String, Path, description = "The notification id")),
    request_body = AckRequest,
    responses(
        (status = 200, description = "Acknowledged", body = AckView),
        (status = 400, description = "INVALID_ARGUMENT: unknown action", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 404, description = "NOT_FOUND: no such notification, or not yours", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<AckRequest>,
) -> ApiResult<Json<AckView>> {
    let n = feed::ack(&state, &caller, &id, &req.action).await?;
    Ok(Json(AckView {
        id: n.id.into(),
        action: n.ack_action.unwrap_or_default(),
        acked_at: n.acked_at.unwrap_or_default(),
    }))
}
