//! The signing keys of proofs of tenure: which key signs now, which retired keys are still
//! published, and the audit record of each proof handed out. The private keys are derived from the
//! hash key and never stored; only the public keys are.

use domain::PhoneNumber;

use crate::StoreError;
use crate::ops::HOLDER_ACTOR;
use crate::sql::Conn;
use crate::time;
use crate::writer::WriteCtx;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationKey {
    pub kid: String,
    pub public_key: [u8; 32],
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// A retired key is published until then (unix seconds).
    pub publish_until: Option<i64>,
}

/// Every key that signs or signed proofs still valid, newest first.
pub(crate) fn attestation_keys(conn: &mut dyn Conn, now: i64) -> Result<Vec<AttestationKey>, StoreError> {
    let rows = conn.query(
        "SELECT kid, public_key, created_at, retired_at, publish_until FROM attestation_keys \
         WHERE publish_until IS NULL OR publish_until > $1 ORDER BY created_at DESC, kid DESC",
        &[time::stamp_unix(now).into()],
    )?;
    rows.iter()
        .map(|r| {
            let public_key: [u8; 32] = r
                .opt_bytes(1)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| StoreError::Corrupt("attestation public key is not 32 bytes".into()))?;
            Ok(AttestationKey {
                kid: r.text(0)?,
                public_key,
                created_at: time::unix(r, 2)?,
                retired_at: time::opt_unix(r, 3)?,
                publish_until: time::opt_unix(r, 4)?,
            })
        })
        .collect()
}

impl WriteCtx {
    /// Makes `kid` the signing key, unless a key is current already and `rotate` is false. A retired
    /// key stays published for `publish_secs` (the longest a token lives). Returns the current key id.
    pub(crate) fn attestation_key(
        &mut self,
        kid: &str,
        public_key: &[u8; 32],
        rotate: bool,
        publish_secs: i64,
    ) -> Result<String, StoreError> {
        let now = self.now_unix();
        let current = self
            .conn
            .query_one(
                "SELECT kid FROM attestation_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC",
                &[],
            )?
            .map(|r| r.text(0))
            .transpose()?;
        if let Some(current) = current.filter(|_| !rotate) {
            return Ok(current);
        }
        self.conn.exec(
            "UPDATE attestation_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL",
            &[time::stamp_unix(now).into(), time::stamp_unix(now + publish_secs).into()],
        )?;
        self.conn.exec(
            "INSERT INTO attestation_keys (kid, public_key, created_at) VALUES ($1, $2, $3)",
            &[kid.into(), public_key.as_slice().into(), time::stamp_unix(now).into()],
        )?;
        self.audit("operator", "attestation.key", None, &format!("kid={kid}"))?;
        Ok(kid.to_string())
    }

    /// Records that a proof of tenure was issued (its id and expiry, not its content).
    pub(crate) fn attestation_issued(&mut self, n: PhoneNumber, jti: &str, exp: i64) -> Result<(), StoreError> {
        let hash = self.hash_key.number(n);
        self.audit(HOLDER_ACTOR, "attestation.issued", Some(&hash), &format!("jti={jti};exp={exp}"))
    }
}
