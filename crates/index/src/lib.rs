//! The in-memory reassignment index: for every number with a history, what R2 needs, laid out by the
//! blocks numbers are allocated in (10,000 numbers under a prefix), so that an answer is one hash probe
//! for the block and one array read for the number.
//!
//! Pure: no IO. The store builds it from its `numbers` table and the carriers' ranges, and keeps it in
//! step with every committed event; answers come from `domain::reassigned_since`, the function every
//! other path uses, so the index cannot answer differently from the store.
//!
//! Layout. A number in an allocated block takes one [`Cell`] of 6 bytes: the last end of tenure and the
//! last activation as days since 1970 (16 bits each), and flags. A block is allocated when one of its
//! numbers gets a history. What does not fit a cell — a day outside 1970..2149, or a number whose
//! coverage start is its first event (no carrier range with a `reportingSince` holds it) — is kept whole
//! in a small overflow map, and its cell says so.

use std::collections::HashMap;

use domain::answer::DateAfterToday;
use domain::{Answer, Day, NumberFacts, PhoneNumber, Prefix, Summary, reassigned_since};

/// Numbers per block: the unit carriers are allocated numbers in.
pub const BLOCK_NUMBERS: u64 = 10_000;

/// Cell flags.
const HAS_HISTORY: u16 = 1;
const DISCONNECTED: u16 = 1 << 1;
/// The number's facts are in the overflow map.
const OVERFLOW: u16 = 1 << 2;

/// One number: 6 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cell {
    /// Last end of tenure, days since 1969-12-31 (0: none).
    end: u16,
    /// Last activation, days since 1969-12-31 (0: none).
    act: u16,
    flags: u16,
}

const _: () = assert!(std::mem::size_of::<Cell>() == 6);

/// 1970-01-01 is day 1; day 0 means "none".
fn epoch() -> Day {
    Day::from_ymd(1969, 12, 31).expect("a valid date")
}

fn encode(d: Option<Day>) -> Option<u16> {
    match d {
        None => Some(0),
        Some(d) => {
            let days = (d.date() - epoch().date()).get_days();
            u16::try_from(days).ok().filter(|&v| v > 0)
        }
    }
}

fn decode(v: u16) -> Option<Day> {
    (v != 0).then(|| epoch().plus_days(i32::from(v)))
}

/// Decimal digits of a number's digits (E.164 numbers have 5 to 15).
fn digit_count(v: u64) -> u32 {
    v.checked_ilog10().map_or(1, |l| l + 1)
}

/// The carriers' ranges: longest prefix wins; the value is the range's `reportingSince`.
#[derive(Clone, Debug, Default)]
struct Ranges {
    /// (prefix length, prefix value → reportingSince), longest first.
    by_len: Vec<(u32, HashMap<u64, Option<Day>>)>,
}

impl Ranges {
    fn new(ranges: impl IntoIterator<Item = (Prefix, Option<Day>)>) -> Ranges {
        let mut by_len: Vec<(u32, HashMap<u64, Option<Day>>)> = Vec::new();
        for (p, since) in ranges {
            let digits = p.digits();
            let (len, value) = (digits.len() as u32, digits.parse::<u64>().unwrap_or(0));
            match by_len.iter_mut().find(|(l, _)| *l == len) {
                Some((_, m)) => {
                    m.insert(value, since);
                }
                None => by_len.push((len, HashMap::from([(value, since)]))),
            }
        }
        by_len.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        Ranges { by_len }
    }

    /// The range holding `digits` (of `len` digits): `Some(reportingSince)`, or `None` if no range does.
    fn lookup(&self, digits: u64, len: u32) -> Option<Option<Day>> {
        self.by_len.iter().filter(|(l, _)| *l <= len).find_map(|(l, m)| m.get(&(digits / 10u64.pow(len - l))).copied())
    }

    /// The longest prefix length, in digits.
    fn longest(&self) -> u32 {
        self.by_len.first().map_or(0, |(l, _)| *l)
    }
}

#[derive(Clone, Debug)]
struct Block {
    /// The range lookup of every number in the block, when they all share it (the ranges are no
    /// finer than the block); `None` when each number must be looked up.
    shared: Option<Option<Option<Day>>>,
    cells: Box<[Cell]>,
}

/// The index. See the crate documentation for the layout.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Block id (number digits / 10,000) → position in `blocks`.
    slots: HashMap<u64, u32>,
    blocks: Vec<Block>,
    ranges: Ranges,
    overflow: HashMap<u64, Summary>,
    /// Numbers with a history.
    numbers: u64,
}

impl Index {
    /// An empty index over the carriers' ranges (`(prefix, reportingSince)`).
    pub fn new(ranges: impl IntoIterator<Item = (Prefix, Option<Day>)>) -> Index {
        Index { ranges: Ranges::new(ranges), ..Index::default() }
    }

