//! The holder's side, once: sending a code, trading it for a session, reading a session token, the
//! institutions holding bindings made before the tenure, unbind requests, lookups and the proof of
//! tenure. The JSON API (`routes::holder`) and the portal's pages (`web::portal`) both call these
//! functions, so the limits, the non-enumeration and the tenure checks are the same for both; each
//! turns a [`Refusal`] into its own answer (an `ApiError`, or a page that says what to do next).

use std::net::IpAddr;

use domain::holder::held_since_claim;
use domain::{Day, PhoneNumber};
use store::{
    ChallengeId, HashKey, Lookup, OtpFailure, OtpRefused, ParticipantId, StaleHolder, StoreError, TenureMark,
    UnbindRefused, UnbindRequest,
};
use workers::SmsMessage;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Bytes of a challenge id.
pub const CHALLENGE_ID_BYTES_MAX: usize = 64;
/// What every holder session token starts with.
pub const HOLDER_PREFIX: &str = "nlh_";
const HOLDER_PURPOSE: &str = "holder-session";
/// Longest holder token looked at.
pub const HOLDER_TOKEN_BYTES_MAX: usize = 256;

/// A holder who proved possession of one number with a one-time code. Their session token seals
/// (ChaCha20-Poly1305 under a key derived from the hash key) the number, an expiry and the mark of the
/// tenure the code was requested in (`store::TenureMark`: the number's changes of holder, so a second
/// change on the same day counts): it needs no storage, cannot be read, altered or made for another
/// number, and stops working when the number changes hands.
#[derive(Clone, Copy, Debug)]
pub struct Holder(pub PhoneNumber, pub TenureMark);

/// Why the holder's side refused, in terms both faces can word.
#[derive(Debug)]
pub enum Refusal {
    /// A field of the wrong form; the message says which and how.
    Invalid(String),
    /// Too many code requests from this client address, to any numbers (`per_hour` allowed).
    ClientLimited {
        retry_after_secs: i64,
        per_hour: u32,
    },
    /// Too many codes for this number from this client address.
    SendsLimited {
        retry_after_secs: i64,
        per_hour: u32,
        per_day: u32,
    },
    /// Too many codes for this number today, from all addresses.
    NumberCeiling {
        retry_after_secs: i64,
        per_day: u32,
    },
    /// Too many wrong codes in a row: the number is locked.
    Locked {
        retry_after_secs: i64,
    },
    /// No carrier's range in numlink holds the number.
    NotCovered,
    /// Wrong code; this many tries are left on the challenge.
    WrongCode {
        attempts_left: u32,
    },
    /// The challenge is unknown, expired or used.
    CodeExpired,
    /// The challenge took all its tries.
    OutOfTries,
    /// The number changed hands after the code was sent: the code proves nothing now.
    CodeStale,
    /// No session token, or one that is not valid or has expired.
    SessionEnded,
    /// The number changed hands since the session began.
    HandsChanged,
    /// Nobody holds the number now.
    NobodyHolds,
    /// No institution holds a binding made before the tenure (of those named, if named).
    NothingToUnbind,
    /// These named institutions hold no binding made before the tenure.
    NotStale(Vec<String>),
    /// More institutions named than one request takes.
    TooManyInstitutions {
        named: usize,
        max: usize,
    },
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Store(e)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let locked = |retry: i64| {
            ApiError::new(ErrorCode::TooManyRequests, "too many wrong codes: the number is locked for a day")
                .with_retry_after(retry)
        };
        match r {
            Refusal::Invalid(m) => ApiError::invalid(m),
            Refusal::ClientLimited { retry_after_secs, per_hour } => ApiError::new(
                ErrorCode::TooManyRequests,
                format!("too many code requests from this address: at most {per_hour} per hour"),
            )
            .with_retry_after(retry_after_secs),
            Refusal::SendsLimited { retry_after_secs, per_hour, per_day } => ApiError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "too many codes for this number from your address: at most {per_hour} per hour and {per_day} per day"
                ),
            )
            .with_retry_after(retry_after_secs),
            Refusal::NumberCeiling { retry_after_secs, per_day } => ApiError::new(
                ErrorCode::TooManyRequests,
                format!("too many codes for this number today, from all addresses: at most {per_day} per day"),
            )
            .with_retry_after(retry_after_secs),
            Refusal::Locked { retry_after_secs } => locked(retry_after_secs),
            Refusal::NotCovered => ApiError::new(
                ErrorCode::ServiceNotApplicable,
                "no carrier's range in numlink holds this number: numlink cannot send it a code",
            ),
            Refusal::WrongCode { attempts_left } => ApiError::new(
                ErrorCode::OtpVerificationFailed,
                format!("the code is not right: {attempts_left} more tries on this challenge"),
            ),
            Refusal::CodeExpired => ApiError::new(
                ErrorCode::OtpVerificationExpired,
                "the challenge is unknown, expired, or used: ask for a new code",
            ),
            Refusal::OutOfTries => ApiError::new(
                ErrorCode::OtpVerificationExpired,
                "the challenge is out of tries: ask for a new code",
            ),
            Refusal::CodeStale => ApiError::new(
                ErrorCode::OtpVerificationExpired,
                "the number changed hands since this code was sent: it proves nothing now; ask for a new code",
            ),
            Refusal::SessionEnded => ApiError::new(
                ErrorCode::Unauthenticated,
                "the holder token is not valid or has expired: ask for a new code",
            ),
            Refusal::HandsChanged => ApiError::new(
                ErrorCode::Unauthenticated,
                "the number changed hands since you signed in: this session is over; a new code proves whether it is yours",
            ),
            Refusal::NobodyHolds => ApiError::new(ErrorCode::NotFound, "nobody holds this number now"),
            Refusal::NothingToUnbind => {
                ApiError::new(ErrorCode::NotFound, "no institution holds a binding made before your tenure")
            }
            Refusal::NotStale(ids) => {
                let shown: Vec<String> = ids.iter().map(|s| domain::number::truncate_for_message(s)).collect();
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("no binding made before your tenure is held by: {}", shown.join(", ")),
                )
            }
            Refusal::TooManyInstitutions { named, max } => ApiError::new(
                ErrorCode::TooManyItems,
                format!("{named} institutions: at most {max} per call (unbind_institutions_max)"),
            ),
            Refusal::Store(e) => e.into(),
        }
    }
}

