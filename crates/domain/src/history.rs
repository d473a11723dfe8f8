//! A number's history: its events in the order of R1, the replay that checks a history is consistent
//! (R3), and the summary that R2 answers from.
//!
//! Validation is one general mechanism: insert the new event at its sorted place and replay the whole
//! history. Late events are therefore handled like any other, and an event that would make a later,
//! already accepted event impossible is rejected.

use std::cmp::Ordering;
use std::fmt;

use crate::date::Day;
use crate::event::{CarrierId, EventKind};

/// One accepted (or candidate) event of a number, as the rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    pub date: Day,
    pub kind: EventKind,
    /// The participant that reported it: the serving carrier, a port's recipient for its
    /// `ported_in`, or the number-portability database for a whole port.
    pub carrier: CarrierId,
    /// The reporter's own event id: only a tie-breaker, so that the order is total and never depends
    /// on arrival.
    pub event_id: String,
    /// A port's recipient. On a `ported_out`, the carrier the donor names, if it names one: only that
    /// carrier's `ported_in` completes the port. On a `ported_in`, set only for a whole port (the
    /// number-portability database's report, or a `ported_in` accepted before a port took both
    /// sides): the number moves to this carrier without a `ported_out`. `None` on a carrier's own
    /// `ported_in`, which needs the donor's `ported_out` of the same day.
    pub recipient: Option<CarrierId>,
}

impl HistoryEvent {
    /// R1: by date, then by kind in the order `ported_out, ported_in, disconnected, transferred,
    /// activated`, then (for a total order) by carrier and event id.
    pub fn r1_cmp(&self, other: &HistoryEvent) -> Ordering {
        (self.date, self.kind, self.carrier, &self.event_id).cmp(&(
            other.date,
            other.kind,
            other.carrier,
            &other.event_id,
        ))
    }
}

/// Sorts a history into R1 order.
pub fn sort_r1(events: &mut [HistoryEvent]) {
    events.sort_by(HistoryEvent::r1_cmp);
}

/// How long a carrier's `ported_in` waits for the donor's `ported_out` before it is dropped unapplied.
pub const PORT_PENDING_DAYS: i32 = 30;

/// Who may report what (R3): a carrier reports any type for the numbers it serves and may name a
/// port's recipient only on its `ported_out`; the number-portability database reports whole ports
/// only: a `ported_in` naming the recipient.
pub fn check_reporter(kind: EventKind, recipient: Option<CarrierId>, portability: bool) -> Result<(), Rejection> {
    match (portability, kind, recipient) {
        (false, EventKind::PortedOut, _) | (false, _, None) => Ok(()),
        (false, _, Some(_)) => Err(Rejection::new(
            RejectionCode::InvalidArgument,
            format!("type \"{kind}\": only a \"ported_out\" names a recipient"),
        )),
        (true, EventKind::PortedIn, Some(_)) => Ok(()),
        (true, _, _) => Err(Rejection::new(
            RejectionCode::InvalidArgument,
            format!(
                "type \"{kind}\": the number-portability database reports whole ports only, as \"ported_in\" naming the recipient"
            ),
        )),
    }
}

/// What the platform knows about a number before its first event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Coverage {
    /// The carrier whose range (longest prefix) holds the number, if any.
    pub range_holder: Option<CarrierId>,
    /// That carrier's `reportingSince`.
    pub reporting_since: Option<Day>,
}

/// Stable rejection codes of R3; the API's error table maps them to strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionCode {
    InvalidArgument,
    OutOfRange,
    NotNumberHolder,
    StateConflict,
    AgingViolation,
    Conflict,
    /// Not a rejection: a carrier's `ported_in` that waits for the donor's `ported_out` (R3, a port
    /// takes both sides). The store keeps it pending and applies it when the `ported_out` arrives.
    PortPending,
    /// A limit of the reporter's is reached (its `ported_in` events pending, say).
    TooManyItems,
}

