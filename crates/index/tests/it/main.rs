//! The index answers exactly as the registry does: random histories, offered in random order (late and
//! out-of-order events included) and validated by R3 as the store validates them, are summarized as the
//! store summarizes them; after every accepted event, the index's facts and answers equal those computed
//! from the summary directly.

use std::collections::BTreeMap;

use domain::history::summarize;
use domain::{
    CarrierId, Coverage, Day, EventKind, HistoryEvent, NumberFacts, PhoneNumber, Prefix, reassigned_since, validate_new,
};
use index::Index;
use proptest::prelude::*;

const TODAY: &str = "2026-06-30";

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

/// Numbers in two blocks of a carrier's range, one in a finer range, and one in no range.
const NUMBERS: [&str; 6] =
    ["+8613800138000", "+8613800138001", "+8613800139999", "+8613800140000", "+8613900000007", "+4915112345678"];

fn ranges() -> Vec<(Prefix, CarrierId, Option<Day>)> {
    vec![
        (Prefix::parse("+86138").unwrap(), CarrierId(1), Some(day("2020-01-01"))),
        (Prefix::parse("+861380014").unwrap(), CarrierId(2), Some(day("2021-03-01"))),
        (Prefix::parse("+86139").unwrap(), CarrierId(3), None),
    ]
}

fn coverage(n: PhoneNumber) -> Coverage {
    let s = n.to_string();
    ranges()
        .into_iter()
        .filter(|(p, _, _)| s.starts_with(&p.to_string()))
        .max_by_key(|(p, _, _)| p.to_string().len())
        .map(|(_, c, since)| Coverage { range_holder: Some(c), reporting_since: since })
        .unwrap_or_default()
}

fn candidate() -> impl Strategy<Value = (usize, u8, u32)> {
    (0..NUMBERS.len(), 0u8..5, 0u32..4000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_index_answers_as_the_summaries_do(events in prop::collection::vec(candidate(), 0..60), probes in prop::collection::vec(0u32..4200, 8)) {
        let today = day(TODAY);
        let mut ix = Index::new(ranges().into_iter().map(|(p, _, s)| (p, s)));
        let mut histories: BTreeMap<usize, Vec<HistoryEvent>> = BTreeMap::new();
        for (i, (which, kind, offset)) in events.into_iter().enumerate() {
            let n = PhoneNumber::parse(NUMBERS[which]).unwrap();
            let cov = coverage(n);
            let kind = [EventKind::Activated, EventKind::Disconnected, EventKind::Transferred, EventKind::PortedOut, EventKind::PortedIn][kind as usize];
            // Dates from 1965 (before the cells' epoch) on, in any order: late events included.
            let date = day("1965-01-01").plus_days((offset * 15) as i32 % 22_500);
            // A port into carrier 9, reported whole by the number-portability database (carrier 8).
            let (carrier, recipient) = match kind {
                EventKind::PortedIn => (CarrierId(8), Some(CarrierId(9))),
                _ => (cov.range_holder.unwrap_or(CarrierId(1)), None),
            };
            let e = HistoryEvent { date, kind, carrier, event_id: format!("e{i}"), recipient };
            let history = histories.entry(which).or_default();
            if validate_new(history, &e, &cov, 90, today).is_ok() {
                history.push(e);
                domain::history::sort_r1(history);
                ix.put(n, &summarize(history, &cov));
            }
            for (j, h) in &histories {
                let m = PhoneNumber::parse(NUMBERS[*j]).unwrap();
                let expected = NumberFacts::new(&coverage(m), &summarize(h, &coverage(m)));
                prop_assert_eq!(ix.facts(m), expected, "{}", NUMBERS[*j]);
                for p in &probes {
                    let d = day("2000-01-01").plus_days(*p as i32 * 3);
                    prop_assert_eq!(ix.answer(m, d, today), reassigned_since(&expected, d, today));
                }
            }
        }
        prop_assert_eq!(ix.numbers() as usize, histories.values().filter(|h| !h.is_empty()).count());
    }
}

#[test]
fn six_bytes_per_number_in_an_allocated_block() {
    let mut ix = Index::new([(Prefix::parse("+86138").unwrap(), Some(day("2020-01-01")))]);
    let s = domain::Summary {
        first_event: Some(day("2024-01-01")),
        last_end: Some(day("2024-01-01")),
        last_activation: None,
        disconnected: true,
        serving: None,
    };
    // 100 full blocks.
    for i in 0..1_000_000u64 {
        ix.put(PhoneNumber::parse(&format!("+86138{:08}", i)).unwrap(), &s);
    }
    assert_eq!((ix.numbers(), ix.blocks()), (1_000_000, 100));
    let per_number = ix.memory_bytes() as f64 / 1_000_000.0;
    assert!(per_number <= 6.1, "{per_number} bytes per number");
}