/// A challenge sent: the code is on its way (if anyone holds the number).
pub struct CodeSent {
    pub challenge_id: ChallengeId,
    pub expires_in_secs: i64,
}

fn sms_text(code: &str, ttl_secs: i64) -> String {
    format!(
        "{code} is your numlink code. It expires in {} minutes. Never share it: numlink, banks and carriers will never ask you for it.",
        ttl_secs / 60
    )
}

/// Counts a code request from the client address `client` (when known) against its hourly limit, to
/// any numbers: called first, before the number is read, so that a flood of malformed requests counts
/// too (SMS pumping, or exhausting others' daily codes).
pub async fn client_allowed(state: &AppState, client: Option<IpAddr>) -> Result<(), Refusal> {
    let Some(ip) = client else { return Ok(()) };
    state.holder.otp_clients.check(&state.store, ip).await?.map_err(|retry_after_secs| Refusal::ClientLimited {
        retry_after_secs,
        per_hour: state.holder.config.otp_requests_per_client_per_hour_max,
    })
}

/// Sends a one-time code to `n`, within the limits of the number for the client address `client` (when
/// known; `client_allowed` has counted the request). The answer is the same whether or not anyone holds
/// the number.
pub async fn send_code(state: &AppState, client: Option<IpAddr>, n: PhoneNumber) -> Result<CodeSent, Refusal> {
    let config = &state.holder.config;
    let client_ip = client.map(crate::limit::client_key);
    let limits = config.otp;
    let client_bytes = client_ip.map(|ip| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    });
    let issued = state.store.request_otp(n, limits, client_bytes).await?.map_err(|refused| match refused {
        OtpRefused::TooManySends { retry_after_secs } => Refusal::SendsLimited {
            retry_after_secs,
            per_hour: limits.sends_per_hour_max,
            per_day: limits.sends_per_day_max,
        },
        OtpRefused::NumberCeiling { retry_after_secs } => {
            Refusal::NumberCeiling { retry_after_secs, per_day: limits.sends_per_number_per_day_max }
        }
        OtpRefused::Locked { retry_after_secs } => Refusal::Locked { retry_after_secs },
        OtpRefused::NotCovered => Refusal::NotCovered,
    })?;
    let to_file = state.holder.sms.to_file();
    if issued.held && (issued.gateway.is_some() || to_file) {
        let expires_at = state.store.clock().now().as_second() + limits.ttl_secs;
        state
            .holder
            .sms
            .push(SmsMessage {
                phone_number: n.to_string(),
                text: sms_text(&issued.code, limits.ttl_secs),
                gateway: issued.gateway,
                expires_at,
            })
            // The database went away between the challenge and its code: the caller hears 503 and
            // asks again (a new challenge and code), rather than wait for a code that never comes.
            .await?;
    }
    Ok(CodeSent { challenge_id: issued.challenge_id, expires_in_secs: limits.ttl_secs })
}

