//! R4: which events notify which binding. A binding made on `boundOn` is told of every event on its
//! number that ends a tenure on or after `boundOn`, or starts one after it: the same boundaries as R2,
//! so a binding is notified exactly when a check at `boundOn` would now answer "changed hands".

use crate::date::Day;
use crate::event::EventKind;

/// What a binding is told about its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindingNotice {
    /// The number was disconnected: whoever it was bound with has lost it.
    Disconnected,
    /// The number passed to another person without a disconnection.
    Transferred,
    /// The number was issued to a new subscriber.
    Reassigned,
}

/// The notice an event of `kind` on `event_date` gives a binding made on `bound_on`, if any (R4).
pub fn notice_for(kind: EventKind, event_date: Day, bound_on: Day) -> Option<BindingNotice> {
    match kind {
        EventKind::Disconnected if event_date >= bound_on => Some(BindingNotice::Disconnected),
        EventKind::Transferred if event_date >= bound_on => Some(BindingNotice::Transferred),
        EventKind::Activated if event_date > bound_on => Some(BindingNotice::Reassigned),
        _ => None,
    }
}

/// Whether an event of `kind` may notify any binding at all: the changes of holder. A batch asks
/// for a number's bindings only for these.
pub fn may_notify(kind: EventKind) -> bool {
    kind.changes_holder()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    #[test]
    fn the_notification_set_has_r2s_boundaries() {
        use BindingNotice as N;
        use EventKind::*;
        let bound_on = "2025-03-10";
        // (kind, event date, the notice a binding made on `bound_on` gets)
        let table = [
            (Disconnected, "2025-03-09", None),
            (Disconnected, "2025-03-10", Some(N::Disconnected)),
            (Disconnected, "2025-04-01", Some(N::Disconnected)),
            (Transferred, "2025-03-09", None),
            (Transferred, "2025-03-10", Some(N::Transferred)),
            (Transferred, "2026-01-01", Some(N::Transferred)),
            // An activation on the binding's own day may be the tenure it was made in.
            (Activated, "2025-03-10", None),
            (Activated, "2025-03-11", Some(N::Reassigned)),
            (Activated, "2025-01-01", None),
            // Ports change the carrier, not the holder.
            (PortedOut, "2025-04-01", None),
            (PortedIn, "2025-04-01", None),
        ];
        for (kind, date, want) in table {
            assert_eq!(notice_for(kind, day(date), day(bound_on)), want, "{kind} on {date}");
            if want.is_some() {
                assert!(may_notify(kind), "{kind} notifies, so a batch must look for its bindings");
            }
        }
        assert!(!may_notify(PortedOut) && !may_notify(PortedIn));
    }
}
