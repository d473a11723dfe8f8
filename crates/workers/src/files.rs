//! CSV files, sans IO: header detection and row parsing.
//!
//! Lifecycle files come in two formats, told apart by the header row:
//! - `event_id,phone_number,type,date`: numlink's own, optionally with a fifth column `recipient` (the
//!   carrier a donor's `ported_out` names, or the number-portability database's whole port);
//! - `phone_number,disconnect_date`: the RND style, a list of permanent disconnections. Such rows
//!   carry no id, so each gets `rnd:<number>:<date>`: uploading the same file again finds duplicates.
//!   (Ids sort with the numbers, which keeps inserts into the events table local. Event ids reach the
//!   audit log and notifications only as keyed hashes.)
//!
//! Binding files are `account_ref,phone_number,bound_on`.

use std::io::BufRead;

use csv_core::ReadRecordResult;
use domain::{AccountRef, Day, EventId, EventKind, PhoneNumber, Rejection, RejectionCode};
use store::{JobKind, NewBinding, NewEvent, RowData};

/// The CSV reader's buffer over a spooled file.
pub(crate) const READ_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Events,
    /// Events with a fifth column, `recipient`.
    EventsWithRecipient,
    Rnd,
    Bindings,
    Checks,
}

impl FileFormat {
    pub const EVENTS_HEADER: &'static str = "event_id,phone_number,type,date";
    pub const EVENTS_RECIPIENT_HEADER: &'static str = "event_id,phone_number,type,date,recipient";
    pub const RND_HEADER: &'static str = "phone_number,disconnect_date";
    pub const BINDINGS_HEADER: &'static str = "account_ref,phone_number,bound_on";
    pub const CHECKS_HEADER: &'static str = "phone_number,date";

    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Events => "events",
            FileFormat::EventsWithRecipient => "events_recipient",
            FileFormat::Rnd => "rnd",
            FileFormat::Bindings => "bindings",
            FileFormat::Checks => "checks",
        }
    }

    pub fn parse(s: &str) -> Option<FileFormat> {
        [FileFormat::Events, FileFormat::EventsWithRecipient, FileFormat::Rnd, FileFormat::Bindings, FileFormat::Checks]
            .into_iter()
            .find(|f| f.as_str() == s)
    }

    /// Detects the format of a file of the given kind from its header line (without its line ending).
    pub fn detect_for(kind: JobKind, header_line: &[u8]) -> Result<FileFormat, String> {
        match kind {
            JobKind::Lifecycle => FileFormat::detect(header_line),
            JobKind::Bindings => Self::expect(header_line, FileFormat::Bindings, Self::BINDINGS_HEADER, "binding"),
            JobKind::Checks => Self::expect(header_line, FileFormat::Checks, Self::CHECKS_HEADER, "check"),
        }
    }

    fn expect(header_line: &[u8], format: FileFormat, header: &str, what: &str) -> Result<FileFormat, String> {
        let text = String::from_utf8_lossy(header_line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(header_line));
        if normalize(&text) == header {
            Ok(format)
        } else {
            Err(format!(
                "header \"{}\" is not a {what} file header: expected \"{header}\"",
                domain::number::truncate_for_message(&text)
            ))
        }
    }

    /// Detects the format of a lifecycle file from its header line (without its line ending).
    pub fn detect(header_line: &[u8]) -> Result<FileFormat, String> {
        let line = header_line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(header_line);
        let text = String::from_utf8_lossy(line);
        let normalized: Vec<String> =
            text.trim_end_matches('\r').split(',').map(|f| f.trim().trim_matches('"').to_ascii_lowercase()).collect();
        let joined = normalized.join(",");
        if joined == Self::EVENTS_HEADER {
            Ok(FileFormat::Events)
        } else if joined == Self::EVENTS_RECIPIENT_HEADER {
            Ok(FileFormat::EventsWithRecipient)
        } else if joined == Self::RND_HEADER {
            Ok(FileFormat::Rnd)
        } else {
            Err(format!(
                "header \"{}\" is not a lifecycle file header: expected \"{}\" (with \",recipient\" if rows name a port's recipient) or \"{}\"",
                domain::number::truncate_for_message(&text),
                Self::EVENTS_HEADER,
                Self::RND_HEADER
            ))
        }
    }

    pub fn columns(self) -> usize {
        match self {
            FileFormat::Events => 4,
            FileFormat::EventsWithRecipient => 5,
            FileFormat::Rnd => 2,
            FileFormat::Bindings => 3,
            FileFormat::Checks => 2,
        }
    }
}

