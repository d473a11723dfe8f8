//! The tables' one time convention. A moment is stored as RFC 3339 UTC text of fixed width, to the
//! millisecond (`2026-12-06T23:47:47.123Z`): text order is then time order, so SQL compares and sorts
//! moments as text, and a person reading a table reads the time. (Days are not moments: they are
//! `yyyymmdd` integers, `Day::packed`.) Code that counts in seconds converts at the statement:
//! [`stamp_unix`] for a parameter, [`unix`] and [`opt_unix`] for a column.
//!
//! The audit log's `at` is the one column that keeps what was written before this convention
//! (migration 16): it is hashed into the chain, so old records stay as they were; readers compare
//! audit times as times, not as text.

use jiff::Timestamp;

use crate::StoreError;
use crate::sql::Row;

/// `t` in the stored form (the milliseconds truncated).
pub(crate) fn stamp(t: Timestamp) -> String {
    // `{:.3}` writes exactly three fractional digits, whatever they are.
    format!("{t:.3}")
}

/// Unix seconds in the stored form; a value beyond what a timestamp holds is held at the edge.
pub(crate) fn stamp_unix(secs: i64) -> String {
    let t = Timestamp::from_second(secs).unwrap_or(if secs < 0 { Timestamp::MIN } else { Timestamp::MAX });
    stamp(t)
}

/// A stored moment as unix seconds (rounded down).
pub(crate) fn parse_unix(s: &str) -> Result<i64, StoreError> {
    s.parse::<Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| StoreError::Corrupt(format!("a stored time that is not RFC 3339: {s:?}: {e}")))
}

/// Column `i` of `r`, a stored moment, as unix seconds.
pub(crate) fn unix(r: &Row, i: usize) -> Result<i64, StoreError> {
    parse_unix(&r.text(i)?)
}

/// Column `i` of `r`, a stored moment or NULL, as unix seconds.
pub(crate) fn opt_unix(r: &Row, i: usize) -> Result<Option<i64>, StoreError> {
    r.opt_text(i).map(|s| parse_unix(&s)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_fixed_width_and_sort_as_text() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(stamp(t("2026-12-06T23:47:47Z")), "2026-12-06T23:47:47.000Z");
        assert_eq!(stamp(t("2026-12-06T23:47:47.5Z")), "2026-12-06T23:47:47.500Z");
        assert_eq!(stamp(t("2026-12-06T23:47:47.123999999Z")), "2026-12-06T23:47:47.123Z", "truncated");
        assert_eq!(stamp_unix(0), "1970-01-01T00:00:00.000Z");
        // Variable-width RFC 3339 sorted wrong within a second; these do not.
        let (a, b) = (stamp(t("2026-12-06T23:47:47.5Z")), stamp(t("2026-12-06T23:47:47Z")));
        assert!(b < a);
        assert_eq!(parse_unix("2026-12-06T23:47:47.999Z").unwrap(), parse_unix("2026-12-06T23:47:47Z").unwrap());
        assert!(parse_unix("1765064867").is_err());
    }
}
