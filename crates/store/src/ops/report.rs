//! The regulator's report: per institution, its unbind requests (open, overdue, answered, answered
//! late, rejected by reason, the median and p90 time to answer) and its binding notifications left
//! unacknowledged too long. The rules that decide each figure are `domain::unbind`'s; this reads
//! and counts.

use std::collections::HashMap;

use domain::unbind::ResolveTimes;
use domain::{Day, RejectReason};

use crate::StoreError;
use crate::ops::bindings::day;
use crate::sql::Conn;
use crate::time;

/// One line of the regulator's report.
#[derive(Clone, Debug, PartialEq)]
pub struct InstitutionReport {
    pub institution_id: String,
    pub institution_name: String,
    pub open: u64,
    pub overdue: u64,
    pub resolved: u64,
    /// Of the resolved, answered after their deadline's day.
    pub resolved_late: u64,
    /// Of the resolved, the rejected, per reason.
    pub rejected_by_reason: Vec<(RejectReason, u64)>,
    /// Seconds from request to resolution.
    pub resolve_secs_median: Option<i64>,
    pub resolve_secs_p90: Option<i64>,
    /// Binding notifications not acknowledged after more than `unacked_working_days` working days.
    pub notifications_unacked_overdue: u64,
}

/// The days a report covers, both included: the requests asked and the notifications written on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: Day,
    pub to: Day,
}

impl Period {
    /// The bounds as the tables write moments: from the first day's start to the day after the last.
    fn bounds(period: Option<Period>) -> (String, String) {
        match period {
            Some(p) => (format!("{}T00:00:00.000Z", p.from), format!("{}T00:00:00.000Z", p.to.plus_days(1))),
            // Every moment the tables can hold (fixed-width text sorts as time).
            None => ("0000".into(), "9999".into()),
        }
    }
}

