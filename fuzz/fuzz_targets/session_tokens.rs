//! A holder's session token, as presented in `Authorization: Bearer nlh_…` or the portal's cookie:
//! any text, and any payload sealed under the session key (so that the fields inside are reached).
//! Reading never panics; what it accepts names a number and a tenure, and nothing sealed under
//! another key is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store::HashKey;

fuzz_target!(|data: &[u8]| {
    let key = HashKey::from_hex(&"ab".repeat(32)).unwrap();
    let other = HashKey::from_hex(&"cd".repeat(32)).unwrap();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = 1_750_000_000;
    // As presented.
    let _ = api::holder::read_session(&key, text, now);
    // Sealed by numlink, with whatever payload: the fields are parsed.
    let sealed = format!("{}{}", api::holder::HOLDER_PREFIX, key.seal(text));
    if let Some((n, _mark)) = api::holder::read_session(&key, &sealed, now) {
        assert!(n.to_string().starts_with('+'));
        assert!(text.starts_with("holder-session|"), "accepted a payload of another purpose: {text:?}");
    }
    // Sealed under another key: never.
    let forged = format!("{}{}", api::holder::HOLDER_PREFIX, other.seal(text));
    assert!(api::holder::read_session(&key, &forged, now).is_none());
});
