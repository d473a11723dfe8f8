//! The one table of API error codes: each code has one HTTP status and one stable string. Every
//! error body is `{"status", "code", "message"}` (CAMARA's `ErrorInfo`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    OutOfRange,
    TooManyItems,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Gone,
    IdentifierNotFound,
    PayloadTooLarge,
    RequestTimeout,
    MissingIdentifier,
    Conflict,
    TooManyRequests,
    OtpVerificationFailed,
    OtpVerificationExpired,
    KycInvalidParamCombination,
    KycMismatch,
    ServiceNotApplicable,
    Internal,
    Unavailable,
    PositionNotReached,
}

impl ErrorCode {
    /// The table, for the OpenAPI document and the tests; `ErrorCode::row` is the same table as a
    /// `match`, checked against this one by a test.
    pub const ALL: [(ErrorCode, u16, &'static str); 21] = [
        (ErrorCode::InvalidArgument, 400, "INVALID_ARGUMENT"),
        (ErrorCode::OutOfRange, 400, "OUT_OF_RANGE"),
        (ErrorCode::TooManyItems, 400, "TOO_MANY_ITEMS"),
        (ErrorCode::Unauthenticated, 401, "UNAUTHENTICATED"),
        (ErrorCode::PermissionDenied, 403, "PERMISSION_DENIED"),
        (ErrorCode::NotFound, 404, "NOT_FOUND"),
        (ErrorCode::Gone, 410, "GONE"),
        (ErrorCode::IdentifierNotFound, 404, "IDENTIFIER_NOT_FOUND"),
        (ErrorCode::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
        (ErrorCode::RequestTimeout, 408, "REQUEST_TIMEOUT"),
        (ErrorCode::MissingIdentifier, 422, "MISSING_IDENTIFIER"),
        (ErrorCode::Conflict, 409, "CONFLICT"),
        (ErrorCode::TooManyRequests, 429, "TOO_MANY_REQUESTS"),
        (ErrorCode::OtpVerificationFailed, 400, "OTP_VERIFICATION_FAILED"),
        (ErrorCode::OtpVerificationExpired, 400, "OTP_VERIFICATION_EXPIRED"),
        (ErrorCode::KycInvalidParamCombination, 400, "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION"),
        (ErrorCode::KycMismatch, 422, "KYC_MISMATCH"),
        (ErrorCode::ServiceNotApplicable, 422, "SERVICE_NOT_APPLICABLE"),
        (ErrorCode::Internal, 500, "INTERNAL"),
        (ErrorCode::Unavailable, 503, "UNAVAILABLE"),
        (ErrorCode::PositionNotReached, 503, "POSITION_NOT_REACHED"),
    ];

    fn row(self) -> (u16, &'static str) {
        // Exhaustive: a new code does not compile without its row. `ALL` lists the same rows for
        // the OpenAPI document and the tests, which check the two agree.
        match self {
            ErrorCode::InvalidArgument => (400, "INVALID_ARGUMENT"),
            ErrorCode::OutOfRange => (400, "OUT_OF_RANGE"),
            ErrorCode::TooManyItems => (400, "TOO_MANY_ITEMS"),
            ErrorCode::Unauthenticated => (401, "UNAUTHENTICATED"),
            ErrorCode::PermissionDenied => (403, "PERMISSION_DENIED"),
            ErrorCode::NotFound => (404, "NOT_FOUND"),
            ErrorCode::Gone => (410, "GONE"),
            ErrorCode::IdentifierNotFound => (404, "IDENTIFIER_NOT_FOUND"),
            ErrorCode::PayloadTooLarge => (413, "PAYLOAD_TOO_LARGE"),
            ErrorCode::RequestTimeout => (408, "REQUEST_TIMEOUT"),
            ErrorCode::MissingIdentifier => (422, "MISSING_IDENTIFIER"),
            ErrorCode::Conflict => (409, "CONFLICT"),
            ErrorCode::TooManyRequests => (429, "TOO_MANY_REQUESTS"),
            ErrorCode::OtpVerificationFailed => (400, "OTP_VERIFICATION_FAILED"),
            ErrorCode::OtpVerificationExpired => (400, "OTP_VERIFICATION_EXPIRED"),
            ErrorCode::KycInvalidParamCombination => (400, "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION"),
            ErrorCode::KycMismatch => (422, "KYC_MISMATCH"),
            ErrorCode::ServiceNotApplicable => (422, "SERVICE_NOT_APPLICABLE"),
            ErrorCode::Internal => (500, "INTERNAL"),
            ErrorCode::Unavailable => (503, "UNAVAILABLE"),
            ErrorCode::PositionNotReached => (503, "POSITION_NOT_REACHED"),
        }
    }

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.row().0).expect("the table holds valid statuses")
    }

