//! The single writer's batch engine: one thread, one connection, commands applied in batches with one
//! commit per batch (group commit). Each command runs in its own savepoint (`WriteCtx::savepoint`),
//! except a large write that is the first of its batch to write, which the transaction itself undoes
//! (`WriteCtx::first_to_write`); its caller is answered only after the batch's commit, with the
//! commit's outcome. Keeping the index
//! in step is `index_upkeep`'s.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{AgingPolicy, CarrierId, Clock, Coverage, Day, PhoneNumber};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::keys::HashKey;
use crate::ops::audit::AuditChain;
use crate::ops::checklog::CheckLog;
use crate::ops::events::buffer::EventsBuffer;
use crate::sql::Conn;

mod index_upkeep;
pub(crate) mod notifications_filing;
use index_upkeep::IndexKeep;
pub(crate) use index_upkeep::{IndexSetup, SUMMARY_COLUMNS, build_index, read_ranges, summary_row};
use notifications_filing::NotificationsFiling;

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A write to run in the next batch. Called with `None` when the batch could not start: it then only
/// answers its caller with the failure.
type Run = Box<dyn FnOnce(Option<&mut WriteCtx>) -> (bool, Reply) + Send>;

pub(crate) struct Command {
    run: Run,
    /// The command only records something in memory for the batch's commit (and cannot fail): it
    /// needs no savepoint of its own.
    in_memory: bool,
    /// Not a command: the tick that lets an idle writer notice it is idle.
    tick: bool,
    /// Not a command: a word that another process has committed changes the index should follow
    /// (PostgreSQL's `NOTIFY`, or a caller waiting for a position).
    follow: bool,
    /// A large write (a file's chunk, a list of events): run without a savepoint when it is the
    /// first of its batch to write (see `run_batch`).
    bulk: bool,
}

impl Command {
    fn tick() -> Command {
        Command { run: Box::new(|_| (true, Box::new(|_| {}))), in_memory: true, tick: true, follow: false, bulk: false }
    }

    pub(crate) fn follow() -> Command {
        Command { tick: false, follow: true, ..Command::tick() }
    }
}

/// A command that touches only the writer's memory (see [`Command::in_memory`]).
pub(crate) fn command_in_memory<R: Send + 'static>(
    f: impl FnOnce(&mut WriteCtx) -> Result<R, StoreError> + Send + 'static,
    tx: oneshot::Sender<Result<R, StoreError>>,
) -> Command {
    Command { in_memory: true, ..command(f, tx) }
}

/// A large write (see [`Command::bulk`]).
pub(crate) fn command_bulk<R: Send + 'static>(
    f: impl FnOnce(&mut WriteCtx) -> Result<R, StoreError> + Send + 'static,
    tx: oneshot::Sender<Result<R, StoreError>>,
) -> Command {
    Command { bulk: true, ..command(f, tx) }
}

pub(crate) fn command<R: Send + 'static>(
    f: impl FnOnce(&mut WriteCtx) -> Result<R, StoreError> + Send + 'static,
    tx: oneshot::Sender<Result<R, StoreError>>,
) -> Command {
    let run: Run = Box::new(move |ctx| {
        let r = match ctx {
            // A panic is this command's failure: rolled back with its savepoint, answered as such.
            Some(ctx) => std::panic::catch_unwind(AssertUnwindSafe(|| f(ctx))).unwrap_or_else(|_| {
                tracing::error!("a write command panicked; its changes are rolled back");
                Err(StoreError::Panicked)
            }),
            None => Err(StoreError::database("the write transaction could not start")),
        };
        let ok = r.is_ok();
        let reply: Reply = Box::new(move |commit: Result<(), StoreError>| {
            // The caller may have gone away (a dropped request); the write stands either way.
            let _ = tx.send(commit.and(r));
        });
        (ok, reply)
    });
    Command { run, in_memory: false, tick: false, follow: false, bulk: false }
}

