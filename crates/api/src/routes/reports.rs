//! The regulator's view: per institution, how unbind requests and notifications are handled.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorInfo};
use crate::json::StrictQuery;
use crate::report;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstitutionLine {
    pub institution_id: String,
    pub name: String,
    /// Unbind requests not answered yet.
    pub open: u64,
    /// Of those, past their deadline.
    pub overdue: u64,
    /// Answered (unbound or rejected).
    pub resolved: u64,
    /// Of those, answered after the deadline's day.
    pub resolved_late: u64,
    /// Of those, rejected.
    pub rejected: u64,
    /// The rejected, per reason (`customer_reverified`, `legal_hold`, `fraud_investigation`, `no_such_binding`).
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    /// Seconds from request to answer, over the answered: the median (the mean of the middle two for an
    /// even count) and the 90th percentile (nearest rank).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_seconds_median: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_seconds_p90: Option<i64>,
    /// Binding notifications not acknowledged after more than 5 working days.
    pub notifications_unacked_overdue: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstitutionsReport {
    /// The day the report is as of.
    pub as_of: String,
    pub institutions: Vec<InstitutionLine>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// The first day of the period (`YYYY-MM-DD`): only the requests and notifications made from it.
    pub from: Option<String>,
    /// The last day of the period, included; with `from`.
    pub to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/reports/institutions",
    tag = "Regulator",
    summary = "Who handles unbind requests and notifications on time",
    description = "Per institution, over the unbind requests and binding notifications made in the period \
                   `from`..`to` (both days included; all of them without a period), as of today.",
    params(ReportQuery),
    responses(
        (status = 200, body = InstitutionsReport),
        (status = 400, description = "INVALID_ARGUMENT: a day of the wrong form, one of the two alone, or from after to", body = ErrorInfo),
        (status = 401, description = "UNAUTHENTICATED", body = ErrorInfo),
        (status = 403, description = "PERMISSION_DENIED: for regulators", body = ErrorInfo),
    ),
    security(("apiKey" = []))
)]
pub async fn institutions(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ReportQuery>,
) -> ApiResult<Json<InstitutionsReport>> {
    let period = report::period(q.from.as_deref(), q.to.as_deref())?;
    let (as_of, rows) = report::institutions(&state, &caller, period).await?;
    let institutions = rows
        .into_iter()
        .map(|r| InstitutionLine {
            institution_id: r.institution_id,
            name: r.institution_name,
            open: r.open,
            overdue: r.overdue,
            resolved: r.resolved,
            resolved_late: r.resolved_late,
            rejected: r.rejected_by_reason.iter().map(|(_, n)| n).sum(),
            rejected_by_reason: r.rejected_by_reason.iter().map(|(k, n)| (k.as_str().to_string(), *n)).collect(),
            resolve_seconds_median: r.resolve_secs_median,
            resolve_seconds_p90: r.resolve_secs_p90,
            notifications_unacked_overdue: r.notifications_unacked_overdue,
        })
        .collect();
    Ok(Json(InstitutionsReport { as_of: as_of.to_string(), institutions }))
}
