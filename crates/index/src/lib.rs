//! The in-memory reassignment index: for every number with a history, what R2 needs, laid out by the
//! blocks numbers are allocated in (10,000 numbers under a prefix), so that an answer is one hash probe
//! for the block and one array read for the number.
//!
//! Pure: no IO. The store builds it from its `numbers` table and the carriers' ranges, and keeps it in
//! step with every committed event; answers come from `domain::reassigned_since`, the function every
//! other path uses, so the index cannot answer differently from the store.
//!
//! Layout. A number in an allocated block takes one cell of 5 bytes: the last end of tenure and the
//! last activation as days since 1970 (16 bits each), and a byte of flags. A block is allocated when one of its
//! numbers gets a history. What does not fit a cell — a day outside 1970..2149, or a number whose
//! coverage start is its first event (no carrier range with a `reportingSince` holds it) — is kept whole
//! in a small overflow map, and its cell says so.

use std::collections::HashMap;

use domain::answer::DateAfterToday;
use domain::{Answer, Day, NumberFacts, PhoneNumber, Prefix, Summary, reassigned_since};

/// Numbers per block: the unit carriers are allocated numbers in.
pub const BLOCK_NUMBERS: u64 = 10_000;

/// Cell flags.
const HAS_HISTORY: u8 = 1;
const DISCONNECTED: u8 = 1 << 1;
/// The number's facts are in the overflow map.
const OVERFLOW: u8 = 1 << 2;

/// One number: 5 bytes, unaligned — the last end of tenure and the last activation, days since
/// 1969-12-31 (0: none), little-endian, then the flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cell([u8; 5]);

impl Cell {
    const fn new(end: u16, act: u16, flags: u8) -> Cell {
        let (e, a) = (end.to_le_bytes(), act.to_le_bytes());
        Cell([e[0], e[1], a[0], a[1], flags])
    }

    fn end(&self) -> u16 {
        u16::from_le_bytes([self.0[0], self.0[1]])
    }

    fn act(&self) -> u16 {
        u16::from_le_bytes([self.0[2], self.0[3]])
    }

    fn flags(&self) -> u8 {
        self.0[4]
    }
}

const _: () = assert!(std::mem::size_of::<Cell>() == 5);

/// Days from 1970-01-01 to a civil date (proleptic Gregorian; H. Hinnant's `days_from_civil`). Plain
/// integer arithmetic: the hot path converts without a calendar library's general machinery.
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = ((153 * mp + 2) / 5 + d - 1) as i32;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i32::from(m <= 2), m, d)
}

/// A day as stored in a cell: days since 1969-12-31 (1970-01-01 is 1), 0 meaning none. `None` when the
/// day does not fit (before 1970 or after 2149-06-05).
fn encode(d: Option<Day>) -> Option<u16> {
    match d {
        None => Some(0),
        Some(d) => {
            let date = d.date();
            let days = days_from_civil(i32::from(date.year()), date.month() as u32, date.day() as u32) + 1;
            u16::try_from(days).ok().filter(|&v| v > 0)
        }
    }
}

/// Every day a cell can hold, by its code: decoding is one read (the days in use are a few thousand
/// neighbouring entries, which stay in cache).
static DAYS: std::sync::OnceLock<Box<[Option<Day>]>> = std::sync::OnceLock::new();

fn decode(v: u16) -> Option<Day> {
    DAYS.get_or_init(|| {
        (0..=u16::MAX)
            .map(|v| {
                let (y, m, d) = civil_from_days(i32::from(v) - 1);
                (v != 0).then(|| Day::from_ymd(y as i16, m as i8, d as i8)).flatten()
            })
            .collect()
    })[usize::from(v)]
}

/// The hasher of the block table: block ids are integers, so one multiply spreads them (the standard
/// SipHash costs more than the rest of a lookup).
#[derive(Clone, Copy, Debug, Default)]
struct BlockHasher(u64);

