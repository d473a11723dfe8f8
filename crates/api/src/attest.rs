//! Proofs of tenure: a compact JWS (RFC 7515), EdDSA over Ed25519 (RFC 8037), that any institution can
//! verify offline against the keys published at `/.well-known/jwks.json`.
//!
//! The private keys are not stored: each is derived from the hash key (kept outside the database) and
//! its key id, so every node holding the hash key can sign, and a copy of the database cannot. The
//! database keeps the key ids and public keys, and when each was retired; a retired key is published
//! until the last token it signed has expired.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::{Day, PhoneNumber};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{AttestationKey, HashKey, IssuedAttestation, Store, StoreError};
use utoipa::ToSchema;

/// The claims of a proof of tenure.
/// Verifiers ignore claims they do not know, so that later claims do not break them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenureClaims {
    /// Who vouches: the platform's issuer name.
    pub iss: String,
    /// The number, E.164.
    pub sub: String,
    /// The number again, under its OpenID Connect claim name.
    pub phone_number: String,
    /// The holder has held the number since this day or earlier (`YYYY-MM-DD`). Rounded up to a first
    /// of the month, so no more than the month of the change of holder is revealed.
    pub held_since: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
    /// The token's id, in the audit log.
    pub jti: String,
}

/// Signs proofs of tenure.
#[derive(Clone)]
pub struct Attester {
    key: HashKey,
    /// The `iss` claim.
    pub issuer: String,
    /// How long a token is valid.
    pub ttl_secs: i64,
}

impl std::fmt::Debug for Attester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attester")
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Attester {
    pub fn new(key: HashKey, issuer: impl Into<String>, ttl_secs: i64) -> Attester {
        Attester { key, issuer: issuer.into(), ttl_secs }
    }

    fn signing_key(&self, kid: &str) -> SigningKey {
        SigningKey::from_bytes(&self.key.mac(format!("attestation-key:{kid}").as_bytes()))
    }

    pub fn public_key(&self, kid: &str) -> [u8; 32] {
        self.signing_key(kid).verifying_key().to_bytes()
    }

    /// Makes sure a signing key exists (at start); returns its id.
    pub async fn ensure_key(&self, store: &Store) -> Result<String, StoreError> {
        let kid = store::new_id("key");
        store.attestation_key(&kid, self.public_key(&kid), false, self.ttl_secs).await
    }

    /// Starts signing with a new key; the previous one stays published until its tokens expire.
    pub async fn rotate(&self, store: &Store) -> Result<String, StoreError> {
        let kid = store::new_id("key");
        store.attestation_key(&kid, self.public_key(&kid), true, self.ttl_secs).await
    }

    /// A signed proof that the holder of `n` has held it since `held_since` or earlier.
    pub async fn issue(&self, store: &Store, n: PhoneNumber, held_since: Day) -> Result<IssuedAttestation, StoreError> {
        let keys = store.attestation_keys().await?;
        let kid = match keys.iter().find(|k| k.retired_at.is_none()) {
            Some(k) => k.kid.clone(),
            None => self.ensure_key(store).await?,
        };
        let iat = store.clock().now().as_second();
        let claims = TenureClaims {
            iss: self.issuer.clone(),
            sub: n.to_string(),
            phone_number: n.to_string(),
            held_since: held_since.to_string(),
            iat,
            exp: iat + self.ttl_secs,
            jti: store::new_id("att"),
        };
        Ok(IssuedAttestation { token: self.sign(&kid, &claims), jti: claims.jti, exp: claims.exp })
    }

    pub fn sign(&self, kid: &str, claims: &TenureClaims) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid });
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        sign_compact(&self.signing_key(kid), &serde_json::to_vec(&header).expect("header serializes"), &payload)
    }
}

/// `BASE64URL(header) . BASE64URL(payload) . BASE64URL(Ed25519(signing input))`.
fn sign_compact(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

/// The JWK Set to publish.
pub fn jwks(keys: &[AttestationKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key), "kid": k.kid, "alg": "EdDSA", "use": "sig" }))
        .collect();
    json!({ "keys": keys })
}

/// Base64url without padding, and only in its canonical form: a token altered in any byte fails.
/// Why a proof of tenure does not verify: the kind, for a page to say in a person's language, and the
/// detail (its `Display`), for a log or the command line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a proof of tenure at all: not a compact JWS of numlink's form, or its claims are not ours.
    #[error("{0}")]
    Malformed(String),
    /// Signed by no key numlink publishes (a key of another issuer, or one long retired).
    #[error("no published key has kid \"{0}\"")]
    UnknownKey(String),
    /// The key the header names is published, but is no Ed25519 public key (a set not numlink's).
    #[error("key \"{0}\" is not a valid Ed25519 public key")]
    BadKey(String),
    /// The signature does not match: the token was altered, or signed by someone else.
    #[error("the signature does not verify")]
    BadSignature,
    /// It was genuine, and has expired (unix seconds).
    #[error("the token expired at {0}")]
    Expired(i64),
    /// Issued by another platform than the one asked for.
    #[error("the token was issued by \"{found}\", not \"{expected}\"")]
    WrongIssuer { found: String, expected: String },
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    let bytes = B64.decode(part).map_err(|_| VerifyError::Malformed(format!("the {what} is not base64url")))?;
    if B64.encode(&bytes) != part {
        return Err(VerifyError::Malformed(format!("the {what} is not in canonical base64url")));
    }
    Ok(bytes)
}