/// A header line's fields, trimmed, unquoted and lower-cased, joined by commas.
fn normalize(header: &str) -> String {
    let fields: Vec<String> =
        header.trim_end_matches('\r').split(',').map(|f| f.trim().trim_matches('"').to_ascii_lowercase()).collect();
    fields.join(",")
}

/// A cell that echoes a caller's raw input, made safe for a spreadsheet (OWASP, CSV injection): one
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written after a `'`, so that no
/// spreadsheet takes it for a formula. A valid E.164 number keeps its `+`: it is only digits, and it
/// is what numlink writes for a good row too.
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    if PhoneNumber::parse(s).is_ok() {
        return s.into();
    }
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// An institution's account reference (`AccountRef::parse`), or the row's rejection.
pub fn parse_account_ref(s: &str) -> Result<AccountRef, Rejection> {
    AccountRef::parse(s).map_err(|e| invalid(e.0))
}

/// Limits on files, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Bytes of one uploaded file.
    pub file_bytes_max: u64,
    /// Data rows of one file (the header not counted).
    pub file_rows_max: u64,
    /// Bytes of one CSV field.
    pub csv_field_bytes_max: usize,
    /// Rows applied as one chunk: one savepoint and one checkpoint (chunks handed to the writer
    /// together may share a transaction).
    pub chunk_rows: usize,
    /// Rows of a check file answered and audited as one chunk.
    pub check_chunk_rows: usize,
    /// Chunks of a job handed to the writer before the first of them has committed, so that its group
    /// commit puts them into one transaction (see `JobRunner::run_chunks`). 1 by default: with 8, a
    /// random-order file applied 1.65x faster, but a check meanwhile took 766 ms at the median instead
    /// of 142 (and 208 instead of 9 during a sorted file), in `bench lifecycle-order`.
    pub chunks_in_flight: usize,
    /// Memory a lifecycle file's rows take while they are sorted into number order: rows beyond it go
    /// to run files beside the spooled one (see `order`). About 60 bytes a row.
    pub sort_bytes: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        // A nation's check file: 100 million rows of `+8613800138000,2024-01-01` are 2.6 GB.
        FileLimits {
            file_bytes_max: 4 << 30,
            file_rows_max: 100_000_000,
            csv_field_bytes_max: 128,
            chunk_rows: 10_000,
            check_chunk_rows: 100_000,
            chunks_in_flight: 1,
            sort_bytes: 64 << 20,
        }
    }
}

fn invalid(msg: String) -> Rejection {
    Rejection::new(RejectionCode::InvalidArgument, msg)
}

/// A carrier's event id (`EventId::parse`), or the row's rejection.
pub fn parse_event_id(s: &str) -> Result<EventId, Rejection> {
    EventId::parse(s).map_err(|e| invalid(e.0))
}

pub fn parse_kind(s: &str) -> Result<EventKind, Rejection> {
    EventKind::parse(s).ok_or_else(|| {
        invalid(format!(
            "type \"{}\" is not an event type: expected one of activated, disconnected, transferred, ported_out, ported_in",
            domain::number::truncate_for_message(s)
        ))
    })
}

/// One CSV row's fields, as read: their bytes end to end, and where each ends.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    bytes: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Fields<'a> {
    /// `ends[i]` is where field `i` ends in `bytes` (and where field `i + 1` begins).
    pub fn new(bytes: &'a [u8], ends: &'a [usize]) -> Fields<'a> {
        Fields { bytes, ends }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// What [`Records::read`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A row within the limits, starting on this line (of the input given): [`Records::fields`].
    Row {
        line: u64,
    },
    /// A row longer than its format allows (more bytes, or more fields): its bytes were passed over
    /// as they came, never held; it is rejected with this message, and reading goes on after it.
    TooLong {
        line: u64,
        message: String,
    },
    End,
}

