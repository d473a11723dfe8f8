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

use csv::ByteRecord;
use domain::{Day, EventKind, PhoneNumber, Rejection, RejectionCode};
use store::{JobKind, NewBinding, NewEvent, RowData};

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

    fn columns(self) -> usize {
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

/// Validates an institution's account reference: 1 to 128 printable characters, no control characters.
pub fn parse_account_ref(s: &str) -> Result<String, Rejection> {
    let chars = s.chars().count();
    if chars == 0 || chars > store::ACCOUNT_REF_CHARS_MAX || s.chars().any(char::is_control) {
        return Err(invalid(format!(
            "accountRef \"{}\" is not valid: expected 1 to {} characters without control characters",
            domain::number::truncate_for_message(s),
            store::ACCOUNT_REF_CHARS_MAX
        )));
    }
    Ok(s.to_string())
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
    /// Rows applied in one transaction.
    pub chunk_rows: usize,
    /// Rows of a check file answered and audited in one transaction.
    pub check_chunk_rows: usize,
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
        }
    }
}

pub const EVENT_ID_CHARS_MAX: usize = 128;

fn invalid(msg: String) -> Rejection {
    Rejection::new(RejectionCode::InvalidArgument, msg)
}

/// Validates an event id: 1 to 128 printable ASCII characters.
pub fn parse_event_id(s: &str) -> Result<String, Rejection> {
    if s.is_empty() || s.len() > EVENT_ID_CHARS_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "eventId \"{}\" is not valid: expected 1 to {EVENT_ID_CHARS_MAX} printable ASCII characters",
            domain::number::truncate_for_message(s)
        )));
    }
    Ok(s.to_string())
}

pub fn parse_kind(s: &str) -> Result<EventKind, Rejection> {
    EventKind::parse(s).ok_or_else(|| {
        invalid(format!(
            "type \"{}\" is not an event type: expected one of activated, disconnected, transferred, ported_out, ported_in",
            domain::number::truncate_for_message(s)
        ))
    })
}

/// A data row's fields, checked against the format's count and the field size limit, as UTF-8 and
/// trimmed (on the stack: this runs for every row of a file).
fn fields<'r>(format: FileFormat, record: &'r ByteRecord, limits: &FileLimits) -> Result<[&'r str; 5], Rejection> {
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
pub fn parse_row(format: FileFormat, record: &ByteRecord, limits: &FileLimits) -> Result<RowData, Rejection> {
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
                event_id: format!("rnd:{n}:{d}"),
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
pub fn parse_check(record: &ByteRecord, limits: &FileLimits) -> Result<(PhoneNumber, Day), Rejection> {
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

    /// The fast path of a check row gives what the path through `str` gives, for every kind of field.
    #[test]
    fn a_check_row_parses_as_through_str() {
        let l = FileLimits { csv_field_bytes_max: 24, ..FileLimits::default() };
        let slow = |r: &ByteRecord| -> Result<(PhoneNumber, Day), Rejection> {
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
            let r = ByteRecord::from(fields.clone());
            let (fast, slow) = (parse_check(&r, &l), slow(&r));
            assert_eq!(fast.as_ref().ok(), slow.as_ref().ok(), "{fields:?}");
            assert_eq!(fast.err().map(|e| e.message), slow.err().map(|e| e.message), "{fields:?}");
        }
    }

    #[test]
    fn parses_rows_and_names_what_is_wrong() {
        let l = FileLimits::default();
        let rec = |fields: &[&str]| ByteRecord::from(fields.to_vec());
        let Ok(RowData::Event(e)) =
            parse_row(FileFormat::Events, &rec(&["e1", "+8613800138000", "disconnected", "2024-01-01"]), &l)
        else {
            panic!("an event row")
        };
        assert_eq!((e.event_id.as_str(), e.kind), ("e1", EventKind::Disconnected));
        let Ok(RowData::Event(r)) = parse_row(FileFormat::Rnd, &rec(&["+12025550123", "2024-03-01"]), &l) else {
            panic!("an RND row")
        };
        assert_eq!(r.event_id, "rnd:+12025550123:2024-03-01");
        let Ok(RowData::Binding(b)) =
            parse_row(FileFormat::Bindings, &rec(&["acct-1", "+12025550123", "2024-03-01"]), &l)
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
            let err = parse_row(format, &rec(&fields), &l).unwrap_err();
            assert_eq!(err.code, RejectionCode::InvalidArgument);
            assert!(err.message.contains(needle), "{} should mention {needle}", err.message);
        }
    }
}
