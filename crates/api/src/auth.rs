//! Authentication by API key (`Authorization: Bearer <key>`) and role checks.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use store::{Participant, Role};

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