/// Reads CSV rows with every row bounded as its bytes arrive: at most `fields_max` fields and
/// `fields_max × field_bytes_max` bytes are held; a longer row is cut off and passed over up to its
/// end, so that no file, whatever it holds (a field of gigabytes), costs more memory than that.
/// Each field is then checked against the field limit itself when the row is parsed.
pub struct Records<R> {
    input: R,
    core: csv_core::Reader,
    /// The current row's bytes (one byte more than allowed: a full buffer means too long).
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Where the bytes of a row too long to keep go (here, not on the stack: zeroing it for every row
    /// took 5% of a check file's time).
    sink: Box<[u8; 4096]>,
    sink_ends: [usize; 64],
    /// Where a row's len is kept once read: `out[..len.0]`, `ends[..len.1]`.
    len: (usize, usize),
    /// Bytes of the input consumed so far.
    consumed: u64,
    /// Line ends passed over here, not by `core` (see [`Records::read`]).
    lines_skipped: u64,
    field_bytes_max: usize,
}

impl<R: BufRead> Records<R> {
    pub fn new(input: R, fields_max: usize, field_bytes_max: usize) -> Records<R> {
        Records {
            input,
            core: csv_core::Reader::new(),
            out: vec![0; fields_max * field_bytes_max + 1],
            ends: vec![0; fields_max + 1],
            sink: Box::new([0; 4096]),
            sink_ends: [0; 64],
            len: (0, 0),
            consumed: 0,
            lines_skipped: 0,
            field_bytes_max,
        }
    }

    /// The fields of the row [`Records::read`] last read.
    pub fn fields(&self) -> Fields<'_> {
        Fields::new(&self.out[..self.len.0], &self.ends[..self.len.1])
    }

    /// Bytes consumed, and the line the next row starts on (lines of the input given, from 1).
    pub fn position(&self) -> (u64, u64) {
        (self.consumed, self.core.line() + self.lines_skipped)
    }

    pub fn read(&mut self) -> std::io::Result<Record> {
        // A row ends at its `\r` when lines end in `\r\n`: the `\n` (and any blank line) comes before
        // the next row, whose line is only known once they are passed over.
        loop {
            let skip = match self.input.fill_buf()?.first() {
                Some(b'\n') => 1,
                Some(b'\r') => 0,
                _ => break,
            };
            self.input.consume(1);
            self.consumed += 1;
            self.lines_skipped += skip;
        }
        let line = self.core.line() + self.lines_skipped;
        let (mut nout, mut nend) = (0, 0);
        let mut too_long: Option<String> = None;
        loop {
            let input = self.input.fill_buf()?;
            let (res, nin, o, e) = if too_long.is_none() {
                self.core.read_record(input, &mut self.out[nout..], &mut self.ends[nend..])
            } else {
                self.core.read_record(input, &mut self.sink[..], &mut self.sink_ends)
            };
            self.input.consume(nin);
            self.consumed += nin as u64;
            if too_long.is_none() {
                nout += o;
                nend += e;
            }
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if too_long.is_none() => {
                    too_long = Some(format!(
                        "row is longer than {} bytes: a field is at most {} bytes (csv_field_bytes_max); the rest of the row was not read",
                        self.out.len() - 1,
                        self.field_bytes_max
                    ));
                }
                ReadRecordResult::OutputEndsFull if too_long.is_none() => {
                    too_long = Some(format!("row has more than {} fields", self.ends.len()));
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => {
                    self.len = (nout, nend);
                    return Ok(match too_long {
                        None => Record::Row { line },
                        Some(message) => {
                            self.len = (0, 0);
                            Record::TooLong { line, message }
                        }
                    });
                }
                ReadRecordResult::End => return Ok(Record::End),
            }
        }
    }
}

