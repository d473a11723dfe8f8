//! The identifiers participants give numlink, parsed once at the edge (an API body, a CSV row) into
//! types that cannot hold an invalid value: a carrier's `eventId` and an institution's `accountRef`.
//! (The ids numlink issues itself are the store's: `store::ids`.)

use std::fmt;

/// Why a given identifier is not one, for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError(pub String);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A carrier's own id of a lifecycle event: 1 to 128 printable ASCII characters, unique per carrier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    pub const CHARS_MAX: usize = 128;

    pub fn parse(s: &str) -> Result<EventId, IdError> {
        if s.is_empty() || s.len() > Self::CHARS_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError(format!(
                "eventId \"{}\" is not valid: expected 1 to {} printable ASCII characters",
                crate::number::truncate_for_message(s),
                Self::CHARS_MAX
            )));
        }
        Ok(EventId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An institution's own opaque reference of an account: 1 to 128 characters, none a control
/// character.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountRef(String);

impl AccountRef {
    pub const CHARS_MAX: usize = 128;

    pub fn parse(s: &str) -> Result<AccountRef, IdError> {
        let chars = s.chars().count();
        if chars == 0 || chars > Self::CHARS_MAX || s.chars().any(char::is_control) {
            return Err(IdError(format!(
                "accountRef \"{}\" is not valid: expected 1 to {} characters without control characters",
                crate::number::truncate_for_message(s),
                Self::CHARS_MAX
            )));
        }
        Ok(AccountRef(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The string-like face of an id type `$name(String)`: read as a `str`, displayed as itself, given
/// up as a `String`, compared with a `str`. (Exported: the store's issued ids share it.)
#[macro_export]
macro_rules! text_id {
    ($name:ident) => {
        impl ::std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id!(EventId);
text_id!(AccountRef);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_once_and_hold_only_valid_values() {
        // (input, an event id?, an account reference?)
        let long_ascii = "e".repeat(129);
        let long_chars = "账".repeat(128);
        let table: [(&str, bool, bool); 7] = [
            ("evt-2026-0001", true, true),
            ("", false, false),
            ("with space", false, true),
            ("tab\there", false, false),
            ("账户-42", false, true),
            (&long_ascii, false, false),
            (&long_chars, false, true),
        ];
        for (s, event, account) in table {
            assert_eq!(EventId::parse(s).is_ok(), event, "eventId {s:?}");
            assert_eq!(AccountRef::parse(s).is_ok(), account, "accountRef {s:?}");
        }
        let id = EventId::parse("evt-1").unwrap();
        assert_eq!((id.as_str(), id.len(), id.to_string()), ("evt-1", 5, "evt-1".to_string()));
        assert!(EventId::parse(&"x".repeat(200)).unwrap_err().0.len() < 200, "the message does not echo it whole");
    }
}
