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
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// The table. Adding a code means adding a row here, nowhere else.
    pub const ALL: [(ErrorCode, u16, &'static str); 19] = [
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
        (ErrorCode::Internal, 500, "INTERNAL"),
        (ErrorCode::Unavailable, 503, "UNAVAILABLE"),
    ];

    fn row(self) -> (u16, &'static str) {
        let (_, status, s) = Self::ALL.iter().find(|(c, _, _)| *c == self).expect("every code has a row in ALL");
        (*status, s)
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
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Closed => ApiError::new(ErrorCode::Unavailable, "the service is shutting down"),
            other => ApiError::internal(other),
        }
    }
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
