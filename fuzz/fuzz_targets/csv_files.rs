//! The three CSV formats (lifecycle events, in both shapes and the RND disconnection file; bindings;
//! checks), read as the job runner reads an uploaded file: the header picks the format, then every row
//! is read and parsed. No input may panic or hang the reader, and each read moves forward.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workers::files::{Record, Records, parse_check, parse_row};
use workers::{FileFormat, FileLimits};

const FORMATS: [FileFormat; 5] =
    [FileFormat::Events, FileFormat::EventsWithRecipient, FileFormat::Rnd, FileFormat::Bindings, FileFormat::Checks];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else { return };
    let limits = FileLimits { csv_field_bytes_max: 16 + usize::from(pick % 4) * 40, ..FileLimits::default() };
    let header_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    // The header's format, as an upload detects it; else one chosen by the first byte, so that rows of
    // every format are read whatever the header says.
    let format = FileFormat::detect(&data[..header_end]).unwrap_or(FORMATS[usize::from(pick) % FORMATS.len()]);
    let mut records = Records::new(data, format.columns(), limits.csv_field_bytes_max);
    let mut last = (0, 0);
    for _ in 0..=data.len() + 1 {
        let read = records.read().expect("reading from memory does not fail");
        let position = records.position();
        assert!(position.0 <= data.len() as u64, "consumed {} of {} bytes", position.0, data.len());
        if !matches!(read, Record::End) {
            assert!(position.0 > last.0, "a row read consumed nothing after byte {}", last.0);
        }
        match read {
            Record::End => return,
            Record::Row { line } => {
                assert!(line >= last.1.max(1), "a row on line {line} after line {}", last.1);
                // One field more than the format's is held, so that the row is rejected for it.
                let fields = records.fields();
                assert!(fields.len() <= format.columns() + 1, "{} fields held", fields.len());
                let parsed = if format == FileFormat::Checks {
                    parse_check(&fields, &limits).is_ok()
                } else {
                    parse_row(format, &fields, &limits).is_ok()
                };
                assert!(!parsed || fields.len() == format.columns(), "a row of {} fields accepted", fields.len());
                last = (position.0, line);
            }
            Record::TooLong { line, message } => {
                assert!(!message.is_empty());
                last = (position.0, line);
            }
        }
    }
    panic!("the reader did not reach the end of {} bytes", data.len());
});