impl std::hash::Hasher for BlockHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type BlockMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<BlockHasher>>;

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
    slots: BlockMap<u32>,
    blocks: Vec<Block>,
    ranges: Ranges,
    overflow: HashMap<u64, Summary>,
    /// Numbers with a history.
    numbers: u64,
    /// The block last put into (block id, slot).
    recent: Option<(u64, u32)>,
    /// The change of the tables this index reflects, as its keeper counts them (see
    /// [`Index::change_seq`]).
    change_seq: u64,
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

    /// Takes in an index built over other blocks (a part of a parallel build): the two must share
    /// their ranges and hold no block in common.
    pub fn absorb(&mut self, other: Index) {
        let mut blocks: Vec<Option<Block>> = other.blocks.into_iter().map(Some).collect();
        for (block_id, slot) in other.slots {
            debug_assert!(!self.slots.contains_key(&block_id), "blocks of a parallel build are disjoint");
            let Some(block) = blocks[slot as usize].take() else { continue };
            let s = u32::try_from(self.blocks.len()).expect("fewer than 4 billion blocks");
            self.blocks.push(block);
            self.slots.insert(block_id, s);
        }
        self.overflow.extend(other.overflow);
        self.numbers += other.numbers;
    }

    /// The last change of the tables this index reflects, as its keeper numbers them (the store: its
    /// batches that changed summaries, in commit order); 0 for none.
    pub fn change_seq(&self) -> u64 {
        self.change_seq
    }

    pub fn set_change_seq(&mut self, seq: u64) {
        self.change_seq = seq;
    }

    /// The ranges the index was built over, as (prefix digits, reportingSince), sorted.
    pub fn ranges(&self) -> Vec<(String, Option<Day>)> {
        let mut out: Vec<(String, Option<Day>)> = self
            .ranges
            .by_len
            .iter()
            .flat_map(|(len, m)| {
                m.iter().map(move |(v, since)| (format!("{v:0width$}", width = *len as usize), *since))
            })
            .collect();
        out.sort();
        out
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
        // Numbers come in order when the index is built: most puts hit the block of the one before.
        if let Some((id, slot)) = self.recent
            && id == block_id
        {
            return &mut self.blocks[slot as usize];
        }
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
        self.recent = Some((block_id, slot));
        &mut self.blocks[slot as usize]
    }

    /// Sets what the index knows of `n`: the summary of its sorted history (`domain::Summary`), as the
    /// store keeps it. A summary without events forgets the number.
    pub fn put(&mut self, n: PhoneNumber, s: &Summary) {
        let digits = n.digits();
        let has_history = s.first_event.is_some();
        let (block_id, at) = (digits / BLOCK_NUMBERS, (digits % BLOCK_NUMBERS) as usize);
        if !has_history && !self.slots.contains_key(&block_id) {
            return;
        }
        let since = match self.block_mut(block_id).shared {
            Some(shared) => shared.flatten(),
            None => self.range_of(digits).flatten(),
        };
        let fits = match (since, encode(s.last_end), encode(s.last_activation)) {
            (Some(_), Some(end), Some(act)) => Some((end, act)),
            _ => None,
        };
        let cell = {
            let block = self.block_mut(block_id);
            &mut block.cells[at]
        };
        let had = cell.flags() & HAS_HISTORY != 0;
        let was_overflow = cell.flags() & OVERFLOW != 0;
        *cell = match (has_history, fits) {
            (false, _) => Cell::default(),
            (true, Some((end, act))) => {
                Cell::new(end, act, HAS_HISTORY | if s.disconnected { DISCONNECTED } else { 0 })
            }
            (true, None) => Cell::new(0, 0, HAS_HISTORY | OVERFLOW),
        };
        let now_overflow = cell.flags() & OVERFLOW != 0;
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

    /// Where `n` is: its block, if allocated, and its cell there (a copy).
    #[inline]
    fn locate(&self, digits: u64) -> (Option<&Block>, Cell) {
        match self.slots.get(&(digits / BLOCK_NUMBERS)) {
            Some(&s) => {
                let b = &self.blocks[s as usize];
                (Some(b), b.cells[(digits % BLOCK_NUMBERS) as usize])
            }
            None => (None, Cell::default()),
        }
    }

    /// [`Index::put`] from the store's packed form (days as `yyyymmdd` integers, 0 for none), without
    /// going through a calendar type: the build from the tables puts every number this way.
    pub fn put_packed(
        &mut self,
        n: PhoneNumber,
        first_event: i32,
        last_end: i32,
        last_activation: i32,
        disconnected: bool,
    ) {
        let cell_day = |p: i32| -> Option<u16> {
            if p == 0 {
                return Some(0);
            }
            let (y, m, d) = (p / 10_000, (p / 100 % 100) as u32, (p % 100) as u32);
            u16::try_from(days_from_civil(y, m, d) + 1).ok().filter(|&v| v > 0)
        };
        let digits = n.digits();
        let (block_id, at) = (digits / BLOCK_NUMBERS, (digits % BLOCK_NUMBERS) as usize);
        let (end, act) = (cell_day(last_end), cell_day(last_activation));
        // The common case: a number with a history, in a block whose range has a reportingSince, its
        // days within the cell's span, not kept whole before.
        if let (true, Some(end), Some(act)) = (first_event != 0, end, act) {
            let block = self.block_mut(block_id);
            let cell = &mut block.cells[at];
            if matches!(block.shared, Some(Some(Some(_)))) && cell.flags() & OVERFLOW == 0 {
                let new = cell.flags() & HAS_HISTORY == 0;
                *cell = Cell::new(end, act, HAS_HISTORY | if disconnected { DISCONNECTED } else { 0 });
                self.numbers += u64::from(new);
                return;
            }
        }
        let day = |p: i32| if p == 0 { None } else { Day::from_packed(p) };
        let s = Summary {
            first_event: day(first_event),
            last_end: day(last_end),
            last_activation: day(last_activation),
            disconnected,
            serving: None,
        };
        self.put(n, &s);
    }

    /// Whether `n` has a history: an event of it was put and not forgotten since.
    pub fn has_history(&self, n: PhoneNumber) -> bool {
        self.locate(n.digits()).1.flags() & HAS_HISTORY != 0
    }

    /// What R2 needs to know about `n`.
    pub fn facts(&self, n: PhoneNumber) -> NumberFacts {
        let digits = n.digits();
        let (block, cell) = self.locate(digits);
        self.facts_of(digits, block, cell)
    }

    fn facts_of(&self, digits: u64, block: Option<&Block>, cell: Cell) -> NumberFacts {
        let range = |b: Option<&Block>| match b.and_then(|b| b.shared) {
            Some(shared) => shared,
            None => self.range_of(digits),
        };
        let Some(b) = block else {
            return NumberFacts { coverage_start: range(None).flatten(), ..NumberFacts::default() };
        };
        if cell.flags() & OVERFLOW != 0 {
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
            last_end: decode(cell.end()),
            last_activation: decode(cell.act()),
            disconnected: cell.flags() & DISCONNECTED != 0,
        }
    }

    /// R2 for `n` and day `d`, as of `today`.
    pub fn answer(&self, n: PhoneNumber, d: Day, today: Day) -> Result<Answer, DateAfterToday> {
        reassigned_since(&self.facts(n), d, today)
    }

    /// R2 for many questions, appended to `out` in order. The same answers as [`Index::answer`] one by
    /// one, faster: each group of questions first fetches its cells (independent memory reads the CPU
    /// overlaps), then answers from the copies, so that a random lookup does not wait for memory alone.
    pub fn answer_many(
        &self,
        questions: &[(PhoneNumber, Day)],
        today: Day,
        out: &mut Vec<Result<Answer, DateAfterToday>>,
    ) {
        const GROUP: usize = 64;
        static EMPTY: Cell = Cell::new(0, 0, 0);
        out.reserve(questions.len());
        let mut blocks: [Option<&Block>; GROUP] = [None; GROUP];
        let mut cells: [&Cell; GROUP] = [&EMPTY; GROUP];
        let mut copies: [Cell; GROUP] = [Cell::default(); GROUP];
        for group in questions.chunks(GROUP) {
            // Where each cell is (the block table is small and stays in cache)…
            for ((b, c), (n, _)) in blocks.iter_mut().zip(cells.iter_mut()).zip(group) {
                let digits = n.digits();
                *b = self.slots.get(&(digits / BLOCK_NUMBERS)).map(|&s| &self.blocks[s as usize]);
                *c = b.map_or(&EMPTY, |b| &b.cells[(digits % BLOCK_NUMBERS) as usize]);
            }
            // …then all the reads at once, which miss the cache independently…
            for (copy, c) in copies.iter_mut().zip(&cells) {
                *copy = **c;
            }
            // …then the answers.
            for ((block, cell), (n, d)) in blocks.iter().zip(&copies).zip(group) {
                out.push(reassigned_since(&self.facts_of(n.digits(), *block, *cell), *d, today));
            }
        }
    }
}

