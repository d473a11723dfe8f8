//! One-time codes (R5: a holder proves possession): the carriers' SMS gateways the codes go through,
//! challenges with their limits (sends per client and per number, guesses per challenge, the lock after
//! wrong codes in a row), and the `TenureMark` a code and a session prove possession in.
//!
//! A code exists in clear only on its way from here to the gateway: it is stored as a keyed hash bound
//! to its challenge, and every wrong guess commits before the caller is answered.

use domain::{Day, NumberFacts, PhoneNumber, Tenure};
use subtle::ConstantTimeEq;

use crate::StoreError;
use crate::ids::ChallengeId;
use crate::keys::random_bytes;
use crate::ops::HOLDER_ACTOR;
use crate::ops::participants::Participant;
use crate::sql::Conn;
use crate::time;
use crate::writer::WriteCtx;

/// The limits of one-time codes, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtpLimits {
    /// How long a code is valid.
    pub ttl_secs: i64,
    /// Wrong guesses one challenge survives.
    pub attempts_max: u32,
    /// Codes sent to one number at the request of one client (an IPv4 address or an IPv6 /64), per
    /// hour and per day: each client has its own share of the number's budget.
    pub sends_per_hour_max: u32,
    pub sends_per_day_max: u32,
    /// Codes sent to one number per day whoever asks: what bounds a flood of SMS to it.
    pub sends_per_number_per_day_max: u32,
    /// Wrong guesses in a row, across challenges, that lock the number.
    pub failures_before_lock: u32,
    pub lock_secs: i64,
}

impl Default for OtpLimits {
    fn default() -> Self {
        OtpLimits {
            ttl_secs: 600,
            attempts_max: 5,
            sends_per_hour_max: 5,
            sends_per_day_max: 10,
            sends_per_number_per_day_max: 30,
            failures_before_lock: 100,
            lock_secs: 86_400,
        }
    }
}

/// Where a carrier wants its subscribers' codes sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsGateway {
    pub carrier_id: String,
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsGateway")
            .field("carrier_id", &self.carrier_id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A code to send. The code itself exists only here, on its way to the SMS gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpIssued {
    pub challenge_id: ChallengeId,
    pub code: String,
    /// Someone holds the number now (a code is sent only then).
    pub held: bool,
    /// The gateway of the carrier serving the number now; none when nobody holds the number or its
    /// carrier has no gateway (the caller is answered the same either way).
    pub gateway: Option<SmsGateway>,
}

impl std::fmt::Debug for OtpIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpIssued").field("challenge_id", &self.challenge_id).finish_non_exhaustive()
    }
}

/// Identifies a tenure (R5): a keyed hash of the number's changes of holder
/// (`domain::holder::holder_changes`), so that any change, a second one on the same day included, makes
/// a new mark. Codes are good only in the tenure of their mark; a session is sealed with it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TenureMark(pub [u8; 16]);

impl TenureMark {
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<TenureMark> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(TenureMark(b))
    }
}

impl std::fmt::Debug for TenureMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenureMark(..)")
    }
}

/// Why no code was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpRefused {
    /// Too many codes for this number at this client's request in the last hour or day; try again
    /// after this many seconds.
    TooManySends { retry_after_secs: i64 },
    /// Too many codes for this number in the last day, whoever asked.
    NumberCeiling { retry_after_secs: i64 },
    /// Too many wrong codes in a row: locked for this many more seconds.
    Locked { retry_after_secs: i64 },
    /// No carrier's range in numlink holds the number: no carrier could send it a code. (Ranges are
    /// public numbering-plan facts, so saying so tells nothing of any holder.)
    NotCovered,
}

/// Why a code did not open a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpFailure {
    /// Wrong code; this many guesses are left on the challenge.
    Wrong {
        attempts_left: u32,
    },
    /// No such challenge for this number, or it expired or was used.
    Expired,
    /// The challenge took all its guesses: a new code is needed.
    OutOfTries,
    /// The number changed hands since the code was requested: the code is good for nothing now.
    TenureChanged,
    Locked {
        retry_after_secs: i64,
    },
}

/// A carrier's SMS gateway: its URL and when it was set (the secret is shown only when set).
pub(crate) fn sms_gateway(conn: &mut dyn Conn, carrier_seq: i64) -> Result<Option<(String, String)>, StoreError> {
    conn.query_one("SELECT url, updated_at FROM sms_gateways WHERE carrier_seq = $1", &[carrier_seq.into()])?
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .transpose()
}

/// A carrier's gateway with its secret, to send a test message through it.
pub(crate) fn sms_gateway_of(conn: &mut dyn Conn, carrier_seq: i64) -> Result<Option<SmsGateway>, StoreError> {
    conn.query_one(
        "SELECT p.id, g.url, g.secret FROM sms_gateways g JOIN participants p ON p.seq = g.carrier_seq \
         WHERE g.carrier_seq = $1",
        &[carrier_seq.into()],
    )?
    .map(|r| Ok(SmsGateway { carrier_id: r.text(0)?, url: r.text(1)?, secret: r.text(2)? }))
    .transpose()
}