    pub fn as_str(self) -> &'static str {
        self.row().1
    }
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorInfo {
    /// The HTTP status.
    pub status: u16,
    /// A stable upper-snake-case code.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (a 429).
    pub retry_after_secs: Option<i64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), retry_after_secs: None }
    }

    pub fn with_retry_after(mut self, secs: i64) -> ApiError {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidArgument, message)
    }

    /// A failure of ours: the client gets "internal error", the log gets the detail.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }

    /// A failure writing the server's own files (an upload spooled): a full disk is `503 UNAVAILABLE`
    /// as the database away is (nothing was kept; send it again later), anything else internal.
    pub fn io(e: std::io::Error) -> ApiError {
        if e.kind() == std::io::ErrorKind::StorageFull {
            ApiError::from(store::StoreError::Unavailable { reason: format!("the spool's disk is full: {e}") })
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<store::StoreError> for ApiError {
    /// Each kind of store error has its answer; a new kind does not compile until it has one.
    fn from(e: store::StoreError) -> Self {
        use store::StoreError as E;
        match e {
            E::NotFound { .. } => ApiError::new(ErrorCode::NotFound, e.to_string()),
            E::Conflict { .. } => ApiError::new(ErrorCode::Conflict, e.to_string()),
            E::Limit { .. } => ApiError::new(ErrorCode::TooManyItems, e.to_string()),
            E::Invalid { message, .. } => ApiError::invalid(message),
            E::Unavailable { reason } => {
                tracing::warn!(%reason, "the store is unavailable");
                ApiError::new(ErrorCode::Unavailable, "the service is unavailable; try again shortly")
            }
            E::Panicked | E::Database { .. } | E::Corrupt(_) | E::Open { .. } => ApiError::internal(error_chain(&e)),
        }
    }
}

/// An error with its sources, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorInfo { status: status.as_u16(), code: self.code.as_str().to_string(), message: self.message };
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_the_match_agree() {
        for (code, status, s) in ErrorCode::ALL {
            assert_eq!((code.status().as_u16(), code.as_str()), (status, s));
        }
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|r| r.2).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "each code once");
    }

    #[test]
    fn store_errors_are_answered_by_kind() {
        use store::StoreError as E;
        let cases = [
            (E::NotFound { what: "job", id: "job_1".into() }, 404, "NOT_FOUND"),
            (E::Conflict { what: "prefix +86138".into(), with: "Carrier A".into() }, 409, "CONFLICT"),
            (E::Limit { limit: "webhook_endpoints_max", max: 10, what: "endpoints" }, 400, "TOO_MANY_ITEMS"),
            (E::invalid("HASH_KEY", "no"), 400, "INVALID_ARGUMENT"),
            (E::closed(), 503, "UNAVAILABLE"),
            (E::Panicked, 500, "INTERNAL"),
            (E::database("disk I/O error"), 500, "INTERNAL"),
            (E::Corrupt("column 1".into()), 500, "INTERNAL"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.code.status().as_u16(), api.code.as_str()), (status, code));
            if status == 500 {
                assert_eq!(api.message, "internal error", "a 5xx says no more");
            }
        }
    }
}
