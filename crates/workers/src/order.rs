//! A lifecycle file's rows in number order, whatever order they came in.
//!
//! Why: applied in the file's order, the rows of a file in random number order dirty pages all over
//! the tables with every chunk, and the file applies several times slower than the same rows sorted
//! (`cargo xtask bench --only lifecycle-order`). And in the file's order, which of two rows about one
//! number is accepted could depend on which came first (an event that would invalidate a later
//! accepted one is refused, R3).
//!
//! The order is a function of the rows alone, never of the lines they came on: by number, then date,
//! then R1's order of kinds within a day, then event id, then recipient; rows that say all of this
//! alike are the same event (one is counted a duplicate of the other), taken in line order. Rows that
//! did not parse come after every good row, in line order, each rejected with its line as before. So
//! the same rows applied sorted, reversed or shuffled give the same answers, rejections and counts.
//!
//! How: the rows are parsed once and packed as records whose byte order is that order (a `memcmp` of
//! two records compares them). They are sorted in runs of at most `sort_bytes` of memory; every run
//! but the last is written to a file beside the spooled one, and the runs are merged as chunks are
//! read. The position in the merged order is the job's checkpoint: a restarted runner sorts again (the
//! same rows give the same order) and skips the rows committed. Run files are scratch, never trusted
//! across runs, and removed once merged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use domain::{Day, EventId, EventKind, PhoneNumber, Rejection, RejectionCode};
use store::{ChunkRow, Job, NewEvent, RowData};

use crate::files::{FileFormat, FileLimits, Record, Records, parse_row};

/// A good row's record starts with this byte, a bad row's with [`BAD`]: good rows come first.
const GOOD: u8 = 0;
const BAD: u8 = 1;

/// The buffers between the run files and the merge.
const RUN_BUFFER_BYTES: usize = 64 * 1024;

/// One row as a record: `[GOOD][number][date][kind][id len][id][recipient len][recipient][line]`
/// (integers big-endian, so that byte order is numeric order), or `[BAD][line][code][message len]
/// [message]`.
fn encode(out: &mut Vec<u8>, row: &ChunkRow) {
    match &row.row {
        Ok(RowData::Event(e)) => {
            out.push(GOOD);
            out.extend_from_slice(&e.number.digits().to_be_bytes());
            // A day's packed yyyymmdd of years 0 to 9999 is positive.
            out.extend_from_slice(&(e.date.packed().max(0) as u32).to_be_bytes());
            out.push(EventKind::ALL.iter().position(|k| *k == e.kind).unwrap_or(0) as u8);
            let id = e.event_id.as_str().as_bytes();
            out.push(id.len() as u8);
            out.extend_from_slice(id);
            let recipient = e.recipient.as_deref().unwrap_or("").as_bytes();
            let recipient = &recipient[..recipient.len().min(u8::MAX as usize)];
            out.push(recipient.len() as u8);
            out.extend_from_slice(recipient);
            out.extend_from_slice(&row.line.to_be_bytes());
        }
        Ok(RowData::Binding(_)) => encode_bad(
            out,
            row.line,
            &Rejection::new(RejectionCode::InvalidArgument, "a binding row in a lifecycle file"),
        ),
        Err(rejection) => encode_bad(out, row.line, rejection),
    }
}