/// Verifies a proof of tenure against a JWK Set at `now` (unix seconds): the signature by the key its
/// header names, that it has not expired and, when `issuer` is given, who issued it. Returns its claims.
pub fn verify(token: &str, jwks: &Value, now: i64, issuer: Option<&str>) -> Result<TenureClaims, VerifyError> {
    use VerifyError::Malformed;
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(Malformed("not a compact JWS: expected three parts separated by dots".into()));
    };
    let header: Value =
        serde_json::from_slice(&decode_part(h, "header")?).map_err(|_| Malformed("the header is not JSON".into()))?;
    if header["alg"] != "EdDSA" {
        return Err(Malformed(format!("the algorithm {} is not EdDSA", header["alg"])));
    }
    // RFC 7515 §4.1.11: extensions a verifier does not understand must make it refuse the token.
    if header.get("crit").is_some() {
        return Err(Malformed("the header has critical extensions (crit) this verifier does not know".into()));
    }
    let kid = header["kid"].as_str().ok_or_else(|| Malformed("the header names no key (kid)".into()))?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| VerifyError::UnknownKey(kid.to_string()))?;
    if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
        return Err(VerifyError::BadKey(kid.to_string()));
    }
    let public = B64
        .decode(jwk["x"].as_str().unwrap_or_default())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|x| VerifyingKey::from_bytes(&x).ok())
        .ok_or_else(|| VerifyError::BadKey(kid.to_string()))?;
    let sig: [u8; 64] =
        decode_part(s, "signature")?.try_into().map_err(|_| Malformed("the signature is not 64 bytes".into()))?;
    public
        .verify_strict(format!("{h}.{p}").as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| VerifyError::BadSignature)?;
    let claims: TenureClaims = serde_json::from_slice(&decode_part(p, "payload")?)
        .map_err(|e| Malformed(format!("the claims are not a proof of tenure: {e}")))?;
    if claims.exp <= now {
        return Err(VerifyError::Expired(claims.exp));
    }
    if let Some(iss) = issuer.filter(|iss| *iss != claims.iss) {
        return Err(VerifyError::WrongIssuer { found: claims.iss, expected: iss.to_string() });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037, appendix A.1 (the key) and A.4 (the JWS of "Example of Ed25519 signing").
    #[test]
    fn rfc_8037_test_vector() {
        let seed: [u8; 32] = B64.decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap().try_into().unwrap();
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(B64.encode(key.verifying_key().to_bytes()), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(
            sign_compact(&key, br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing"),
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
             hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    fn sample() -> (Attester, Value, String) {
        let a = Attester::new(HashKey::generate(), "numlink-test", 3600);
        let kid = "key_test";
        let key = AttestationKey {
            kid: kid.into(),
            public_key: a.public_key(kid),
            created_at: 0,
            retired_at: None,
            publish_until: None,
        };
        let claims = TenureClaims {
            iss: "numlink-test".into(),
            sub: "+8613800138000".into(),
            phone_number: "+8613800138000".into(),
            held_since: "2026-02-01".into(),
            iat: 1000,
            exp: 4600,
            jti: "att_1".into(),
        };
        let token = a.sign(kid, &claims);
        (a, jwks(&[key]), token)
    }

    #[test]
    fn a_token_verifies_and_any_altered_byte_fails() {
        let (_, jwks, token) = sample();
        let claims = verify(&token, &jwks, 2000, Some("numlink-test")).unwrap();
        assert_eq!(claims.held_since, "2026-02-01");
        assert!(verify(&token, &jwks, 4600, None).unwrap_err().to_string().contains("expired"));
        assert!(verify(&token, &jwks, 2000, Some("someone-else")).unwrap_err().to_string().contains("issued by"));
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'_', b'.', b'x'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut altered = bytes.to_vec();
                altered[i] = replacement;
                let altered = String::from_utf8(altered).unwrap();
                assert!(
                    verify(&altered, &jwks, 2000, None).is_err(),
                    "byte {i} changed to {} still verifies",
                    replacement as char
                );
            }
        }
    }

    #[test]
    fn a_token_of_another_key_fails() {
        let (_, _, token) = sample();
        let (_, other_jwks, _) = sample();
        assert!(verify(&token, &other_jwks, 2000, None).unwrap_err().to_string().contains("does not verify"));
    }
}