/// A data row's fields, checked against the format's count and the field size limit, as UTF-8 and
/// trimmed (on the stack: this runs for every row of a file).
fn fields<'r>(format: FileFormat, record: &Fields<'r>, limits: &FileLimits) -> Result<[&'r str; 5], Rejection> {
    if record.len() != format.columns() {
        return Err(invalid(format!("row has {} fields: expected {}", record.len(), format.columns())));
    }
    let mut fields = [""; 5];
    for (i, f) in record.iter().enumerate() {
        if f.len() > limits.csv_field_bytes_max {
            return Err(invalid(format!(
                "field {} is {} bytes: the limit is {} (csv_field_bytes_max)",
                i + 1,
                f.len(),
                limits.csv_field_bytes_max
            )));
        }
        fields[i] = std::str::from_utf8(f).map_err(|_| invalid(format!("field {} is not UTF-8", i + 1)))?.trim();
    }
    Ok(fields)
}

fn number(s: &str) -> Result<PhoneNumber, Rejection> {
    PhoneNumber::parse(s).map_err(|e| invalid(e.to_string()))
}

fn date(s: &str) -> Result<Day, Rejection> {
    Day::parse(s).map_err(|e| invalid(e.to_string()))
}

/// Parses one data row of a lifecycle or binding file (a check file's rows: [`parse_check`]).
pub fn parse_row(format: FileFormat, record: &Fields<'_>, limits: &FileLimits) -> Result<RowData, Rejection> {
    let fields = fields(format, record, limits)?;
    match format {
        FileFormat::Events | FileFormat::EventsWithRecipient => Ok(RowData::Event(NewEvent {
            event_id: parse_event_id(fields[0])?,
            number: number(fields[1])?,
            kind: parse_kind(fields[2])?,
            date: date(fields[3])?,
            kyc: None,
            recipient: Some(fields[4]).filter(|r| !r.is_empty()).map(str::to_string),
        })),
        FileFormat::Rnd => {
            let n = number(fields[0])?;
            let d = date(fields[1])?;
            Ok(RowData::Event(NewEvent {
                // Made of a valid number and date: always a valid event id.
                event_id: EventId::parse(&format!("rnd:{n}:{d}")).map_err(|e| invalid(e.0))?,
                number: n,
                kind: EventKind::Disconnected,
                date: d,
                kyc: None,
                recipient: None,
            }))
        }
        FileFormat::Bindings => Ok(RowData::Binding(NewBinding {
            account_ref: parse_account_ref(fields[0])?,
            number: number(fields[1])?,
            bound_on: date(fields[2])?,
        })),
        FileFormat::Checks => Err(invalid("a check file's row is not a lifecycle or binding row".into())),
    }
}

