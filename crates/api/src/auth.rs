//! Authentication: participants by API key (`Authorization: Bearer <key>`) with role checks, and
//! holders by a short-lived session token scoped to one number.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::PhoneNumber;
use store::{HashKey, Participant, Role, TenureMark};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller(pub Participant);

/// Longest key we look at; anything longer cannot be one of ours.
const KEY_BYTES_MAX: usize = 128;

/// The credentials of an `Authorization: Bearer <credentials>` header. The scheme is
/// case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|c| !c.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = |m: &str| ApiError::new(ErrorCode::Unauthenticated, m);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthenticated("the Authorization header is missing: expected \"Bearer <api key>\""))?;
        let value = header.to_str().map_err(|_| unauthenticated("the Authorization header is not valid"))?;
        let key = bearer(value)
            .filter(|k| k.len() <= KEY_BYTES_MAX)
            .ok_or_else(|| unauthenticated("the Authorization header must be \"Bearer <api key>\""))?;
        match state.store.authenticate(key).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(unauthenticated("the API key is not valid, or was revoked")),
        }
    }
}

impl Caller {
    /// Allows the call only for the given roles.
    pub fn require(&self, roles: &[Role]) -> Result<&Participant, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "the role \"{}\" may not call this operation: it is for {}",
                    self.0.role.as_str(),
                    allowed.join(" or ")
                ),
            ))
        }
    }
}

/// A holder who proved possession of one number with a one-time code (`Authorization: Bearer nlh_…`).
/// The token seals (ChaCha20-Poly1305 under a key derived from the hash key) the number, an expiry and
/// the mark of the tenure the code was requested in (`store::TenureMark`: the number's changes of
/// holder, so a second change on the same day counts): it needs no storage, cannot be read, altered or
/// made for another number, and stops working when the number changes hands.
#[derive(Clone, Copy, Debug)]
pub struct Holder(pub PhoneNumber, pub TenureMark);

const HOLDER_PREFIX: &str = "nlh_";
const HOLDER_PURPOSE: &str = "holder-session";
/// Longest holder token we look at.
const HOLDER_TOKEN_BYTES_MAX: usize = 256;

/// A session token for the holder of `n` in the tenure `mark`, valid until `exp` (unix seconds).
pub fn holder_token(key: &HashKey, n: PhoneNumber, mark: TenureMark, exp: i64) -> String {
    format!("{HOLDER_PREFIX}{}", key.seal(&format!("{HOLDER_PURPOSE}|{}|{exp}|{}", n.digits(), mark.to_hex())))
}

/// A holder's session met a change of holder: it is over.
pub fn hands_changed() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "the number changed hands since you signed in: this session is over; a new code proves whether it is yours",
    )
}

impl FromRequestParts<AppState> for Holder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = |m: &str| ApiError::new(ErrorCode::Unauthenticated, m);
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer)
            .filter(|t| t.len() <= HOLDER_TOKEN_BYTES_MAX)
            .and_then(|t| t.strip_prefix(HOLDER_PREFIX))
            .ok_or_else(|| {
                unauthenticated("expected \"Authorization: Bearer nlh_…\", a holder token from POST /v1/holder/session")
            })?;
        let invalid = || unauthenticated("the holder token is not valid or has expired: ask for a new code");
        let payload = state.holder.session_key.unseal(token).map_err(|_| invalid())?;
        let mut fields = payload.split('|');
        let (Some(HOLDER_PURPOSE), Some(digits), Some(exp), Some(mark), None) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid());
        };
        let exp: i64 = exp.parse().map_err(|_| invalid())?;
        if exp <= state.store.clock().now().as_second() {
            return Err(invalid());
        }
        let n = PhoneNumber::parse(&format!("+{digits}")).map_err(|_| invalid())?;
        let mark = TenureMark::from_hex(mark).ok_or_else(invalid)?;
        // The number changed hands (or was disconnected) since the code was requested: the session is
        // over.
        if state.store.tenure_mark(n).await? != mark {
            return Err(hands_changed());
        }
        Ok(Holder(n, mark))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer nlk_x", "bearer nlk_x", "BEARER  nlk_x ", "bEaReR nlk_x"] {
            assert_eq!(super::bearer(v), Some("nlk_x"), "{v:?}");
        }
        for v in ["Bearer", "Bearer ", "Basic nlk_x", "Bearernlk_x", "nlk_x"] {
            assert_eq!(super::bearer(v), None, "{v:?}");
        }
    }
}
