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

/// The series of the regulator's charts: over `period` (or the last `weeks_max` weeks), at most
/// `weeks_max` weeks of overdue counts, the latest.
pub(crate) fn report_series(
    conn: &mut dyn Conn,
    today: Day,
    period: Option<Period>,
    weeks_max: usize,
) -> Result<ReportSeries, StoreError> {
    let (from, to) = Period::bounds(period);
    let mut out = ReportSeries::default();
    // The days counted on: each Sunday up to the period's end (or today, if sooner), and that end.
    let end = period.map_or(today, |p| p.to.min(today));
    let start = period.map_or(end.plus_days(-(7 * weeks_max as i32) + 1), |p| p.from);
    let mut week_ends = Vec::new();
    let mut d = end;
    while d >= start && week_ends.len() < weeks_max {
        week_ends.push(d);
        // Back to the Sunday before `d` (a Sunday goes back a whole week).
        let back = match d.date().weekday().to_monday_one_offset() {
            7 => 7,
            n => i32::from(n),
        };
        d = d.plus_days(-back);
    }
    week_ends.reverse();
    let mut overdue = vec![0u64; week_ends.len()];
    for r in conn.query(
        "SELECT deadline, substr(resolved_at, 1, 10) FROM unbind_requests WHERE created_at >= $1 AND created_at < $2",
        &[from.clone().into(), to.clone().into()],
    )? {
        let deadline = day(&r, 0)?;
        // The day it was answered (UTC), if it was.
        let answered_on = match r.opt_text(1) {
            Some(t) => Some(Day::parse(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?),
            None => None,
        };
        for (i, w) in week_ends.iter().enumerate() {
            if domain::unbind::overdue(deadline, *w) && answered_on.is_none_or(|a| a > *w) {
                overdue[i] += 1;
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
