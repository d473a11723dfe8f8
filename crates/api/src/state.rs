//! What every handler can reach.

use std::path::PathBuf;
use std::sync::Arc;

use domain::DaysByCallingCode;
use store::{HashKey, OtpLimits, Store};
use tokio::sync::Notify;
use workers::{DeliveryConfig, FileLimits, SmsQueue};

use crate::admit::{Admission, RateLimits};
use crate::attest::Attester;
use crate::limit::ClientLimiter;

/// Limits of the HTTP interface, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a JSON request body.
    pub body_bytes_max: usize,
    /// A JSON request body arrives whole within this, however it trickles (a file upload is held to
    /// a minimum rate instead: `serve::ServeLimits`).
    pub json_body_timeout_ms: u64,
    /// Items in one batch (events, checks).
    pub batch_items_max: usize,
    /// Rows on one page of a listing.
    pub page_rows_max: u32,
    /// Webhook endpoints of one institution.
    pub webhook_endpoints_max: u32,
    /// Followed check-file results (`?follow=true`) one participant may have open at once.
    pub followed_results_max: u32,
    /// KYC Match calls (and rebinding attempts) of one institution about one number per UTC day: a
    /// match answers per attribute, so without a limit it recovers an attribute one guess at a time.
    pub kyc_matches_per_number_per_day_max: u32,
    /// Characters of one real-name attribute (KYC Match, rebinding, an event's `kyc`).
    pub kyc_attribute_chars_max: usize,
    /// Institutions named in one unbind request of a holder.
    pub unbind_institutions_max: usize,
    /// Lookups of a number shown to its holder (the newest).
    pub lookups_listed_max: u32,
    /// A carrier's pending ports listed by one call of `GET /v1/pending-ports`.
    pub pending_ports_listed_max: u32,
    /// `ported_in` events one carrier may have pending at once (R3); beyond it, `TOO_MANY_ITEMS`.
    pub pending_ports_per_carrier_max: u64,
    /// Write commands waiting for the writer (callers wait when it is full), and commands applied in
    /// one transaction.
    pub write_queue_commands_max: usize,
    pub write_batch_commands_max: usize,
    /// Notifications waiting to be filed by binding at which the writer files them after every batch,
    /// not only when idle (`store::StoreConfig::notifications_waiting_max`).
    pub notifications_waiting_max: u64,
    /// One-time codes waiting to be sent; beyond it a code is dropped and logged (the holder asks again).
    pub sms_queue_messages_max: usize,
    /// Bytes of a form posted to a page (a hundred institutions ticked is under 4 KiB).
    pub form_bytes_max: usize,
    /// A console session ends after this long without a request.
    pub console_idle_secs: i64,
    /// Failed console sign-ins (a wrong key) from one client address per hour; then refused until the
    /// hour is over.
    pub console_sign_in_failures_per_client_per_hour_max: u32,
    /// Requests per participant and per client address ([`crate::admit`]).
    pub rates: RateLimits,
    pub files: FileLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes_max: 2 * 1024 * 1024,
            json_body_timeout_ms: 30_000,
            batch_items_max: 1000,
            page_rows_max: 10_000,
            webhook_endpoints_max: 10,
            followed_results_max: 4,
            kyc_matches_per_number_per_day_max: 5,
            kyc_attribute_chars_max: 256,
            unbind_institutions_max: 100,
            lookups_listed_max: 1_000,
            pending_ports_listed_max: 1_000,
            pending_ports_per_carrier_max: 100_000,
            write_queue_commands_max: 4_096,
            write_batch_commands_max: 256,
            notifications_waiting_max: store::NOTIFICATIONS_WAITING_MAX,
            sms_queue_messages_max: 10_000,
            form_bytes_max: 16 * 1024,
            console_idle_secs: 1800,
            console_sign_in_failures_per_client_per_hour_max: 20,
            rates: RateLimits::default(),
            files: FileLimits::default(),
        }
    }
}

/// Renders the Prometheus exposition; given by the binary, which owns the metrics recorder.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler can reach. axum clones the state for every request (more than once), so it is
/// one shared reference, not a copy of each field (a path, a dozen reference counts).
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