/// A holder's session: the token to present, and until when (unix seconds).
pub struct Session {
    pub token: String,
    pub number: PhoneNumber,
    pub expires_at: i64,
}

/// Trades a code for a session. Wrong guesses count against the challenge and the number.
pub async fn sign_in(state: &AppState, n: PhoneNumber, challenge_id: &str, code: &str) -> Result<Session, Refusal> {
    if challenge_id.is_empty() || challenge_id.len() > CHALLENGE_ID_BYTES_MAX {
        return Err(Refusal::Invalid(format!("challengeId must be 1 to {CHALLENGE_ID_BYTES_MAX} bytes")));
    }
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Invalid("code must be the 6 digits of the SMS".into()));
    }
    let limits = state.holder.config.otp;
    // A challenge id of no form numlink issues names no challenge: answered as an unknown one.
    let outcome = match ChallengeId::parse(challenge_id) {
        Some(c) => state.store.verify_otp(n, &c, code, limits).await?,
        None => Err(OtpFailure::Expired),
    };
    let mark = outcome.map_err(|f| match f {
        OtpFailure::Wrong { attempts_left } => Refusal::WrongCode { attempts_left },
        OtpFailure::Expired => Refusal::CodeExpired,
        OtpFailure::OutOfTries => Refusal::OutOfTries,
        OtpFailure::TenureChanged => Refusal::CodeStale,
        OtpFailure::Locked { retry_after_secs } => Refusal::Locked { retry_after_secs },
    })?;
    let expires_at = state.store.clock().now().as_second() + state.holder.config.session_secs;
    let token = session_token(&state.holder.session_key, n, mark, expires_at);
    Ok(Session { token, number: n, expires_at })
}

/// A session token for the holder of `n` in the tenure `mark`, until `expires_at` (unix seconds):
/// what [`read_session`] reads. Issued only once a code proved possession ([`sign_in`]).
pub fn session_token(key: &HashKey, n: PhoneNumber, mark: TenureMark, expires_at: i64) -> String {
    format!("{HOLDER_PREFIX}{}", key.seal(&format!("{HOLDER_PURPOSE}|{}|{expires_at}|{}", n.digits(), mark.to_hex())))
}

/// The number and tenure a session token was issued for, if it opens under `key` (it was issued by
/// numlink, unaltered) and has not expired at `now` (unix seconds). Whether the number has changed
/// hands since is [`authenticate`]'s to ask.
pub fn read_session(key: &HashKey, token: &str, now: i64) -> Option<(PhoneNumber, TenureMark)> {
    let sealed = Some(token).filter(|t| t.len() <= HOLDER_TOKEN_BYTES_MAX)?.strip_prefix(HOLDER_PREFIX)?;
    let payload = key.unseal(sealed).ok()?;
    let mut fields = payload.split('|');
    let (Some(HOLDER_PURPOSE), Some(digits), Some(exp), Some(mark), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let exp: i64 = exp.parse().ok()?;
    if exp <= now {
        return None;
    }
    let n = PhoneNumber::parse(&format!("+{digits}")).ok()?;
    Some((n, TenureMark::from_hex(mark)?))
}

/// The holder a session token stands for, if it is valid, unexpired, and the number has not changed
/// hands since.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Holder, Refusal> {
    let now = state.store.clock().now().as_second();
    let (n, mark) = read_session(&state.holder.session_key, token, now).ok_or(Refusal::SessionEnded)?;
    // The number changed hands (or was disconnected) since the code was requested: the session is over.
    if state.store.tenure_mark(n).await? != mark {
        return Err(Refusal::HandsChanged);
    }
    Ok(Holder(n, mark))
}

/// The institutions holding bindings made before the tenure (and those asked, with their request),
/// and today, by which a request is overdue or not.
pub async fn institutions(state: &AppState, h: Holder) -> Result<(Vec<StaleHolder>, Day), Refusal> {
    let view = state.store.holder_view(h.0, h.1).await?.ok_or(Refusal::HandsChanged)?;
    Ok((view.institutions, state.store.today()))
}