/// The writer's connection and what it caches between batches.
pub(crate) struct WriteCtx {
    pub(crate) conn: Box<dyn Conn>,
    pub(crate) hash_key: HashKey,
    pub(crate) aging: AgingPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    /// The audit chain's head, read at the start of each batch (another process may have written
    /// since).
    chain: AuditChain,
    /// Carrier ranges: prefix digits → (carrier, reportingSince). Reloaded when the participants
    /// generation in `meta` moves.
    prefixes: HashMap<String, (CarrierId, Option<Day>)>,
    prefixes_generation: i64,
    /// The lengths of the prefixes in `prefixes`, longest first.
    prefix_lens: Vec<usize>,
    /// Opens a new connection when the current one is lost (a PostgreSQL restart or failover).
    reconnect: Box<dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Send>,
    /// The index kept in step with what this writer commits (`index_upkeep`).
    index: IndexKeep,
    /// For tests: while set, the next successful commit is reported as failed, as a PostgreSQL
    /// connection lost during COMMIT would leave it (committed, the reply lost).
    lose_commit_reply: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// What a batch of events holds back or counts (`ops::events`).
    pub(crate) events: EventsBuffer,
    /// Checks logged by this batch's commands, written at its commit, and whether their tags wait
    /// to move into the lookups' table.
    pub(crate) checks: CheckLog,
    /// `StoreConfig::notifications_waiting_max`.
    pub(crate) notifications_waiting_max: u64,
    /// `StoreConfig::pending_ports_per_carrier_max`.
    pub(crate) pending_ports_max: u64,
    /// True while the command running is the first of its transaction to write, with no savepoint
    /// around it: undoing what it has written is rolling the transaction back (see `run_batch`).
    pub(crate) first_to_write: bool,
    /// When notifications are filed by binding (`ops::bindings`).
    pub(crate) notifications_filing: NotificationsFiling,
    /// Whether an idle writer files notifications by binding (`StoreConfig::upkeep_when_idle`).
    upkeep_when_idle: bool,
    /// The enabled webhook endpoints of each institution that the transaction has asked about
    /// (`ops::webhooks`): forgotten when a transaction begins, after a rollback to a savepoint, and
    /// when this writer changes an endpoint.
    pub(crate) enabled_endpoints: HashMap<i64, Arc<[String]>>,
    /// The last try to follow other processes' changes between batches failed (logged once).
    follow_failing: bool,
}

/// What a rollback to a savepoint undoes in the writer's memory (see [`WriteCtx::undo_to`]).
pub(crate) struct Marks {
    chain: AuditChain,
    index: usize,
    checks: usize,
}

impl WriteCtx {
    pub(crate) fn new(
        conn: Box<dyn Conn>,
        hash_key: HashKey,
        aging: AgingPolicy,
        clock: Arc<dyn Clock>,
        reconnect: Box<dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Send>,
        index: IndexSetup,
        upkeep_when_idle: bool,
    ) -> WriteCtx {
        WriteCtx {
            conn,
            hash_key,
            aging,
            clock,
            chain: AuditChain::default(),
            prefixes: HashMap::new(),
            prefixes_generation: -1,
            prefix_lens: Vec::new(),
            reconnect,
            index: IndexKeep::new(index),
            lose_commit_reply: None,
            events: EventsBuffer::default(),
            checks: CheckLog::new(upkeep_when_idle),
            upkeep_when_idle,
            enabled_endpoints: HashMap::new(),
            pending_ports_max: 100_000,
            notifications_waiting_max: notifications_filing::NOTIFICATIONS_WAITING_MAX,
            first_to_write: false,
            notifications_filing: NotificationsFiling::default(),
            follow_failing: false,
        }
    }

    /// See `StoreConfig::lose_commit_reply`.
    #[cfg(feature = "testing")]
    pub(crate) fn losing_commit_reply(mut self, flag: Option<Arc<std::sync::atomic::AtomicBool>>) -> WriteCtx {
        self.lose_commit_reply = flag;
        self
    }

    /// Where the writer's memory of the batch stands, for a savepoint taken now.
    pub(crate) fn marks(&self) -> Marks {
        Marks { chain: self.chain, index: self.index.marks(), checks: self.checks.marks() }
    }

    /// After a rollback to a savepoint taken at `marks`: the writer's memory as it was then.
    pub(crate) fn undo_to(&mut self, marks: Marks) {
        self.chain = marks.chain;
        self.index.undo_to(marks.index);
        self.checks.undo_to(marks.checks);
        self.events.clear();
        self.enabled_endpoints.clear();
        // Caches may have been reloaded from rows now rolled back.
        self.prefixes_generation = -1;
    }

