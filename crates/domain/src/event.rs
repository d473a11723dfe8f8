//! Lifecycle event kinds and who reports them.

use std::fmt;

/// The store's surrogate key of a carrier participant. Opaque to the rules: they only compare it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CarrierId(pub i64);

/// What happened to a number. The declaration order is the order within one day (R1); the stored code
/// ([`EventKind::code`]) is a separate, fixed table, so a kind added between two others later sorts
/// where R1 says without renumbering stored rows.
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

    /// The kind's code in storage and in the audit log's entries. Fixed forever: a stored row keeps
    /// its meaning whatever kinds are added, and `audit verify` recomputes old entries with it.
    pub fn code(self) -> i16 {
        match self {
            EventKind::PortedOut => 0,
            EventKind::PortedIn => 1,
            EventKind::Disconnected => 2,
            EventKind::Transferred => 3,
            EventKind::Activated => 4,
        }
    }

    pub fn from_code(c: i16) -> Option<EventKind> {
        match c {
            0 => Some(EventKind::PortedOut),
            1 => Some(EventKind::PortedIn),
            2 => Some(EventKind::Disconnected),
            3 => Some(EventKind::Transferred),
            4 => Some(EventKind::Activated),
            _ => None,
        }
    }

    /// Ends a tenure (R2 step 3, R4).
    pub fn ends_tenure(self) -> bool {
        matches!(self, EventKind::Disconnected | EventKind::Transferred)
    }

    /// Starts or ends a tenure: a change of holder (ports change the carrier, not the holder). These
    /// are the events that may notify a binding (R4), identify a tenure (R5), and move a real-name
    /// record.
    pub fn changes_holder(self) -> bool {
        self.ends_tenure() || self == EventKind::Activated
    }

    /// May carry the new holder's real-name record: an event that gives the number to someone.
    pub fn carries_real_name(self) -> bool {
        matches!(self, EventKind::Activated | EventKind::Transferred)
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
    fn stored_codes_are_pinned() {
        // Stored in every `events` row and hashed into the audit log: these values never change.
        let pinned = [
            (EventKind::PortedOut, 0, "ported_out"),
            (EventKind::PortedIn, 1, "ported_in"),
            (EventKind::Disconnected, 2, "disconnected"),
            (EventKind::Transferred, 3, "transferred"),
            (EventKind::Activated, 4, "activated"),
        ];
        assert_eq!(pinned.len(), EventKind::ALL.len());
        for (kind, code, name) in pinned {
            assert_eq!((kind.code(), kind.as_str()), (code, name));
        }
        assert_eq!(EventKind::from_code(5), None);
        assert_eq!(EventKind::from_code(-1), None);
    }

    #[test]
    fn changes_of_holder_and_real_name_records() {
        let changes: Vec<_> = EventKind::ALL.into_iter().filter(|k| k.changes_holder()).collect();
        assert_eq!(changes, [EventKind::Disconnected, EventKind::Transferred, EventKind::Activated]);
        let named: Vec<_> = EventKind::ALL.into_iter().filter(|k| k.carries_real_name()).collect();
        assert_eq!(named, [EventKind::Transferred, EventKind::Activated]);
    }

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
