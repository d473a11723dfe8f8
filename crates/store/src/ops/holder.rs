//! The holder's side (R5): carriers' SMS gateways, one-time-code challenges with their limits, the
//! stale bindings a holder sees, unbind requests and their resolution, who looked a number up, the
//! signing keys of proofs of tenure, and the regulator's report.
//!
//! Everything a holder does runs through the writer: it needs the number's current tenure (from the
//! summary and the carriers' ranges the writer keeps) and most of it is audited.

use std::collections::HashMap;

use domain::holder::working_days_between;
use domain::{Day, NumberFacts, PhoneNumber, RejectReason, Tenure};
use subtle::ConstantTimeEq;

use crate::StoreError;
use crate::keys::{new_id, random_bytes};
use crate::ops::bindings::{NotificationType, day};
use crate::ops::participants::Participant;
use crate::sql::{Conn, Row};
use crate::writer::WriteCtx;

/// How long an institution's rejection stands before the holder's "ask all" asks it again.
const REJECTION_STANDS_SECS: i64 = 30 * 86_400;

/// The audit actor of what a holder does (the holder is not a participant; the subject names the number).
const HOLDER_ACTOR: &str = "holder";

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
    pub challenge_id: String,
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
}

/// Why a code did not open a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpFailure {
    /// Wrong code; this many guesses are left on the challenge.
    Wrong {
        attempts_left: u32,
    },
    /// No such challenge for this number, or it expired, was used, or ran out of guesses.
    Expired,
    /// The number changed hands since the code was requested: the code is good for nothing now.
    TenureChanged,
    Locked {
        retry_after_secs: i64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnbindState {
    Open,
    Unbound,
    Rejected,
}

impl UnbindState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnbindState::Open => "open",
            UnbindState::Unbound => "unbound",
            UnbindState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<UnbindState> {
        [UnbindState::Open, UnbindState::Unbound, UnbindState::Rejected].into_iter().find(|x| x.as_str() == s)
    }
}

/// A binding an unbind request is about, as it was when the request was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedBinding {
    pub binding_id: String,
    pub account_ref: String,
    pub bound_on: Day,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbindRequest {
    pub id: String,
    pub institution_id: String,
    pub institution_name: String,
    pub state: UnbindState,
    pub reason: Option<RejectReason>,
    pub deadline: Day,
    pub attestation_id: String,
    pub created_at: String,
    pub created_unix: i64,
    pub resolved_at: Option<String>,
    pub resolved_unix: Option<i64>,
    /// Filled for the institution's own views; never for the holder's.
    pub bindings: Vec<RequestedBinding>,
}

impl UnbindRequest {
    /// Open past its deadline.
    pub fn overdue(&self, today: Day) -> bool {
        self.state == UnbindState::Open && today > self.deadline
    }
}

/// An institution holding bindings made before the holder's tenure, as the holder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleHolder {
    pub institution_id: String,
    pub institution_name: String,
    /// Stale bindings it still holds.
    pub bindings: u32,
    /// The latest unbind request of this tenure to this institution.
    pub request: Option<UnbindRequest>,
}

