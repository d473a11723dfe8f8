//! The holder's side (R5): when the current tenure started, which bindings are stale for the holder,
//! unbind deadlines in working days, what a proof of tenure may reveal (R6), and how real-name
//! attributes are normalized before they are compared.

use jiff::civil::Weekday;

use crate::answer::NumberFacts;
use crate::date::Day;
use crate::history::HistoryEvent;

/// Who holds the number now, as far as the history shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tenure {
    /// The number is in no carrier's range and has no events.
    UnknownNumber,
    /// Nobody: the last ownership event is a disconnection.
    Disconnected,
    /// Held since before the number's coverage start: no ownership event is known, so the start of the
    /// tenure is not. `coverage_start` is the first day the platform vouches for.
    SinceBeforeCoverage { coverage_start: Day },
    /// Held since this day (the last `activated` or `transferred`).
    Since(Day),
}

impl Tenure {
    pub fn of(n: &NumberFacts) -> Tenure {
        let Some(coverage_start) = n.coverage_start else {
            return Tenure::UnknownNumber;
        };
        if n.disconnected {
            return Tenure::Disconnected;
        }
        // Held now: the tenure began at the latest activation or transfer. A `last_end` that is a
        // disconnection is always followed by a later activation (the aging period separates them),
        // so the later of the two is the start either way.
        match (n.last_activation, n.last_end) {
            (None, None) => Tenure::SinceBeforeCoverage { coverage_start },
            (a, e) => Tenure::Since(a.max(e).expect("one of them is some")),
        }
    }

    /// R5: a binding made on `bound_on` was made with a previous holder, so the current holder may ask
    /// for it to be unbound. Strictly before the tenure's first day: a binding made on that day may be
    /// the new holder's own, and a stolen SIM must not cut it.
    pub fn makes_stale(self, bound_on: Day) -> bool {
        match self {
            Tenure::Since(start) => bound_on < start,
            _ => false,
        }
    }

    /// The first day the platform vouches the current holder has held the number, if anyone holds it.
    pub fn vouched_since(self) -> Option<Day> {
        match self {
            Tenure::Since(d) | Tenure::SinceBeforeCoverage { coverage_start: d } => Some(d),
            Tenure::UnknownNumber | Tenure::Disconnected => None,
        }
    }
}

/// The changes of holder in a sorted history: the events that start or end a tenure (ports change the
/// carrier, not the holder). The current tenure is identified by these (R5), not by its first day: a
/// second change on the same day is a new tenure, and a code or session of the one before is over.
pub fn holder_changes(sorted: &[HistoryEvent]) -> impl Iterator<Item = &HistoryEvent> {
    sorted.iter().filter(|e| e.kind.changes_holder())
}

/// What a proof of tenure states (R6, reveal the least): "held since on or before" this day. It is the
/// first day of the month after the tenure began (the day itself when that is a first of the month), and
/// never after today: no earlier than the truth, and only the month is given away.
pub fn held_since_claim(vouched_since: Day, today: Day) -> Day {
    let d = vouched_since.date();
    let claim =
        if d.day() == 1 { vouched_since } else { d.last_of_month().tomorrow().map_or(vouched_since, Day::from_date) };
    claim.min(today).max(vouched_since)
}