/// The codes issued for a carrier's numbers on each day from `since` on, oldest first: (day, codes,
/// of which found no gateway). Days without a code are absent.
pub(crate) fn codes_daily(
    conn: &mut dyn Conn,
    carrier_seq: i64,
    since: Day,
) -> Result<Vec<(Day, u64, u64)>, StoreError> {
    conn.query(
        "SELECT day, codes, without_gateway FROM sms_codes_daily WHERE carrier_seq = $1 AND day >= $2 ORDER BY day",
        &[carrier_seq.into(), since.packed().into()],
    )?
    .iter()
    .map(|r| {
        let day = Day::from_packed(r.i64(0)? as i32).ok_or_else(|| StoreError::Corrupt("a day out of range".into()))?;
        Ok((day, r.i64(1)?.max(0) as u64, r.i64(2)?.max(0) as u64))
    })
    .collect()
}

/// Six decimal digits from the OS random generator, uniformly (rejection sampling, no modulo bias).
fn six_digit_code() -> String {
    const LIMIT: u32 = 4_294_000_000; // the largest multiple of 1,000,000 below 2^32
    loop {
        let v = u32::from_le_bytes(random_bytes());
        if v < LIMIT {
            return format!("{:06}", v % 1_000_000);
        }
    }
}

impl WriteCtx {
    fn otp_hash(&self, challenge_id: &str, code: &str) -> [u8; 32] {
        self.hash_key.mac(format!("otp:{challenge_id}:{code}").as_bytes())
    }