    /// Replaces the carriers' ranges. Numbers whose range changed must be put again by the caller (a
    /// cell holds no first event, which a number outside every range needs): see [`Index::prefix_spans`].
    pub fn set_ranges(&mut self, ranges: impl IntoIterator<Item = (Prefix, Option<Day>)>) {
        self.ranges = Ranges::new(ranges);
        let longest = self.ranges.longest();
        for (&block_id, &slot) in &self.slots {
            let first = block_id * BLOCK_NUMBERS;
            let len = digit_count(first);
            self.blocks[slot as usize].shared = (longest + 4 <= len).then(|| self.ranges.lookup(first, len));
        }
    }

    /// The spans of number digits a prefix covers, one per number length (5 to 15 digits): `[lo, hi)`.
    pub fn prefix_spans(p: &Prefix) -> Vec<(u64, u64)> {
        let value: u64 = p.digits().parse().unwrap_or(0);
        let len = p.digits().len() as u32;
        (len.max(5)..=15).map(|total| (value * 10u64.pow(total - len), (value + 1) * 10u64.pow(total - len))).collect()
    }

    /// Numbers with a history.
    pub fn numbers(&self) -> u64 {
        self.numbers
    }

    /// Allocated blocks.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Bytes held, approximately: cells, block table, overflow.
    pub fn memory_bytes(&self) -> usize {
        let cells =
            self.blocks.len() * (BLOCK_NUMBERS as usize * std::mem::size_of::<Cell>() + std::mem::size_of::<Block>());
        let slots = self.slots.capacity() * (std::mem::size_of::<(u64, u32)>() + 1);
        let overflow = self.overflow.capacity() * (std::mem::size_of::<(u64, Summary)>() + 1);
        cells + slots + overflow
    }

    fn range_of(&self, digits: u64) -> Option<Option<Day>> {
        self.ranges.lookup(digits, digit_count(digits))
    }

    fn block_mut(&mut self, block_id: u64) -> &mut Block {
        let slot = match self.slots.get(&block_id) {
            Some(&s) => s,
            None => {
                let first = block_id * BLOCK_NUMBERS;
                let len = digit_count(first);
                // Every number of the block has the same range when no prefix reaches into its last 4 digits.
                let shared = (self.ranges.longest() + 4 <= len).then(|| self.ranges.lookup(first, len));
                self.blocks
                    .push(Block { shared, cells: vec![Cell::default(); BLOCK_NUMBERS as usize].into_boxed_slice() });
                let s = u32::try_from(self.blocks.len() - 1).expect("fewer than 4 billion blocks");
                self.slots.insert(block_id, s);
                s
            }
        };
        &mut self.blocks[slot as usize]
    }

    /// Sets what the index knows of `n`: the summary of its sorted history (`domain::Summary`), as the
    /// store keeps it. A summary without events forgets the number.
    pub fn put(&mut self, n: PhoneNumber, s: &Summary) {
        let digits = n.digits();
        let has_history = s.first_event.is_some();
        let since = self.range_of(digits).flatten();
        let (block_id, at) = (digits / BLOCK_NUMBERS, (digits % BLOCK_NUMBERS) as usize);
        if !has_history && !self.slots.contains_key(&block_id) {
            return;
        }
        let fits = match (since, encode(s.last_end), encode(s.last_activation)) {
            (Some(_), Some(end), Some(act)) => Some((end, act)),
            _ => None,
        };
        let cell = {
            let block = self.block_mut(block_id);
            &mut block.cells[at]
        };
        let had = cell.flags & HAS_HISTORY != 0;
        let was_overflow = cell.flags & OVERFLOW != 0;
        *cell = match (has_history, fits) {
            (false, _) => Cell::default(),
            (true, Some((end, act))) => {
                Cell { end, act, flags: HAS_HISTORY | if s.disconnected { DISCONNECTED } else { 0 } }
            }
            (true, None) => Cell { end: 0, act: 0, flags: HAS_HISTORY | OVERFLOW },
        };
        let now_overflow = cell.flags & OVERFLOW != 0;
        if now_overflow {
            self.overflow.insert(digits, *s);
        } else if was_overflow {
            self.overflow.remove(&digits);
        }
        match (had, has_history) {
            (false, true) => self.numbers += 1,
            (true, false) => self.numbers -= 1,
            _ => {}
        }
    }

