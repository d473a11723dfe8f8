//! A webhook delivery as `numlink webhook-receiver` (and a bank following the Standard Webhooks
//! scheme) checks it: any secret, id, timestamp, signature header and body. Verifying never panics,
//! and only the signature numlink computes verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workers::webhooks::{sign, verify};

fuzz_target!(|data: &[u8]| {
    // Fields split by 0xFF, as headers and a body arrive separately.
    let mut parts = data.splitn(5, |&b| b == 0xFF);
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (secret, id, timestamp, signatures) = (text(), text(), text(), text());
    let body = parts.next().unwrap_or_default();
    let verified = verify(&secret, &id, &timestamp, &signatures, body);
    if verified {
        let ts: i64 = timestamp.trim().parse().expect("a verified delivery has a timestamp");
        let expected = sign(&secret, &id, ts, body).expect("a verified delivery's secret signs");
        assert!(signatures.split(' ').any(|s| s == expected), "verified without the signature");
    }
    // numlink's own signature always verifies, beside others.
    if let Ok(expected) = sign(&secret, &id, 0, body) {
        assert!(verify(&secret, &id, "0", &format!("{signatures} {expected}"), body));
    }
});
