//! Upkeep: the chores that keep what numlink holds bounded, each done a bounded step at a time so that
//! none holds the writer for long:
//! - `ported_in` events that waited past their 30 days for the donor's `ported_out` are dropped, each
//!   audited;
//! - the KYC Match counts of past days are dropped;
//! - a job's outputs (a check file's result file, the rejected rows) are dropped `job_outputs_days`
//!   after it ended, the rejected rows (and the rows of jobs their owners deleted) a bounded step at a
//!   time;
//! - the check log (the entries of `checks` records and the lookups' index of them) is dropped after
//!   `lookups_days`, the holder's view of who looked the number up.
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
    /// Rows of the check log's index, or a job's rejected rows, deleted in one step.
    pub step_check_entries_max: usize,
    /// Days a job's outputs are kept after it ended.
    pub job_outputs_days: i64,
    /// Days the check log is kept: the holder sees who looked the number up that far back.
    pub lookups_days: i64,
}

impl Default for UpkeepConfig {
    fn default() -> Self {
        UpkeepConfig {
            step_rows_max: 1_000,
            step_pause_ms: 50,
            idle_secs: 60,
            step_check_entries_max: 4_096,
            job_outputs_days: 7,
            lookups_days: 180,
        }
    }
}

/// Removes a job's files, the spooled upload and a check file's result, those that exist.
pub async fn remove_job_files(job: &store::Job) -> std::io::Result<()> {
    for path in [job.result_path(), job.spool_path.clone()] {
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
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
        let clients = self.store.prune_client_limits(max).await?;
        let now = self.store.clock().now();
        let before = |days: i64| (now - jiff::SignedDuration::from_hours(days.max(0) * 24)).to_string();
        let jobs = self.store.job_outputs_before(before(self.config.job_outputs_days), max).await?;
        let outputs = jobs.len() == max as usize;
        for job in jobs {
            // Files first: a job marked without its files gone would leave them for good.
            match remove_job_files(&job).await {
                Ok(()) => self.store.job_outputs_deleted(&job.id).await?,
                Err(e) => tracing::error!(job = %job.id, error = %e, "cannot remove a job's file; trying again later"),
            }
        }
        let rejections = self.store.purge_jobs(self.config.step_check_entries_max as u32).await?;
        let log =
            self.store.prune_check_log(before(self.config.lookups_days), self.config.step_check_entries_max).await?;
        Ok(ports || kyc || clients || outputs || rejections || log)
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
