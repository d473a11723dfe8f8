//! Real-name records (what a carrier knows of the current holder), their matching, and rebinding an
//! account to a customer's new number when the real names match.
//!
//! Attributes are kept only as keyed hashes of their normal forms (`domain::holder::normalize_*`),
//! each bound to the number, and only for the current tenure: the record is written with the
//! `activated` or `transferred` event that starts the tenure and deleted by the event that ends it.

use domain::holder::{normalize_document, normalize_name};
use domain::{Day, PhoneNumber, Tenure};

use crate::StoreError;
use crate::ops::bindings::Binding;
use crate::ops::participants::Participant;
use crate::writer::WriteCtx;

/// The real-name attributes a carrier may send with an event, or an institution may ask about.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Kyc {
    pub id_document: Option<String>,
    pub id_document_type: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub birthdate: Option<Day>,
}

impl std::fmt::Debug for Kyc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kyc(<redacted>)")
    }
}

/// The attributes numlink keeps, in column order.
pub const KYC_ATTRIBUTES: [&str; 6] =
    ["id_document", "id_document_type", "name", "given_name", "family_name", "birthdate"];

impl Kyc {
    /// The normal form of each attribute, in [`KYC_ATTRIBUTES`] order.
    fn normalized(&self) -> [Option<String>; 6] {
        [
            self.id_document.as_deref().map(normalize_document),
            self.id_document_type.as_deref().map(|t| t.trim().to_ascii_lowercase()),
            self.name.as_deref().map(normalize_name),
            self.given_name.as_deref().map(normalize_name),
            self.family_name.as_deref().map(normalize_name),
            self.birthdate.map(|d| d.to_string()),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.normalized().iter().all(Option::is_none)
    }
}

/// Per attribute asked about, in [`KYC_ATTRIBUTES`] order: `Some(true|false)`, or `None` when the
/// carrier did not send it (`not_available`). Attributes not asked about are `None` too.
pub type KycMatch = [Option<bool>; 6];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KycAnswer {
    /// Nobody holds the number, or the platform does not know it.
    NoHolder,
    Matched(KycMatch),
    /// The institution matched this number's record too often today; try again after this many
    /// seconds (the next UTC day).
    Limited {
        retry_after_secs: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rebind {
    NotFound,
    /// The new number's holder does not match: per attribute (document, name), matched or not
    /// (`None`: the carrier sent no such attribute, or nobody holds the number).
    Mismatch {
        id_document: Option<bool>,
        name: Option<bool>,
    },
    /// The institution already has this account bound to the new number.
    AlreadyBound,
    Rebound(Binding),
    /// Matched against the new number too often today (see [`KycAnswer::Limited`]).
    Limited {
        retry_after_secs: i64,
    },
}

impl WriteCtx {
    /// A keyed hash of a whole record in normal form, bound to the number: what an event is compared
    /// by when its eventId comes again.
    pub(crate) fn kyc_digest(&self, n: PhoneNumber, kyc: &Kyc) -> Vec<u8> {
        let fields: Vec<String> = kyc.normalized().into_iter().map(|v| v.unwrap_or_default()).collect();
        self.hash_key.mac(format!("kyc-record:{n}:{}", fields.join("\u{1f}")).as_bytes()).to_vec()
    }

    fn kyc_hash(&self, n: PhoneNumber, attribute: &str, value: &str) -> Vec<u8> {
        self.hash_key.mac(format!("kyc:{attribute}:{n}:{value}").as_bytes()).to_vec()
    }

    /// After an accepted event on `n`: keeps the real-name record in step with the tenure. `sent` is
    /// what came with an `activated` or `transferred` event dated `date`.
    pub(crate) fn sync_kyc(
        &mut self,
        n: PhoneNumber,
        number_hash: &[u8; 32],
        tenure: Tenure,
        date: Day,
        sent: Option<&Kyc>,
    ) -> Result<(), StoreError> {
        match (tenure, sent) {
            (Tenure::Since(start), Some(kyc)) if start == date && !kyc.is_empty() => {
                let hashes: Vec<Option<Vec<u8>>> = KYC_ATTRIBUTES
                    .iter()
                    .zip(kyc.normalized())
                    .map(|(attr, v)| v.map(|v| self.kyc_hash(n, attr, &v)))
                    .collect();
                let now = self.now_rfc3339();
                let mut params = vec![number_hash.as_slice().into(), start.packed().into()];
                params.extend(hashes.into_iter().map(Into::into));
                params.push(now.into());
                self.conn.exec(
                    "INSERT INTO kyc_records (number_hash, tenure_start, id_document, id_document_type, name, given_name, \
                     family_name, birthdate, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (number_hash) DO UPDATE SET tenure_start = excluded.tenure_start, \
                     id_document = excluded.id_document, id_document_type = excluded.id_document_type, name = excluded.name, \
                     given_name = excluded.given_name, family_name = excluded.family_name, birthdate = excluded.birthdate, \
                     updated_at = excluded.updated_at",
                    &params,
                )?;
            }
            (Tenure::Since(start), _) => {
                // The tenure the record was written for has ended (or a late event moved its start).
                self.conn.exec(
                    "DELETE FROM kyc_records WHERE number_hash = $1 AND tenure_start <> $2",
                    &[number_hash.as_slice().into(), start.packed().into()],
                )?;
            }
            _ => {
                self.conn.exec("DELETE FROM kyc_records WHERE number_hash = $1", &[number_hash.as_slice().into()])?;
            }
        }
        Ok(())
    }

    /// Compares what is asked with the current holder's record, attribute by attribute.
    fn match_kyc(&mut self, n: PhoneNumber, asked: &Kyc) -> Result<KycAnswer, StoreError> {
        if matches!(Tenure::of(&self.facts(n)?), Tenure::UnknownNumber | Tenure::Disconnected) {
            return Ok(KycAnswer::NoHolder);
        }
        let number_hash = self.hash_key.number(n);
        let row = self.conn.query_one(
            "SELECT id_document, id_document_type, name, given_name, family_name, birthdate FROM kyc_records WHERE number_hash = $1",
            &[number_hash.as_slice().into()],
        )?;
        let mut out: KycMatch = [None; 6];
        for (i, (attr, value)) in KYC_ATTRIBUTES.iter().zip(asked.normalized()).enumerate() {
            let (Some(value), Some(stored)) = (value, row.as_ref().and_then(|r| r.opt_bytes(i))) else { continue };
            let presented = self.kyc_hash(n, attr, &value);
            out[i] = Some(presented == stored);
        }
        Ok(KycAnswer::Matched(out))
    }

    /// The CAMARA KYC Match question, audited (which attributes were asked, not their values).
    /// Counts one of the institution's matches of a number's record today; the seconds until tomorrow
    /// (UTC) if that makes more than `max_per_day`. Rebinding attempts count too: each tells whether
    /// a document and a name match.
    fn kyc_attempt(
        &mut self,
        institution_seq: i64,
        number_hash: &[u8],
        max_per_day: u32,
    ) -> Result<Option<i64>, StoreError> {
        let today = self.clock.today();
        let attempts = self
            .conn
            .query_one(
                "INSERT INTO kyc_attempts (institution_seq, number_hash, day, attempts) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (institution_seq, number_hash, day) DO UPDATE SET attempts = kyc_attempts.attempts + 1 \
                 RETURNING attempts",
                &[institution_seq.into(), number_hash.into(), today.packed().into()],
            )?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(1);
        if attempts <= i64::from(max_per_day) {
            return Ok(None);
        }
        let tomorrow = today.plus_days(1).date().to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_second());
        Ok(Some(tomorrow.map_or(86_400, |t| (t - self.now_unix()).max(1))))
    }

    /// Drops the counts of past days, at most `max` rows. True if more are left.
    pub(crate) fn prune_kyc_attempts(&mut self, max: u32) -> Result<bool, StoreError> {
        let deleted = self.conn.exec(
            "DELETE FROM kyc_attempts WHERE (institution_seq, number_hash, day) IN \
             (SELECT institution_seq, number_hash, day FROM kyc_attempts WHERE day < $1 LIMIT $2)",
            &[self.clock.today().packed().into(), i64::from(max).into()],
        )?;
        Ok(deleted >= u64::from(max))
    }

    pub(crate) fn kyc_match(
        &mut self,
        actor: &Participant,
        n: PhoneNumber,
        asked: &Kyc,
        max_per_day: u32,
    ) -> Result<KycAnswer, StoreError> {
        if let Some(retry_after_secs) = self.kyc_attempt(actor.seq, &self.hash_key.number(n), max_per_day)? {
            return Ok(KycAnswer::Limited { retry_after_secs });
        }
        let answer = self.match_kyc(n, asked)?;
        let asked_names: Vec<&str> =
            KYC_ATTRIBUTES.iter().zip(asked.normalized()).filter(|(_, v)| v.is_some()).map(|(a, _)| *a).collect();
        let number_hash = self.hash_key.number(n);
        self.audit(&actor.id, "kyc.match", Some(&number_hash), &format!("attributes={}", asked_names.join(",")))?;
        Ok(answer)
    }

    /// Moves one of the institution's bindings to `new_number` if the document and the name both match
    /// the new number's current holder; otherwise changes nothing.
    pub(crate) fn rebind(
        &mut self,
        institution: &Participant,
        binding_id: &str,
        new_number: PhoneNumber,
        id_document: &str,
        name: &str,
        max_per_day: u32,
    ) -> Result<Rebind, StoreError> {
        let Some(binding) = crate::ops::bindings::get(self.conn.as_mut(), institution.seq, binding_id)? else {
            return Ok(Rebind::NotFound);
        };
        if let Some(retry_after_secs) =
            self.kyc_attempt(institution.seq, &self.hash_key.number(new_number), max_per_day)?
        {
            return Ok(Rebind::Limited { retry_after_secs });
        }
        let asked = Kyc { id_document: Some(id_document.into()), name: Some(name.into()), ..Kyc::default() };
        let answer = self.match_kyc(new_number, &asked)?;
        let (doc, name_ok) = match answer {
            KycAnswer::Matched(m) => (m[0], m[2]),
            KycAnswer::NoHolder | KycAnswer::Limited { .. } => (None, None),
        };
        let new_hash = self.hash_key.number(new_number);
        if doc != Some(true) || name_ok != Some(true) {
            self.audit(
                &institution.id,
                "binding.rebind_refused",
                Some(&new_hash),
                &format!("id={binding_id};idDocument={doc:?};name={name_ok:?}"),
            )?;
            return Ok(Rebind::Mismatch { id_document: doc, name: name_ok });
        }
        if self
            .conn
            .query_one(
                "SELECT id FROM bindings WHERE institution_seq = $1 AND account_ref = $2 AND number_hash = $3",
                &[institution.seq.into(), binding.account_ref.as_str().into(), new_hash.as_slice().into()],
            )?
            .is_some()
        {
            return Ok(Rebind::AlreadyBound);
        }
        let old_hash = self
            .conn
            .query_one("SELECT number_hash FROM bindings WHERE id = $1", &[binding_id.into()])?
            .and_then(|r| r.opt_bytes(0))
            .unwrap_or_default();
        let today = self.clock.today();
        self.conn.exec(
            "UPDATE bindings SET number_hash = $1, bound_on = $2, stale = 0, \
             notified_after = (SELECT COALESCE(MAX(seq), 0) FROM notifications) WHERE id = $3",
            &[new_hash.as_slice().into(), today.packed().into(), binding_id.into()],
        )?;
        self.audit(&institution.id, "binding.rebound", Some(&new_hash), &format!("id={binding_id};boundOn={today}"))?;
        self.close_emptied_requests(institution, &old_hash)?;
        let rebound = crate::ops::bindings::get(self.conn.as_mut(), institution.seq, binding_id)?
            .ok_or_else(|| StoreError::database("binding vanished"))?;
        Ok(Rebind::Rebound(rebound))
    }
}