fn encode_bad(out: &mut Vec<u8>, line: u64, rejection: &Rejection) {
    out.push(BAD);
    out.extend_from_slice(&line.to_be_bytes());
    out.push(RejectionCode::ALL.iter().position(|c| *c == rejection.code).unwrap_or(0) as u8);
    // Messages quote values cut short: far below this.
    let mut end = rejection.message.len().min(u16::MAX as usize);
    while !rejection.message.is_char_boundary(end) {
        end -= 1;
    }
    let message = &rejection.message[..end];
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

/// The row a record was made from.
fn decode(rec: &[u8]) -> Result<ChunkRow, String> {
    let corrupt = || "a sorted row could not be read back".to_string();
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = rec.get(at..at + n).ok_or_else(corrupt)?;
        at += n;
        Ok(s)
    };
    let u64_of = |s: &[u8]| u64::from_be_bytes(s.try_into().expect("8 bytes"));
    match take(1)?[0] {
        GOOD => {
            let number = PhoneNumber::from_digits(u64_of(take(8)?)).ok_or_else(corrupt)?;
            let date = Day::from_packed(u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as i32)
                .ok_or_else(corrupt)?;
            let kind = *EventKind::ALL.get(usize::from(take(1)?[0])).ok_or_else(corrupt)?;
            let n = usize::from(take(1)?[0]);
            let id = std::str::from_utf8(take(n)?).map_err(|_| corrupt())?;
            let event_id = EventId::parse(id).map_err(|_| corrupt())?;
            let n = usize::from(take(1)?[0]);
            let recipient = std::str::from_utf8(take(n)?).map_err(|_| corrupt())?;
            let recipient = Some(recipient).filter(|r| !r.is_empty()).map(str::to_string);
            let line = u64_of(take(8)?);
            let event = NewEvent { event_id, number, kind, date, kyc: None, recipient };
            Ok(ChunkRow { line, row: Ok(RowData::Event(event)) })
        }
        BAD => {
            let line = u64_of(take(8)?);
            let code = *RejectionCode::ALL.get(usize::from(take(1)?[0])).ok_or_else(corrupt)?;
            let n = usize::from(u16::from_be_bytes(take(2)?.try_into().expect("2 bytes")));
            let message = String::from_utf8_lossy(take(n)?).into_owned();
            Ok(ChunkRow { line, row: Err(Rejection::new(code, message)) })
        }
        _ => Err(corrupt()),
    }
}

/// A record's first 16 bytes as a number, zero-padded: comparing these first, and the whole records
/// only when they tie, is the records' byte order.
fn prefix(rec: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = rec.len().min(16);
    b[..n].copy_from_slice(&rec[..n]);
    u128::from_be_bytes(b)
}

/// Records sorted in memory: the bytes, and (prefix, start, end) of each in order.
#[derive(Default)]
struct Run {
    bytes: Vec<u8>,
    index: Vec<(u128, u32, u32)>,
}

impl Run {
    fn push(&mut self, row: &ChunkRow) {
        let start = self.bytes.len();
        encode(&mut self.bytes, row);
        let rec = &self.bytes[start..];
        self.index.push((prefix(rec), start as u32, self.bytes.len() as u32));
    }

    fn memory(&self) -> usize {
        self.bytes.len() + self.index.len() * std::mem::size_of::<(u128, u32, u32)>()
    }

    fn sort(&mut self) {
        let bytes = &self.bytes;
        self.index.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| bytes[a.1 as usize..a.2 as usize].cmp(&bytes[b.1 as usize..b.2 as usize]))
        });
    }

    /// Writes the sorted records, each after its length (2 bytes).
    fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(RUN_BUFFER_BYTES, std::fs::File::create(path)?);
        for &(_, start, end) in &self.index {
            let rec = &self.bytes[start as usize..end as usize];
            out.write_all(&(rec.len() as u16).to_be_bytes())?;
            out.write_all(rec)?;
        }
        out.flush()
    }
}

/// Where a run's next record comes from.
enum Source {
    Memory { run: Run, next: usize },
    File(BufReader<std::fs::File>),
}

impl Source {
    /// Puts the next record into `rec`; false at the end.
    fn next(&mut self, rec: &mut Vec<u8>) -> std::io::Result<bool> {
        rec.clear();
        match self {
            Source::Memory { run, next } => {
                let Some(&(_, start, end)) = run.index.get(*next) else { return Ok(false) };
                *next += 1;
                rec.extend_from_slice(&run.bytes[start as usize..end as usize]);
                Ok(true)
            }
            Source::File(file) => {
                let mut len = [0u8; 2];
                match file.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(e),
                }
                rec.resize(usize::from(u16::from_be_bytes(len)), 0);
                file.read_exact(rec)?;
                Ok(true)
            }
        }
    }
}

/// A run's current record in the merge, ordered as the records are.
struct Head {
    prefix: u128,
    rec: Vec<u8>,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| self.rec.cmp(&other.rec)).then(self.source.cmp(&other.source))
    }
}

/// A lifecycle file's rows in number order: [`NumberOrder::sort`] reads and sorts the whole file,
/// [`NumberOrder::next_rows`] hands them out.
pub(crate) struct NumberOrder {
    sources: Vec<Source>,
    heap: BinaryHeap<Reverse<Head>>,
    run_files: Vec<PathBuf>,
    /// The file's data rows.
    pub rows: u64,
}

