//! Calendar days (`YYYY-MM-DD`), strictly parsed, and their packed integer form `yyyymmdd` that both
//! stores use: it sorts like the date and stays readable in a SQL shell.

use std::fmt;

use jiff::ToSpan;
use jiff::civil::Date;

/// A calendar day. A thin wrapper so that only strictly parsed, real dates get in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Day(Date);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayError {
    input: String,
}

impl fmt::Display for DayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "date \"{}\" is not a calendar date: expected YYYY-MM-DD",
            crate::number::truncate_for_message(&self.input)
        )
    }
}

impl std::error::Error for DayError {}

impl Day {
    /// Parses exactly `YYYY-MM-DD` (RFC 3339 full-date) naming a real day.
    pub fn parse(s: &str) -> Result<Day, DayError> {
        Day::parse_bytes(s.as_bytes())
    }

    /// [`Day::parse`] of a file's field as it was read: anything but ASCII is rejected, so the bytes
    /// need no check as UTF-8 first.
    pub fn parse_bytes(b: &[u8]) -> Result<Day, DayError> {
        let err = || DayError { input: String::from_utf8_lossy(b).into_owned() };
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(err());
        }
        // Every position but the dashes is an ASCII digit (checked above).
        let num = |r: std::ops::Range<usize>| b[r].iter().fold(0i16, |v, c| v * 10 + i16::from(c - b'0'));
        let (y, m, d) = (num(0..4), num(5..7), num(8..10));
        if y < 1 {
            return Err(err());
        }
        Date::new(y, m as i8, d as i8).map(Day).map_err(|_| err())
    }

    pub fn from_ymd(y: i16, m: i8, d: i8) -> Option<Day> {
        Date::new(y, m, d).ok().map(Day)
    }

    pub fn from_date(d: Date) -> Day {
        Day(d)
    }

    pub fn date(self) -> Date {
        self.0
    }

    /// `yyyymmdd` as an integer, the form the stores keep.
    pub fn packed(self) -> i32 {
        i32::from(self.0.year()) * 10_000 + i32::from(self.0.month()) * 100 + i32::from(self.0.day())
    }

    pub fn from_packed(v: i32) -> Option<Day> {
        let y = i16::try_from(v / 10_000).ok()?;
        Day::from_ymd(y, ((v / 100) % 100) as i8, (v % 100) as i8)
    }

    /// This day plus `n` days (negative goes back), saturating at the calendar's ends.
    pub fn plus_days(self, n: i32) -> Day {
        Day(self.0.checked_add(n.days()).unwrap_or(if n < 0 { Date::MIN } else { Date::MAX }))
    }

    /// Calendar days from `earlier` to this day (negative if `earlier` is later).
    pub fn days_since(self, earlier: Day) -> i32 {
        self.0.since(earlier.0).map_or(0, |span| span.get_days())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0.year(), self.0.month(), self.0.day())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_between_days() {
        let d = Day::parse("2024-03-01").unwrap();
        assert_eq!(d.days_since(Day::parse("2024-02-28").unwrap()), 2, "a leap year's February");
        assert_eq!(d.days_since(d), 0);
        assert_eq!(Day::parse("2023-12-31").unwrap().days_since(d), -61);
    }

    #[test]
    fn strict_parse() {
        let d = Day::parse("2024-02-29").unwrap();
        assert_eq!(d.to_string(), "2024-02-29");
        assert_eq!(d.packed(), 20240229);
        assert_eq!(Day::from_packed(20240229), Some(d));
        assert_eq!(Day::parse("9999-12-31").unwrap().packed(), 99991231);
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "20240101",
            "2024-01-01T00:00:00Z",
            "",
            "0000-01-01",
            "+02024-01-01",
            "2024/01/01",
            "2024-00-10",
            "2024-01-00",
            "2024-01-32",
            "2024-99-99",
            "2024-1a-01",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arithmetic() {
        let d = Day::parse("2024-01-01").unwrap();
        assert_eq!(d.plus_days(90).to_string(), "2024-03-31");
        assert_eq!(d.plus_days(-1).to_string(), "2023-12-31");
    }
}
