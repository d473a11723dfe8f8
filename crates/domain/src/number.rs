//! E.164 phone numbers and number-range prefixes, parsed at the edge into types that are valid by
//! construction.

use std::fmt;

/// An E.164 number: `+`, a first digit 1–9, then 4 to 14 more digits (`^\+[1-9][0-9]{4,14}$`).
///
/// Held as the integer of its digits: E.164 forbids a leading zero, so the integer is unambiguous, and
/// 15 digits fit in 50 bits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PhoneNumber(u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberError {
    input: String,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "phone number \"{}\" is not E.164: expected '+', a first digit 1 to 9, and 5 to 15 digits in all",
            truncate_for_message(&self.input)
        )
    }
}

impl std::error::Error for NumberError {}

/// Makes a user's value safe to echo in a message: cut to 40 characters, control characters (NUL
/// among them, which PostgreSQL text refuses) escaped.
pub fn truncate_for_message(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl PhoneNumber {
    pub const DIGITS_MIN: usize = 5;
    pub const DIGITS_MAX: usize = 15;

    pub fn parse(s: &str) -> Result<PhoneNumber, NumberError> {
        PhoneNumber::parse_bytes(s.as_bytes())
    }

    /// [`PhoneNumber::parse`] of a file's field as it was read: anything but ASCII is rejected, so
    /// the bytes need no check as UTF-8 first.
    pub fn parse_bytes(s: &[u8]) -> Result<PhoneNumber, NumberError> {
        let err = || NumberError { input: String::from_utf8_lossy(s).into_owned() };
        let digits = s.strip_prefix(b"+").ok_or_else(err)?;
        if digits.len() < Self::DIGITS_MIN || digits.len() > Self::DIGITS_MAX || digits[0] == b'0' {
            return Err(err());
        }
        let mut value: u64 = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return Err(err());
            }
            value = value * 10 + u64::from(b - b'0');
        }
        Ok(PhoneNumber(value))
    }

    /// Rebuilds a number from the integer of its digits, as the store keeps it.
    pub fn from_digits(value: u64) -> Option<PhoneNumber> {
        // DIGITS_MIN..=DIGITS_MAX digits, as bounds (no division per digit: the index build calls this
        // for every number in the store).
        const LOW: u64 = 10u64.pow(PhoneNumber::DIGITS_MIN as u32 - 1);
        const HIGH: u64 = 10u64.pow(PhoneNumber::DIGITS_MAX as u32);
        (LOW..HIGH).contains(&value).then_some(PhoneNumber(value))
    }

    pub fn digits(self) -> u64 {
        self.0
    }

    /// The number's E.164 text (`+` and its digits, as `Display` writes it), written into `buf`
    /// without allocating: for paths that run once per row of a file.
    pub fn write_e164(self, buf: &mut [u8; 16]) -> &str {
        std::str::from_utf8(self.e164_bytes(buf)).expect("ASCII digits")
    }

    /// [`PhoneNumber::write_e164`] as bytes (no UTF-8 check of what is known to be ASCII): two digits
    /// at a time, for the rows of a check file's result.
    pub fn e164_bytes(self, buf: &mut [u8; 16]) -> &[u8] {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                    2021222324252627282930313233343536373839\
                                    4041424344454647484950515253545556575859\
                                    6061626364656667686970717273747576777879\
                                    8081828384858687888990919293949596979899";
        let (mut i, mut d) = (buf.len(), self.0);
        while d >= 10 {
            let pair = (d % 100) as usize * 2;
            d /= 100;
            i -= 2;
            buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        // An odd count of digits leaves one (an even count leaves none: the last pair was 10 to 99).
        if d > 0 {
            i -= 1;
            buf[i] = b'0' + d as u8;
        }
        i -= 1;
        buf[i] = b'+';
        &buf[i..]
    }

    /// The number with all but its last four digits masked, for logs.
    pub fn masked(self) -> String {
        let s = self.0.to_string();
        let keep = s.len().saturating_sub(4);
        format!("+{}{}", "*".repeat(keep), &s[keep..])
    }

    pub fn has_prefix(self, prefix: &Prefix) -> bool {
        self.0.to_string().starts_with(prefix.digits())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

/// An E.164 prefix naming a carrier's number range: `+` and 1 to 15 digits, the first 1–9.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(s: &str) -> Result<Prefix, NumberError> {
        let err = || NumberError { input: s.to_string() };
        let digits = s.strip_prefix('+').ok_or_else(err)?;
        let ok = !digits.is_empty()
            && digits.len() <= PhoneNumber::DIGITS_MAX
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok { Ok(Prefix(digits.to_string())) } else { Err(err()) }
    }

    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164_and_rejects_everything_else() {
        for ok in ["+12025550123", "+8613800138000", "+12345", "+123456789012345"] {
            let n = PhoneNumber::parse(ok).unwrap();
            assert_eq!(n.to_string(), ok);
            assert_eq!(n.write_e164(&mut [0u8; 16]), ok, "the same text without allocating");
            assert_eq!(PhoneNumber::from_digits(n.digits()), Some(n));
        }
        for bad in [
            "",
            "+",
            "12025550123",
            "+0123456",
            "+1234",
            "+1234567890123456",
            "+86 138",
            "+86abc",
            "++8613",
            "+８６１３８００",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        // Every length, zeros anywhere, both edges: the bytes are what Display writes.
        let mut ns: Vec<u64> =
            vec![10_000, 99_999, 100_000, 1_000_000_000_000, 999_999_999_999_999, 100_000_000_000_000];
        ns.extend((5..=15).flat_map(|len| [10u64.pow(len - 1) + 7, 10u64.pow(len) - 1, 10u64.pow(len - 1) * 3 + 505]));
        for n in ns.into_iter().map(|v| PhoneNumber::from_digits(v).unwrap()) {
            assert_eq!(n.e164_bytes(&mut [0u8; 16]), n.to_string().as_bytes(), "{n}");
        }
        // The store's integers: five to fifteen digits, exactly.
        for bad in [0, 1, 9_999, 1_000_000_000_000_000, u64::MAX] {
            assert_eq!(PhoneNumber::from_digits(bad), None, "{bad}");
        }
        for ok in [10_000, 999_999_999_999_999] {
            assert_eq!(PhoneNumber::from_digits(ok).map(PhoneNumber::digits), Some(ok));
        }
    }

    #[test]
    fn echoed_values_are_cut_and_escaped() {
        assert_eq!(truncate_for_message("+1202\u{0}555"), "+1202\\u{0}555");
        assert_eq!(truncate_for_message(&"9".repeat(50)), format!("{}…", "9".repeat(40)));
        assert!(PhoneNumber::parse("+1202\u{0}555").unwrap_err().to_string().contains("\\u{0}"));
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(PhoneNumber::parse("+8613800138000").unwrap().masked(), "+*********8000");
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("+86138").unwrap();
        assert!(PhoneNumber::parse("+8613800138000").unwrap().has_prefix(&p));
        assert!(!PhoneNumber::parse("+8613900138000").unwrap().has_prefix(&p));
        for bad in ["86", "+", "+0", "+86a", "+1234567890123456"] {
            assert!(Prefix::parse(bad).is_err(), "{bad:?}");
        }
    }
}
