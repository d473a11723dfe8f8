//! Authentication: participants by API key (`Authorization: Bearer <key>`) with role checks, and
//! holders by a short-lived session token scoped to one number.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use store::{Participant, Role};

use crate::error::{ApiError, ErrorCode};
use crate::holder::{self, Holder};
use crate::state::AppState;

/// A request whose API key was looked up on the way in (`admit`) and is not valid (unknown or
/// revoked): its handler answers 401 without looking it up again.
#[derive(Clone, Copy, Debug)]
pub struct KeyRefused;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller(pub Participant);

const KEY_NOT_VALID: &str = "the API key is not valid, or was revoked";

/// Longest key we look at; anything longer cannot be one of ours.
pub(crate) const KEY_BYTES_MAX: usize = 128;

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
        // Looked up already, on the way in (`admit`).
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        if parts.extensions.get::<KeyRefused>().is_some() {
            return Err(unauthenticated(KEY_NOT_VALID));
        }
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
            None => Err(unauthenticated(KEY_NOT_VALID)),
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

/// A holder's session from `Authorization: Bearer nlh_…` (the portal's pages read it from their
/// cookie instead; both through `holder::authenticate`).
impl FromRequestParts<AppState> for Holder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token =
            parts.headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(bearer).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "expected \"Authorization: Bearer nlh_…\", a holder token from POST /v1/holder/session",
                )
            })?;
        Ok(holder::authenticate(state, token).await?)
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
