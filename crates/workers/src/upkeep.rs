//! Upkeep: the chores that keep what numlink holds bounded, each done a bounded step at a time so that
//! none holds the writer for long: `ported_in` events that waited past their 30 days for the donor's
//! `ported_out` are dropped, each audited; the KYC Match counts of past days are dropped.
//!
//! [`Upkeep::run_once`] does one step of every chore; [`Upkeep::run`] repeats it in the background,
//! with a pause between steps while work remains, and waits a while once none does.

use std::time::Duration;

use store::Store;

use crate::WorkerError;

/// Upkeep's pace, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpkeepConfig {
    /// Rows a chore handles in one step (one writer command).
    pub step_rows_max: u32,
    /// The pause between steps while work remains: the writer serves everyone else meanwhile.
    pub step_pause_ms: u64,
    /// How often the chores look for work once none is left.
    pub idle_secs: u64,
}

impl Default for UpkeepConfig {
    fn default() -> Self {
        UpkeepConfig { step_rows_max: 1_000, step_pause_ms: 50, idle_secs: 60 }
    }
}

#[derive(Clone, Debug)]
pub struct Upkeep {
    store: Store,
    config: UpkeepConfig,
}

impl Upkeep {
    pub fn new(store: Store, config: UpkeepConfig) -> Upkeep {
        Upkeep { store, config }
    }

    /// One step of every chore. True if any has more to do.
    pub async fn run_once(&self) -> Result<bool, WorkerError> {
        let max = self.config.step_rows_max;
        let ports = self.store.expire_pending_ports(max).await?;
        let kyc = self.store.prune_kyc_attempts(max).await?;
        Ok(ports || kyc)
    }

    /// Steps until nothing is left; for tests.
    pub async fn run_until_idle(&self) -> Result<(), WorkerError> {
        while self.run_once().await? {}
        Ok(())
    }

    /// Runs in the background until `shutdown` resolves. Errors are logged and retried at the next
    /// round.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.run_once().await {
                Ok(true) => Duration::from_millis(self.config.step_pause_ms),
                Ok(false) => Duration::from_secs(self.config.idle_secs),
                Err(e) => {
                    tracing::error!(error = %e, "upkeep failed; retrying");
                    Duration::from_secs(self.config.idle_secs)
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
