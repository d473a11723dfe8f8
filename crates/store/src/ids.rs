//! The ids numlink issues, one type each, so that a binding's id cannot be passed where a job's is
//! meant: a prefix, `_`, and 20 lowercase hexadecimal digits (`bnd_4d57824ed6641aa514aa`), random,
//! or for the kinds issued by the million, beginning with the time (`keys::new_ordered_id`). An id
//! from outside (a path, a body, the command line) is parsed at the edge with `parse`, which checks
//! that form, so a malformed one never reaches a statement; an id read back from the tables is taken
//! as it was stored. (The ids participants give, `EventId` and `AccountRef`, are `domain::ids`.)

/// Random hex digits after the prefix (10 bytes).
const HEX_DIGITS: usize = 20;

fn well_formed(s: &str, prefixes: &[&str]) -> bool {
    let Some((prefix, digits)) = s.split_once('_') else { return false };
    prefixes.contains(&prefix)
        && digits.len() == HEX_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! issued_id {
    ($(#[$doc:meta])* $name:ident: $($prefix:literal),+) => {
        issued_id!($(#[$doc])* $name (crate::keys::new_id): $($prefix),+);
    };
    ($(#[$doc:meta])* $name:ident ($new:path): $($prefix:literal),+) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefixes this kind of id starts with.
            pub const PREFIXES: &'static [&'static str] = &[$($prefix),+];

            /// An id given from outside, if it has the form numlink issues.
            pub fn parse(s: &str) -> Option<$name> {
                well_formed(s, Self::PREFIXES).then(|| $name(s.to_string()))
            }

            /// A new id with `prefix`, one of [`Self::PREFIXES`].
            pub(crate) fn issue(prefix: &str) -> $name {
                debug_assert!(Self::PREFIXES.contains(&prefix), "{prefix} is not a prefix of {}", stringify!($name));
                $name($new(prefix))
            }

            /// An id as the tables hold it.
            #[allow(dead_code)] // not every kind is read back
            pub(crate) fn stored(s: String) -> $name {
                $name(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        domain::text_id!($name);
    };
}

issued_id!(
    /// A participant: a carrier, an institution, a regulator or the number-portability database.
    ParticipantId: "car", "ins", "reg", "npd"
);
issued_id!(
    /// An institution's binding of an account to a number: its digits grow with time, as a
    /// notification's do (`keys::new_ordered_id`).
    BindingId (crate::keys::new_ordered_id): "bnd"
);
issued_id!(
    /// An uploaded file and its processing.
    JobId: "job"
);
issued_id!(
    /// A notification in an institution's feed; its digits grow with time.
    NotificationId (crate::keys::new_ordered_id): "ntf"
);
issued_id!(
    /// An institution's webhook endpoint.
    EndpointId: "whe"
);
issued_id!(
    /// A holder's unbind request to one institution.
    UnbindRequestId: "unb"
);
issued_id!(
    /// A one-time-code challenge.
    ChallengeId: "otp"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_from_outside_has_the_issued_form() {
        let issued = BindingId::issue("bnd");
        assert_eq!(BindingId::parse(&issued), Some(issued.clone()));
        assert_eq!(issued.len(), 4 + HEX_DIGITS);
        // (input, a binding id?)
        for (s, ok) in [
            ("bnd_4d57824ed6641aa514aa", true),
            ("job_4d57824ed6641aa514aa", false),
            ("bnd_4D57824ED6641AA514AA", false),
            ("bnd_4d57824ed6641aa514a", false),
            ("bnd_4d57824ed6641aa514aa0", false),
            ("bnd-4d57824ed6641aa514aa", false),
            ("bnd_", false),
            ("", false),
            ("../../etc/passwd", false),
        ] {
            assert_eq!(BindingId::parse(s).is_some(), ok, "{s:?}");
        }
        for prefix in ["car", "ins", "reg", "npd"] {
            assert!(ParticipantId::parse(&format!("{prefix}_00112233445566778899")).is_some());
        }
        assert!(ParticipantId::parse("bnd_00112233445566778899").is_none());
    }

    #[test]
    fn ids_issued_by_the_million_grow_and_never_repeat() {
        let ids: Vec<NotificationId> = (0..100_000).map(|_| NotificationId::issue("ntf")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "each id sorts after the one before");
        assert!(ids.iter().all(|id| NotificationId::parse(id.as_str()).is_some()));
        // The last four digits are random: a neighbour's id is not the next one up.
        let suffixes: std::collections::HashSet<&str> = ids.iter().map(|id| &id.as_str()[20..]).collect();
        assert!(suffixes.len() > 10_000, "{} distinct suffixes", suffixes.len());
    }
}
