//! What every handler can reach.

use std::path::PathBuf;
use std::sync::Arc;

use store::Store;
use tokio::sync::Notify;
use workers::{DeliveryConfig, FileLimits};

/// Limits of the HTTP interface, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a JSON request body.
    pub body_bytes_max: usize,
    /// Items in one batch (events, checks).
    pub batch_items_max: usize,
    /// Rows on one page of a listing.
    pub page_rows_max: u32,
    /// Webhook endpoints of one institution.
    pub webhook_endpoints_max: u32,
    pub files: FileLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes_max: 2 * 1024 * 1024,
            batch_items_max: 1000,
            page_rows_max: 10_000,
            webhook_endpoints_max: 10,
            files: FileLimits::default(),
        }
    }
}

/// Renders the Prometheus exposition; given by the binary, which owns the metrics recorder.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
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
}
