//! A proof of tenure as a bank clerk pastes it (`/verify`, `numlink attestation verify`): any text,
//! and a real proof altered by the input. Verifying never panics, and nothing but the proof itself, as
//! signed, verifies.
#![no_main]

use std::sync::OnceLock;

use api::attest::{Attester, TenureClaims};
use libfuzzer_sys::fuzz_target;
use store::HashKey;

struct Fixture {
    jwks: serde_json::Value,
    token: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let attester = Attester::new(HashKey::from_hex(&"ab".repeat(32)).unwrap(), "numlink", 7 * 86_400);
        let key = store::AttestationKey {
            kid: "k1".into(),
            public_key: attester.public_key("k1"),
            created_at: 1_750_000_000,
            retired_at: None,
            publish_until: None,
        };
        let jwks = api::attest::jwks(&[key]);
        let claims = TenureClaims {
            iss: "numlink".into(),
            sub: "+8613800138000".into(),
            phone_number: "+8613800138000".into(),
            held_since: "2025-02-01".into(),
            iat: 1_750_000_000,
            exp: 1_750_600_000,
            jti: "att_0123456789abcdef".into(),
        };
        let token = attester.sign("k1", &claims);
        Fixture { jwks, token }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = 1_750_000_000;
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(claims) = api::attest::verify(text, &f.jwks, now, None) {
            assert_eq!(text.trim(), f.token, "verified something numlink did not sign: {claims:?}");
        }
    }
    // The real proof with bytes of the input laid over it.
    let mut altered = f.token.clone().into_bytes();
    for (i, b) in data.iter().enumerate().take(altered.len()) {
        altered[(i * 31 + usize::from(*b)) % f.token.len()] ^= b;
    }
    if let Ok(text) = String::from_utf8(altered) {
        if api::attest::verify(&text, &f.jwks, now, None).is_ok() {
            assert_eq!(text.trim(), f.token, "an altered proof verified");
        }
    }
});