    /// The mark of `n`'s current tenure.
    pub(crate) fn tenure_mark(&mut self, n: PhoneNumber) -> Result<TenureMark, StoreError> {
        let history = if self.may_have_history(n) { self.history(n)? } else { Vec::new() };
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"tenure|");
        buf.extend_from_slice(&n.digits().to_be_bytes());
        for e in domain::holder::holder_changes(&history) {
            buf.extend_from_slice(&e.carrier.0.to_be_bytes());
            buf.extend_from_slice(&(e.event_id.len() as u32).to_be_bytes());
            buf.extend_from_slice(e.event_id.as_bytes());
        }
        let mac = self.hash_key.mac(&buf);
        Ok(TenureMark(mac[..16].try_into().expect("16 of 32 bytes")))
    }

    /// Runs `f` for the holder of `n` in the tenure `mark`; `None` if the number changed hands since
    /// (checked in the same command as `f` runs, so nothing of the next tenure reaches the previous
    /// holder).
    pub(crate) fn as_holder<T>(
        &mut self,
        n: PhoneNumber,
        mark: TenureMark,
        f: impl FnOnce(&mut WriteCtx) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if self.tenure_mark(n)? != mark {
            return Ok(None);
        }
        f(self).map(Some)
    }

    /// Seconds the number stays locked, if it is.
    fn otp_locked(&mut self, number_hash: &[u8], now: i64) -> Result<Option<i64>, StoreError> {
        let until = self
            .conn
            .query_one("SELECT locked_until FROM otp_numbers WHERE number_hash = $1", &[number_hash.into()])?
            .map(|r| time::opt_unix(&r, 0))
            .transpose()?
            .flatten();
        Ok(until.filter(|&u| u > now).map(|u| u - now))
    }

    pub(crate) fn put_sms_gateway(&mut self, carrier: &Participant, url: &str, secret: &str) -> Result<(), StoreError> {
        let now = self.now_rfc3339();
        self.conn.exec(
            "INSERT INTO sms_gateways (carrier_seq, url, secret, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (carrier_seq) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at",
            &[carrier.seq.into(), url.into(), secret.into(), now.into()],
        )?;
        self.audit(&carrier.id, "sms_gateway.set", None, &format!("url={}", domain::number::truncate_for_message(url)))
    }

    /// The carrier that serves `n` now, if someone holds it.
    fn serving_carrier(&mut self, n: PhoneNumber, facts: &NumberFacts) -> Result<Option<i64>, StoreError> {
        let row =
            self.conn.query_one("SELECT serving FROM numbers WHERE number = $1", &[(n.digits() as i64).into()])?;
        if matches!(Tenure::of(facts), Tenure::UnknownNumber | Tenure::Disconnected) {
            return Ok(None);
        }
        Ok(match row {
            // A number with a history: the carrier its last port left it with (none while ported away).
            Some(r) => r.opt_i64(0),
            None => self.coverage(n).range_holder.map(|c| c.0),
        })
    }

    /// A new challenge for `n`, within the send limits. The same work is done whether or not the number
    /// has a holder or bindings, so the answer does not tell.
    ///
    /// The number's budget is shared by client (`client`: an IPv4 address or an IPv6 /64 as 16 bytes,
    /// `None` when not known): each has its own hourly and daily share, so a flood from other
    /// addresses does not use up the holder's; a number-wide daily ceiling bounds the SMS anyone can
    /// make it receive. (An attacker with more addresses than the ceiling over a share can still
    /// exhaust it: that is the price of bounding a flood of SMS to the holder.)
    pub(crate) fn request_otp(
        &mut self,
        n: PhoneNumber,
        limits: &OtpLimits,
        client: Option<[u8; 16]>,
    ) -> Result<Result<OtpIssued, OtpRefused>, StoreError> {
        if self.coverage(n).range_holder.is_none() {
            return Ok(Err(OtpRefused::NotCovered));
        }
        let hash = self.hash_key.number(n);
        let now = self.now_unix();
        if let Some(retry_after_secs) = self.otp_locked(&hash, now)? {
            return Ok(Err(OtpRefused::Locked { retry_after_secs }));
        }
        // Challenges older than a day count for nothing any more.
        self.conn.exec(
            "DELETE FROM otp_challenges WHERE number_hash = $1 AND created_at <= $2",
            &[hash.as_slice().into(), time::stamp_unix(now - 86_400).into()],
        )?;
        let mut client_mac = b"otp-client|".to_vec();
        client_mac.extend_from_slice(client.as_ref().map_or(b"unknown".as_slice(), |c| c.as_slice()));
        let client_hash: [u8; 16] = self.hash_key.mac(&client_mac)[..16].try_into().expect("16 of 32 bytes");
        let sent: Vec<(i64, bool)> = self
            .conn
            .query(
                "SELECT created_at, client_hash FROM otp_challenges WHERE number_hash = $1 ORDER BY created_at",
                &[hash.as_slice().into()],
            )?
            .iter()
            .map(|r| Ok((time::unix(r, 0)?, r.opt_bytes(1).as_deref() == Some(client_hash.as_slice()))))
            .collect::<Result<_, StoreError>>()?;
        let mine: Vec<i64> = sent.iter().filter(|s| s.1).map(|s| s.0).collect();
        let in_hour: Vec<i64> = mine.iter().copied().filter(|&t| t > now - 3600).collect();
        if in_hour.len() >= limits.sends_per_hour_max as usize {
            let oldest = in_hour[in_hour.len() - limits.sends_per_hour_max as usize];
            return Ok(Err(OtpRefused::TooManySends { retry_after_secs: (oldest + 3600 - now).max(1) }));
        }
        if mine.len() >= limits.sends_per_day_max as usize {
            let oldest = mine[mine.len() - limits.sends_per_day_max as usize];
            return Ok(Err(OtpRefused::TooManySends { retry_after_secs: (oldest + 86_400 - now).max(1) }));
        }
        if sent.len() >= limits.sends_per_number_per_day_max as usize {
            let oldest = sent[sent.len() - limits.sends_per_number_per_day_max as usize].0;
            return Ok(Err(OtpRefused::NumberCeiling { retry_after_secs: (oldest + 86_400 - now).max(1) }));
        }
        let id = ChallengeId::issue("otp");
        let code = six_digit_code();
        let code_hash = self.otp_hash(&id, &code);
        // The code proves possession in this tenure only.
        let mark = self.tenure_mark(n)?;
        self.conn.exec(
            "INSERT INTO otp_challenges (id, number_hash, code_hash, created_at, expires_at, failures, tenure_mark, \
             client_hash) VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
            &[
                id.as_str().into(),
                hash.as_slice().into(),
                code_hash.as_slice().into(),
                time::stamp_unix(now).into(),
                time::stamp_unix(now + limits.ttl_secs).into(),
                mark.0.as_slice().into(),
                client_hash.as_slice().into(),
            ],
        )?;
        let facts = self.facts(n)?;
        let held = !matches!(Tenure::of(&facts), Tenure::UnknownNumber | Tenure::Disconnected);
        // The gateway is looked up for every number (carrier -1 matches none), so that the work, and
        // the time it takes, do not depend on whether anyone holds the number.
        let carrier = self.serving_carrier(n, &facts)?.unwrap_or(-1);
        let gateway = self
            .conn
            .query_one(
                "SELECT p.id, g.url, g.secret FROM sms_gateways g JOIN participants p ON p.seq = g.carrier_seq \
                 WHERE g.carrier_seq = $1",
                &[carrier.into()],
            )?
            .map(|r| Ok::<_, StoreError>(SmsGateway { carrier_id: r.text(0)?, url: r.text(1)?, secret: r.text(2)? }))
            .transpose()?;
        // Counted for the carrier's console (one statement whatever the number, as above).
        self.conn.exec(
            "INSERT INTO sms_codes_daily (carrier_seq, day, codes, without_gateway) \
             SELECT seq, $1, 1, $2 FROM participants WHERE seq = $3 \
             ON CONFLICT (carrier_seq, day) DO UPDATE SET codes = sms_codes_daily.codes + 1, \
             without_gateway = sms_codes_daily.without_gateway + excluded.without_gateway",
            &[self.clock.today().packed().into(), i64::from(gateway.is_none()).into(), carrier.into()],
        )?;
        self.audit(HOLDER_ACTOR, "otp.requested", Some(&hash), &format!("challenge={id}"))?;
        Ok(Ok(OtpIssued { challenge_id: id, code, held, gateway }))
    }

    /// Checks a code against its challenge; on success, the mark of the tenure it proves possession in.
    /// Wrong guesses are counted per challenge and per number, and commit like any write (the caller is
    /// refused, the count stands). A code requested in an earlier tenure is good for nothing.
    pub(crate) fn verify_otp(
        &mut self,
        n: PhoneNumber,
        challenge_id: &str,
        code: &str,
        limits: &OtpLimits,
    ) -> Result<Result<TenureMark, OtpFailure>, StoreError> {
        let hash = self.hash_key.number(n);
        let now = self.now_unix();
        if let Some(retry_after_secs) = self.otp_locked(&hash, now)? {
            return Ok(Err(OtpFailure::Locked { retry_after_secs }));
        }
        let row = self.conn.query_one(
            "SELECT code_hash, expires_at, failures, used_at, tenure_mark FROM otp_challenges \
             WHERE id = $1 AND number_hash = $2",
            &[challenge_id.into(), hash.as_slice().into()],
        )?;
        let Some(row) = row else { return Ok(Err(OtpFailure::Expired)) };
        let failures = row.i64(2)?;
        if row.opt_text(3).is_some() || time::unix(&row, 1)? <= now {
            return Ok(Err(OtpFailure::Expired));
        }
        if failures >= i64::from(limits.attempts_max) {
            return Ok(Err(OtpFailure::OutOfTries));
        }
        let stored = row.opt_bytes(0).unwrap_or_default();
        let presented = self.otp_hash(challenge_id, code);
        if bool::from(presented.as_slice().ct_eq(stored.as_slice())) {
            // Whoever held the number when the code was sent may not hold it now: the challenge is
            // spent. (Told only to one who has the code: a wrong guess says nothing of the number.)
            let mark = self.tenure_mark(n)?;
            if row.opt_bytes(4).as_deref() != Some(mark.0.as_slice()) {
                self.conn.exec(
                    "UPDATE otp_challenges SET used_at = $1 WHERE id = $2",
                    &[time::stamp_unix(now).into(), challenge_id.into()],
                )?;
                self.audit(HOLDER_ACTOR, "otp.stale", Some(&hash), &format!("challenge={challenge_id}"))?;
                return Ok(Err(OtpFailure::TenureChanged));
            }
            self.conn.exec(
                "UPDATE otp_challenges SET used_at = $1 WHERE id = $2",
                &[time::stamp_unix(now).into(), challenge_id.into()],
            )?;
            self.conn.exec("DELETE FROM otp_numbers WHERE number_hash = $1", &[hash.as_slice().into()])?;
            self.audit(HOLDER_ACTOR, "otp.verified", Some(&hash), &format!("challenge={challenge_id}"))?;
            return Ok(Ok(mark));
        }
        self.conn.exec("UPDATE otp_challenges SET failures = failures + 1 WHERE id = $1", &[challenge_id.into()])?;
        let in_a_row = self
            .conn
            .query_one(
                "INSERT INTO otp_numbers (number_hash, consecutive_failures) VALUES ($1, 1) ON CONFLICT (number_hash) \
                 DO UPDATE SET consecutive_failures = otp_numbers.consecutive_failures + 1 RETURNING consecutive_failures",
                &[hash.as_slice().into()],
            )?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(1);
        self.audit(HOLDER_ACTOR, "otp.failed", Some(&hash), &format!("challenge={challenge_id};inARow={in_a_row}"))?;
        if in_a_row >= i64::from(limits.failures_before_lock) {
            self.conn.exec(
                "UPDATE otp_numbers SET consecutive_failures = 0, locked_until = $1 WHERE number_hash = $2",
                &[time::stamp_unix(now + limits.lock_secs).into(), hash.as_slice().into()],
            )?;
            self.audit(HOLDER_ACTOR, "otp.locked", Some(&hash), &format!("until={}", now + limits.lock_secs))?;
            return Ok(Err(OtpFailure::Locked { retry_after_secs: limits.lock_secs }));
        }
        Ok(Err(OtpFailure::Wrong { attempts_left: (i64::from(limits.attempts_max) - failures - 1).max(0) as u32 }))
    }
}