/// Parses one data row of a check file: the number and the date asked about.
pub fn parse_check(record: &Fields<'_>, limits: &FileLimits) -> Result<(PhoneNumber, Day), Rejection> {
    // The common case straight from the bytes: two fields within the limit that parse once ASCII
    // whitespace is trimmed (what `str::trim` would leave of them too). Anything else takes the path
    // that names what is wrong, or trims what `trim_ascii` does not.
    if let (2, Some(n), Some(d)) = (record.len(), record.get(0), record.get(1))
        && n.len().max(d.len()) <= limits.csv_field_bytes_max
        && let (Ok(n), Ok(d)) = (PhoneNumber::parse_bytes(n.trim_ascii()), Day::parse_bytes(d.trim_ascii()))
    {
        return Ok((n, d));
    }
    let fields = fields(FileFormat::Checks, record, limits)?;
    Ok((number(fields[0])?, date(fields[1])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_cells_cannot_be_formulas() {
        for (raw, safe) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+86abc", "'+86abc"),
            ("+8613800138000", "+8613800138000"),
            ("+86,\"q\"", "'+86,\"q\""),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("2024-13-01", "2024-13-01"),
            ("", ""),
            ("abc=1", "abc=1"),
        ] {
            assert_eq!(csv_cell(raw), safe, "{raw:?}");
        }
    }

    #[test]
    fn detects_headers_per_kind() {
        assert_eq!(FileFormat::detect(b"event_id,phone_number,type,date"), Ok(FileFormat::Events));
        assert_eq!(FileFormat::detect(b"\xEF\xBB\xBFPhone_Number, disconnect_date\r"), Ok(FileFormat::Rnd));
        let err = FileFormat::detect(b"number,date").unwrap_err();
        assert!(err.contains("expected \"event_id,phone_number,type,date\""), "{err}");
        assert_eq!(
            FileFormat::detect_for(JobKind::Bindings, b"account_ref,phone_number,bound_on"),
            Ok(FileFormat::Bindings)
        );
        assert!(FileFormat::detect_for(JobKind::Bindings, b"event_id,phone_number,type,date").is_err());
        assert!(FileFormat::detect(b"account_ref,phone_number,bound_on").is_err());
    }

    /// A row's fields, owned: what [`Fields`] borrows.
    struct Owned(Vec<u8>, Vec<usize>);

    impl Owned {
        fn of<T: AsRef<[u8]>>(fields: &[T]) -> Owned {
            let (mut bytes, mut ends) = (Vec::new(), Vec::new());
            for f in fields {
                bytes.extend_from_slice(f.as_ref());
                ends.push(bytes.len());
            }
            Owned(bytes, ends)
        }

        fn fields(&self) -> Fields<'_> {
            Fields::new(&self.0, &self.1)
        }
    }

    /// A row as read: its line and fields, or its line and why it was passed over.
    type Read = Result<(u64, Vec<String>), (u64, String)>;

    /// Every row of `csv` as read, fields as strings.
    fn read_all(csv: &[u8], fields_max: usize, field_bytes_max: usize) -> Vec<Read> {
        let mut r = Records::new(csv, fields_max, field_bytes_max);
        let mut out = Vec::new();
        loop {
            match r.read().unwrap() {
                Record::Row { line } => {
                    out.push(Ok((line, r.fields().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect())))
                }
                Record::TooLong { line, message } => out.push(Err((line, message))),
                Record::End => return out,
            }
        }
    }

    #[test]
    fn lines_are_counted_whatever_ends_them() {
        for csv in ["h\r\na,1\r\n\r\nb,2\r\nc,3", "h\na,1\n\nb,2\nc,3\n", "h\r\na,1\n\r\nb,2\r\nc,3\r\n"] {
            let lines: Vec<u64> = read_all(csv.as_bytes(), 2, 8).into_iter().map(|r| r.unwrap().0).collect();
            assert_eq!(lines, [1, 2, 4, 5], "{csv:?}");
        }
    }

    #[test]
    fn rows_are_read_with_their_lines_and_a_long_row_is_passed_over() {
        let long = "9".repeat(10_000);
        let csv = format!("a,b\n\"q,\"\"1\"\"\",2\r\n{long},x\nc,d,e\nlast,{long}\nok,1");
        let rows = read_all(csv.as_bytes(), 2, 8);
        let row = |line: u64, f: &[&str]| Ok((line, f.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
        assert_eq!(rows[0], row(1, &["a", "b"]));
        assert_eq!(rows[1], row(2, &["q,\"1\"", "2"]));
        assert!(matches!(&rows[2], Err((3, m)) if m.contains("longer than 16 bytes")), "{:?}", rows[2]);
        assert_eq!(rows[3], row(4, &["c", "d", "e"]), "three fields fit: the count is checked when parsed");
        assert!(matches!(&rows[4], Err((5, _))), "{:?}", rows[4]);
        assert_eq!(rows[5], row(6, &["ok", "1"]));
        assert_eq!(rows.len(), 6);
        let many = read_all(b"1,2,3,4,5\nx,y\n", 2, 8);
        assert!(matches!(&many[0], Err((1, m)) if m.contains("more than 3 fields")), "{:?}", many[0]);
        assert_eq!(many[1], row(2, &["x", "y"]));
    }

    /// The fast path of a check row gives what the path through `str` gives, for every kind of field.
    #[test]
    fn a_check_row_parses_as_through_str() {
        let l = FileLimits { csv_field_bytes_max: 24, ..FileLimits::default() };
        let slow = |r: &Fields<'_>| -> Result<(PhoneNumber, Day), Rejection> {
            let f = fields(FileFormat::Checks, r, &l)?;
            Ok((number(f[0])?, date(f[1])?))
        };
        let cases: Vec<Vec<&[u8]>> = vec![
            vec![b"+8613800138000", b"2024-01-01"],
            vec![b"  +8613800138000\t", b" 2024-01-01 "],
            vec![b"\x0b+8613800138000", b"2024-01-01"],
            vec!["\u{a0}+8613800138000".as_bytes(), "2024-01-01\u{3000}".as_bytes()],
            vec![b"+86138001\xff38000", b"2024-01-01"],
            vec![b"+8613800138000", b"2024-02-30"],
            vec![b"+86 13800138000", b"2024-01-01"],
            vec![b"8613800138000", b"2024-01-01"],
            vec![b"+8613800138000", b"2024-01-01                    x"],
            vec![b"+8613800138000"],
            vec![b"+8613800138000", b"2024-01-01", b""],
            vec![b"", b""],
        ];
        for fields in cases {
            let owned = Owned::of(&fields);
            let r = owned.fields();
            let (fast, slow) = (parse_check(&r, &l), slow(&r));
            assert_eq!(fast.as_ref().ok(), slow.as_ref().ok(), "{fields:?}");
            assert_eq!(fast.err().map(|e| e.message), slow.err().map(|e| e.message), "{fields:?}");
        }
    }

    #[test]
    fn parses_rows_and_names_what_is_wrong() {
        let l = FileLimits::default();
        let rec = |fields: &[&str]| Owned::of(fields);
        let Ok(RowData::Event(e)) =
            parse_row(FileFormat::Events, &rec(&["e1", "+8613800138000", "disconnected", "2024-01-01"]).fields(), &l)
        else {
            panic!("an event row")
        };
        assert_eq!((e.event_id.as_str(), e.kind), ("e1", EventKind::Disconnected));
        let Ok(RowData::Event(r)) = parse_row(FileFormat::Rnd, &rec(&["+12025550123", "2024-03-01"]).fields(), &l)
        else {
            panic!("an RND row")
        };
        assert_eq!(r.event_id, "rnd:+12025550123:2024-03-01");
        let Ok(RowData::Binding(b)) =
            parse_row(FileFormat::Bindings, &rec(&["acct-1", "+12025550123", "2024-03-01"]).fields(), &l)
        else {
            panic!("a binding row")
        };
        assert_eq!((b.account_ref.as_str(), b.bound_on.to_string()), ("acct-1", "2024-03-01".to_string()));
        for (format, fields, needle) in [
            (FileFormat::Events, vec!["e1", "+86abc", "disconnected", "2024-01-01"], "\"+86abc\" is not E.164"),
            (FileFormat::Events, vec!["e1", "+8613800138000", "reissued", "2024-01-01"], "type \"reissued\""),
            (FileFormat::Events, vec!["e1", "+8613800138000", "activated", "2024-02-30"], "date \"2024-02-30\""),
            (FileFormat::Events, vec!["e1", "+8613800138000", "activated"], "row has 3 fields"),
            (FileFormat::Events, vec!["", "+8613800138000", "activated", "2024-01-01"], "eventId"),
            (FileFormat::Bindings, vec!["", "+12025550123", "2024-03-01"], "accountRef"),
            (FileFormat::Rnd, vec![&"9".repeat(200), "2024-01-01"], "csv_field_bytes_max"),
        ] {
            let err = parse_row(format, &rec(&fields).fields(), &l).unwrap_err();
            assert_eq!(err.code, RejectionCode::InvalidArgument);
            assert!(err.message.contains(needle), "{} should mention {needle}", err.message);
        }
    }
}