/// The regulator's report: every institution, with its unbind requests and unacknowledged notifications
/// (of those made in `period`, if given). Open requests are counted in SQL per (institution,
/// deadline); answered ones are read one by one, for the deadline met and the percentiles.
pub(crate) fn institution_report(
    conn: &mut dyn Conn,
    today: Day,
    unacked_working_days: u32,
    period: Option<Period>,
) -> Result<Vec<InstitutionReport>, StoreError> {
    let (from, to) = Period::bounds(period);
    let institutions =
        conn.query("SELECT seq, id, name FROM participants WHERE role = 'institution' ORDER BY name, id", &[])?;
    let mut by_seq: HashMap<i64, InstitutionReport> = HashMap::with_capacity(institutions.len());
    for inst in &institutions {
        by_seq.insert(
            inst.i64(0)?,
            InstitutionReport {
                institution_id: inst.text(1)?,
                institution_name: inst.text(2)?,
                open: 0,
                overdue: 0,
                resolved: 0,
                resolved_late: 0,
                rejected_by_reason: Vec::new(),
                resolve_secs_median: None,
                resolve_secs_p90: None,
                notifications_unacked_overdue: 0,
            },
        );
    }
    // Open requests, per deadline: overdue or not is the domain's to say.
    for r in conn.query(
        "SELECT institution_seq, deadline, COUNT(*) FROM unbind_requests WHERE state = 'open' \
         AND created_at >= $1 AND created_at < $2 GROUP BY 1, 2",
        &[from.clone().into(), to.clone().into()],
    )? {
        let Some(rep) = by_seq.get_mut(&r.i64(0)?) else { continue };
        let n = r.i64(2)? as u64;
        rep.open += n;
        if domain::unbind::overdue(day(&r, 1)?, today) {
            rep.overdue += n;
        }
    }
    // Answered requests: when, against the deadline (the end of its day, UTC), and why if rejected.
    let mut durations: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in conn.query(
        "SELECT institution_seq, state, reason, deadline, created_at, resolved_at FROM unbind_requests \
         WHERE state <> 'open' AND created_at >= $1 AND created_at < $2",
        &[from.clone().into(), to.clone().into()],
    )? {
        let seq = r.i64(0)?;
        let Some(rep) = by_seq.get_mut(&seq) else { continue };
        rep.resolved += 1;
        let (created, resolved) = (time::unix(&r, 4)?, time::opt_unix(&r, 5)?.unwrap_or_default());
        if domain::unbind::answered_late(day(&r, 3)?, resolved) {
            rep.resolved_late += 1;
        }
        if let Some(reason) = r.opt_text(2).as_deref().and_then(RejectReason::parse) {
            match rep.rejected_by_reason.iter_mut().find(|(x, _)| *x == reason) {
                Some((_, n)) => *n += 1,
                None => rep.rejected_by_reason.push((reason, 1)),
            }
        }
        durations.entry(seq).or_default().push(resolved - created);
    }
    for (seq, mut d) in durations {
        if let Some(rep) = by_seq.get_mut(&seq) {
            let times = ResolveTimes::of(&mut d);
            rep.resolve_secs_median = times.median_secs;
            rep.resolve_secs_p90 = times.p90_secs;
        }
    }
    // Binding notifications not acknowledged, per institution and day created (RFC 3339 starts with the day).
    for u in conn.query(
        "SELECT institution_seq, substr(created_at, 1, 10), COUNT(*) FROM notifications \
         WHERE acked_at IS NULL AND binding_id IS NOT NULL AND created_at >= $1 AND created_at < $2 \
         GROUP BY institution_seq, substr(created_at, 1, 10)",
        &[from.into(), to.into()],
    )? {
        let Some(rep) = by_seq.get_mut(&u.i64(0)?) else { continue };
        let created = Day::parse(&u.text(1)?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if domain::unbind::ack_overdue(created, today, unacked_working_days) {
            rep.notifications_unacked_overdue += u.i64(2)? as u64;
        }
    }
    let mut out = Vec::with_capacity(institutions.len());
    for inst in &institutions {
        if let Some(mut rep) = by_seq.remove(&inst.i64(0)?) {
            rep.rejected_by_reason.sort_by_key(|(r, _)| r.as_str());
            out.push(rep);
        }
    }
    Ok(out)
}

/// What the regulator's charts show, for the requests and notifications made in a period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportSeries {
    /// Seconds from request to answer, of each answered request.
    pub resolve_secs: Vec<i64>,
    /// Per week, the day it is counted on (its Sunday, or the period's last day, or today) and the
    /// requests overdue at that day's end: past their deadline and not answered by then.
    pub overdue_by_week: Vec<(Day, u64)>,
    /// Binding notifications by calendar days from made to acknowledged (UTC days), and those not
    /// acknowledged yet (`None`).
    pub ack_days: Vec<(Option<i32>, u64)>,
}

/// The days a weekly count is taken on, oldest first: each Sunday of the period up to its end (or
/// today, if sooner), and that end; the latest `weeks_max`.
fn week_ends(period: Period, today: Day, weeks_max: usize) -> Vec<Day> {
    let mut out = Vec::new();
    let mut d = period.to.min(today);
    while d >= period.from && out.len() < weeks_max {
        out.push(d);
        // Back to the Sunday before `d` (a Sunday goes back a whole week).
        let back = match d.date().weekday().to_monday_one_offset() {
            7 => 7,
            n => i32::from(n),
        };
        d = d.plus_days(-back);
    }
    out.reverse();
    out
}

/// Whether a request with `deadline`, answered on `answered_on` (if it was), was overdue at the end
/// of `day`: past its deadline (`domain::unbind::overdue`) and not answered by then.
fn overdue_at_end_of(day: Day, deadline: Day, answered_on: Option<Day>) -> bool {
    domain::unbind::overdue(deadline, day) && answered_on.is_none_or(|a| a > day)
}

