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