/// Why bytes do not decode into an index (a snapshot cut short or not one of these).
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl Index {
    /// The index as bytes, handed to `out` a piece at a time (a snapshot beside the database): the
    /// count of numbers, each block's id and cells, then the overflow. The ranges are not in it: an
    /// index decodes only over the ranges it was built with (cells hold what a range implies).
    pub fn encode(&self, out: &mut dyn FnMut(&[u8])) {
        out(&self.numbers.to_le_bytes());
        out(&(self.blocks.len() as u64).to_le_bytes());
        let mut ids: Vec<(u64, u32)> = self.slots.iter().map(|(&id, &slot)| (id, slot)).collect();
        ids.sort_unstable();
        let mut buf = Vec::with_capacity(BLOCK_NUMBERS as usize * 5);
        for (id, slot) in ids {
            out(&id.to_le_bytes());
            buf.clear();
            for cell in &self.blocks[slot as usize].cells {
                buf.extend_from_slice(&cell.0);
            }
            out(&buf);
        }
        out(&(self.overflow.len() as u64).to_le_bytes());
        let packed = |d: Option<Day>| d.map_or(0, Day::packed).to_le_bytes();
        let mut overflow: Vec<(&u64, &Summary)> = self.overflow.iter().collect();
        overflow.sort_unstable_by_key(|(n, _)| **n);
        for (&n, s) in overflow {
            out(&n.to_le_bytes());
            out(&packed(s.first_event));
            out(&packed(s.last_end));
            out(&packed(s.last_activation));
            out(&[u8::from(s.disconnected)]);
        }
    }

    /// The index [`Index::encode`] wrote, over the same ranges; `read` fills each buffer it is given
    /// from the bytes in order.
    pub fn decode(
        ranges: impl IntoIterator<Item = (Prefix, Option<Day>)>,
        read: &mut dyn FnMut(&mut [u8]) -> Result<(), DecodeError>,
    ) -> Result<Index, DecodeError> {
        let u64_of = |read: &mut dyn FnMut(&mut [u8]) -> Result<(), DecodeError>| {
            let mut b = [0u8; 8];
            read(&mut b).map(|()| u64::from_le_bytes(b))
        };
        let mut ix = Index::new(ranges);
        ix.numbers = u64_of(read)?;
        let blocks = u64_of(read)?;
        let mut buf = vec![0u8; BLOCK_NUMBERS as usize * 5];
        for _ in 0..blocks {
            let id = u64_of(read)?;
            if ix.slots.contains_key(&id) || id > 999_999_999_999_999 / BLOCK_NUMBERS {
                return Err(DecodeError(format!("block {id} is repeated or out of range")));
            }
            read(&mut buf)?;
            let block = ix.block_mut(id);
            for (cell, b) in block.cells.iter_mut().zip(buf.chunks_exact(5)) {
                cell.0.copy_from_slice(b);
            }
        }
        ix.recent = None;
        let overflow = u64_of(read)?;
        for _ in 0..overflow {
            let n = u64_of(read)?;
            let mut b = [0u8; 13];
            read(&mut b)?;
            let day = |i: usize| {
                let v = i32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
                if v == 0 { Ok(None) } else { Day::from_packed(v).map(Some).ok_or(DecodeError(format!("day {v}"))) }
            };
            let s = Summary {
                first_event: day(0)?,
                last_end: day(4)?,
                last_activation: day(8)?,
                disconnected: b[12] != 0,
                serving: None,
            };
            ix.overflow.insert(n, s);
        }
        Ok(ix)
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
    fn a_cell_is_five_bytes_and_days_round_trip() {
        // Every representable day, against the calendar library.
        let epoch = day("1969-12-31");
        for v in 1..=u16::MAX {
            let d = epoch.plus_days(i32::from(v));
            assert_eq!(decode(v), Some(d));
            assert_eq!(encode(Some(d)), Some(v));
        }
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
        let questions: Vec<(PhoneNumber, Day)> = (0..100)
            .map(|i| (num(&format!("+86138001380{:02}", i % 3)), day("2023-01-01").plus_days(i * 11)))
            .chain([(num("+4915112345678"), day("2024-01-01"))])
            .collect();
        let mut many = Vec::new();
        ix.answer_many(&questions, day("2025-06-30"), &mut many);
        let one_by_one: Vec<_> = questions.iter().map(|(n, d)| ix.answer(*n, *d, day("2025-06-30"))).collect();
        assert_eq!(many, one_by_one);
        ix.put(n, &Summary::default());
        assert_eq!(ix.numbers(), 0);
    }

    #[test]
    fn put_packed_is_put() {
        let ranges = [(Prefix::parse("+86138").unwrap(), Some(day("2020-01-01")))];
        let (mut a, mut b) = (Index::new(ranges.clone()), Index::new(ranges));
        let cases = [
            ("+8613800138000", summary("2024-02-25", Some("2024-02-25"), Some("2024-09-21"), false)),
            ("+8613800138001", summary("1965-01-01", Some("1965-01-01"), None, true)),
            ("+4915112345678", summary("2023-05-01", Some("2024-01-01"), None, true)),
            ("+8613800138000", summary("2024-02-25", Some("2025-02-25"), Some("2024-09-21"), true)),
        ];
        let packed = |d: Option<Day>| d.map_or(0, |d| d.packed());
        for (n, s) in cases {
            a.put(num(n), &s);
            b.put_packed(num(n), packed(s.first_event), packed(s.last_end), packed(s.last_activation), s.disconnected);
            for (m, _) in cases {
                assert_eq!(a.facts(num(m)), b.facts(num(m)), "{m}");
            }
        }
        assert_eq!(a.numbers(), b.numbers());
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

    #[test]
    fn an_index_decodes_as_it_was_encoded() {
        let ranges = || [(Prefix::parse("+86138").unwrap(), Some(day("2019-06-01")))];
        let mut ix = Index::new(ranges());
        ix.put(num("+8613800000001"), &summary("2020-01-01", Some("2021-05-01"), Some("2020-01-01"), true));
        ix.put(num("+8613800250001"), &summary("2020-01-01", None, Some("2022-02-02"), false));
        // Outside every range, and a day a cell cannot hold: the overflow.
        ix.put(num("+4915100000001"), &summary("2020-03-03", Some("2150-01-01"), None, true));
        let mut bytes = Vec::new();
        ix.encode(&mut |b| bytes.extend_from_slice(b));
        let mut at = 0;
        let back = Index::decode(ranges(), &mut |buf: &mut [u8]| {
            let end = at + buf.len();
            buf.copy_from_slice(bytes.get(at..end).ok_or(DecodeError("cut short".into()))?);
            at = end;
            Ok(())
        })
        .unwrap();
        assert_eq!(at, bytes.len());
        assert_eq!((back.numbers(), back.blocks()), (ix.numbers(), ix.blocks()));
        for n in ["+8613800000001", "+8613800250001", "+4915100000001", "+8613800000002", "+8613900000001"] {
            assert_eq!(back.facts(num(n)), ix.facts(num(n)), "{n}");
        }
        let mut cut = 0;
        let short = Index::decode(ranges(), &mut |buf: &mut [u8]| {
            let end = cut + buf.len();
            buf.copy_from_slice(bytes[..bytes.len() - 1].get(cut..end).ok_or(DecodeError("cut short".into()))?);
            cut = end;
            Ok(())
        });
        assert!(short.is_err());
    }
}