impl RejectionCode {
    pub const ALL: [RejectionCode; 8] = [
        RejectionCode::InvalidArgument,
        RejectionCode::OutOfRange,
        RejectionCode::NotNumberHolder,
        RejectionCode::StateConflict,
        RejectionCode::AgingViolation,
        RejectionCode::Conflict,
        RejectionCode::PortPending,
        RejectionCode::TooManyItems,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::InvalidArgument => "INVALID_ARGUMENT",
            RejectionCode::OutOfRange => "OUT_OF_RANGE",
            RejectionCode::NotNumberHolder => "NOT_NUMBER_HOLDER",
            RejectionCode::StateConflict => "STATE_CONFLICT",
            RejectionCode::AgingViolation => "AGING_VIOLATION",
            RejectionCode::Conflict => "CONFLICT",
            RejectionCode::PortPending => "PORT_PENDING",
            RejectionCode::TooManyItems => "TOO_MANY_ITEMS",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: RejectionCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Rejection {
        Rejection { code, message: message.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// Whether someone holds the number, as far as the history shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holding {
    /// Before the first event: taken as held since before coverage (as the RND does), so any first
    /// event is allowed.
    Unknown,
    Held,
    Disconnected {
        on: Day,
    },
}

/// Which carrier may report on the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Serving {
    By(Option<CarrierId>),
    /// After the donor's `ported_out` of day `on`: nobody may report but the recipient's `ported_in`
    /// of that day (of carrier `to`, if the donor named one).
    PortedAway {
        on: Day,
        to: Option<CarrierId>,
    },
}

impl Serving {
    fn carrier(self) -> Option<CarrierId> {
        match self {
            Serving::By(c) => c,
            Serving::PortedAway { .. } => None,
        }
    }
}

/// Why a history is inconsistent at one of its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    NotServing,
    AlreadyHeld,
    Disconnected,
    Aging {
        reissuable_from: Day,
    },
    /// A carrier's `ported_in` without the serving carrier's `ported_out` of the same day (naming
    /// it, if it names a recipient) just before it.
    NoPortOut,
}

/// The facts of a number that R2 and notifications need, derived from its sorted history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// Date of the first event, the coverage start of a number in no carrier's range.
    pub first_event: Option<Day>,
    /// Date of the last `disconnected` or `transferred`.
    pub last_end: Option<Day>,
    /// Date of the last `activated`.
    pub last_activation: Option<Day>,
    /// The last ownership event is a `disconnected`: nobody holds the number now.
    pub disconnected: bool,
    /// The carrier that serves the number now, if known.
    pub serving: Option<CarrierId>,
}

struct Replay {
    holding: Holding,
    serving: Serving,
    summary: Summary,
}

impl Replay {
    fn new(coverage: &Coverage) -> Replay {
        Replay {
            holding: Holding::Unknown,
            serving: Serving::By(coverage.range_holder),
            summary: Summary { serving: coverage.range_holder, ..Summary::default() },
        }
    }

    /// What, if anything, makes `e` impossible at this point of the history.
    fn fault(&self, e: &HistoryEvent, aging_days: u32) -> Option<Fault> {
        let disconnected = matches!(self.holding, Holding::Disconnected { .. });
        // A port takes both sides: a carrier's `ported_in` completes the donor's `ported_out` of the
        // same day, so that no carrier takes a number (and its one-time codes) on its own word. A whole
        // port (`recipient` set: the number-portability database's) moves the number from whoever
        // serves it. Everything else comes from the serving carrier.
        match (e.kind, e.recipient) {
            (EventKind::PortedIn, Some(_)) => {}
            // Unpaired, it waits whatever else the history holds: what a carrier is told about a number
            // it does not serve must not say whether the number is disconnected.
            (EventKind::PortedIn, None) => {
                let paired = matches!(self.serving, Serving::PortedAway { on, to } if on == e.date && to.is_none_or(|to| to == e.carrier));
                if !paired {
                    return Some(Fault::NoPortOut);
                }
            }
            _ if self.serving.carrier() != Some(e.carrier) => return Some(Fault::NotServing),
            _ => {}
        }
        match e.kind {
            EventKind::PortedIn | EventKind::PortedOut | EventKind::Disconnected | EventKind::Transferred => {
                disconnected.then_some(Fault::Disconnected)
            }
            EventKind::Activated => match self.holding {
                Holding::Held => Some(Fault::AlreadyHeld),
                Holding::Disconnected { on } => {
                    let reissuable_from = on.plus_days(aging_days as i32);
                    (e.date < reissuable_from).then_some(Fault::Aging { reissuable_from })
                }
                Holding::Unknown => None,
            },
        }
    }

    /// Applies `e` to the state and the summary.
    fn apply(&mut self, e: &HistoryEvent) {
        match e.kind {
            EventKind::PortedIn => self.serving = Serving::By(Some(e.recipient.unwrap_or(e.carrier))),
            EventKind::PortedOut => self.serving = Serving::PortedAway { on: e.date, to: e.recipient },
            EventKind::Disconnected => {
                self.holding = Holding::Disconnected { on: e.date };
                self.summary.last_end = Some(e.date);
                self.summary.disconnected = true;
            }
            EventKind::Transferred => {
                self.holding = Holding::Held;
                self.summary.last_end = Some(e.date);
                self.summary.disconnected = false;
            }
            EventKind::Activated => {
                self.holding = Holding::Held;
                self.summary.last_activation = Some(e.date);
                self.summary.disconnected = false;
            }
        }
        self.summary.first_event.get_or_insert(e.date);
        self.summary.serving = self.serving.carrier();
    }
}

