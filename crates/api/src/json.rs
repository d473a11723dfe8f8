//! Strict JSON bodies: unknown fields, wrong types, a missing or empty body and oversized bodies are
//! all `400 INVALID_ARGUMENT` (or `413 PAYLOAD_TOO_LARGE`) with a message that says what is wrong. Query
//! strings likewise ([`StrictQuery`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub struct StrictJson<T>(pub T);

/// A query string parsed into `T`: an unknown parameter or a wrong type is `400 INVALID_ARGUMENT` in
/// the API's error body (axum's own `Query` answers in plain text).
pub struct StrictQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| StrictQuery(q.0)).map_err(|e| {
            let why = e.body_text();
            let why = why.strip_prefix("Failed to deserialize query string: ").unwrap_or(&why);
            ApiError::invalid(format!("the query string is not valid: {why}"))
        })
    }
}

/// A JSON body read but not yet parsed, for a handler that parses it borrowing its strings (a batch
/// of a thousand items would otherwise allocate two thousand of them). Parse it with [`parse`].
pub struct JsonBody {
    pub bytes: Bytes,
    pub is_json: bool,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (is_json, bytes) = read(req, state).await?;
        Ok(JsonBody { bytes, is_json })
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (is_json, body) = read(req, state).await?;
        parse(&body, is_json).map(StrictJson)
    }
}

/// The body, within the size limit, and whether it says it is JSON.
async fn read(req: Request, state: &AppState) -> Result<(bool, Bytes), ApiError> {
    let limit = state.limits.body_bytes_max;
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    let deadline = std::time::Duration::from_millis(state.limits.json_body_timeout_ms);
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(req.into_body(), limit));
    let body = read.await.map_err(|_| crate::serve::body_timed_out())?.map_err(|e| {
        if crate::serve::is_body_timeout(&e) {
            return crate::serve::body_timed_out();
        }
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes (body_bytes_max)"),
        )
    })?;
    Ok((is_json, body))
}

pub fn parse<'a, T: Deserialize<'a>>(body: &'a Bytes, is_json: bool) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("the request body is missing: expected a JSON object"));
    }
    if !is_json {
        return Err(ApiError::invalid("the request body must be JSON: set Content-Type: application/json"));
    }
    // serde would also read a struct from a JSON array of its fields; the API takes objects only.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("the request body is not valid: {e}")))
}
