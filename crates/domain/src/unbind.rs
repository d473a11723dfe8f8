//! The clock of an unbind request (R5) and the figures the regulator's report states about it: when
//! it is due, when it is late, when a rejected one may be asked again, and the statistics of the time
//! institutions take to answer.

use crate::date::Day;
use crate::holder::{add_working_days, working_days_between};

/// How long an institution's rejection stands: within it, the holder asking again is answered with
/// the rejection rather than a new request (asking again at once would only repeat the notification).
pub const REJECTION_STANDS_SECS: i64 = 30 * 86_400;

/// The day an unbind request made on `today` must be answered by: `working_days` after it.
pub fn deadline(today: Day, working_days: u32) -> Day {
    add_working_days(today, working_days)
}

/// An open request is overdue once its deadline's day has passed.
pub fn overdue(deadline: Day, today: Day) -> bool {
    today > deadline
}

/// A request answered at `resolved_unix` was answered late: after the end of its deadline's day (UTC).
pub fn answered_late(deadline: Day, resolved_unix: i64) -> bool {
    let end_of_deadline = deadline
        .plus_days(1)
        .date()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or(i64::MAX);
    resolved_unix >= end_of_deadline
}

/// A rejection made at `rejected_unix` still stands at `now_unix`.
pub fn rejection_stands(rejected_unix: i64, now_unix: i64) -> bool {
    rejected_unix > now_unix - REJECTION_STANDS_SECS
}

/// A binding notification created on `created` and still unacknowledged on `today` counts against its
/// institution once more than `ack_working_days` working days have passed.
pub fn ack_overdue(created: Day, today: Day, ack_working_days: u32) -> bool {
    working_days_between(created, today) > ack_working_days
}

/// The median and 90th percentile the report states of the seconds institutions took to answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolveTimes {
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

impl ResolveTimes {
    /// Of `secs` in any order (sorted here).
    pub fn of(secs: &mut [i64]) -> ResolveTimes {
        secs.sort_unstable();
        ResolveTimes { median_secs: median(secs), p90_secs: percentile(secs, 90) }
    }
}

/// The median of sorted values (the mean of the middle two, rounded down, for an even count).
pub fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The nearest-rank percentile `p` (1 to 100) of sorted values.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn unix(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn a_request_is_due_in_working_days_and_late_after_its_day() {
        // 2026-11-27 is a Friday: five working days end on Friday 2026-12-04.
        assert_eq!(deadline(day("2026-11-27"), 5), day("2026-12-04"));
        assert!(!overdue(day("2026-12-04"), day("2026-12-04")));
        assert!(overdue(day("2026-12-04"), day("2026-12-05")));
        // (deadline, answered at, late)
        for (d, at, late) in [
            ("2026-12-04", "2026-12-04T00:00:00Z", false),
            ("2026-12-04", "2026-12-04T23:59:59Z", false),
            ("2026-12-04", "2026-12-05T00:00:00Z", true),
            ("2026-12-04", "2027-01-01T12:00:00Z", true),
        ] {
            assert_eq!(answered_late(day(d), unix(at)), late, "deadline {d}, answered {at}");
        }
    }

    #[test]
    fn a_rejection_stands_thirty_days() {
        let rejected = unix("2026-01-01T12:00:00Z");
        for (now, stands) in [
            ("2026-01-01T12:00:00Z", true),
            ("2026-01-31T11:59:59Z", true),
            ("2026-01-31T12:00:00Z", false),
            ("2026-03-01T00:00:00Z", false),
        ] {
            assert_eq!(rejection_stands(rejected, unix(now)), stands, "at {now}");
        }
    }

    #[test]
    fn an_unacknowledged_notification_counts_after_its_working_days() {
        // Created Friday 2026-11-27; five working days end Friday 2026-12-04.
        for (today, overdue) in [("2026-12-04", false), ("2026-12-06", false), ("2026-12-07", true)] {
            assert_eq!(ack_overdue(day("2026-11-27"), day(today), 5), overdue, "on {today}");
        }
    }

    #[test]
    fn the_report_states_the_median_and_the_nearest_rank_p90() {
        // (times in any order, median, p90)
        let table: [(&[i64], Option<i64>, Option<i64>); 5] = [
            (&[], None, None),
            (&[7], Some(7), Some(7)),
            (&[30, 10], Some(20), Some(30)),
            (&[5, 1, 3], Some(3), Some(5)),
            (&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1], Some(5), Some(9)),
        ];
        for (secs, median_secs, p90_secs) in table {
            let mut v = secs.to_vec();
            assert_eq!(ResolveTimes::of(&mut v), ResolveTimes { median_secs, p90_secs }, "{secs:?}");
        }
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 90), Some(90));
        assert_eq!(percentile(&hundred, 1), Some(1));
        assert_eq!(percentile(&hundred, 100), Some(100));
    }
}
