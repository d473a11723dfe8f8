//! Secrets the store handles: the keyed-hash key for numbers (kept outside the database) and
//! participants' API keys (shown once, stored as a SHA-256 hash).

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::StoreError;

type HmacSha256 = hmac::Hmac<Sha256>;

/// `N` bytes from the OS random generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random generator is available on every supported platform");
    b
}

/// The key of the keyed hash under which numbers are stored where they need not be read back
/// (the audit log, and bindings later). Without it, a copy of the database does not say which numbers
/// were checked.
#[derive(Clone)]
pub struct HashKey {
    key: [u8; 32],
    /// HMAC keyed once: each hash clones it instead of redoing the key schedule (a check file hashes
    /// millions of numbers).
    keyed: HmacSha256,
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

impl HashKey {
    /// From 64 hex digits, as configured.
    pub fn from_hex(s: &str) -> Result<HashKey, StoreError> {
        let bytes =
            hex::decode(s.trim()).map_err(|_| StoreError::invalid("HASH_KEY", "hash key must be 64 hex digits"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::invalid("HASH_KEY", "hash key must be 64 hex digits (32 bytes)"))?;
        Ok(HashKey::new(arr))
    }

    fn new(key: [u8; 32]) -> HashKey {
        let keyed = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("HMAC takes a key of any length");
        HashKey { key, keyed }
    }

    pub fn generate() -> HashKey {
        HashKey::new(random_bytes())
    }

    /// Reads the key file, or creates it with a fresh random key (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<HashKey, StoreError> {
        match std::fs::read_to_string(path) {
            Ok(s) => {
                HashKey::from_hex(&s).map_err(|e| StoreError::invalid("HASH_KEY", format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = HashKey::generate();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(path) {
                    Ok(mut f) => {
                        f.write_all(hex::encode(key.key).as_bytes())
                            .and_then(|()| f.sync_all())
                            .map_err(|e| StoreError::open(format!("writing {}: {e}", path.display())))?;
                        Ok(key)
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => HashKey::load_or_create(path),
                    Err(e) => Err(StoreError::open(format!("creating {}: {e}", path.display()))),
                }
            }
            Err(e) => Err(StoreError::open(format!("reading {}: {e}", path.display()))),
        }
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m = self.keyed.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Encrypts `plain` (ChaCha20-Poly1305, a fresh random nonce) under a key derived from this one:
    /// `v1.<base64 nonce ‖ ciphertext>`. For what the store must keep for a while but a copy of the
    /// database must not reveal.
    pub fn seal(&self, plain: &str) -> String {
        let cipher = ChaCha20Poly1305::new_from_slice(&self.mac(b"seal-key:v1")).expect("the key is 32 bytes");
        let nonce_bytes: [u8; 12] = random_bytes();
        let nonce = Nonce::try_from(&nonce_bytes[..]).expect("the nonce is 12 bytes");
        let ct = cipher.encrypt(&nonce, plain.as_bytes()).expect("ChaCha20-Poly1305 encrypts any length we store");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        format!("v1.{}", BASE64.encode(out))
    }

    /// The text [`HashKey::seal`] sealed; an error if it was sealed under another key or altered.
    pub fn unseal(&self, sealed: &str) -> Result<String, StoreError> {
        let bad = || StoreError::Corrupt("a sealed value does not open with this hash key".into());
        let bytes = sealed.strip_prefix("v1.").and_then(|b| BASE64.decode(b).ok()).ok_or_else(bad)?;
        if bytes.len() < 12 {
            return Err(bad());
        }
        let cipher = ChaCha20Poly1305::new_from_slice(&self.mac(b"seal-key:v1")).expect("the key is 32 bytes");
        let nonce = Nonce::try_from(&bytes[..12]).map_err(|_| bad())?;
        let plain = cipher.decrypt(&nonce, &bytes[12..]).map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// The keyed hash of a number: HMAC-SHA256 of its E.164 text (`+` and digits).
    pub fn number(&self, n: domain::PhoneNumber) -> [u8; 32] {
        // The text on the stack: this runs for every number a check file holds.
        let mut buf = [0u8; 16];
        self.mac(n.e164_bytes(&mut buf))
    }
}

impl HashKey {
    /// The keyed hash naming a carrier's event wherever it is referred to outside the events table
    /// (the audit log, notifications), so that no copy of those joins back to a number.
    pub fn event(&self, carrier: domain::CarrierId, event_id: &str) -> [u8; 32] {
        let mut m = self.keyed.clone();
        m.update(b"event:");
        m.update(carrier.0.to_string().as_bytes());
        m.update(b":");
        m.update(event_id.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// A 128-bit keyed tag of a number, for the check log: SHA-256 of one 64-byte block (the key, a
    /// domain label, the number's digits), a single compression where HMAC takes two. A secret-prefix
    /// hash is a sound PRF for messages of one fixed length, which these are.
    pub fn tag(&self, n: domain::PhoneNumber) -> [u8; 16] {
        let mut block = [0u8; 48];
        block[..32].copy_from_slice(&self.key);
        block[32..40].copy_from_slice(b"ntag:v1\0");
        block[40..].copy_from_slice(&n.digits().to_be_bytes());
        let digest = Sha256::digest(block);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&digest[..16]);
        tag
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A freshly issued API key: `nlk_` and 43 characters of randomness (hex). Only its hash is kept.
#[derive(Clone)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    pub const PREFIX: &'static str = "nlk_";

    pub(crate) fn generate() -> ApiKey {
        ApiKey(format!("{}{}", Self::PREFIX, hex::encode(random_bytes::<24>())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash_of(presented: &str) -> [u8; 32] {
        sha256(presented.as_bytes())
    }
}

/// A random id with a readable prefix, e.g. `car_3f9a…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(random_bytes::<10>()))
}

/// An id of the same form whose digits grow with time, for the rows a table takes by the million
/// (notifications, bindings): a new one goes at the right edge of the unique index on ids instead of
/// at a random page of it, so a transaction that writes many dirties a few pages, not one per row.
/// The first 16 hex digits are the milliseconds since 1970 (44 bits, until the year 2527) and a
/// 20-bit sequence started at random each millisecond, kept strictly increasing within the process
/// (whatever the clock does); the last 4 are random, so that a neighbour's id cannot be derived from
/// one's own. Two processes collide only if the 36 random bits of the same millisecond agree.
pub fn new_ordered_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let random = u64::from_le_bytes(random_bytes());
    let fresh = ((ms & ((1 << 44) - 1)) << 20) | (random & ((1 << 20) - 1));
    let mut last = LAST.load(Ordering::Relaxed);
    let ordered = loop {
        let next = fresh.max(last.wrapping_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    format!("{prefix}_{ordered:016x}{:04x}", random >> 48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_hashes_as_its_e164_text() {
        let key = HashKey::generate();
        for text in ["+8613800138000", "+15551234567", "+4915112345678"] {
            let n = domain::PhoneNumber::parse(text).unwrap();
            assert_eq!(n.to_string(), text);
            assert_eq!(key.number(n), key.mac(text.as_bytes()));
        }
    }

    #[test]
    fn sealed_text_opens_only_with_its_key_and_unaltered() {
        let key = HashKey::generate();
        let sealed = key.seal("eyJhbGciOiJFZERTQSJ9.payload.signature");
        assert!(!sealed.contains("payload"));
        assert_ne!(sealed, key.seal("eyJhbGciOiJFZERTQSJ9.payload.signature"), "a fresh nonce each time");
        assert_eq!(key.unseal(&sealed).unwrap(), "eyJhbGciOiJFZERTQSJ9.payload.signature");
        assert!(HashKey::generate().unseal(&sealed).is_err());
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(key.unseal(std::str::from_utf8(&altered).unwrap()).is_err());
    }
}