    /// Runs `f` inside the savepoint `name`: released when `keep` says so of its result, otherwise
    /// rolled back together with the writer's memory of it ([`WriteCtx::undo_to`]). The inner result
    /// says whether the savepoint could be ended: if not, the transaction is lost. `Err` when the
    /// savepoint could not be taken (`f` has not run).
    ///
    /// The one place a savepoint is taken: a batch's commands, and a batch of events tried whole
    /// before row by row.
    pub(crate) fn savepoint<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut WriteCtx) -> T,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Result<(), StoreError>), StoreError> {
        self.conn.batch(&format!("SAVEPOINT {name}"))?;
        let marks = self.marks();
        let out = f(self);
        let end = if keep(&out) {
            format!("RELEASE SAVEPOINT {name}")
        } else {
            self.undo_to(marks);
            format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
        };
        let ended = self.conn.batch(&end);
        Ok((out, ended))
    }

    /// Starts the batch's transaction; if that fails, the connection may be gone: open a new one once.
    fn begin_or_reconnect(&mut self) -> Result<(), StoreError> {
        match self.begin() {
            Ok(()) => Ok(()),
            Err(first) => {
                let _ = self.conn.rollback();
                tracing::warn!(error = %first, "cannot start a write transaction; reconnecting");
                // The database is away (restarting, failing over): worth a retry by the caller.
                self.conn = (self.reconnect)().map_err(|e| StoreError::Unavailable { reason: e.to_string() })?;
                self.prefixes_generation = -1;
                self.begin()
            }
        }
    }

    /// The carrier whose range holds `n` (longest prefix), and its `reportingSince`.
    pub(crate) fn coverage(&self, n: PhoneNumber) -> Coverage {
        // Per event: the digits on the stack, and only the lengths some prefix has.
        let mut buf = [0u8; 16];
        let digits = &n.write_e164(&mut buf)[1..];
        self.prefix_lens
            .iter()
            .filter(|&&len| len <= digits.len())
            .find_map(|&len| self.prefixes.get(&digits[..len]))
            .map(|&(carrier, since)| Coverage { range_holder: Some(carrier), reporting_since: since })
            .unwrap_or_default()
    }

    /// Now, as the tables store a moment (`crate::time`).
    pub(crate) fn now_rfc3339(&self) -> String {
        crate::time::stamp(self.clock.now())
    }

    pub(crate) fn now_unix(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// Appends an audit record, now, in the current transaction.
    pub(crate) fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: Option<&[u8]>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let at = self.now_rfc3339();
        self.chain.append(self.conn.as_mut(), &at, actor, action, subject, detail)
    }

    /// As [`WriteCtx::audit`], answering the record's seq (for the rows that refer to it).
    pub(crate) fn audit_seq(
        &mut self,
        actor: &str,
        action: &str,
        subject: Option<&[u8]>,
        detail: &str,
    ) -> Result<i64, StoreError> {
        let at = self.now_rfc3339();
        self.chain.append_seq(self.conn.as_mut(), &at, actor, action, subject, detail)
    }

    /// Logs checks `actor` made (in `job`, for a check file), packed by `checklog::encode`; their audit
    /// record and entries are written in this batch's commit, before any caller is answered.
    pub(crate) fn log_checks(&mut self, actor: &str, job: Option<&str>, entries: Vec<u8>) {
        self.checks.log(actor, job, entries);
    }

    /// Drops a bounded step of the check log older than `before` (RFC 3339): `CheckLog::prune`.
    pub(crate) fn prune_check_log(&mut self, before: &str, max: usize) -> Result<bool, StoreError> {
        let at = self.now_rfc3339();
        CheckLog::prune(self.conn.as_mut(), &mut self.chain, &at, before, max)
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        // Another process writes too: most of what it committed is followed before the write lock is
        // taken, so that the catch-up under the lock, which holds up every other writer, is short.
        if self.index.others_committed_at.is_some_and(|t| t.elapsed() < OTHERS_RECENT) {
            self.follow_outside_batch();
        }
        self.conn.begin_write()?;
        self.events.clear();
        self.enabled_endpoints.clear();
        self.follow_in_transaction()?;
        self.chain = AuditChain::read(self.conn.as_mut())?;
        Ok(())
    }

    /// In a transaction: the carriers' ranges reloaded if another writer changed them, and the index
    /// caught up with the changes other processes committed (`follow_changes`).
    fn follow_in_transaction(&mut self) -> Result<(), StoreError> {
        let (mut generation, mut seq, mut pruned) = (0, 0, 0);
        self.conn.query_each(
            "SELECT key, value FROM meta WHERE key IN ('participants_generation', 'index_seq', 'index_changes_pruned_through')",
            &[],
            &mut |r| {
                let v = r.i64(1)?;
                match r.text(0)?.as_str() {
                    "index_seq" => seq = v.max(0) as u64,
                    "index_changes_pruned_through" => pruned = v.max(0) as u64,
                    _ => generation = v,
                }
                Ok(())
            },
        )?;
        if generation != self.prefixes_generation {
            self.reload_prefixes()?;
            self.prefixes_generation = generation;
        }
        self.index.participants_generation.store(generation, std::sync::atomic::Ordering::SeqCst);
        self.follow_changes(seq, pruned)
    }

    /// Between batches: the index caught up with other processes' changes, in a read transaction of
    /// its own (no write lock: another node's writer goes on meanwhile). Failures are logged; the next
    /// batch catches up under its lock before any command runs.
    fn follow_outside_batch(&mut self) {
        let followed = self.conn.begin_read().and_then(|()| self.follow_in_transaction());
        let _ = self.conn.rollback();
        match followed {
            Ok(()) => self.follow_failing = false,
            Err(e) => {
                // Logged once a failing spell; a lost connection is opened again for the next try.
                if !self.follow_failing {
                    tracing::warn!(error = %e, "following other processes' changes failed");
                }
                self.follow_failing = true;
                self.prefixes_generation = -1;
                if matches!(e, StoreError::Unavailable { .. })
                    && let Ok(conn) = (self.reconnect)()
                {
                    self.conn = conn;
                }
            }
        }
    }

    fn reload_prefixes(&mut self) -> Result<(), StoreError> {
        let rows = self.conn.query(
            "SELECT x.prefix, p.seq, p.reporting_since FROM prefixes x JOIN participants p ON p.seq = x.participant_seq",
            &[],
        )?;
        self.prefixes.clear();
        for r in rows {
            let since = r.opt_i64(2).and_then(|v| Day::from_packed(v as i32));
            self.prefixes.insert(r.text(0)?, (CarrierId(r.i64(1)?), since));
        }
        self.prefix_lens = self.prefixes.keys().map(String::len).collect();
        self.prefix_lens.sort_unstable_by(|a, b| b.cmp(a));
        self.prefix_lens.dedup();
        self.sync_index_ranges()
    }

    /// Marks participants as changed, so every writer reloads its caches at its next batch.
    pub(crate) fn bump_participants_generation(&mut self) -> Result<(), StoreError> {
        self.conn.exec("UPDATE meta SET value = value + 1 WHERE key = 'participants_generation'", &[])?;
        self.index.ranges_changed = true;
        // Force a reload in this writer at once too: later commands of this batch may need it.
        self.reload_prefixes()
    }

    /// Starts the batch's transaction, with the index first given any summary it may lack (no command
    /// runs while it may).
    fn start_batch(&mut self) -> Result<(), StoreError> {
        self.begin_or_reconnect().and_then(|()| match self.index.resync_pending() {
            false => Ok(()),
            true => self.resync_index(),
        })
    }

    /// Rolls back the transaction of a command that is the first to write in it (`first_to_write`)
    /// and starts another: what the command wrote is undone, and nothing else was written.
    pub(crate) fn restart_first_to_write(&mut self, marks: Marks) -> Result<(), StoreError> {
        debug_assert!(self.first_to_write, "only the first command to write may roll back its transaction");
        self.undo_to(marks);
        self.conn.rollback()?;
        self.start_batch()
    }

    fn run_batch(&mut self, mut batch: Vec<Command>) {
        // The batch's first large write goes first, so that it runs without a savepoint. The order of
        // a batch's commands is free: all were queued before any was answered.
        if let Some(i) = batch.iter().position(|c| c.bulk).filter(|&i| i > 0) {
            let bulk = batch.remove(i);
            batch.insert(0, bulk);
        }
        let started = self.start_batch();
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a write transaction");
            let _ = self.conn.rollback();
            let failure = BatchFailure::from(&e);
            for cmd in batch {
                let (_, reply) = (cmd.run)(None);
                reply(Err(failure.error()));
            }
            return;
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut broken: Option<BatchFailure> = None;
        // Whether a command has written in this transaction yet.
        let mut written = false;
        for cmd in batch {
            if broken.is_some() {
                replies.push((cmd.run)(None).1);
                continue;
            }
            if cmd.in_memory {
                replies.push((cmd.run)(Some(self)).1);
                continue;
            }
            if !written && cmd.bulk {
                // The first command to write needs no savepoint: undoing it is undoing the whole
                // transaction, which SQLite does without the savepoint's copy of every page before its
                // first change (a third of the writer's time in a chunk that creates notifications).
                // Only a large write is run so: a failure then costs a new transaction, which an
                // ordinary command's expected failures (a limit, a conflict) should not.
                written = true;
                let marks = self.marks();
                self.first_to_write = true;
                let (ok, reply) = (cmd.run)(Some(self));
                self.first_to_write = false;
                if !ok {
                    self.undo_to(marks);
                    let _ = self.conn.rollback();
                    if let Err(e) = self.start_batch() {
                        broken = Some(BatchFailure::from(&e));
                    }
                    written = false;
                }
                replies.push(reply);
                continue;
            }
            written = true;
            let mut run = Some(cmd.run);
            let taken = &mut run;
            match self.savepoint("cmd", |ctx| taken.take().expect("run once")(Some(ctx)), |(ok, _)| *ok) {
                Ok(((_, reply), ended)) => {
                    if let Err(e) = ended {
                        broken = Some(BatchFailure::from(&e));
                    }
                    replies.push(reply);
                }
                Err(e) => {
                    broken = Some(BatchFailure::from(&e));
                    replies.push(run.take().expect("not run: the savepoint was not taken")(None).1);
                }
            }
        }
        let commit = match broken {
            Some(e) => Err(e),
            None => self
                .log_index_changes()
                .and_then(|()| {
                    let at = self.now_rfc3339();
                    self.checks.flush(self.conn.as_mut(), &mut self.chain, &at)
                })
                .and_then(|()| self.conn.commit())
                .map_err(|e| BatchFailure::from(&e)),
        };
        let commit = match &self.lose_commit_reply {
            Some(lose) if commit.is_ok() && lose.swap(false, std::sync::atomic::Ordering::SeqCst) => {
                Err(BatchFailure {
                    message: "the connection was lost during COMMIT (a test's fault)".to_string(),
                    retry: true,
                })
            }
            _ => commit,
        };
        if let Err(e) = &commit {
            tracing::error!(error = %e, "write batch failed; nothing of it was committed");
            let _ = self.conn.rollback();
            // Cached state may reflect rolled-back work.
            self.prefixes_generation = -1;
            // What waits to be filed: counted again, from a new pass.
            self.notifications_filing = NotificationsFiling::default();
            self.checks.undo_to(0);
        }
        // Before any caller hears of the commit: a check never answers from older state than an
        // acknowledged event.
        self.index.after_commit(commit.is_ok());
        for reply in replies {
            reply(commit.clone().map_err(|f| f.error()));
        }
    }
}

