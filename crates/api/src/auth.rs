//! Authentication: participants by API key (`Authorization: Bearer <key>`) with role checks, and
//! holders by a short-lived session token scoped to one number.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::PhoneNumber;
use store::{HashKey, Participant, Role};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller(pub Participant);

/// Longest key we look at; anything longer cannot be one of ours.
const KEY_BYTES_MAX: usize = 128;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = |m: &str| ApiError::new(ErrorCode::Unauthenticated, m);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthenticated("the Authorization header is missing: expected \"Bearer <api key>\""))?;
        let value = header.to_str().map_err(|_| unauthenticated("the Authorization header is not valid"))?;
        let key = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= KEY_BYTES_MAX)
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
/// The token is `nlh_<digits>.<expiry>.<MAC>`: a MAC under the hash key, so it needs no storage and
/// cannot be made for another number or a longer life.
#[derive(Clone, Copy, Debug)]
pub struct Holder(pub PhoneNumber);

const HOLDER_PREFIX: &str = "nlh_";

fn holder_mac(key: &HashKey, payload: &str) -> [u8; 32] {
    key.mac(format!("holder-session:{payload}").as_bytes())
}

/// A session token for the holder of `n`, valid until `exp` (unix seconds).
pub fn holder_token(key: &HashKey, n: PhoneNumber, exp: i64) -> String {
    let payload = format!("{}.{exp}", n.digits());
    format!("{HOLDER_PREFIX}{payload}.{}", B64.encode(holder_mac(key, &payload)))
}

impl FromRequestParts<AppState> for Holder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = |m: &str| ApiError::new(ErrorCode::Unauthenticated, m);
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.len() <= KEY_BYTES_MAX)
            .and_then(|t| t.strip_prefix(HOLDER_PREFIX))
            .ok_or_else(|| {
                unauthenticated("expected \"Authorization: Bearer nlh_…\", a holder token from POST /v1/holder/session")
            })?;
        let invalid = || unauthenticated("the holder token is not valid or has expired: ask for a new code");
        let (payload, mac) = token.rsplit_once('.').ok_or_else(invalid)?;
        let mac = B64.decode(mac).map_err(|_| invalid())?;
        let expected = holder_mac(&state.holder.session_key, payload);
        if !bool::from(expected.as_slice().ct_eq(mac.as_slice())) {
            return Err(invalid());
        }
        let (digits, exp) = payload.split_once('.').ok_or_else(invalid)?;
        let exp: i64 = exp.parse().map_err(|_| invalid())?;
        if exp <= state.store.clock().now().as_second() {
            return Err(invalid());
        }
        let n = PhoneNumber::parse(&format!("+{digits}")).map_err(|_| invalid())?;
        Ok(Holder(n))
    }
}