/// `n` working days (Monday to Friday) after `from`. Public holidays are not known to numlink: a
/// country that needs them sets a longer deadline.
pub fn add_working_days(from: Day, n: u32) -> Day {
    let mut d = from;
    let mut left = n;
    while left > 0 {
        d = d.plus_days(1);
        if !matches!(d.date().weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    d
}

/// Working days from `from` (exclusive) to `to` (inclusive); 0 if `to` is not after `from`.
pub fn working_days_between(from: Day, to: Day) -> u32 {
    let mut n = 0;
    let mut d = from;
    while d < to {
        d = d.plus_days(1);
        if !matches!(d.date().weekday(), Weekday::Saturday | Weekday::Sunday) {
            n += 1;
        }
    }
    n
}

/// Why an institution may refuse a holder's unbind request. A fixed list, so that the regulator's
/// report can count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The account holder re-verified this number with the institution during the current tenure.
    CustomerReverified,
    /// A court order or regulation requires the binding to stay.
    LegalHold,
    /// The account is under a fraud investigation.
    FraudInvestigation,
    /// The institution holds no such binding any more.
    NoSuchBinding,
}

impl RejectReason {
    pub const ALL: [RejectReason; 4] = [
        RejectReason::CustomerReverified,
        RejectReason::LegalHold,
        RejectReason::FraudInvestigation,
        RejectReason::NoSuchBinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::CustomerReverified => "customer_reverified",
            RejectReason::LegalHold => "legal_hold",
            RejectReason::FraudInvestigation => "fraud_investigation",
            RejectReason::NoSuchBinding => "no_such_binding",
        }
    }

    pub fn parse(s: &str) -> Option<RejectReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A name as compared: lower case, punctuation and hyphens as spaces, runs of spaces as one.
/// "  SÁNCHEZ-Arjona,  Federica " and "sánchez arjona federica" differ only in order, which is kept.
pub fn normalize_name(s: &str) -> String {
    let spaced: String =
        s.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).flat_map(char::to_lowercase).collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An identity document number as compared: letters and digits only, upper case ("66666666-q" and
/// "66666666Q" are one document).
pub fn normalize_document(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn facts(activation: Option<&str>, end: Option<&str>, disconnected: bool) -> NumberFacts {
        NumberFacts {
            coverage_start: Some(day("2020-01-01")),
            last_end: end.map(day),
            last_activation: activation.map(day),
            disconnected,
        }
    }

    #[test]
    fn tenure_starts_at_the_last_activation_or_transfer() {
        assert_eq!(Tenure::of(&facts(Some("2025-03-01"), Some("2024-11-01"), false)), Tenure::Since(day("2025-03-01")));
        // A transfer after the activation starts the current tenure.
        assert_eq!(Tenure::of(&facts(Some("2024-01-01"), Some("2025-05-05"), false)), Tenure::Since(day("2025-05-05")));
        assert_eq!(Tenure::of(&facts(Some("2025-03-01"), Some("2025-06-01"), true)), Tenure::Disconnected);
        assert_eq!(
            Tenure::of(&facts(None, None, false)),
            Tenure::SinceBeforeCoverage { coverage_start: day("2020-01-01") }
        );
        assert_eq!(Tenure::of(&NumberFacts::default()), Tenure::UnknownNumber);
    }

    #[test]
    fn only_bindings_made_before_the_tenure_are_stale_for_the_holder() {
        let t = Tenure::Since(day("2025-03-01"));
        assert!(t.makes_stale(day("2025-02-28")));
        assert!(!t.makes_stale(day("2025-03-01")), "a binding of the tenure's first day may be the holder's own");
        assert!(!t.makes_stale(day("2025-04-01")));
        let before_coverage = Tenure::SinceBeforeCoverage { coverage_start: day("2020-01-01") };
        assert!(!before_coverage.makes_stale(day("2010-01-01")), "no known change of holder: nothing is stale");
        assert!(!Tenure::Disconnected.makes_stale(day("2010-01-01")));
    }

    #[test]
    fn the_claim_reveals_only_the_month_and_never_precedes_the_tenure() {
        assert_eq!(held_since_claim(day("2025-03-14"), day("2026-01-01")), day("2025-04-01"));
        assert_eq!(held_since_claim(day("2025-03-01"), day("2026-01-01")), day("2025-03-01"));
        assert_eq!(held_since_claim(day("2025-12-31"), day("2026-01-10")), day("2026-01-01"));
        // Not after today: a tenure that began this month is claimed from today.
        assert_eq!(held_since_claim(day("2026-01-05"), day("2026-01-09")), day("2026-01-09"));
    }

    #[test]
    fn working_days_skip_weekends() {
        // 2026-11-27 is a Friday.
        assert_eq!(add_working_days(day("2026-11-27"), 1), day("2026-11-30"));
        assert_eq!(add_working_days(day("2026-11-27"), 5), day("2026-12-04"));
        // From a Saturday, five working days end on Friday.
        assert_eq!(add_working_days(day("2026-11-28"), 5), day("2026-12-04"));
        assert_eq!(add_working_days(day("2026-11-30"), 0), day("2026-11-30"));
        assert_eq!(working_days_between(day("2026-11-27"), day("2026-12-04")), 5);
        assert_eq!(working_days_between(day("2026-12-04"), day("2026-11-27")), 0);
    }

    #[test]
    fn names_and_documents_compare_in_normal_form() {
        assert_eq!(normalize_name("  SÁNCHEZ-Arjona,  Federica "), "sánchez arjona federica");
        assert_eq!(normalize_name("Federica Sanchez Arjona"), "federica sanchez arjona");
        assert_eq!(normalize_document("66666666-q"), normalize_document(" 66666666Q"));
        assert_eq!(RejectReason::parse("legal_hold"), Some(RejectReason::LegalHold));
        assert_eq!(RejectReason::parse("because"), None);
    }
}