/// Why a batch was not committed, as each of its callers hears it: worth a retry (the database is
/// away: restarting, failing over) or not.
#[derive(Clone, Debug)]
struct BatchFailure {
    message: String,
    retry: bool,
}

impl From<&StoreError> for BatchFailure {
    fn from(e: &StoreError) -> Self {
        BatchFailure { message: e.to_string(), retry: matches!(e, StoreError::Unavailable { .. }) }
    }
}

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl BatchFailure {
    fn error(&self) -> StoreError {
        if self.retry {
            StoreError::Unavailable { reason: self.message.clone() }
        } else {
            StoreError::database(self.message.clone())
        }
    }
}

impl WriteCtx {
    /// One piece of the work an idle writer does: a step of filing notifications by binding, or of
    /// the lookups compaction. False when there was nothing to do.
    fn idle_work(&mut self) -> bool {
        // A step that fails (logged) leaves the time to the compaction.
        if self.upkeep_when_idle
            && self.notifications_waiting().unwrap_or(0) > 0
            && self.step(StepKind::FileNotifications) > 0
        {
            return true;
        }
        if self.checks.behind() {
            let behind = self.step(StepKind::Compact) > 0;
            self.checks.set_behind(behind);
            return true;
        }
        false
    }

    /// After a batch: steps of filing notifications while so many wait that they must not wait for
    /// the writer to be idle (a batch may have made more than a step files).
    fn busy_work(&mut self) {
        while self.notifications_waiting().unwrap_or(0) >= self.notifications_waiting_max {
            if self.step(StepKind::FileNotifications) == 0 {
                break;
            }
        }
    }