/// What the holder of a number sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderView {
    pub tenure: Tenure,
    pub institutions: Vec<StaleHolder>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnbindRefused {
    /// Nobody holds the number, or no change of holder is known: nothing can be stale.
    NoTenure,
    /// These institutions hold no stale binding on the number.
    NotStale(Vec<String>),
    /// The number changed hands since the holder's session began.
    TenureChanged,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Unbound,
    Rejected(RejectReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    NotFound,
    /// It was resolved before; the first resolution stands.
    AlreadyResolved(UnbindRequest),
    Done {
        request: UnbindRequest,
        bindings_removed: u64,
    },
}

/// An institution's check of a number, as the holder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub institution_name: String,
    pub at: String,
    pub action: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationKey {
    pub kid: String,
    pub public_key: [u8; 32],
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// A retired key is published until then (unix seconds).
    pub publish_until: Option<i64>,
}

/// One line of the regulator's report.
#[derive(Clone, Debug, PartialEq)]
pub struct InstitutionReport {
    pub institution_id: String,
    pub institution_name: String,
    pub open: u64,
    pub overdue: u64,
    pub resolved: u64,
    /// Of the resolved, answered after their deadline's day.
    pub resolved_late: u64,
    /// Of the resolved, the rejected, per reason.
    pub rejected_by_reason: Vec<(RejectReason, u64)>,
    /// Seconds from request to resolution.
    pub resolve_secs_median: Option<i64>,
    pub resolve_secs_p90: Option<i64>,
    /// Binding notifications not acknowledged after more than `unacked_working_days` working days.
    pub notifications_unacked_overdue: u64,
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

const REQUEST_COLUMNS: &str = "r.id, p.id, p.name, r.state, r.reason, r.deadline, r.attestation_id, r.created_at, \
                               r.created_unix, r.resolved_at, r.resolved_unix";

fn request_from(r: &Row) -> Result<UnbindRequest, StoreError> {
    let state = r.text(3)?;
    Ok(UnbindRequest {
        id: r.text(0)?,
        institution_id: r.text(1)?,
        institution_name: r.text(2)?,
        state: UnbindState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("unbind state {state:?}")))?,
        reason: r.opt_text(4).as_deref().and_then(RejectReason::parse),
        deadline: day(r, 5)?,
        attestation_id: r.text(6)?,
        created_at: r.text(7)?,
        created_unix: r.i64(8)?,
        resolved_at: r.opt_text(9),
        resolved_unix: r.opt_i64(10),
        bindings: Vec::new(),
    })
}

fn requested_bindings(conn: &mut dyn Conn, request_id: &str) -> Result<Vec<RequestedBinding>, StoreError> {
    conn.query(
        "SELECT binding_id, account_ref, bound_on FROM unbind_request_bindings WHERE request_id = $1 ORDER BY binding_id",
        &[request_id.into()],
    )?
    .iter()
    .map(|r| Ok(RequestedBinding { binding_id: r.text(0)?, account_ref: r.text(1)?, bound_on: day(r, 2)? }))
    .collect()
}

/// One of the institution's unbind requests, with the bindings it is about.
pub(crate) fn request_of(
    conn: &mut dyn Conn,
    institution_seq: i64,
    id: &str,
) -> Result<Option<UnbindRequest>, StoreError> {
    let row = conn.query_one(
        &format!(
            "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
             WHERE r.id = $1 AND r.institution_seq = $2"
        ),
        &[id.into(), institution_seq.into()],
    )?;
    let Some(row) = row else { return Ok(None) };
    let mut req = request_from(&row)?;
    req.bindings = requested_bindings(conn, &req.id)?;
    Ok(Some(req))
}

/// The institution's unbind requests in id order after the cursor, with their bindings.
pub(crate) fn requests_of(
    conn: &mut dyn Conn,
    institution_seq: i64,
    after: &str,
    limit: u32,
) -> Result<Vec<UnbindRequest>, StoreError> {
    let rows = conn.query(
        &format!(
            "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
             WHERE r.institution_seq = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"
        ),
        &[institution_seq.into(), after.into(), i64::from(limit).into()],
    )?;
    let mut out = rows.iter().map(request_from).collect::<Result<Vec<_>, _>>()?;
    for req in &mut out {
        req.bindings = requested_bindings(conn, &req.id)?;
    }
    Ok(out)
}

/// A carrier's SMS gateway: its URL and when it was set (the secret is shown only when set).
pub(crate) fn sms_gateway(conn: &mut dyn Conn, carrier_seq: i64) -> Result<Option<(String, String)>, StoreError> {
    conn.query_one("SELECT url, updated_at FROM sms_gateways WHERE carrier_seq = $1", &[carrier_seq.into()])?
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .transpose()
}

/// Every key that signs or signed proofs still valid, newest first.
pub(crate) fn attestation_keys(conn: &mut dyn Conn, now: i64) -> Result<Vec<AttestationKey>, StoreError> {
    let rows = conn.query(
        "SELECT kid, public_key, created_at, retired_at, publish_until FROM attestation_keys \
         WHERE publish_until IS NULL OR publish_until > $1 ORDER BY created_at DESC, kid DESC",
        &[now.into()],
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
                created_at: r.i64(2)?,
                retired_at: r.opt_i64(3),
                publish_until: r.opt_i64(4),
            })
        })
        .collect()
}

