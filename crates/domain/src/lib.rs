//! The words and rules of numlink as pure functions: phone numbers, calendar days, lifecycle events,
//! the order of a number's history (R1), the answer to "has this number changed hands since D?" (R2),
//! the validation of a new event (R3), which events notify which binding (R4), the holder's tenure
//! and the clock of unbind requests (R5). The rules are stated in `docs/rules.md`, each naming the
//! function here that keeps it.
//!
//! This crate does no IO, knows no async, no serde and no SQL: the store, the API and the index all
//! call the same functions here, so that every path answers alike.

pub mod aging;
pub mod answer;
pub mod clock;
pub mod date;
pub mod event;
pub mod history;
pub mod holder;
pub mod ids;
pub mod notify;
pub mod number;
pub mod unbind;

pub use aging::{AgingPolicy, DaysByCallingCode};
pub use answer::{Answer, NumberFacts, reassigned_since};
pub use clock::{Clock, FixedClock, SystemClock};
pub use date::{Day, DayError};
pub use event::{CarrierId, EventKind};
pub use history::{Coverage, HistoryEvent, Rejection, RejectionCode, Summary, validate_new};
pub use holder::{RejectReason, Tenure};
pub use ids::{AccountRef, EventId, IdError};
pub use notify::{BindingNotice, notice_for};
pub use number::{NumberError, PhoneNumber, Prefix};