    /// One step of moving checks' tags into `check_tags`, in its own transaction. False when there is
    /// nothing left to move (or the step failed: it is tried again after the next batch of checks).
    pub(crate) fn compact_step(&mut self, max: usize) -> bool {
        let step = self.begin_or_reconnect().and_then(|()| CheckLog::compact(self.conn.as_mut(), max));
        let done = match step {
            Ok(moved) => self.conn.commit().map(|()| moved),
            Err(e) => Err(e),
        };
        match done {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(error = %e, "moving checks into the lookups table failed");
                let _ = self.conn.rollback();
                false
            }
        }
    }

    /// A step of upkeep in its own transaction: how much it moved (0 when it failed, logged; it is
    /// tried again later).
    fn step(&mut self, kind: StepKind) -> u64 {
        match kind {
            StepKind::Compact => u64::from(self.compact_step(crate::ops::checklog::COMPACT_STEP)),
            StepKind::FileNotifications => {
                let step = self
                    .begin_or_reconnect()
                    .and_then(|()| self.file_notifications(notifications_filing::NOTIFICATIONS_STEP_ROWS))
                    .and_then(|moved| self.conn.commit().map(|()| moved));
                step.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "filing notifications by binding failed");
                    let _ = self.conn.rollback();
                    self.notifications_filing = NotificationsFiling::default();
                    0
                })
            }
        }
    }
}

