//! CAMARA Number Recycling v0.2: `POST /number-recycling/v0.2/check`, exactly as its OpenAPI definition
//! says. numlink issues two-legged credentials (API keys), so the phone number always comes in the
//! body: without it the answer is `422 MISSING_IDENTIFIER`.

use axum::Json;
use axum::extract::State;
use domain::Answer;
use domain::answer::NoDataReason;
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorInfo};
use crate::json::StrictJson;
use crate::routes::{date, phone};
use crate::state::AppState;

/// The request: the number (E.164 with `+`) and the date to check from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateCheckNumRecycling {
    /// E.164 with a leading `+`. Required with numlink's two-legged credentials.
    #[schema(pattern = r"^\+[1-9][0-9]{4,14}$", example = "+8613800138000")]
    pub phone_number: Option<String>,
    /// RFC 3339 full-date (`YYYY-MM-DD`), not after today.
    #[schema(format = Date, example = "2024-10-31")]
    pub specified_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckNumRecyclingInfo {
    /// True when the subscriber of the number has changed since `specifiedDate`.
    pub phone_number_recycled: bool,
}

#[utoipa::path(
    post,
    path = "/number-recycling/v0.2/check",
    tag = "CAMARA Number Recycling",
    operation_id = "checkNumberRecycling",
    summary = "Check whether the subscriber of the phone number has changed since a date.",
    params(("x-correlator" = Option<String>, Header, description = "Correlation id, echoed in the response")),
    request_body = CreateCheckNumRecycling,
    responses(
        (status = 200, description = "OK", body = CheckNumRecyclingInfo),
        (status = 400, description = "INVALID_ARGUMENT or OUT_OF_RANGE (date after today, or before the number's coverage)", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED", body = ErrorInfo),
        (status = 404, description = "IDENTIFIER_NOT_FOUND: numlink knows nothing of the number", body = ErrorInfo),
        (status = 422, description = "MISSING_IDENTIFIER", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    StrictJson(req): StrictJson<CreateCheckNumRecycling>,
) -> ApiResult<Json<CheckNumRecyclingInfo>> {
    let who = caller.require(&[Role::Institution, Role::Regulator])?.clone();
    let d = match &req.specified_date {
        Some(s) => date("specifiedDate", s)?,
        None => return Err(ApiError::invalid("specifiedDate is required")),
    };
    let n = match &req.phone_number {
        Some(s) => phone("phoneNumber", s)?,
        None => {
            return Err(ApiError::new(
                ErrorCode::MissingIdentifier,
                "phoneNumber is required: the API key does not identify a phone number",
            ));
        }
    };
    let answers = state.store.check(who, vec![(n, d)]).await?;
    let answer = answers.into_iter().next().ok_or_else(|| ApiError::internal("check returned no answer"))?;
    metrics::counter!("numlink_checks_total", "api" => "camara", "answer" => answer.map_or("out_of_range", Answer::as_str)).increment(1);
    match answer {
        Ok(Answer::Yes) => Ok(Json(CheckNumRecyclingInfo { phone_number_recycled: true })),
        Ok(Answer::No) => Ok(Json(CheckNumRecyclingInfo { phone_number_recycled: false })),
        Ok(Answer::NoData(NoDataReason::UnknownNumber)) => {
            Err(ApiError::new(ErrorCode::IdentifierNotFound, "phone number not found: no carrier reports on it"))
        }
        Ok(Answer::NoData(NoDataReason::BeforeCoverage)) => Err(ApiError::new(
            ErrorCode::OutOfRange,
            format!("specifiedDate \"{d}\" is before the date from which this number's carrier reports"),
        )),
        Err(_) => Err(ApiError::new(ErrorCode::OutOfRange, format!("specifiedDate \"{d}\" is in the future"))),
    }
}
