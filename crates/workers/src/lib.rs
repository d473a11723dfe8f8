//! Background work: applying uploaded files, delivering webhooks ([`webhooks`]) and one-time codes
//! ([`sms`]), and the upkeep that keeps what numlink holds bounded ([`upkeep`]). The file format is parsed by pure functions
//! ([`files`]); the job runner ([`jobs`]) reads a spooled file in bounded chunks and hands each chunk
//! with its checkpoint to the store, which commits both together.

pub mod files;
pub mod jobs;
mod order;
pub mod sms;
pub mod upkeep;
pub mod webhooks;

pub use files::{FileFormat, FileLimits};
pub use jobs::{JobRunner, WorkerError};
pub use sms::{SmsMessage, SmsQueue, SmsSender, SmsSink};
pub use upkeep::{Upkeep, UpkeepConfig};
pub use webhooks::{Deliverer, DeliveryConfig};