/// What an unbind call did.
pub struct Asked {
    /// A request per institution asked: the new ones, and those that stand (open, or a rejection
    /// still in force), given back.
    pub requests: Vec<UnbindRequest>,
    /// How many of them are new.
    pub created: usize,
    pub today: Day,
}

/// Asks the institutions named (`None`: all) holding bindings made before the tenure to unbind. Each
/// is notified with the holder's proof of tenure and has until the deadline to answer; asking again
/// while a request stands (`UnbindRequest::stands`) gives that request.
pub async fn ask_unbind(state: &AppState, h: Holder, named: Option<Vec<String>>) -> Result<Asked, Refusal> {
    let Holder(n, mark) = h;
    let ids = match named {
        Some(ids) => {
            let max = state.limits.unbind_institutions_max;
            if ids.len() > max {
                return Err(Refusal::TooManyInstitutions { named: ids.len(), max });
            }
            // An id of no form numlink issues names no institution holding a stale binding.
            let malformed: Vec<String> = ids.iter().filter(|id| ParticipantId::parse(id).is_none()).cloned().collect();
            if !malformed.is_empty() {
                return Err(Refusal::NotStale(malformed));
            }
            Some(ids.iter().filter_map(|id| ParticipantId::parse(id)).collect::<Vec<_>>())
        }
        None => None,
    };
    let today = state.store.today();
    let since = state.store.tenure(n).await?.vouched_since().ok_or(Refusal::NobodyHolds)?;
    let attestation = state.holder.attester.issue(&state.store, n, held_since_claim(since, today)).await?;
    let deadline = deadline_for(state, n, today);
    let (requests, created) = match state.store.request_unbind(n, mark, ids.clone(), deadline, attestation).await? {
        Ok(r) => r,
        Err(UnbindRefused::TenureChanged) => return Err(Refusal::HandsChanged),
        Err(UnbindRefused::NoTenure) if ids.is_none() => (Vec::new(), 0),
        Err(UnbindRefused::NoTenure) => return Err(Refusal::NothingToUnbind),
        Err(UnbindRefused::NotStale(unknown)) => return Err(Refusal::NotStale(unknown)),
    };
    state.deliveries_wake.notify_one();
    Ok(Asked { requests, created, today })
}

/// The day by which an institution asked today to unbind `n` is to answer.
pub fn deadline_for(state: &AppState, n: PhoneNumber, today: Day) -> Day {
    domain::unbind::deadline(today, state.holder.config.unbind_deadline_working_days.days_for(n))
}

/// The holder's unbind requests of this tenure, and today.
pub async fn requests(state: &AppState, h: Holder) -> Result<(Vec<UnbindRequest>, Day), Refusal> {
    let today = state.store.today();
    let requests = state.store.holder_requests(h.0, h.1).await?.ok_or(Refusal::HandsChanged)?;
    Ok((requests, today))
}

/// Who looked the number up (checks and real-name matches) in the configured window, none from before
/// the tenure, newest first.
pub async fn lookups(state: &AppState, h: Holder) -> Result<Vec<Lookup>, Refusal> {
    let since = state.store.clock().now().as_second() - state.holder.config.lookups_days * 86_400;
    state.store.lookups(h.0, h.1, since, state.limits.lookups_listed_max).await?.ok_or(Refusal::HandsChanged)
}

/// A signed proof of tenure.
pub struct Proof {
    /// The compact JWS.
    pub token: String,
    pub number: PhoneNumber,
    /// What it states: held since this day at the latest.
    pub held_since: Day,
    /// Unix seconds.
    pub expires_at: i64,
    pub issuer: String,
}

/// Issues a proof of tenure, handed out only if the number did not change hands meanwhile.
pub async fn proof(state: &AppState, h: Holder) -> Result<Proof, Refusal> {
    let Holder(n, mark) = h;
    let since = state.store.tenure(n).await?.vouched_since().ok_or(Refusal::NobodyHolds)?;
    let held_since = held_since_claim(since, state.store.today());
    let issued = state.holder.attester.issue(&state.store, n, held_since).await?;
    if !state.store.attestation_issued(n, mark, issued.clone()).await? {
        return Err(Refusal::HandsChanged);
    }
    Ok(Proof {
        token: issued.token,
        number: n,
        held_since,
        expires_at: issued.exp,
        issuer: state.holder.config.issuer.clone(),
    })
}