/// The `i`th run file of a spooled file.
fn run_path(spool: &str, i: usize) -> PathBuf {
    PathBuf::from(format!("{spool}.run{i}"))
}

/// Removes a spooled file's run files, if any are left (a runner that stopped while merging).
pub(crate) fn remove_runs(spool: &str) {
    for i in 0.. {
        if std::fs::remove_file(run_path(spool, i)).is_err() {
            break;
        }
    }
}

impl NumberOrder {
    /// Reads and parses every row of `job`'s spooled file, sorts them, and skips the first
    /// `job.byte_offset` of that order (the rows committed before). A full run is sorted and written
    /// on a second thread while the next is read.
    pub(crate) fn sort(job: &Job, limits: &FileLimits) -> Result<NumberOrder, String> {
        let started = std::time::Instant::now();
        let format = FileFormat::parse(&job.format).ok_or_else(|| format!("unknown file format {:?}", job.format))?;
        let path = PathBuf::from(&job.spool_path);
        let file = std::fs::File::open(&path).map_err(|e| {
            tracing::error!(job = %job.id, path = %path.display(), error = %e, "the spooled file is gone");
            "the uploaded file is gone from the server: upload it again".to_string()
        })?;
        remove_runs(&job.spool_path);
        let scratch = |e: std::io::Error| {
            tracing::error!(job = %job.id, error = %e, "writing a sorted run failed");
            format!("the server could not sort the file: {e}")
        };
        let mut order = NumberOrder { sources: Vec::new(), heap: BinaryHeap::new(), run_files: Vec::new(), rows: 0 };
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Run, PathBuf)>(1);
        let (last, written) = std::thread::scope(|s| {
            let writer = s.spawn(move || -> std::io::Result<Vec<PathBuf>> {
                let mut written = Vec::new();
                for (mut run, path) in full_rx {
                    run.sort();
                    run.write(&path)?;
                    written.push(path);
                }
                Ok(written)
            });
            let read = (|| {
                let input = BufReader::with_capacity(crate::files::READ_BUFFER_BYTES, file);
                let mut reader = Records::new(input, format.columns(), limits.csv_field_bytes_max);
                let mut run = Run::default();
                let mut header = true;
                loop {
                    let read = reader.read().map_err(|e| format!("cannot read the uploaded file: {e}"))?;
                    let (line, parsed) = match read {
                        Record::End => return Ok(run),
                        Record::Row { line } => (line, Ok(())),
                        Record::TooLong { line, message } => {
                            (line, Err(Rejection::new(RejectionCode::InvalidArgument, message)))
                        }
                    };
                    if header {
                        // Checked at upload; the header is line 1.
                        header = false;
                        continue;
                    }
                    if order.rows >= limits.file_rows_max {
                        return Err(format!("the file has more than {} rows (file_rows_max)", limits.file_rows_max));
                    }
                    order.rows += 1;
                    let row = parsed.and_then(|()| parse_row(format, &reader.fields(), limits));
                    run.push(&ChunkRow { line, row });
                    if run.memory() >= limits.sort_bytes {
                        let path = run_path(&job.spool_path, order.run_files.len());
                        order.run_files.push(path.clone());
                        if full_tx.send((std::mem::take(&mut run), path)).is_err() {
                            // The writing thread stopped: its error is reported below.
                            return Ok(run);
                        }
                    }
                }
            })();
            drop(full_tx);
            let written = writer.join().unwrap_or_else(|_| Err(std::io::Error::other("sorting a run panicked")));
            (read, written)
        });
        let written = written.map_err(scratch)?;
        let mut last = last?;
        if written.len() != order.run_files.len() {
            return Err(scratch(std::io::Error::other("a run was not written")));
        }
        for path in &order.run_files {
            let file = std::fs::File::open(path).map_err(scratch)?;
            order.sources.push(Source::File(BufReader::with_capacity(RUN_BUFFER_BYTES, file)));
        }
        // The last run is merged from memory.
        last.sort();
        order.sources.push(Source::Memory { run: last, next: 0 });
        for i in 0..order.sources.len() {
            order.refill(i).map_err(scratch)?;
        }
        for _ in 0..job.byte_offset {
            if order.next_rec().map_err(scratch)?.is_none() {
                break;
            }
        }
        tracing::info!(
            job = %job.id,
            rows = order.rows,
            runs = order.sources.len(),
            skipped = job.byte_offset,
            secs = started.elapsed().as_secs_f64(),
            "sorted the file into number order"
        );
        Ok(order)
    }

    /// Puts source `i`'s next record on the heap, if it has one.
    fn refill(&mut self, i: usize) -> std::io::Result<()> {
        self.refill_into(i, Vec::new())
    }

    fn refill_into(&mut self, i: usize, mut rec: Vec<u8>) -> std::io::Result<()> {
        if self.sources[i].next(&mut rec)? {
            self.heap.push(Reverse(Head { prefix: prefix(&rec), rec, source: i }));
        }
        Ok(())
    }

    /// The next record in order, decoded.
    fn next_rec(&mut self) -> std::io::Result<Option<ChunkRow>> {
        let Some(Reverse(head)) = self.heap.pop() else { return Ok(None) };
        let row = decode(&head.rec).map_err(std::io::Error::other)?;
        self.refill_into(head.source, head.rec)?;
        Ok(Some(row))
    }

    /// Up to `max` rows in order, and whether they are the last.
    pub(crate) fn next_rows(&mut self, max: usize) -> Result<(Vec<ChunkRow>, bool), String> {
        let mut rows = Vec::with_capacity(max.min(1 << 16));
        while rows.len() < max {
            match self.next_rec().map_err(|e| format!("the server could not read the sorted file back: {e}"))? {
                Some(row) => rows.push(row),
                None => break,
            }
        }
        let finished = self.heap.is_empty();
        if finished {
            for path in self.run_files.drain(..) {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok((rows, finished))
    }
}

impl Drop for NumberOrder {
    fn drop(&mut self) {
        for path in &self.run_files {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: u64, id: &str, number: u64, kind: EventKind, date: &str, recipient: Option<&str>) -> ChunkRow {
        ChunkRow {
            line,
            row: Ok(RowData::Event(NewEvent {
                event_id: EventId::parse(id).unwrap(),
                number: PhoneNumber::from_digits(number).unwrap(),
                kind,
                date: Day::parse(date).unwrap(),
                kyc: None,
                recipient: recipient.map(str::to_string),
            })),
        }
    }

    fn record(row: &ChunkRow) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, row);
        v
    }

    #[test]
    fn records_read_back_as_the_rows_they_were() {
        let rows = [
            event(2, "e1", 8613800000001, EventKind::Disconnected, "2024-01-31", None),
            event(3, "x".repeat(128).as_str(), 8613800000001, EventKind::PortedIn, "9999-12-31", Some("car_1")),
            ChunkRow { line: 4, row: Err(Rejection::new(RejectionCode::OutOfRange, "a date before 1900: 1899-01-01")) },
        ];
        for row in rows {
            let back = decode(&record(&row)).unwrap();
            assert_eq!(format!("{back:?}"), format!("{row:?}"));
        }
    }

    #[test]
    fn byte_order_is_number_date_kind_then_id_and_bad_rows_last() {
        let bad = ChunkRow { line: 2, row: Err(Rejection::new(RejectionCode::InvalidArgument, "x")) };
        let ordered = [
            event(9, "b", 8613800000001, EventKind::Disconnected, "2024-01-01", None),
            event(8, "a", 8613800000001, EventKind::Activated, "2024-01-01", None),
            event(7, "a", 8613800000001, EventKind::Activated, "2024-01-02", None),
            event(6, "z", 8613800000002, EventKind::PortedOut, "2020-01-01", None),
            event(3, "z", 8613800000002, EventKind::PortedIn, "2020-01-01", None),
            event(4, "z", 8613800000002, EventKind::PortedIn, "2020-01-01", None),
            bad,
            ChunkRow { line: 5, row: Err(Rejection::new(RejectionCode::InvalidArgument, "a")) },
        ];
        let recs: Vec<Vec<u8>> = ordered.iter().map(record).collect();
        for pair in recs.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(prefix(&pair[0]) <= prefix(&pair[1]));
        }
    }
}
