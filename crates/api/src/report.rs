//! The regulator's report, once: the JSON route (`routes::reports`) and the regulator's dashboard
//! (`web::console`) both call it with the caller they authenticated.

use domain::Day;
use store::{InstitutionReport, Period, ReportSeries, Role};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The days a report covers, from `from` and `to` as sent (`YYYY-MM-DD`, both or neither, `from` not
/// after `to`).
pub fn period(from: Option<&str>, to: Option<&str>) -> ApiResult<Option<Period>> {
    let day = |name: &str, s: &str| {
        Day::parse(s).map_err(|_| {
            ApiError::invalid(format!(
                "{name} \"{}\" is not a day (YYYY-MM-DD)",
                domain::number::truncate_for_message(s)
            ))
        })
    };
    match (from, to) {
        (None, None) => Ok(None),
        (Some(f), Some(t)) => {
            let (from, to) = (day("from", f)?, day("to", t)?);
            if from > to {
                return Err(ApiError::invalid(format!("from {from} is after to {to}")));
            }
            Ok(Some(Period { from, to }))
        }
        _ => Err(ApiError::invalid("send both from and to, or neither")),
    }
}

/// Every institution's handling of unbind requests and notifications made in `period` (all, if none),
/// as of today: for the regulator only.
pub async fn institutions(
    state: &AppState,
    caller: &Caller,
    period: Option<Period>,
) -> ApiResult<(Day, Vec<InstitutionReport>)> {
    caller.require(&[Role::Regulator])?;
    let rows = state.store.institution_report(state.holder.config.ack_working_days, period).await?;
    Ok((state.store.today(), rows))
}

/// Weeks of overdue counts a chart shows at most (the latest).
pub const CHART_WEEKS_MAX: usize = 26;

/// What the regulator's charts show over `period` (or the last weeks, if none): for the regulator
/// only.
pub async fn series(state: &AppState, caller: &Caller, period: Option<Period>) -> ApiResult<ReportSeries> {
    caller.require(&[Role::Regulator])?;
    Ok(state.store.report_series(period, CHART_WEEKS_MAX).await?)
}