    /// What R2 needs to know about `n`.
    pub fn facts(&self, n: PhoneNumber) -> NumberFacts {
        let digits = n.digits();
        let block = self.slots.get(&(digits / BLOCK_NUMBERS)).map(|&s| &self.blocks[s as usize]);
        let range = |b: Option<&Block>| match b.and_then(|b| b.shared) {
            Some(shared) => shared,
            None => self.range_of(digits),
        };
        let Some(b) = block else {
            return NumberFacts { coverage_start: range(None).flatten(), ..NumberFacts::default() };
        };
        let cell = b.cells[(digits % BLOCK_NUMBERS) as usize];
        if cell.flags & OVERFLOW != 0 {
            let s = self.overflow.get(&digits).copied().unwrap_or_default();
            return NumberFacts {
                coverage_start: range(Some(b)).flatten().or(s.first_event),
                last_end: s.last_end,
                last_activation: s.last_activation,
                disconnected: s.disconnected,
            };
        }
        NumberFacts {
            coverage_start: range(Some(b)).flatten(),
            last_end: decode(cell.end),
            last_activation: decode(cell.act),
            disconnected: cell.flags & DISCONNECTED != 0,
        }
    }

    /// R2 for `n` and day `d`, as of `today`.
    pub fn answer(&self, n: PhoneNumber, d: Day, today: Day) -> Result<Answer, DateAfterToday> {
        reassigned_since(&self.facts(n), d, today)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn num(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn summary(first: &str, end: Option<&str>, act: Option<&str>, disconnected: bool) -> Summary {
        Summary {
            first_event: Some(day(first)),
            last_end: end.map(day),
            last_activation: act.map(day),
            disconnected,
            serving: None,
        }
    }

    #[test]
    fn a_cell_is_six_bytes_and_days_round_trip() {
        for d in ["1970-01-01", "2000-02-29", "2025-06-30", "2149-06-05"] {
            assert_eq!(decode(encode(Some(day(d))).unwrap()), Some(day(d)));
        }
        assert_eq!(encode(Some(day("1969-12-31"))), None);
        assert_eq!(encode(Some(day("2149-06-06"))), None);
    }

    #[test]
    fn facts_come_back_as_put() {
        let mut ix = Index::new([(Prefix::parse("+86138").unwrap(), Some(day("2020-01-01")))]);
        let n = num("+8613800138000");
        let s = summary("2024-02-25", Some("2024-02-25"), Some("2024-09-21"), false);
        ix.put(n, &s);
        assert_eq!(
            ix.facts(n),
            NumberFacts {
                coverage_start: Some(day("2020-01-01")),
                last_end: Some(day("2024-02-25")),
                last_activation: Some(day("2024-09-21")),
                disconnected: false
            }
        );
        assert_eq!(ix.answer(n, day("2023-12-22"), day("2025-06-30")), Ok(Answer::Yes));
        assert_eq!(ix.answer(n, day("2024-10-01"), day("2025-06-30")), Ok(Answer::No));
        // A neighbour in the block without history, and a number in no block: the range's coverage.
        assert_eq!(ix.facts(num("+8613800138001")).coverage_start, Some(day("2020-01-01")));
        assert_eq!(ix.facts(num("+8613899990000")).coverage_start, Some(day("2020-01-01")));
        assert_eq!(
            ix.answer(num("+4915112345678"), day("2024-01-01"), day("2025-06-30")),
            Ok(Answer::NoData(domain::answer::NoDataReason::UnknownNumber))
        );
        assert_eq!((ix.numbers(), ix.blocks()), (1, 1));
        ix.put(n, &Summary::default());
        assert_eq!(ix.numbers(), 0);
    }

    #[test]
    fn what_does_not_fit_a_cell_overflows() {
        let mut ix = Index::new([(Prefix::parse("+86138").unwrap(), Some(day("2020-01-01")))]);
        // Outside every range: coverage starts at the first event.
        let out = num("+4915112345678");
        let s = summary("2023-05-01", Some("2024-01-01"), None, true);
        ix.put(out, &s);
        assert_eq!(ix.facts(out).coverage_start, Some(day("2023-05-01")));
        assert!(ix.facts(out).disconnected);
        // A day before 1970.
        let old = num("+8613800138005");
        ix.put(old, &summary("1965-01-01", Some("1965-01-01"), None, true));
        assert_eq!(ix.facts(old).last_end, Some(day("1965-01-01")));
        // Back into a cell: the overflow entry goes.
        ix.put(old, &summary("1965-01-01", Some("2001-01-01"), Some("2002-01-01"), false));
        assert_eq!(ix.overflow.len(), 1);
        assert_eq!(ix.facts(old).last_activation, Some(day("2002-01-01")));
    }

    #[test]
    fn ranges_finer_than_a_block_are_looked_up_per_number() {
        let mut ix = Index::new([
            (Prefix::parse("+86138").unwrap(), Some(day("2020-01-01"))),
            (Prefix::parse("+861380013800").unwrap(), Some(day("2022-01-01"))),
        ]);
        ix.put(num("+8613800139000"), &summary("2024-01-01", Some("2024-01-01"), None, true));
        assert_eq!(ix.facts(num("+8613800138001")).coverage_start, Some(day("2022-01-01")));
        assert_eq!(ix.facts(num("+8613800138011")).coverage_start, Some(day("2020-01-01")));
    }
}
