//! Phone numbers, prefixes, days, event ids and account references, as they arrive in JSON fields,
//! CSV cells and query strings: parsing never panics, text and bytes agree, and what parses prints
//! back to text that parses to the same value.
#![no_main]

use domain::{AccountRef, Day, EventId, PhoneNumber, Prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let number = PhoneNumber::parse_bytes(data).ok();
    let day = Day::parse_bytes(data).ok();
    assert!(number.is_none() || day.is_none(), "{data:?} is both a number and a day");
    if let Some(n) = number {
        assert_eq!(PhoneNumber::parse(&n.to_string()).ok(), Some(n), "the number {n} prints back");
    }
    if let Some(d) = day {
        assert_eq!(Day::parse(&d.to_string()).ok(), Some(d), "the day {d} prints back");
    }
    let Ok(s) = std::str::from_utf8(data) else { return };
    assert_eq!(PhoneNumber::parse(s).ok(), number, "text and bytes agree on {s:?}");
    assert_eq!(Day::parse(s).ok(), day, "text and bytes agree on {s:?}");
    if let Ok(p) = Prefix::parse(s) {
        assert_eq!(Prefix::parse(&p.to_string()).ok(), Some(p));
    }
    if let Ok(id) = EventId::parse(s) {
        assert_eq!(EventId::parse(id.as_str()).ok().as_ref().map(EventId::as_str), Some(id.as_str()));
    }
    if let Ok(a) = AccountRef::parse(s) {
        assert_eq!(AccountRef::parse(a.as_str()).ok().as_ref().map(AccountRef::as_str), Some(a.as_str()));
    }
});
