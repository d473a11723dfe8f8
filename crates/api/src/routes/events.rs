//! `POST /v1/lifecycle-events`: a carrier's batch of events, each validated on its own (R3).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::{NewEvent, Outcome, Role};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::{StrictJson, StrictQuery};
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
    /// A port's recipient, as a carrier's id (`car_…`). A donor should name it on its `ported_out`:
    /// only that carrier's `ported_in` then completes the port (a `ported_out` that names none is
    /// completed by the single carrier whose `ported_in` waits or comes). The number-portability
    /// database names it on the `ported_in` that reports a whole port.
    #[schema(example = "car_5c2f0a7e9b1d3c4e6f80")]
    pub recipient: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEventsResponse {
    pub accepted: u64,
    /// Events whose eventId was accepted before with the identical payload: not applied again.
    pub duplicates: u64,
    /// `ported_in` events kept pending: a port takes both sides, and the serving carrier has not
    /// reported its `ported_out` of that day yet. Each is applied when that arrives, or dropped
    /// unapplied 30 days after it was received (`GET /v1/pending-ports` lists them).
    pub pending: u64,
    pub pending_events: Vec<PendingEvent>,
    pub rejected: Vec<RejectedEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingEvent {
    /// Position of the event in the request, from 0.
    pub index: usize,
    pub event_id: Option<String>,
    pub message: String,
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

/// What a pending `ported_in` is told.
pub const PENDING_MESSAGE: &str = "a port takes both sides: kept until the serving carrier reports its \"ported_out\" of \
                                   the same date (naming this carrier, if it names one), then applied; dropped \
                                   unapplied after 30 days";

/// Longest recipient id looked at (participant ids are 24 bytes).
const RECIPIENT_BYTES_MAX: usize = 64;

fn parse_event(it: &EventItem, kyc_chars_max: usize) -> Result<NewEvent, ApiError> {
    let need = |v: &Option<String>, f: &str| v.clone().ok_or_else(|| ApiError::invalid(format!("{f} is required")));
    let event_id =
        workers::files::parse_event_id(&need(&it.event_id, "eventId")?).map_err(|r| ApiError::invalid(r.message))?;
    let number = phone("phoneNumber", &need(&it.phone_number, "phoneNumber")?)?;
    let kind = workers::files::parse_kind(&need(&it.kind, "type")?).map_err(|r| ApiError::invalid(r.message))?;
    let date = date("date", &need(&it.date, "date")?)?;
    let kyc = match &it.kyc {
        None => None,
        Some(_) if !kind.carries_real_name() => {
            return Err(ApiError::invalid("kyc goes only with an activated or transferred event"));
        }
        Some(k) => Some(k.parse(kyc_chars_max)?),
    };
    let recipient = match &it.recipient {
        Some(r) if r.is_empty() || r.len() > RECIPIENT_BYTES_MAX => {
            return Err(ApiError::invalid(format!(
                "recipient must be 1 to {RECIPIENT_BYTES_MAX} bytes: a carrier's id"
            )));
        }
        r => r.clone(),
    };
    Ok(NewEvent { event_id, number, kind, date, kyc, recipient })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReportedQuery {
    /// The number, E.164.
    pub phone_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportedEvent {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub date: String,
    /// A port's recipient, when the event names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportedEvents {
    /// In R1 order: by date, then by kind within a day.
    pub events: Vec<ReportedEvent>,
}

#[utoipa::path(
    get,
    path = "/v1/lifecycle-events",
    tag = "Carriers",
    summary = "The events you reported for a number",
    description = "Only your own reports: another carrier's events on the number are never shown.",
    params(ReportedQuery),
    responses(
        (status = 200, body = ReportedEvents),
        (status = 400, description = "INVALID_ARGUMENT: not an E.164 number", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers and the number-portability database", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn reported(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ReportedQuery>,
) -> ApiResult<Json<ReportedEvents>> {
    let n = phone("phoneNumber", &q.phone_number)?;
    let events = crate::lifecycle::reported(&state, &caller, n).await?;
    Ok(Json(ReportedEvents {
        events: events
            .into_iter()
            .map(|e| ReportedEvent {
                event_id: e.event_id,
                kind: e.kind.as_str().to_string(),
                date: e.date.to_string(),
                recipient: e.recipient_id,
            })
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/lifecycle-events",
    tag = "Carriers",
    summary = "Report lifecycle events (activation, disconnection, transfer, porting)",
    request_body = LifecycleEventsRequest,
    responses(
        (status = 200, description = "Each event accepted, a duplicate, pending (a `ported_in` waiting for the donor's `ported_out`), or rejected on its own", body = LifecycleEventsResponse),
        (status = 400, description = "INVALID_ARGUMENT (malformed body) or TOO_MANY_ITEMS", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers and the number-portability database", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn lifecycle_events(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<LifecycleEventsRequest>,
) -> ApiResult<Json<LifecycleEventsResponse>> {
    let carrier = caller.require(&[Role::Carrier, Role::Portability])?.clone();
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
        match parse_event(it, state.limits.kyc_attribute_chars_max) {
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
    let mut pending_events = Vec::new();
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
            Outcome::Pending => {
                pending_events.push(PendingEvent {
                    index: i,
                    event_id: req.events[i].event_id.clone(),
                    message: PENDING_MESSAGE.into(),
                });
                "pending"
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
    let pending = pending_events.len() as u64;
    Ok(Json(LifecycleEventsResponse { accepted, duplicates, pending, pending_events, rejected }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPortView {
    pub event_id: String,
    pub phone_number: String,
    pub date: String,
    /// When it was received and when it is dropped unapplied (RFC 3339), if no `ported_out` comes.
    pub received_at: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPorts {
    /// Oldest first, at most 1,000.
    pub pending: Vec<PendingPortView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// At most this many (1 to 1,000).
    pub limit: Option<u32>,
}

fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map(|t| t.to_string()).unwrap_or_default()
}

#[utoipa::path(
    get,
    path = "/v1/pending-ports",
    tag = "Carriers",
    summary = "Your ported_in events waiting for the donor's ported_out",
    description = "A port takes both sides: a carrier's `ported_in` moves the number only once the serving carrier's \
                   `ported_out` of the same date is stored. Until then it is listed here; it is applied when that \
                   arrives (and leaves this list), or dropped unapplied 30 days after it was received.",
    params(PendingQuery),
    responses(
        (status = 200, body = PendingPorts),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for carriers", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn pending_ports(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<PendingQuery>,
) -> ApiResult<Json<PendingPorts>> {
    let carrier = caller.require(&[Role::Carrier])?;
    let list_max = state.limits.pending_ports_listed_max;
    let limit = q.limit.unwrap_or(list_max);
    if !(1..=list_max).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be 1 to {list_max} (pending_ports_listed_max)")));
    }
    let pending = state
        .store
        .pending_ports(carrier.seq, limit)
        .await?
        .into_iter()
        .map(|p| PendingPortView {
            event_id: p.event_id,
            phone_number: p.number.to_string(),
            date: p.date.to_string(),
            received_at: rfc3339(p.received_unix),
            expires_at: rfc3339(p.expires_unix),
        })
        .collect();
    Ok(Json(PendingPorts { pending }))
}