#[derive(Clone, Copy)]
enum StepKind {
    Compact,
    FileNotifications,
}

/// How long after it last followed another process's commits a writer follows before each batch's
/// write lock as well as under it.
const OTHERS_RECENT: Duration = Duration::from_secs(60);

/// How long the writer must have had no command before it does its idle work.
const QUIET_BEFORE_IDLE_WORK: Duration = Duration::from_millis(100);

pub(crate) fn spawn(
    mut ctx: WriteCtx,
    mut rx: mpsc::Receiver<Command>,
    ticks: mpsc::WeakSender<Command>,
    batch_max: usize,
) -> Result<(), StoreError> {
    // The writer waits on its queue; a tick now and then lets it notice it has been quiet.
    std::thread::Builder::new()
        .name("numlink-writer-tick".into())
        .spawn(move || {
            loop {
                std::thread::sleep(QUIET_BEFORE_IDLE_WORK);
                match ticks.upgrade() {
                    Some(tx) => {
                        let _ = tx.try_send(Command::tick());
                    }
                    None => break,
                }
            }
        })
        .map_err(|e| StoreError::open(format!("cannot start the writer's tick thread: {e}")))?;
    std::thread::Builder::new()
        .name("numlink-writer".into())
        .spawn(move || {
            let mut last_batch = Instant::now();
            // Whether this quiet spell has counted again the notifications waiting to be filed.
            let mut recounted = false;
            while let Some(first) = rx.blocking_recv() {
                if first.follow {
                    ctx.index.follow_requested.store(false, std::sync::atomic::Ordering::SeqCst);
                    ctx.follow_outside_batch();
                    continue;
                }
                if first.tick {
                    // Quiet: the lookups compaction, a step at a time, for as long as no command waits
                    // (one that comes waits for one step at most).
                    if last_batch.elapsed() >= QUIET_BEFORE_IDLE_WORK {
                        // What other processes committed meanwhile (a safety net under PostgreSQL's
                        // notifications; SQLite's only way to hear of the CLI's writes).
                        ctx.follow_outside_batch();
                        // Count again what waits, once a quiet spell: another process (the CLI
                        // beside a server) may have added to it.
                        if !recounted {
                            ctx.notifications_filing.forget_count();
                            recounted = true;
                        }
                        while rx.is_empty() && ctx.idle_work() {}
                    }
                    continue;
                }
                let mut batch = vec![first];
                while batch.len() < batch_max {
                    match rx.try_recv() {
                        // The batch's start catches the index up under the write lock.
                        Ok(c) if c.follow => {
                            ctx.index.follow_requested.store(false, std::sync::atomic::Ordering::SeqCst)
                        }
                        Ok(c) if c.tick => {}
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                ctx.run_batch(batch);
                ctx.busy_work();
                last_batch = Instant::now();
                recounted = false;
            }
        })
        .map(|_| ())
        .map_err(|e| StoreError::open(format!("cannot start the writer thread: {e}")))
}
