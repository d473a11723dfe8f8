//! `POST /v1/lifecycle-events`: a carrier's batch of events, each validated on its own (R3).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::{NewEvent, Outcome, Role};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::StrictJson;
use crate::routes::{date, phone};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleEventsRequest {
    /// At most 1,000 events (batch_items_max).
    pub events: Vec<EventItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventItem {
    /// The carrier's own idempotency key: 1 to 128 printable ASCII characters.
    #[schema(example = "2024-11-0001")]
    pub event_id: Option<String>,
    #[schema(example = "+8613800138000")]
    pub phone_number: Option<String>,
    /// `activated`, `disconnected`, `transferred`, `ported_out` or `ported_in`.
    #[serde(rename = "type")]
    #[schema(example = "disconnected")]
    pub kind: Option<String>,
    #[schema(example = "2024-11-02")]
    pub date: Option<String>,
    /// The new holder's real-name record, with `activated` or `transferred` only. numlink keeps keyed
    /// hashes of the normalized attributes, for KYC Match and rebinding, until the tenure ends.
    pub kyc: Option<crate::routes::kyc::KycRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleEventsResponse {
    pub accepted: u64,
    /// Events whose eventId was accepted before with the identical payload: not applied again.
    pub duplicates: u64,
    pub rejected: Vec<RejectedEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedEvent {
    /// Position of the event in the request, from 0.
    pub index: usize,
    pub event_id: Option<String>,
    /// INVALID_ARGUMENT, OUT_OF_RANGE, NOT_NUMBER_HOLDER, STATE_CONFLICT, AGING_VIOLATION or CONFLICT.
    pub code: String,
    pub message: String,
}

fn parse_event(it: &EventItem) -> Result<NewEvent, ApiError> {
    let need = |v: &Option<String>, f: &str| v.clone().ok_or_else(|| ApiError::invalid(format!("{f} is required")));
    let event_id =
        workers::files::parse_event_id(&need(&it.event_id, "eventId")?).map_err(|r| ApiError::invalid(r.message))?;
    let number = phone("phoneNumber", &need(&it.phone_number, "phoneNumber")?)?;
    let kind = workers::files::parse_kind(&need(&it.kind, "type")?).map_err(|r| ApiError::invalid(r.message))?;
    let date = date("date", &need(&it.date, "date")?)?;
    let kyc = match &it.kyc {
        None => None,
        Some(_) if !matches!(kind, domain::EventKind::Activated | domain::EventKind::Transferred) => {
            return Err(ApiError::invalid("kyc goes only with an activated or transferred event"));
        }
        Some(k) => Some(k.parse()?),
    };
    Ok(NewEvent { event_id, number, kind, date, kyc })
}

#[utoipa::path(
    post,
    path = "/v1/lifecycle-events",
    tag = "Carriers",
    summary = "Report lifecycle events (activation, disconnection, transfer, porting)",
    request_body = LifecycleEventsRequest,
    responses(
        (status = 200, description = "Each event accepted, a duplicate, or rejected on its own", body = LifecycleEventsResponse),
        (status = 400, description = "INVALID_ARGUMENT (malformed body) or TOO_MANY_ITEMS", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn lifecycle_events(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<LifecycleEventsRequest>,
) -> ApiResult<Json<LifecycleEventsResponse>> {
    let carrier = caller.require(&[Role::Carrier])?.clone();
    let max = state.limits.batch_items_max;
    if req.events.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("{} events: at most {max} per call (batch_items_max)", req.events.len()),
        ));
    }
    let mut rejected = Vec::new();
    let mut valid = Vec::new();
    let mut valid_index = Vec::new();
    for (i, it) in req.events.iter().enumerate() {
        match parse_event(it) {
            Ok(e) => {
                valid.push(e);
                valid_index.push(i);
            }
            Err(e) => rejected.push(RejectedEvent {
                index: i,
                event_id: it.event_id.clone(),
                code: e.code.as_str().into(),
                message: e.message,
            }),
        }
    }
    let outcomes = state.store.report_events(carrier, valid).await?;
    // Accepted events may have created notifications.
    state.deliveries_wake.notify_one();
    let (mut accepted, mut duplicates) = (0, 0);
    for (i, outcome) in valid_index.into_iter().zip(outcomes) {
        let label = match outcome {
            Outcome::Accepted => {
                accepted += 1;
                "accepted"
            }
            Outcome::Duplicate => {
                duplicates += 1;
                "duplicate"
            }
            Outcome::Rejected(r) => {
                rejected.push(RejectedEvent {
                    index: i,
                    event_id: req.events[i].event_id.clone(),
                    code: r.code.as_str().into(),
                    message: r.message,
                });
                "rejected"
            }
        };
        metrics::counter!("numlink_events_total", "outcome" => label).increment(1);
    }
    rejected.sort_by_key(|r| r.index);
    Ok(Json(LifecycleEventsResponse { accepted, duplicates, rejected }))
}
