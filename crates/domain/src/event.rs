//! Lifecycle event kinds and who reports them.

use std::fmt;

/// The store's surrogate key of a carrier participant. Opaque to the rules: they only compare it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CarrierId(pub i64);

/// What happened to a number. The declaration order is the order within one day (R1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum EventKind {
    PortedOut,
    PortedIn,
    Disconnected,
    Transferred,
    Activated,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::PortedOut,
        EventKind::PortedIn,
        EventKind::Disconnected,
        EventKind::Transferred,
        EventKind::Activated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PortedOut => "ported_out",
            EventKind::PortedIn => "ported_in",
            EventKind::Disconnected => "disconnected",
            EventKind::Transferred => "transferred",
            EventKind::Activated => "activated",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A small stable integer for storage; also the within-day rank of R1.
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(c: i16) -> Option<EventKind> {
        EventKind::ALL.get(usize::try_from(c).ok()?).copied()
    }

    /// Ends a tenure (R2 step 3, R4).
    pub fn ends_tenure(self) -> bool {
        matches!(self, EventKind::Disconnected | EventKind::Transferred)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_follow_r1_order() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_code(k.code()), Some(k));
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        let mut sorted = EventKind::ALL;
        sorted.sort();
        assert_eq!(sorted, EventKind::ALL);
        assert_eq!(EventKind::parse("reissued"), None);
    }
}