/// Replays a sorted history; the summary, or the first inconsistent event and why.
fn replay(sorted: &[HistoryEvent], coverage: &Coverage, aging_days: u32) -> Result<Summary, (usize, Fault)> {
    let mut r = Replay::new(coverage);
    for (i, e) in sorted.iter().enumerate() {
        if let Some(f) = r.fault(e, aging_days) {
            return Err((i, f));
        }
        r.apply(e);
    }
    Ok(r.summary)
}

/// The summary of an already accepted (so consistent), sorted history. If configuration changed
/// underneath (a shorter range, a longer aging period) the history may no longer replay cleanly;
/// a read then summarizes what there is rather than fail.
pub fn summarize(sorted: &[HistoryEvent], coverage: &Coverage) -> Summary {
    let mut r = Replay::new(coverage);
    for e in sorted {
        r.apply(e);
    }
    r.summary
}

/// R3 for one new event against a number's sorted, accepted history (duplicates and `eventId`
/// conflicts are the store's to find, since they need the carrier's id space).
///
/// On success, the summary of the history with the event added.
pub fn validate_new(
    sorted: &[HistoryEvent],
    new: &HistoryEvent,
    coverage: &Coverage,
    aging_days: u32,
    today: Day,
) -> Result<Summary, Rejection> {
    if new.date > today {
        return Err(Rejection::new(
            RejectionCode::OutOfRange,
            format!("date \"{}\" is after today ({today}): events cannot be reported ahead of time", new.date),
        ));
    }
    let pos = sorted.partition_point(|e| e.r1_cmp(new) == Ordering::Less);
    let mut with: Vec<HistoryEvent> = Vec::with_capacity(sorted.len() + 1);
    with.extend_from_slice(&sorted[..pos]);
    with.push(new.clone());
    with.extend_from_slice(&sorted[pos..]);
    replay(&with, coverage, aging_days)
        .map_err(|(i, fault)| if i == pos { fault_on_new(new, fault) } else { fault_on_existing(new, &with[i], fault) })
}

fn fault_on_new(new: &HistoryEvent, fault: Fault) -> Rejection {
    let (kind, date) = (new.kind, new.date);
    match fault {
        Fault::NotServing => Rejection::new(
            RejectionCode::NotNumberHolder,
            format!(
                "type \"{kind}\" on {date}: the reporting carrier does not serve this number on that date (not in its ranges, or ported away)"
            ),
        ),
        Fault::AlreadyHeld => Rejection::new(
            RejectionCode::StateConflict,
            format!(
                "type \"activated\" on {date}: the number is held on that date; report a disconnection first, or \"transferred\" for a change of owner"
            ),
        ),
        Fault::Disconnected => Rejection::new(
            RejectionCode::StateConflict,
            format!("type \"{kind}\" on {date}: the number is disconnected on that date"),
        ),
        Fault::Aging { reissuable_from } => Rejection::new(
            RejectionCode::AgingViolation,
            format!(
                "type \"activated\" on {date}: the aging period after the disconnection ends on {reissuable_from}; the number cannot be reissued before"
            ),
        ),
        Fault::NoPortOut => Rejection::new(
            RejectionCode::PortPending,
            format!(
                "type \"ported_in\" on {date}: the serving carrier has not reported its \"ported_out\" of that day; kept pending, applied when it arrives, dropped after {PORT_PENDING_DAYS} days"
            ),
        ),
    }
}

fn fault_on_existing(new: &HistoryEvent, existing: &HistoryEvent, fault: Fault) -> Rejection {
    let code = match fault {
        Fault::Aging { .. } => RejectionCode::AgingViolation,
        _ => RejectionCode::StateConflict,
    };
    Rejection::new(
        code,
        format!(
            "type \"{}\" on {}: conflicts with the \"{}\" already reported for {}",
            new.kind, new.date, existing.kind, existing.date
        ),
    )
}

/// The first day a number disconnected on `on` may be reissued.
pub fn reissuable_from(on: Day, aging_days: u32) -> Day {
    on.plus_days(aging_days as i32)
}