impl AppState {
    pub fn new(parts: StateParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct StateParts {
    pub store: Store,
    pub limits: Limits,
    /// Where uploaded files wait to be applied.
    pub spool_dir: PathBuf,
    /// Wakes the job runner when a file is queued.
    pub jobs_wake: Arc<Notify>,
    /// Wakes the webhook deliverer when notifications may have been created.
    pub deliveries_wake: Arc<Notify>,
    /// The webhook policy: which URLs may be registered, how long a rotated secret overlaps.
    pub webhooks: DeliveryConfig,
    pub metrics: Option<MetricsRender>,
    /// The holder's side: codes, sessions, proofs of tenure, unbind deadlines.
    pub holder: Arc<HolderState>,
    /// Set to `true` when the server begins to shut down: long responses (a followed check file's
    /// result) end then, rather than hold the shutdown until their job ends.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// The job runner's progress ([`workers::JobRunner::progress`]): a followed result wakes on it.
    pub job_progress: tokio::sync::watch::Receiver<u64>,
    /// Followed results open, per participant (seq): held to `followed_results_max`.
    pub following: Following,
    /// Failed console sign-ins per client address (`Limits::console_sign_in_failures_per_client_per_hour_max`).
    pub sign_in_failures: ClientLimiter,
    /// The rate limits and the trusted proxies, applied to every request ([`crate::admit`]).
    pub admission: Admission,
}

/// Followed results open, per participant (seq).
pub type Following = Arc<std::sync::Mutex<std::collections::HashMap<i64, u32>>>;

/// The holder's side's policy, each limit with its unit in the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderConfig {
    pub otp: OtpLimits,
    /// How long a holder's session token is valid.
    pub session_secs: i64,
    /// How long a proof of tenure is valid.
    pub attestation_ttl_secs: i64,
    /// The `iss` of proofs of tenure.
    pub issuer: String,
    /// Working days an institution has to answer an unbind request, per country calling code.
    pub unbind_deadline_working_days: DaysByCallingCode,
    /// Working days after which an unacknowledged notification counts against its institution.
    pub ack_working_days: u32,
    /// How far back a holder sees who looked the number up.
    pub lookups_days: i64,
    /// Code requests (`POST /v1/holder/otp`) from one client address per hour, across all numbers.
    pub otp_requests_per_client_per_hour_max: u32,
    /// The time zone the pages show moments in (a day and a time, with its offset from UTC).
    pub time_zone: jiff::tz::TimeZone,
    /// Seconds the portal's code page waits before it offers another code to the same number.
    pub otp_resend_wait_secs: i64,
    /// Where people reach numlink (`https://host[:port]`, no path): the link a proof's QR code holds.
    /// An https address marks the portal's cookies `Secure`. Unset, pages use the request's `Host`.
    pub public_url: Option<String>,
}

impl HolderConfig {
    /// The portal's cookies carry `Secure`: numlink is reached over https (behind a TLS proxy).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

impl Default for HolderConfig {
    fn default() -> Self {
        HolderConfig {
            otp: OtpLimits::default(),
            session_secs: 900,
            attestation_ttl_secs: 7 * 86_400,
            issuer: "numlink".into(),
            unbind_deadline_working_days: DaysByCallingCode::new(5, []),
            ack_working_days: 5,
            lookups_days: 180,
            otp_requests_per_client_per_hour_max: 20,
            time_zone: jiff::tz::TimeZone::UTC,
            otp_resend_wait_secs: 60,
            public_url: None,
        }
    }
}

/// What the holder's handlers share: the policy, the signer, the session key and the SMS queue.
#[derive(Debug)]
pub struct HolderState {
    pub config: HolderConfig,
    pub attester: Attester,
    pub sms: SmsQueue,
    /// Seals holder session tokens.
    pub(crate) session_key: HashKey,
    /// Code requests per client address.
    pub(crate) otp_clients: ClientLimiter,
}

impl HolderState {
    pub fn new(config: HolderConfig, hash_key: HashKey, sms: SmsQueue) -> HolderState {
        let attester = Attester::new(hash_key.clone(), config.issuer.clone(), config.attestation_ttl_secs);
        let otp_clients = ClientLimiter::new("otp-request", config.otp_requests_per_client_per_hour_max, 3600);
        HolderState { config, attester, sms, session_key: hash_key, otp_clients }
    }
}