/// The series of the regulator's charts: over the requests and notifications made in `period` (or in
/// the last `weeks_max` weeks), at most `weeks_max` weeks of overdue counts, the latest.
pub(crate) fn report_series(
    conn: &mut dyn Conn,
    today: Day,
    period: Option<Period>,
    weeks_max: usize,
) -> Result<ReportSeries, StoreError> {
    // Without a period, the last `weeks_max` weeks: what a chart shows is bounded by time.
    let period = period.unwrap_or(Period { from: today.plus_days(1 - 7 * weeks_max as i32), to: today });
    let (from, to) = Period::bounds(Some(period));
    let mut out = ReportSeries::default();
    let week_ends = week_ends(period, today, weeks_max);
    let mut overdue = vec![0u64; week_ends.len()];
    // Grouped by deadline and the day answered: bounded by the days, not by the requests.
    for r in conn.query(
        "SELECT deadline, substr(resolved_at, 1, 10), COUNT(*) FROM unbind_requests \
         WHERE created_at >= $1 AND created_at < $2 GROUP BY deadline, substr(resolved_at, 1, 10)",
        &[from.clone().into(), to.clone().into()],
    )? {
        let deadline = day(&r, 0)?;
        // The day they were answered (UTC), if they were.
        let answered_on = match r.opt_text(1) {
            Some(t) => Some(Day::parse(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?),
            None => None,
        };
        let n = r.i64(2)? as u64;
        for (i, w) in week_ends.iter().enumerate() {
            if overdue_at_end_of(*w, deadline, answered_on) {
                overdue[i] += n;
            }
        }
    }
    out.overdue_by_week = week_ends.into_iter().zip(overdue).collect();
    for r in conn.query(
        "SELECT created_at, resolved_at FROM unbind_requests WHERE state <> 'open' AND created_at >= $1 AND created_at < $2",
        &[from.clone().into(), to.clone().into()],
    )? {
        if let Some(resolved) = time::opt_unix(&r, 1)? {
            out.resolve_secs.push(resolved - time::unix(&r, 0)?);
        }
    }
    // Grouped by the days made and acknowledged: bounded by the days, not by the notifications.
    let mut ack: HashMap<Option<i32>, u64> = HashMap::new();
    for r in conn.query(
        "SELECT substr(created_at, 1, 10), substr(acked_at, 1, 10), COUNT(*) FROM notifications \
         WHERE binding_id IS NOT NULL AND created_at >= $1 AND created_at < $2 \
         GROUP BY substr(created_at, 1, 10), substr(acked_at, 1, 10)",
        &[from.into(), to.into()],
    )? {
        let parse = |t: String| Day::parse(&t).map_err(|e| StoreError::Corrupt(e.to_string()));
        let made = parse(r.text(0)?)?;
        let days = match r.opt_text(1) {
            Some(t) => Some(parse(t)?.days_since(made)),
            None => None,
        };
        *ack.entry(days).or_default() += r.i64(2)? as u64;
    }
    out.ack_days = ack.into_iter().collect();
    out.ack_days.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    /// Weeks end on Sundays, the last count is taken on the period's end (or today), and at most
    /// `weeks_max` are taken, the latest.
    #[test]
    fn weekly_counts_are_taken_on_sundays_and_the_last_day() {
        // 2026-12-07 is a Monday.
        let p = Period { from: d("2026-11-16"), to: d("2026-12-31") };
        assert_eq!(
            week_ends(p, d("2026-12-07"), 26),
            [d("2026-11-22"), d("2026-11-29"), d("2026-12-06"), d("2026-12-07")]
        );
        assert_eq!(
            week_ends(p, d("2026-12-06"), 26),
            [d("2026-11-22"), d("2026-11-29"), d("2026-12-06")],
            "a Sunday once"
        );
        assert_eq!(week_ends(p, d("2026-12-07"), 2), [d("2026-12-06"), d("2026-12-07")]);
        let one_day = Period { from: d("2026-11-18"), to: d("2026-11-18") };
        assert_eq!(week_ends(one_day, d("2026-12-07"), 26), [d("2026-11-18")]);
    }

    /// Overdue at a day's end: its deadline passed before that day, and not answered on it or before.
    #[test]
    fn a_request_is_overdue_from_the_day_after_its_deadline_until_answered() {
        let deadline = d("2026-11-29");
        assert!(!overdue_at_end_of(d("2026-11-29"), deadline, None), "on its deadline, not yet");
        assert!(overdue_at_end_of(d("2026-11-30"), deadline, None));
        assert!(overdue_at_end_of(d("2026-12-06"), deadline, Some(d("2026-12-07"))), "answered later");
        assert!(!overdue_at_end_of(d("2026-12-06"), deadline, Some(d("2026-12-06"))), "answered that day");
        assert!(!overdue_at_end_of(d("2026-12-06"), deadline, Some(d("2026-11-20"))));
    }
}
