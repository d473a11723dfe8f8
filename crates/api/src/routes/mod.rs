//! HTTP handlers, one module per resource. Handlers parse at the edge into domain types, call the
//! store, and map outcomes to wire types; they hold no rules of their own.

pub mod bindings;
pub mod camara;
pub mod checks;
pub mod events;
pub mod files;
pub mod holder;
pub mod kyc;
pub mod notifications;
pub mod ops;
pub mod reports;
pub mod sms;
pub mod unbind;
pub mod webhooks;

use domain::{Day, PhoneNumber};

use crate::error::ApiError;

/// Parses a phone number field, naming the field in the error.
pub(crate) fn phone(field: &str, v: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(v).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}

/// Parses a date field, naming the field in the error.
pub(crate) fn date(field: &str, v: &str) -> Result<Day, ApiError> {
    Day::parse(v).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}
