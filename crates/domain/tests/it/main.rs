//! The rules R1–R3 as tables and properties, through the crate's public functions only.

mod properties;
mod rules;

use domain::history::{Summary, summarize};
use domain::{
    AgingPolicy, Answer, CarrierId, Coverage, Day, EventKind, HistoryEvent, NumberFacts, PhoneNumber, Rejection,
    reassigned_since, validate_new,
};

pub const A: CarrierId = CarrierId(1);
pub const B: CarrierId = CarrierId(2);
pub const C: CarrierId = CarrierId(3);
/// The number-portability database: reports whole ports.
pub const NPDB: CarrierId = CarrierId(9);

pub fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

/// A number's accepted history, built the way the store builds it: one `validate_new` at a time.
#[derive(Clone, Debug)]
pub struct Number {
    pub number: PhoneNumber,
    pub coverage: Coverage,
    pub aging: AgingPolicy,
    pub today: Day,
    pub sorted: Vec<HistoryEvent>,
    /// The summary `validate_new` returned for the last accepted event, as the store keeps it.
    pub kept: Summary,
    next_id: u32,
}

impl Number {
    /// `+8613800138000` in carrier A's range, A reporting since 2020-01-01, today 2025-06-30.
    pub fn in_range_of_a() -> Number {
        Number::new("+8613800138000", Some(A), Some(day("2020-01-01")))
    }

    pub fn new(n: &str, holder: Option<CarrierId>, since: Option<Day>) -> Number {
        Number {
            number: PhoneNumber::parse(n).unwrap(),
            coverage: Coverage { range_holder: holder, reporting_since: since },
            aging: AgingPolicy::aging_default(),
            today: day("2025-06-30"),
            sorted: Vec::new(),
            kept: Summary { serving: holder, ..Summary::default() },
            next_id: 0,
        }
    }

    pub fn event(&mut self, kind: EventKind, date: &str, carrier: CarrierId) -> HistoryEvent {
        self.next_id += 1;
        HistoryEvent { date: day(date), kind, carrier, event_id: format!("e{}", self.next_id), recipient: None }
    }

    /// A port naming its recipient: a donor's `ported_out`, or the portability database's whole port.
    pub fn port(&mut self, kind: EventKind, date: &str, carrier: CarrierId, to: CarrierId) -> Result<(), Rejection> {
        let e = HistoryEvent { recipient: Some(to), ..self.event(kind, date, carrier) };
        self.offer(e)
    }

    pub fn offer(&mut self, e: HistoryEvent) -> Result<(), Rejection> {
        let days = self.aging.days_for(self.number);
        self.kept = validate_new(&self.sorted, &e, &self.coverage, days, self.today)?;
        let pos = self.sorted.partition_point(|x| x.r1_cmp(&e).is_lt());
        self.sorted.insert(pos, e);
        Ok(())
    }

    pub fn report(&mut self, kind: EventKind, date: &str, carrier: CarrierId) -> Result<(), Rejection> {
        let e = self.event(kind, date, carrier);
        self.offer(e)
    }

    /// Reports and insists it was accepted.
    pub fn ok(&mut self, kind: EventKind, date: &str, carrier: CarrierId) -> &mut Self {
        if let Err(r) = self.report(kind, date, carrier) {
            panic!("{kind} on {date} by {carrier:?} rejected: {r}");
        }
        self
    }

    pub fn facts(&self) -> NumberFacts {
        let s = summarize(&self.sorted, &self.coverage);
        NumberFacts::new(&self.coverage, &s)
    }

    pub fn ask(&self, d: Day) -> Option<Answer> {
        reassigned_since(&self.facts(), d, self.today).ok()
    }

    /// The answer from the summary kept while events arrived, instead of one rebuilt from scratch.
    pub fn ask_kept(&self, d: Day) -> Option<Answer> {
        reassigned_since(&NumberFacts::new(&self.coverage, &self.kept), d, self.today).ok()
    }
}