/// The regulator's report: every institution, with its unbind requests and unacknowledged notifications.
/// Requests are aggregated in SQL per (institution, state, reason, deadline met); only the times to
/// resolve are read one by one, for the percentiles.
pub(crate) fn institution_report(
    conn: &mut dyn Conn,
    today: Day,
    unacked_working_days: u32,
) -> Result<Vec<InstitutionReport>, StoreError> {
    let institutions =
        conn.query("SELECT seq, id, name FROM participants WHERE role = 'institution' ORDER BY name, id", &[])?;
    let mut by_seq: HashMap<i64, InstitutionReport> = HashMap::with_capacity(institutions.len());
    for inst in &institutions {
        by_seq.insert(
            inst.i64(0)?,
            InstitutionReport {
                institution_id: inst.text(1)?,
                institution_name: inst.text(2)?,
                open: 0,
                overdue: 0,
                resolved: 0,
                resolved_late: 0,
                rejected_by_reason: Vec::new(),
                resolve_secs_median: None,
                resolve_secs_p90: None,
                notifications_unacked_overdue: 0,
            },
        );
    }
    // Open requests: overdue when today is past the deadline.
    for r in conn.query(
        "SELECT institution_seq, CASE WHEN deadline < $1 THEN 1 ELSE 0 END, COUNT(*) FROM unbind_requests \
         WHERE state = 'open' GROUP BY 1, 2",
        &[today.packed().into()],
    )? {
        let Some(rep) = by_seq.get_mut(&r.i64(0)?) else { continue };
        let n = r.i64(2)? as u64;
        rep.open += n;
        if r.i64(1)? != 0 {
            rep.overdue += n;
        }
    }
    // Answered requests: when, against the deadline (the end of its day, UTC), and why if rejected.
    let mut durations: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in conn.query(
        "SELECT institution_seq, state, reason, deadline, created_unix, resolved_unix FROM unbind_requests WHERE state <> 'open'",
        &[],
    )? {
        let seq = r.i64(0)?;
        let Some(rep) = by_seq.get_mut(&seq) else { continue };
        rep.resolved += 1;
        let (created, resolved) = (r.i64(4)?, r.opt_i64(5).unwrap_or_default());
        let deadline_end = day(&r, 3)?
            .plus_days(1)
            .date()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .unwrap_or(i64::MAX);
        if resolved >= deadline_end {
            rep.resolved_late += 1;
        }
        if let Some(reason) = r.opt_text(2).as_deref().and_then(RejectReason::parse) {
            match rep.rejected_by_reason.iter_mut().find(|(x, _)| *x == reason) {
                Some((_, n)) => *n += 1,
                None => rep.rejected_by_reason.push((reason, 1)),
            }
        }
        durations.entry(seq).or_default().push(resolved - created);
    }
    for (seq, mut d) in durations {
        d.sort_unstable();
        if let Some(rep) = by_seq.get_mut(&seq) {
            rep.resolve_secs_median = median(&d);
            rep.resolve_secs_p90 = percentile(&d, 90.0);
        }
    }
    // Binding notifications not acknowledged, per institution and day created (RFC 3339 starts with the day).
    for u in conn.query(
        "SELECT institution_seq, substr(created_at, 1, 10), COUNT(*) FROM notifications \
         WHERE acked_at IS NULL AND binding_id IS NOT NULL GROUP BY institution_seq, substr(created_at, 1, 10)",
        &[],
    )? {
        let Some(rep) = by_seq.get_mut(&u.i64(0)?) else { continue };
        let created = Day::parse(&u.text(1)?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if working_days_between(created, today) > unacked_working_days {
            rep.notifications_unacked_overdue += u.i64(2)? as u64;
        }
    }
    let mut out = Vec::with_capacity(institutions.len());
    for inst in &institutions {
        if let Some(mut rep) = by_seq.remove(&inst.i64(0)?) {
            rep.rejected_by_reason.sort_by_key(|(r, _)| r.as_str());
            out.push(rep);
        }
    }
    Ok(out)
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
    pub(crate) fn now_unix(&self) -> i64 {
        self.clock.now().as_second()
    }

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
            .and_then(|r| r.opt_i64(0));
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
        let hash = self.hash_key.number(n);
        let now = self.now_unix();
        if let Some(retry_after_secs) = self.otp_locked(&hash, now)? {
            return Ok(Err(OtpRefused::Locked { retry_after_secs }));
        }
        // Challenges older than a day count for nothing any more.
        self.conn.exec(
            "DELETE FROM otp_challenges WHERE number_hash = $1 AND created_at <= $2",
            &[hash.as_slice().into(), (now - 86_400).into()],
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
            .map(|r| Ok((r.i64(0)?, r.opt_bytes(1).as_deref() == Some(client_hash.as_slice()))))
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
        let id = new_id("otp");
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
                now.into(),
                (now + limits.ttl_secs).into(),
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
        if row.opt_i64(3).is_some() || row.i64(1)? <= now || failures >= i64::from(limits.attempts_max) {
            return Ok(Err(OtpFailure::Expired));
        }
        let stored = row.opt_bytes(0).unwrap_or_default();
        let presented = self.otp_hash(challenge_id, code);
        if bool::from(presented.as_slice().ct_eq(stored.as_slice())) {
            // Whoever held the number when the code was sent may not hold it now: the challenge is
            // spent. (Told only to one who has the code: a wrong guess says nothing of the number.)
            let mark = self.tenure_mark(n)?;
            if row.opt_bytes(4).as_deref() != Some(mark.0.as_slice()) {
                self.conn
                    .exec("UPDATE otp_challenges SET used_at = $1 WHERE id = $2", &[now.into(), challenge_id.into()])?;
                self.audit(HOLDER_ACTOR, "otp.stale", Some(&hash), &format!("challenge={challenge_id}"))?;
                return Ok(Err(OtpFailure::TenureChanged));
            }
            self.conn
                .exec("UPDATE otp_challenges SET used_at = $1 WHERE id = $2", &[now.into(), challenge_id.into()])?;
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
                &[(now + limits.lock_secs).into(), hash.as_slice().into()],
            )?;
            self.audit(HOLDER_ACTOR, "otp.locked", Some(&hash), &format!("until={}", now + limits.lock_secs))?;
            return Ok(Err(OtpFailure::Locked { retry_after_secs: limits.lock_secs }));
        }
        Ok(Err(OtpFailure::Wrong { attempts_left: (i64::from(limits.attempts_max) - failures - 1).max(0) as u32 }))
    }

    /// The requests of the current tenure, newest first.
    fn tenure_requests(&mut self, number_hash: &[u8], start: Day) -> Result<Vec<UnbindRequest>, StoreError> {
        self.conn
            .query(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
                     WHERE r.number_hash = $1 AND r.tenure_start = $2 ORDER BY r.created_unix DESC, r.id DESC"
                ),
                &[number_hash.into(), start.packed().into()],
            )?
            .iter()
            .map(request_from)
            .collect()
    }

    /// R5: the institutions holding bindings made before the current tenure, with the state of any
    /// request. Nothing about the bindings beyond their count, nothing about the previous holder.
    pub(crate) fn holder_view(&mut self, n: PhoneNumber) -> Result<HolderView, StoreError> {
        let tenure = Tenure::of(&self.facts(n)?);
        let Tenure::Since(start) = tenure else {
            return Ok(HolderView { tenure, institutions: Vec::new() });
        };
        let hash = self.hash_key.number(n);
        let rows = self.conn.query(
            "SELECT p.id, p.name, COUNT(*) FROM bindings b JOIN participants p ON p.seq = b.institution_seq \
             WHERE b.number_hash = $1 AND b.bound_on < $2 GROUP BY p.id, p.name",
            &[hash.as_slice().into(), start.packed().into()],
        )?;
        let mut institutions: Vec<StaleHolder> = rows
            .iter()
            .map(|r| {
                Ok(StaleHolder {
                    institution_id: r.text(0)?,
                    institution_name: r.text(1)?,
                    bindings: r.i64(2)? as u32,
                    request: None,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // Institutions that already unbound everything still show, with their answer.
        for req in self.tenure_requests(&hash, start)? {
            match institutions.iter_mut().find(|i| i.institution_id == req.institution_id) {
                Some(i) if i.request.is_none() => i.request = Some(req),
                Some(_) => {}
                None => institutions.push(StaleHolder {
                    institution_id: req.institution_id.clone(),
                    institution_name: req.institution_name.clone(),
                    bindings: 0,
                    request: Some(req),
                }),
            }
        }
        institutions
            .sort_by(|a, b| (&a.institution_name, &a.institution_id).cmp(&(&b.institution_name, &b.institution_id)));
        Ok(HolderView { tenure, institutions })
    }

    /// The holder's requests in the current tenure, newest first.
    pub(crate) fn holder_requests(&mut self, n: PhoneNumber) -> Result<Vec<UnbindRequest>, StoreError> {
        let Tenure::Since(start) = Tenure::of(&self.facts(n)?) else { return Ok(Vec::new()) };
        let hash = self.hash_key.number(n);
        self.tenure_requests(&hash, start)
    }

    /// One request per institution (all of them, or those named) holding stale bindings on `n`; an open
    /// request of this tenure is answered again rather than duplicated. Each new request notifies its
    /// institution (`unbind.requested`, with the holder's proof of tenure) in this transaction.
    pub(crate) fn request_unbind(
        &mut self,
        n: PhoneNumber,
        institution_ids: Option<Vec<String>>,
        deadline: Day,
        attestation_id: &str,
        attestation: &str,
    ) -> Result<Result<(Vec<UnbindRequest>, usize), UnbindRefused>, StoreError> {
        let Tenure::Since(start) = Tenure::of(&self.facts(n)?) else {
            return Ok(Err(UnbindRefused::NoTenure));
        };
        let hash = self.hash_key.number(n);
        let rows = self.conn.query(
            "SELECT b.institution_seq, p.id, b.id, b.account_ref, b.bound_on FROM bindings b \
             JOIN participants p ON p.seq = b.institution_seq WHERE b.number_hash = $1 AND b.bound_on < $2 \
             ORDER BY p.id, b.id",
            &[hash.as_slice().into(), start.packed().into()],
        )?;
        // (institution seq, institution id, its stale bindings), in institution id order.
        let mut groups: Vec<(i64, String, Vec<RequestedBinding>)> = Vec::new();
        for r in &rows {
            let (seq, id) = (r.i64(0)?, r.text(1)?);
            let b = RequestedBinding { binding_id: r.text(2)?, account_ref: r.text(3)?, bound_on: day(r, 4)? };
            match groups.last_mut() {
                Some(g) if g.0 == seq => g.2.push(b),
                _ => groups.push((seq, id, vec![b])),
            }
        }
        if let Some(ids) = &institution_ids {
            let unknown: Vec<String> = ids.iter().filter(|id| !groups.iter().any(|g| &g.1 == *id)).cloned().collect();
            if !unknown.is_empty() {
                return Ok(Err(UnbindRefused::NotStale(unknown)));
            }
            groups.retain(|g| ids.contains(&g.1));
        }
        let existing = self.tenure_requests(&hash, start)?;
        let (now, now_unix) = (self.now_rfc3339(), self.now_unix());
        let mut out = Vec::with_capacity(groups.len());
        let mut created = 0;
        for (seq, institution_id, bindings) in groups {
            // An open request is answered again; so is a rejection of the last 30 days (asking again
            // at once would only repeat the notification).
            let earlier = existing.iter().find(|r| {
                r.institution_id == institution_id
                    && (r.state == UnbindState::Open
                        || (r.state == UnbindState::Rejected
                            && r.resolved_unix.is_some_and(|t| t > now_unix - REJECTION_STANDS_SECS)))
            });
            if let Some(earlier) = earlier {
                out.push(earlier.clone());
                continue;
            }
            created += 1;
            let id = new_id("unb");
            self.conn.exec(
                "INSERT INTO unbind_requests (id, institution_seq, number_hash, tenure_start, state, deadline, \
                 attestation_id, created_at, created_unix) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8)",
                &[
                    id.as_str().into(),
                    seq.into(),
                    hash.as_slice().into(),
                    start.packed().into(),
                    deadline.packed().into(),
                    attestation_id.into(),
                    now.as_str().into(),
                    now_unix.into(),
                ],
            )?;
            for b in &bindings {
                self.conn.exec(
                    "INSERT INTO unbind_request_bindings (request_id, binding_id, account_ref, bound_on) VALUES ($1, $2, $3, $4)",
                    &[id.as_str().into(), b.binding_id.as_str().into(), b.account_ref.as_str().into(), b.bound_on.packed().into()],
                )?;
            }
            let seq_row = self.conn.query_one(
                "INSERT INTO notifications (id, institution_seq, type, unbind_request_id, deadline, attestation, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                &[
                    new_id("ntf").into(),
                    seq.into(),
                    NotificationType::UnbindRequested.as_str().into(),
                    id.as_str().into(),
                    deadline.packed().into(),
                    // The proof states the number: sealed, so that a copy of the database does not link
                    // the institution to it.
                    self.hash_key.seal(attestation).into(),
                    now.as_str().into(),
                ],
            )?;
            let notification_seq = seq_row.ok_or_else(|| StoreError::Database("no notification seq".into()))?.i64(0)?;
            self.enqueue_deliveries(seq, notification_seq)?;
            self.audit(
                HOLDER_ACTOR,
                "unbind.requested",
                Some(&hash),
                &format!("id={id};institution={institution_id};bindings={};deadline={deadline}", bindings.len()),
            )?;
            let row = self.conn.query_one(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq WHERE r.id = $1"
                ),
                &[id.as_str().into()],
            )?;
            let mut req = request_from(&row.ok_or_else(|| StoreError::Database("request vanished".into()))?)?;
            req.bindings = bindings;
            out.push(req);
        }
        Ok(Ok((out, created)))
    }

    /// The institution's answer to a request; `Unbound` removes its bindings on the number made before
    /// the tenure. The first answer stands.
    pub(crate) fn resolve_unbind(
        &mut self,
        institution: &Participant,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Resolved, StoreError> {
        let Some(req) = request_of(self.conn.as_mut(), institution.seq, id)? else {
            return Ok(Resolved::NotFound);
        };
        if req.state != UnbindState::Open {
            return Ok(Resolved::AlreadyResolved(req));
        }
        let row = self
            .conn
            .query_one("SELECT number_hash, tenure_start FROM unbind_requests WHERE id = $1", &[id.into()])?
            .ok_or_else(|| StoreError::Database("request vanished".into()))?;
        let hash = row.opt_bytes(0).unwrap_or_default();
        let start = day(&row, 1)?;
        let (state, reason, removed) = match resolution {
            Resolution::Unbound => {
                // The notifications about these bindings are answered by this too.
                self.conn.exec(
                    "UPDATE notifications SET acked_at = $1, ack_action = 'unbound' WHERE acked_at IS NULL AND binding_id IN \
                     (SELECT id FROM bindings WHERE institution_seq = $2 AND number_hash = $3 AND bound_on < $4)",
                    &[self.now_rfc3339().into(), institution.seq.into(), hash.as_slice().into(), start.packed().into()],
                )?;
                let removed = self.conn.exec(
                    "DELETE FROM bindings WHERE institution_seq = $1 AND number_hash = $2 AND bound_on < $3",
                    &[institution.seq.into(), hash.as_slice().into(), start.packed().into()],
                )?;
                (UnbindState::Unbound, None, removed)
            }
            Resolution::Rejected(r) => (UnbindState::Rejected, Some(r.as_str()), 0),
        };
        let (now, now_unix) = (self.now_rfc3339(), self.now_unix());
        self.conn.exec(
            "UPDATE unbind_requests SET state = $1, reason = $2, resolved_at = $3, resolved_unix = $4 WHERE id = $5",
            &[state.as_str().into(), reason.into(), now.into(), now_unix.into(), id.into()],
        )?;
        self.audit(
            &institution.id,
            "unbind.resolved",
            Some(&hash),
            &format!("id={id};outcome={};reason={};removed={removed}", state.as_str(), reason.unwrap_or("")),
        )?;
        let request = request_of(self.conn.as_mut(), institution.seq, id)?
            .ok_or_else(|| StoreError::Database("request vanished".into()))?;
        Ok(Resolved::Done { request, bindings_removed: removed })
    }

    /// Closes the institution's open requests on this number whose bindings are all gone some other
    /// way (deleted, or moved to another number): they are done, as if answered `unbound`.
    pub(crate) fn close_emptied_requests(
        &mut self,
        institution: &Participant,
        number_hash: &[u8],
    ) -> Result<(), StoreError> {
        let open = self.conn.query(
            "SELECT r.id FROM unbind_requests r WHERE r.institution_seq = $1 AND r.number_hash = $2 AND r.state = 'open' \
             AND NOT EXISTS (SELECT 1 FROM bindings b WHERE b.institution_seq = r.institution_seq \
             AND b.number_hash = r.number_hash AND b.bound_on < r.tenure_start)",
            &[institution.seq.into(), number_hash.into()],
        )?;
        let (now, now_unix) = (self.now_rfc3339(), self.now_unix());
        for r in open {
            let id = r.text(0)?;
            self.conn.exec(
                "UPDATE unbind_requests SET state = 'unbound', resolved_at = $1, resolved_unix = $2 WHERE id = $3",
                &[now.as_str().into(), now_unix.into(), id.as_str().into()],
            )?;
            self.audit(
                &institution.id,
                "unbind.resolved",
                Some(number_hash),
                &format!("id={id};outcome=unbound;by=bindings_removed"),
            )?;
        }
        Ok(())
    }

    /// Institutions' checks of `n` since `since_unix` and within the current tenure, newest first, from
    /// the audit log. Checks made before the tenure concern the previous holder and are not shown.
    pub(crate) fn lookups(&mut self, n: PhoneNumber, since_unix: i64, limit: u32) -> Result<Vec<Lookup>, StoreError> {
        let tenure = Tenure::of(&self.facts(n)?);
        let Some(start) = tenure.vouched_since() else { return Ok(Vec::new()) };
        let since = jiff::Timestamp::from_second(since_unix).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let tenure_start = start.date().to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp());
        let from = match (tenure, tenure_start) {
            (Tenure::Since(_), Ok(t)) => since.max(t),
            _ => since,
        };
        let hash = self.hash_key.number(n);
        // `at` is RFC 3339 text, whose order is the time's except within one second ("…:00.5Z" sorts
        // before "…:00Z"): select from a second earlier, then compare as times.
        let rough = from.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap_or(from);
        let rough = rough.to_string();
        // Checks, from their batches (see `checklog`); KYC matches (and checks audited one by one,
        // before batches), from their own records.
        let mut found: Vec<(i64, String, String, String)> = self
            .check_batches_with(&self.hash_key.tag(n), &rough, limit)?
            .into_iter()
            .map(|(seq, at, name)| (seq, name, at, "check".to_string()))
            .collect();
        let rows = self.conn.query(
            "SELECT a.seq, p.name, a.at, a.action FROM audit a JOIN participants p ON p.id = a.actor \
             WHERE a.subject = $1 AND a.action IN ('check', 'kyc.match') AND a.at >= $2 \
             ORDER BY a.seq DESC LIMIT $3",
            &[hash.as_slice().into(), rough.as_str().into(), i64::from(limit).into()],
        )?;
        for r in &rows {
            found.push((r.i64(0)?, r.text(1)?, r.text(2)?, r.text(3)?));
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let mut out = Vec::with_capacity(found.len().min(limit as usize));
        for (_, institution_name, at, action) in found {
            if out.len() == limit as usize {
                break;
            }
            if at.parse::<jiff::Timestamp>().is_ok_and(|t| t >= from) {
                out.push(Lookup { institution_name, at, action });
            }
        }
        Ok(out)
    }

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
            &[now.into(), (now + publish_secs).into()],
        )?;
        self.conn.exec(
            "INSERT INTO attestation_keys (kid, public_key, created_at) VALUES ($1, $2, $3)",
            &[kid.into(), public_key.as_slice().into(), now.into()],
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
