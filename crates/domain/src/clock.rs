//! "Now" and "today" come from an injected clock, so tests can stand on any day without sleeping.

use std::sync::Mutex;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::date::Day;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;

    /// Today's date in UTC: the platform's day boundary is UTC everywhere.
    fn today(&self) -> Day {
        Day::from_date(self.now().to_zoned(TimeZone::UTC).date())
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug)]
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    pub fn new(now: Timestamp) -> FixedClock {
        FixedClock(Mutex::new(now))
    }

    /// A clock at noon UTC of `day`.
    pub fn at_day(day: Day) -> FixedClock {
        let ts = day
            .date()
            .at(12, 0, 0, 0)
            .to_zoned(TimeZone::UTC)
            .expect("noon of a valid date is a valid UTC time")
            .timestamp();
        FixedClock::new(ts)
    }

    pub fn set(&self, now: Timestamp) {
        *self.0.lock().expect("clock lock is never poisoned: no code panics while holding it") = now;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock is never poisoned: no code panics while holding it")
    }
}
