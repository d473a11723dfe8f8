//! Storage: the one interface the rest of numlink uses, with SQLite (embedded default) and
//! PostgreSQL behind it, and their migrations.
//!
//! Every write goes through one writer thread per store: a bounded queue of commands, applied in
//! batches, one transaction per batch (group commit), each caller answered only after its transaction
//! committed. A command runs inside a savepoint (or, a large write first in its batch to write, in
//! a transaction of its own when it fails), so one failing command does not take its batch
//! neighbours with it. Checks go through the same path because their audit record must be durable
//! before the answer. Reads that need no audit (authentication, job status) use a small pool of
//! read connections.
//!
//! The store applies the rules from `domain`; it decides nothing itself.

pub mod ids;
mod keys;
mod migrate;
mod ops;
mod postgres;
mod snapshot;
pub mod sql;
mod sqlite;
mod time;
mod writer;

#[cfg(feature = "testing")]
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use domain::{AgingPolicy, Clock, Day, PhoneNumber};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use ids::{BindingId, ChallengeId, EndpointId, JobId, NotificationId, ParticipantId, UnbindRequestId};
pub use keys::{ApiKey, HashKey, new_id, random_bytes, sha256};
pub use ops::attestation::AttestationKey;
pub use ops::audit::{AuditRecord, ChainReport};
pub use ops::bindings::{
    ACK_ACTIONS, Binding, NewBinding, Notification, NotificationFilter, NotificationType, Registered,
};
pub use ops::checklog::Lookup;
pub use ops::checklog::{AnsweredCheck, COMPACT_STEP, LoggedAnswer};
pub use ops::events::{NewEvent, Outcome, PendingPort, StoredEvent};
pub use ops::jobs::{
    Checkpoint, ChunkRow, FILE_PART_BYTES, JOB_LEASE_RENEW_SECS, JOB_LEASE_SECS, Job, JobDeleted, JobKind, JobState,
    RejectionRow, RowData,
};
pub use ops::kyc::{KYC_ATTRIBUTES, Kyc, KycAnswer, KycMatch, Rebind};
pub use ops::otp::{OtpFailure, OtpIssued, OtpLimits, OtpRefused, SmsGateway, TenureMark};
pub use ops::participants::{NewParticipant, Participant, Role};
pub use ops::report::{InstitutionReport, Period, ReportSeries};
pub use ops::sms::{ClaimedSms, SMS_LEASE_SECS};
pub use ops::unbind::{
    HolderView, RequestedBinding, Resolution, Resolved, StaleHolder, UnbindQueue, UnbindRefused, UnbindRequest,
    UnbindState,
};
pub use ops::webhooks::{
    AttemptOutcome, BATCH_LANE_FACTOR_MAX, DeliveryState, DueDelivery, Endpoint, EndpointAction, LANE_LEASE_SECS,
    LoggedDelivery,
};
pub use sqlite::PAGE_SIZE as SQLITE_PAGE_SIZE;
pub use writer::notifications_filing::NOTIFICATIONS_WAITING_MAX;

use sql::Conn;
use writer::{Command, WriteCtx};

/// The cause a database driver gave, kept as the error's source.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong in the store, as data: a caller decides what to answer by the variant (the API
/// maps each with an exhaustive `match`), never by reading the message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What was asked for does not exist.
    #[error("no {what} \"{id}\"")]
    NotFound { what: &'static str, id: String },
    /// It conflicts with what is stored: `with` says with what.
    #[error("{what} conflicts with {with}")]
    Conflict { what: String, with: String },
    /// A limit was reached: its name (as set in `numlink.toml`, where it can be) and its value.
    #[error("at most {max} {what} ({limit})")]
    Limit { limit: &'static str, max: u64, what: &'static str },
    /// The input cannot be taken; `code` is stable, `message` says why for a person.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The store cannot serve now (it is shutting down, or its database is out of reach); a caller
    /// may try again later.
    #[error("the store is unavailable: {reason}")]
    Unavailable { reason: String },
    /// The database failed a statement.
    #[error("database error: {message}")]
    Database {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// Stored data is not as numlink writes it.
    #[error("stored data is not as expected: {0}")]
    Corrupt(String),
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {message}")]
    Open {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A write command panicked: its changes were rolled back, and the rest of its batch stands.
    #[error("a write command failed unexpectedly; its changes were rolled back")]
    Panicked,
}

impl StoreError {
    /// A database failure without a driver's error to attach.
    pub fn database(message: impl Into<String>) -> StoreError {
        StoreError::Database { message: message.into(), source: None }
    }

    pub fn open(message: impl Into<String>) -> StoreError {
        StoreError::Open { message: message.into(), source: None }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid { code, message: message.into() }
    }

    /// The store has shut down (its writer or readers are gone).
    pub fn closed() -> StoreError {
        StoreError::Unavailable { reason: "the store is shut down".into() }
    }
}

/// A chunk of a file's rows with what [`Store::prepare_chunk`] or [`Store::prepare_checks`] computed
/// from them, ready for the writer.
#[derive(Debug)]
pub struct PreparedChunk {
    rows: Vec<ChunkRow>,
    /// A check file's answered checks (packed in `prepared`); `rows` are then its bad rows.
    checks: usize,
    prepared: ops::jobs::Prepared,
}

impl PreparedChunk {
    /// Commits a check file's answers to this chunk, as appended to its result at `at`, with the
    /// chunk: for a database that keeps files for every node ([`Store::shares_files`]).
    pub fn keep_result(&mut self, at: u64, bytes: Vec<u8>) {
        self.prepared.result_part = Some((at, bytes));
    }
}

/// A proof of tenure as handed out: its id, its compact JWS, and when it expires (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedAttestation {
    pub jti: String,
    pub token: String,
    pub exp: i64,
}

/// Where the data lives: `sqlite://PATH` or `postgres://…` (also `postgresql://…`).
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            // The URL may carry a password.
            DbUrl::Postgres(_) => write!(f, "postgres://<redacted>"),
        }
    }
}

impl DbUrl {
    pub fn parse(s: &str) -> Result<DbUrl, StoreError> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::invalid(
                    "DATABASE_URL",
                    "database URL \"sqlite://\" names no file: expected sqlite://PATH",
                ));
            }
            Ok(DbUrl::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DbUrl::Postgres(s.to_string()))
        } else {
            Err(StoreError::invalid(
                "DATABASE_URL",
                format!(
                    "database URL \"{}\" is not supported: expected sqlite://PATH or postgres://…",
                    domain::number::truncate_for_message(s)
                ),
            ))
        }
    }
}

/// Everything a store needs to open.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub url: DbUrl,
    pub hash_key: HashKey,
    pub aging: AgingPolicy,
    pub clock: Arc<dyn Clock>,
    /// Commands waiting for the writer; senders wait when it is full (back-pressure).
    pub write_queue_commands_max: usize,
    /// Commands applied in one transaction at most.
    pub write_batch_commands_max: usize,
    /// Read connections at most.
    pub read_connections_max: usize,
    /// Build the in-memory index at start (a server). Off for short-lived commands (the CLI's
    /// `participant`, `audit`, …), which answer no checks: their checks would read the tables.
    pub build_index: bool,
    /// Let the writer do its upkeep after 100 ms without commands (a server): move logged checks into
    /// the holder's lookups table, and file notifications by binding. Off, only
    /// [`Store::compact_lookups`] and [`Store::file_notifications`] do (a test stepping through them);
    /// notifications are still filed when `notifications_waiting_max` wait.
    pub upkeep_when_idle: bool,
    /// Where the index's snapshot is kept (a server's `<database>.index` beside a SQLite file): read at
    /// start instead of scanning every number when it is usable, written by
    /// [`Store::write_index_snapshot`]. `None`: always scan.
    pub index_snapshot: Option<std::path::PathBuf>,
    /// `ported_in` events one carrier may have pending at once (R3): beyond it, another is refused
    /// (`TOO_MANY_ITEMS`), so that no carrier can file claims on every number in the hope of a port.
    pub pending_ports_per_carrier_max: u64,
    /// Notifications waiting to be filed by binding at which the writer files them after every batch,
    /// busy or not (default [`NOTIFICATIONS_WAITING_MAX`]); below it, only when idle.
    pub notifications_waiting_max: u64,
    /// This process's name among the nodes sharing the database: what its claims on jobs and
    /// deliveries, and its place among the index's followers, are recorded under. A server names
    /// itself by its host and port, so that a node restarted after a crash takes back its own claims
    /// at once (another node waits for them to run out). `None`: a name of its own for each process.
    pub node: Option<String>,
    /// For tests of a commit's reply lost in flight: while it holds true, the writer's next successful
    /// commit is reported to its callers as failed (and the flag is cleared), as when a PostgreSQL
    /// connection drops during COMMIT.
    #[cfg(feature = "testing")]
    pub lose_commit_reply: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl StoreConfig {
    pub fn new(url: DbUrl, hash_key: HashKey, clock: Arc<dyn Clock>) -> StoreConfig {
        StoreConfig {
            url,
            hash_key,
            aging: AgingPolicy::aging_default(),
            clock,
            write_queue_commands_max: 4096,
            write_batch_commands_max: 256,
            read_connections_max: 8,
            build_index: true,
            upkeep_when_idle: true,
            pending_ports_per_carrier_max: 100_000,
            notifications_waiting_max: NOTIFICATIONS_WAITING_MAX,
            index_snapshot: None,
            node: None,
            #[cfg(feature = "testing")]
            lose_commit_reply: None,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// How a store's index was built at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexOrigin {
    /// From its snapshot, which reflected change `seq`, with `caught_up` numbers read again.
    Snapshot { seq: u64, caught_up: usize },
    /// By reading every number; `why` the snapshot was not used, if one was expected.
    Scan { why: Option<String> },
}

/// A snapshot of the index written to disk.
#[derive(Clone, Debug)]
pub struct SnapshotWritten {
    /// The last change it reflects.
    pub seq: u64,
    pub bytes: u64,
    pub seconds: f64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.inner.url).finish_non_exhaustive()
    }
}

struct Inner {
    url: DbUrl,
    index: Arc<RwLock<index::Index>>,
    hash_key: HashKey,
    writer: mpsc::Sender<Command>,
    readers: Mutex<Vec<Box<dyn Conn>>>,
    read_permits: Semaphore,
    clock: Arc<dyn Clock>,
    /// False for the CLI's short-lived stores: checks read the tables.
    index_enabled: bool,
    /// Valid API keys (by hash) recently read, and when.
    known_keys: Mutex<std::collections::HashMap<[u8; 32], (Participant, std::time::Instant, i64)>>,
    /// See `writer::IndexSetup::participants_generation`.
    participants_generation: Arc<std::sync::atomic::AtomicI64>,
    /// Where the index's snapshot goes, if one is kept.
    snapshot: Option<std::path::PathBuf>,
    /// `meta.db_id`, which a snapshot is stamped with.
    db_id: i64,
    /// The change seq the index has reached, as the writer tells it.
    position: tokio::sync::watch::Receiver<u64>,
    /// This process's name among the followers of the index's changes (`index_followers`).
    node: String,
    /// A follow has been asked of the writer and not yet begun (see `request_follow`).
    follow_requested: Arc<std::sync::atomic::AtomicBool>,
    origin: IndexOrigin,
    /// The change the snapshot on disk reflects, as far as this process knows (`u64::MAX`: unknown).
    snapshot_seq: std::sync::atomic::AtomicU64,
}

/// How long a server's hold on its node's name lasts unless renewed (see [`Store::announce_node`]).
pub const NODE_NAME_LEASE_SECS: i64 = 30;

/// How long a valid API key is trusted without reading the database again.
pub const KEY_CACHE_SECS: u64 = 5;

impl Drop for Inner {
    fn drop(&mut self) {
        // The PostgreSQL client blocks when it closes, which a runtime's thread does not allow: close
        // the pooled connections on a thread of their own.
        let readers = std::mem::take(self.readers.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !readers.is_empty() {
            let _ = std::thread::Builder::new().name("numlink-close".into()).spawn(move || drop(readers));
        }
    }
}

/// The writer's connection: on SQLite, with the thread that checkpoints beside it.
fn connect_writer(url: &DbUrl) -> Result<Box<dyn Conn>, StoreError> {
    Ok(match url {
        DbUrl::Sqlite(path) => Box::new(sqlite::SqliteConn::open_writer(path)?),
        DbUrl::Postgres(_) => connect(url)?,
    })
}

/// See [`Store::request_follow`].
fn request_follow(writer: &mpsc::Sender<Command>, requested: &std::sync::atomic::AtomicBool) {
    if !requested.swap(true, std::sync::atomic::Ordering::SeqCst) && writer.try_send(Command::follow()).is_err() {
        // The queue is full: the batches it holds follow under their lock anyway.
        requested.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

fn connect(url: &DbUrl) -> Result<Box<dyn Conn>, StoreError> {
    Ok(match url {
        DbUrl::Sqlite(path) => Box::new(sqlite::SqliteConn::open(path)?),
        DbUrl::Postgres(url) => Box::new(postgres::PgConn::connect(url)?),
    })
}

impl Store {
    /// Opens (creating if needed) the database, applies pending migrations, and starts the writer.
    /// Blocking, briefly: it runs on a thread of its own, so it may be called from async code too (the
    /// PostgreSQL client cannot block inside a runtime's thread).
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        std::thread::scope(|s| s.spawn(|| Store::open_here(config)).join())
            .unwrap_or_else(|_| Err(StoreError::open("opening the store panicked")))
    }

    fn open_here(config: StoreConfig) -> Result<Store, StoreError> {
        if let DbUrl::Sqlite(path) = &config.url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            return Err(StoreError::open(format!("directory {} does not exist", dir.display())));
        }
        let mut conn = connect_writer(&config.url)?;
        migrate::run(conn.as_mut())?;
        let node = config
            .node
            .clone()
            .unwrap_or_else(|| format!("{}-{}", std::process::id(), hex::encode(keys::random_bytes::<4>())));
        let started = std::time::Instant::now();
        let url = config.url.clone();
        let db_id = snapshot::meta(conn.as_mut(), "db_id")?;
        let (index, index_ranges, origin) = if config.build_index {
            let from_snapshot = match &config.index_snapshot {
                Some(path) if path.exists() => Some(Store::index_from_snapshot(conn.as_mut(), path)),
                Some(_) => Some(Err("there is none yet".to_string())),
                None => None,
            };
            match from_snapshot.transpose() {
                Ok(Some((ix, ranges, origin))) => (ix, ranges, origin),
                Ok(None) => {
                    let (ix, ranges) = Store::index_from_scan(conn.as_mut(), &move || connect(&url))?;
                    (ix, ranges, IndexOrigin::Scan { why: None })
                }
                Err(why) => {
                    // A first start has none: that is no cause for a warning.
                    if config.index_snapshot.as_ref().is_some_and(|p| p.exists()) {
                        tracing::warn!(snapshot = ?config.index_snapshot, why, "the index's snapshot is not used: every number is read instead");
                    } else {
                        tracing::info!(snapshot = ?config.index_snapshot, "no snapshot of the index yet: every number is read");
                    }
                    let (ix, ranges) = Store::index_from_scan(conn.as_mut(), &move || connect(&url))?;
                    (ix, ranges, IndexOrigin::Scan { why: Some(why) })
                }
            }
        } else {
            (index::Index::default(), std::collections::HashMap::new(), IndexOrigin::Scan { why: None })
        };
        tracing::info!(
            numbers = index.numbers(),
            blocks = index.blocks(),
            memory_bytes = index.memory_bytes(),
            seconds = started.elapsed().as_secs_f64(),
            origin = ?origin,
            "index built"
        );
        let (position_tx, position) = tokio::sync::watch::channel(index.change_seq());
        let participants_generation = Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let follow_requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let index = Arc::new(RwLock::new(index));
        let (tx, rx) = mpsc::channel(config.write_queue_commands_max.max(1));
        let url = config.url.clone();
        let reconnect = Box::new(move || connect_writer(&url));
        let mut ctx = WriteCtx::new(
            conn,
            config.hash_key.clone(),
            config.aging.clone(),
            config.clock.clone(),
            reconnect,
            writer::IndexSetup {
                index: index.clone(),
                ranges: index_ranges,
                enabled: config.build_index,
                position: Arc::new(position_tx),
                participants_generation: participants_generation.clone(),
                follow_requested: follow_requested.clone(),
                connect: {
                    let url = config.url.clone();
                    Arc::new(move || connect(&url))
                },
            },
            config.build_index && config.upkeep_when_idle,
        );
        ctx.pending_ports_max = config.pending_ports_per_carrier_max;
        ctx.notifications_waiting_max = config.notifications_waiting_max.max(1);
        #[cfg(feature = "testing")]
        let ctx = ctx.losing_commit_reply(config.lose_commit_reply.clone());
        writer::spawn(ctx, rx, tx.downgrade(), config.write_batch_commands_max.max(1))?;
        if let (DbUrl::Postgres(url), true) = (&config.url, config.build_index) {
            let writer = tx.downgrade();
            let (requested, reached) = (follow_requested.clone(), position.clone());
            postgres::listen_for_changes(url.clone(), move |heard| match writer.upgrade() {
                Some(tx) => {
                    // A node hears its own commits too: only a seq its index lacks is worth a follow.
                    if heard.is_some_and(|seq| seq > *reached.borrow()) {
                        request_follow(&tx, &requested);
                    }
                    true
                }
                None => false,
            })?;
        }
        Ok(Store {
            inner: Arc::new(Inner {
                url: config.url,
                index,
                hash_key: config.hash_key,
                writer: tx,
                readers: Mutex::new(Vec::new()),
                read_permits: Semaphore::new(config.read_connections_max.max(1)),
                clock: config.clock,
                index_enabled: config.build_index,
                known_keys: Mutex::new(std::collections::HashMap::new()),
                participants_generation,
                snapshot: config.index_snapshot.filter(|_| config.build_index),
                db_id,
                position,
                follow_requested,
                node,
                snapshot_seq: std::sync::atomic::AtomicU64::new(match origin {
                    IndexOrigin::Snapshot { seq, .. } => seq,
                    IndexOrigin::Scan { .. } => u64::MAX,
                }),
                origin,
            }),
        })
    }

    /// The index built by scanning `numbers`, stamped with the last change logged before the scan.
    fn index_from_scan(
        conn: &mut dyn sql::Conn,
        connect: &(dyn Fn() -> Result<Box<dyn sql::Conn>, StoreError> + Sync),
    ) -> Result<(index::Index, std::collections::HashMap<String, Option<Day>>), StoreError> {
        let seq = snapshot::meta(conn, "index_seq")?.max(0) as u64;
        let (mut ix, ranges) = writer::build_index(conn, connect)?;
        ix.set_change_seq(seq);
        Ok((ix, ranges))
    }

    /// The index read from its snapshot and caught up with the changes logged after it; `Err` says why
    /// the snapshot cannot be used. The tables are read in one transaction: another node may drop
    /// logged changes meanwhile, and the changes read must be those the expectations were read with.
    #[allow(clippy::type_complexity)]
    fn index_from_snapshot(
        conn: &mut dyn sql::Conn,
        path: &std::path::Path,
    ) -> Result<(index::Index, std::collections::HashMap<String, Option<Day>>, IndexOrigin), String> {
        conn.begin_read().map_err(|e| format!("reading the tables failed: {e}"))?;
        let read = Store::index_from_snapshot_in(conn, path);
        let _ = conn.rollback();
        read
    }

    #[allow(clippy::type_complexity)]
    fn index_from_snapshot_in(
        conn: &mut dyn sql::Conn,
        path: &std::path::Path,
    ) -> Result<(index::Index, std::collections::HashMap<String, Option<Day>>, IndexOrigin), String> {
        let failed = |e: StoreError| format!("reading the tables failed: {e}");
        let ranges = writer::read_ranges(conn).map_err(failed)?;
        let expect = snapshot::Expect::read(conn, &ranges).map_err(failed)?;
        let mut ix = snapshot::read(path, &expect)?;
        let seq = ix.change_seq();
        let changed = snapshot::changed_since(conn, seq).map_err(failed)?;
        for (n, s) in &changed {
            ix.put(*n, s);
        }
        ix.set_change_seq(expect.index_seq);
        Ok((ix, ranges, IndexOrigin::Snapshot { seq, caught_up: changed.len() }))
    }

    /// A SHA-256 of the index's contents (`index::Index::encode`): two indexes with the same digest
    /// give the same answers (for a benchmark proving a snapshot's index equal to the tables' scan).
    pub fn index_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        self.inner.index.read().unwrap_or_else(|p| p.into_inner()).encode(&mut |b| hash.update(b));
        hash.finalize().into()
    }

    /// The last change of the tables the index reflects (see [`index::Index::change_seq`]).
    pub fn index_change_seq(&self) -> u64 {
        self.inner.index.read().unwrap_or_else(|p| p.into_inner()).change_seq()
    }

    /// How the index was built at start: from its snapshot, or by reading every number (and why the
    /// snapshot was not used, if there was one to use).
    pub fn index_origin(&self) -> IndexOrigin {
        self.inner.origin.clone()
    }

    /// The change seq the index has reached (as [`Store::index_change_seq`], without the index's lock).
    pub fn position(&self) -> u64 {
        *self.inner.position.borrow()
    }

    /// Waits until the index reflects every change up to `seq` (a position a write answered with,
    /// on this node or another), asking the writer to follow at once; false if `timeout` passed first.
    pub async fn wait_for_position(&self, seq: u64, timeout: std::time::Duration) -> bool {
        let mut position = self.inner.position.clone();
        if *position.borrow_and_update() >= seq {
            return true;
        }
        self.request_follow();
        tokio::time::timeout(timeout, position.wait_for(|&p| p >= seq)).await.is_ok_and(|r| r.is_ok())
    }

    /// Asks the writer to follow other processes' changes, unless it has been asked and not yet done
    /// so (one request stands for any number of waiting callers).
    fn request_follow(&self) {
        request_follow(&self.inner.writer, &self.inner.follow_requested);
    }

    /// Writes the index's snapshot (a copy taken under its lock, written outside it), then drops the
    /// logged changes it covers and every other follower has read (`index_followers`). `Ok(None)`
    /// when this store keeps no snapshot, or the snapshot on disk already reflects every change.
    pub async fn write_index_snapshot(&self) -> Result<Option<SnapshotWritten>, StoreError> {
        use std::sync::atomic::Ordering;
        let Some(path) = self.inner.snapshot.clone() else { return Ok(None) };
        if self.inner.snapshot_seq.load(Ordering::SeqCst) == self.index_change_seq() {
            return Ok(None);
        }
        let inner = self.inner.clone();
        let written = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let ix = inner.index.read().unwrap_or_else(|p| p.into_inner()).clone();
            let bytes = snapshot::write(&path, inner.db_id, &ix)
                .map_err(|e| StoreError::database(format!("writing the index snapshot {}: {e}", path.display())))?;
            Ok::<_, StoreError>(SnapshotWritten {
                seq: ix.change_seq(),
                bytes,
                seconds: started.elapsed().as_secs_f64(),
            })
        })
        .await
        .map_err(|e| StoreError::database(format!("writing the index snapshot panicked: {e}")))??;
        let seq = written.seq;
        self.inner.snapshot_seq.store(seq, Ordering::SeqCst);
        let node = self.inner.node.clone();
        self.write(move |ctx| ctx.record_and_prune(&node, seq)).await?;
        tracing::info!(seq, bytes = written.bytes, seconds = written.seconds, "index snapshot written");
        Ok(Some(written))
    }

    /// Numbers, blocks and bytes of the in-memory index.
    pub fn index_stats(&self) -> (u64, usize, usize) {
        let ix = self.inner.index.read().unwrap_or_else(|p| p.into_inner());
        (ix.numbers(), ix.blocks(), ix.memory_bytes())
    }

    /// R2 from the tables alone, bypassing the index and the audit: for tests that hold the index to
    /// the store's answer.
    #[cfg(feature = "testing")]
    pub async fn check_from_tables(
        &self,
        items: Vec<(PhoneNumber, Day)>,
    ) -> Result<Vec<Result<domain::Answer, domain::answer::DateAfterToday>>, StoreError> {
        self.write(move |ctx| {
            let today = ctx.clock.today();
            items.iter().map(|&(n, d)| Ok(domain::reassigned_since(&ctx.facts(n)?, d, today))).collect()
        })
        .await
    }

    /// A write command that writes an audit record and then panics: for the test that a panic is
    /// answered as one (and rolled back), not as a store that went away.
    #[cfg(feature = "testing")]
    pub async fn write_then_panic(&self) -> Result<(), StoreError> {
        self.write(|ctx| {
            ctx.audit("operator", "test.panics", None, "")?;
            panic!("a write command's bug (a test)");
        })
        .await
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn today(&self) -> Day {
        self.inner.clock.today()
    }

    /// Runs `f` inside the writer's next batch transaction; answers after that transaction committed.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(f, writer::command).await
    }

    /// As [`Store::write`], for a large write (a file's chunk, a list of events), which runs without
    /// a savepoint when it is the first of its batch to write.
    async fn write_bulk<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(f, writer::command_bulk).await
    }

    /// As [`Store::write`], for a command that only records in memory for the batch's commit (no
    /// savepoint of its own).
    async fn write_in_memory<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(f, writer::command_in_memory).await
    }

    async fn submit<R: Send + 'static, F>(
        &self,
        f: F,
        make: impl FnOnce(F, oneshot::Sender<Result<R, StoreError>>) -> writer::Command,
    ) -> Result<R, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner.writer.send(make(f, tx)).await.map_err(|_| StoreError::closed())?;
        rx.await.map_err(|_| StoreError::closed())?
    }

    /// Runs `f` on a read connection, on a blocking thread.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let _permit = self.inner.read_permits.acquire().await.map_err(|_| StoreError::closed())?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("the reader pool lock is never held across a panic").pop();
            let mut conn = match pooled {
                Some(c) => c,
                None => connect(&inner.url).map_err(|e| StoreError::Unavailable { reason: e.to_string() })?,
            };
            let r = f(conn.as_mut());
            // A connection that failed may be broken; open a fresh one next time. One lost with the
            // database (a restart, a failover) was not alone: the pooled ones go too.
            match &r {
                Ok(_) => inner.readers.lock().expect("the reader pool lock is never held across a panic").push(conn),
                Err(StoreError::Unavailable { .. }) => {
                    drop(std::mem::take(
                        &mut *inner.readers.lock().expect("the reader pool lock is never held across a panic"),
                    ));
                }
                Err(_) => {}
            }
            r
        })
        .await
        .map_err(|e| StoreError::database(format!("read task failed: {e}")))?
    }

    // ----- participants -----

    pub async fn add_participant(&self, p: NewParticipant) -> Result<(Participant, ApiKey), StoreError> {
        self.write(move |ctx| ctx.add_participant(p)).await
    }

    /// One participant, with its ranges.
    pub async fn participant(&self, seq: i64) -> Result<Option<Participant>, StoreError> {
        self.read(move |c| ops::participants::by_seq(c, seq)).await
    }

    pub async fn list_participants(&self) -> Result<Vec<Participant>, StoreError> {
        self.read(ops::participants::list).await
    }

    /// Issues a new key for the participant and revokes every earlier one.
    pub async fn rotate_key(&self, participant_id: &ParticipantId) -> Result<ApiKey, StoreError> {
        let id = participant_id.to_string();
        let r = self.write(move |ctx| ctx.rotate_key(&id)).await;
        self.forget_keys();
        r
    }

    /// Revokes every key of the participant: it can no longer call the API.
    pub async fn revoke_keys(&self, participant_id: &ParticipantId) -> Result<u64, StoreError> {
        let id = participant_id.to_string();
        let r = self.write(move |ctx| ctx.revoke_keys(&id)).await;
        self.forget_keys();
        r
    }

    fn forget_keys(&self) {
        self.inner.known_keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The participant an API key belongs to, if the key is known and not revoked.
    ///
    /// Valid keys are remembered for [`KEY_CACHE_SECS`], so that a busy caller does not cost a database
    /// read per request: a key revoked through this store stops working at once, one revoked by another
    /// process (a node beside this one, `numlink participant …`) as soon as this store's writer follows
    /// that commit (the revocation moves `meta.participants_generation`, under which keys are
    /// remembered), and at the latest after that time. Unknown keys are not remembered.
    pub async fn authenticate(&self, presented_key: &str) -> Result<Option<Participant>, StoreError> {
        let hash = ApiKey::hash_of(presented_key);
        let now = std::time::Instant::now();
        let generation = self.inner.participants_generation.load(std::sync::atomic::Ordering::SeqCst);
        {
            let mut known = self.inner.known_keys.lock().unwrap_or_else(|p| p.into_inner());
            match known.get(&hash) {
                Some((p, at, g)) if now.duration_since(*at).as_secs() < KEY_CACHE_SECS && *g == generation => {
                    return Ok(Some(p.clone()));
                }
                Some(_) => {
                    known.remove(&hash);
                }
                None => {}
            }
        }
        let found = self.read(move |c| ops::participants::by_key_hash(c, &hash)).await?;
        if let Some(p) = &found {
            self.inner.known_keys.lock().unwrap_or_else(|p| p.into_inner()).insert(hash, (p.clone(), now, generation));
        }
        Ok(found)
    }

    // ----- console sessions -----

    /// Signs a participant in to the pages with its API key: a session token for its browser, or
    /// `None` if the key is unknown or revoked. Sessions idle longer than `idle_secs` end.
    pub async fn open_console_session(
        &self,
        presented_key: String,
        idle_secs: i64,
    ) -> Result<Option<(String, Participant)>, StoreError> {
        self.write(move |ctx| ctx.open_console_session(&presented_key, idle_secs)).await
    }

    /// The participant a console session token stands for, if the session is open: used within
    /// `idle_secs`, and its key not revoked (read from the tables at every call, so a revocation by any
    /// process ends it at its next request).
    pub async fn console_session(&self, token: String, idle_secs: i64) -> Result<Option<Participant>, StoreError> {
        let now = self.clock().now().as_second();
        let t = token.clone();
        let found = self.read(move |c| ops::console::console_session(c, &t, now, idle_secs)).await?;
        let Some((participant, stale)) = found else { return Ok(None) };
        // Written down at most once a minute; a busy writer must not cost the page.
        if stale && let Err(e) = self.write(move |ctx| ctx.touch_console_session(&token)).await {
            tracing::warn!(error = %e, "a console session's use could not be written down");
        }
        Ok(Some(participant))
    }

    /// Ends a console session (sign-out); `false` if there was none.
    pub async fn close_console_session(&self, token: String) -> Result<bool, StoreError> {
        self.write(move |ctx| ctx.close_console_session(&token)).await
    }

    // ----- events and checks -----

    /// R3 for each event, in one transaction; outcomes in input order.
    pub async fn report_events(&self, carrier: Participant, events: Vec<NewEvent>) -> Result<Vec<Outcome>, StoreError> {
        let key = &self.inner.hash_key;
        let keyed = events
            .into_iter()
            .map(|e| {
                let keys = ops::events::EventKeys::of(key, carrier.carrier_id(), &e);
                (e, keys)
            })
            .collect();
        self.write_bulk(move |ctx| ctx.report_events(&carrier, keyed, None)).await
    }

    /// A number's stored events in R1 order.
    pub async fn events_of(&self, n: PhoneNumber) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(move |c| ops::events::events_of(c, n)).await
    }

    /// The carrier's `ported_in` events waiting for their `ported_out`, oldest first, at most `limit`.
    pub async fn pending_ports(&self, carrier_seq: i64, limit: u32) -> Result<Vec<PendingPort>, StoreError> {
        let now = self.clock().now().as_second();
        self.read(move |c| ops::events::pending_ports(c, carrier_seq, now, limit)).await
    }

    /// Drops the `ported_in` events that waited too long for their `ported_out`, at most `max` at a
    /// time. True if more are left.
    pub async fn expire_pending_ports(&self, max: u32) -> Result<bool, StoreError> {
        self.write(move |ctx| ctx.expire_pending_ports(max)).await
    }

    /// R2 for each (number, D), audited before the answers return. `Err` for an item whose D is after
    /// today.
    pub async fn check(
        &self,
        actor: Participant,
        items: Vec<(PhoneNumber, Day)>,
    ) -> Result<Vec<Result<domain::Answer, domain::answer::DateAfterToday>>, StoreError> {
        if !self.inner.index_enabled {
            return self.write(move |ctx| ctx.check_from_tables(&actor, &items)).await;
        }
        // Answers from the index, which holds every event acknowledged so far; the numbers hashed
        // for the audit here, so that the writer only appends them.
        let answers = self.answer_many(&items);
        let entries = ops::checklog::encode(
            &self.inner.hash_key,
            items.iter().zip(&answers).map(|(&(n, d), a)| (n, d, ops::checklog::LoggedAnswer::from(a))),
        );
        self.write_in_memory(move |ctx| {
            ctx.log_checks(&actor.id, None, entries);
            Ok(())
        })
        .await?;
        Ok(answers)
    }

    /// The checks of the last `batches` audited batches, oldest first.
    pub async fn logged_checks(&self, batches: u32) -> Result<Vec<ops::checklog::LoggedCheck>, StoreError> {
        self.read(move |c| ops::checklog::recent(c, batches)).await
    }

    /// Moves every logged check into the holder's lookups table now (the writer does it when idle).
    pub async fn compact_lookups(&self) -> Result<(), StoreError> {
        while self.compact_lookups_step(1 << 16).await? {}
        Ok(())
    }

    /// One step of that: at most `max` checks moved; false when there were none left.
    pub async fn compact_lookups_step(&self, max: usize) -> Result<bool, StoreError> {
        self.write(move |ctx| ops::checklog::CheckLog::compact(ctx.conn.as_mut(), max)).await
    }

    /// Files every notification waiting into the table of notifications by binding now (the writer
    /// does it when idle, and after each batch once [`NOTIFICATIONS_WAITING_MAX`] wait).
    pub async fn file_notifications(&self) -> Result<(), StoreError> {
        while self.file_notifications_step(1 << 16).await? > 0 {}
        Ok(())
    }

    /// One step of that: at most `max` of the next keys of the pass over the waiting notifications,
    /// which starts again from the first key after the last; how many it filed (0 at a pass's end).
    pub async fn file_notifications_step(&self, max: u64) -> Result<u64, StoreError> {
        self.write(move |ctx| ctx.file_notifications(max)).await
    }

    // ----- bindings and notifications -----

    /// Registers bindings (idempotent on institution, accountRef and number); per item, the binding
    /// or why not. Notifications for a binding that is already stale are created in the same commit.
    pub async fn register_bindings(
        &self,
        institution: Participant,
        items: Vec<NewBinding>,
    ) -> Result<Vec<Result<Registered, domain::Rejection>>, StoreError> {
        self.write(move |ctx| ctx.register_bindings(&institution, items)).await
    }

    /// One of the institution's bindings.
    pub async fn binding(&self, institution_seq: i64, id: &BindingId) -> Result<Option<Binding>, StoreError> {
        let id = id.to_string();
        self.read(move |c| ops::bindings::get(c, institution_seq, &id)).await
    }

    /// The institution's bindings in id order after the cursor `after` (an id, "" for the start).
    pub async fn bindings(&self, institution_seq: i64, after: &str, limit: u32) -> Result<Vec<Binding>, StoreError> {
        let after = after.to_string();
        self.read(move |c| ops::bindings::list(c, institution_seq, &after, limit)).await
    }

    /// The institution's bindings of one account reference, or else of one number, in id order
    /// after the cursor `after` (an id, "" for the start), at most `limit`.
    pub async fn find_bindings(
        &self,
        institution_seq: i64,
        account_ref: Option<String>,
        number: Option<PhoneNumber>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Binding>, StoreError> {
        let after = after.to_string();
        let by = match (account_ref, number) {
            (Some(a), _) => ops::bindings::BindingsOf::Account(a),
            (None, Some(n)) => ops::bindings::BindingsOf::NumberHash(self.inner.hash_key.number(n).to_vec()),
            (None, None) => return Ok(Vec::new()),
        };
        self.read(move |c| ops::bindings::find(c, institution_seq, &by, &after, limit)).await
    }

    /// Deletes one of the institution's bindings; false if it has none with that id.
    pub async fn delete_binding(&self, institution: Participant, id: &BindingId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ctx.delete_binding(&institution, &id)).await
    }

    /// The institution's notifications after the cursor, oldest first.
    pub async fn notifications(
        &self,
        institution_seq: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut page = self.read(move |c| ops::bindings::feed(c, institution_seq, after_seq, limit)).await?;
        for n in &mut page {
            n.unseal(&self.inner.hash_key);
        }
        Ok(page)
    }

    /// The institution's notifications that pass `filter`, newest first, before the feed position
    /// `before_seq` (0: from the newest); for its operators' page.
    pub async fn newest_notifications(
        &self,
        institution_seq: i64,
        filter: ops::bindings::NotificationFilter,
        before_seq: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.read(move |c| ops::bindings::newest(c, institution_seq, filter, before_seq, limit)).await
    }

    /// Acknowledges a notification with the action taken; `None` if the institution has none with that id.
    pub async fn ack_notification(
        &self,
        institution: Participant,
        id: &NotificationId,
        action: &str,
    ) -> Result<Option<Notification>, StoreError> {
        let (id, action) = (id.to_string(), action.to_string());
        self.write(move |ctx| ctx.ack_notification(&institution, &id, &action)).await
    }

    // ----- the holder's side -----

    /// Sets the carrier's SMS gateway (one per carrier).
    pub async fn put_sms_gateway(&self, carrier: Participant, url: &str, secret: &str) -> Result<(), StoreError> {
        let (url, secret) = (url.to_string(), secret.to_string());
        self.write(move |ctx| ctx.put_sms_gateway(&carrier, &url, &secret)).await
    }

    /// A carrier's gateway with its secret (to send a test message).
    pub async fn sms_gateway_with_secret(&self, carrier_seq: i64) -> Result<Option<SmsGateway>, StoreError> {
        self.read(move |c| ops::otp::sms_gateway_of(c, carrier_seq)).await
    }

    /// The codes issued for a carrier's numbers per UTC day from `since` on: (day, codes, of which
    /// found no gateway set).
    pub async fn sms_codes_daily(&self, carrier_seq: i64, since: Day) -> Result<Vec<(Day, u64, u64)>, StoreError> {
        self.read(move |c| ops::otp::codes_daily(c, carrier_seq, since)).await
    }

    /// The carrier's SMS gateway URL and when it was set.
    pub async fn sms_gateway(&self, carrier_seq: i64) -> Result<Option<(String, String)>, StoreError> {
        self.read(move |c| ops::otp::sms_gateway(c, carrier_seq)).await
    }

    /// A new one-time-code challenge for the number, within the limits; the code and where to send it.
    /// `client` identifies who asks (an IPv4 address or an IPv6 /64, as 16 bytes): each client has its
    /// own share of the number's budget.
    pub async fn request_otp(
        &self,
        n: PhoneNumber,
        limits: OtpLimits,
        client: Option<[u8; 16]>,
    ) -> Result<Result<OtpIssued, OtpRefused>, StoreError> {
        self.write(move |ctx| ctx.request_otp(n, &limits, client)).await
    }

    /// Checks a code; wrong guesses count (and commit) whatever the caller does next.
    pub async fn verify_otp(
        &self,
        n: PhoneNumber,
        challenge_id: &ChallengeId,
        code: &str,
        limits: OtpLimits,
    ) -> Result<Result<TenureMark, OtpFailure>, StoreError> {
        let (id, code) = (challenge_id.to_string(), code.to_string());
        self.write(move |ctx| ctx.verify_otp(n, &id, &code, &limits)).await
    }

    /// Who holds the number now, and since when.
    pub async fn tenure(&self, n: PhoneNumber) -> Result<domain::Tenure, StoreError> {
        self.write(move |ctx| Ok(domain::Tenure::of(&ctx.facts(n)?))).await
    }

    /// The mark of the number's current tenure (see [`TenureMark`]).
    pub async fn tenure_mark(&self, n: PhoneNumber) -> Result<TenureMark, StoreError> {
        self.write(move |ctx| ctx.tenure_mark(n)).await
    }

    /// The current tenure of the number and the institutions holding bindings made before it (R5).
    /// `None` if the number changed hands since the tenure `mark` (the session is over).
    pub async fn holder_view(&self, n: PhoneNumber, mark: TenureMark) -> Result<Option<HolderView>, StoreError> {
        self.write(move |ctx| ctx.as_holder(n, mark, |ctx| ctx.holder_view(n))).await
    }

    /// The holder's unbind requests in the current tenure, newest first.
    /// `None` if the number changed hands since the tenure `mark`.
    pub async fn holder_requests(
        &self,
        n: PhoneNumber,
        mark: TenureMark,
    ) -> Result<Option<Vec<UnbindRequest>>, StoreError> {
        self.write(move |ctx| ctx.as_holder(n, mark, |ctx| ctx.holder_requests(n))).await
    }

    /// One unbind request per institution named (or all) holding stale bindings on the number; the
    /// proof of tenure (`attestation`, id `jti`, expiring at `exp`) goes with each new one. Answers the
    /// requests (an institution's request that stands is given back, not made again) and how many of
    /// them are new.
    pub async fn request_unbind(
        &self,
        n: PhoneNumber,
        mark: TenureMark,
        institution_ids: Option<Vec<ParticipantId>>,
        deadline: Day,
        attestation: IssuedAttestation,
    ) -> Result<Result<(Vec<UnbindRequest>, usize), UnbindRefused>, StoreError> {
        self.write(move |ctx| {
            let r = ctx.as_holder(n, mark, |ctx| {
                ctx.request_unbind(n, institution_ids, deadline, &attestation.jti, &attestation.token)
            })?;
            let Some(r) = r else { return Ok(Err(UnbindRefused::TenureChanged)) };
            // The proof went out only with new requests.
            if matches!(&r, Ok((_, created)) if *created > 0) {
                ctx.attestation_issued(n, &attestation.jti, attestation.exp)?;
            }
            Ok(r)
        })
        .await
    }

    /// The institution's answer to an unbind request.
    pub async fn resolve_unbind(
        &self,
        institution: Participant,
        id: &UnbindRequestId,
        resolution: Resolution,
    ) -> Result<Resolved, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ctx.resolve_unbind(&institution, &id, &resolution)).await
    }

    /// One of the institution's unbind requests, with its bindings.
    pub async fn unbind_request(
        &self,
        institution_seq: i64,
        id: &UnbindRequestId,
    ) -> Result<Option<UnbindRequest>, StoreError> {
        let id = id.to_string();
        self.read(move |c| ops::unbind::request_of(c, institution_seq, &id)).await
    }

    /// The holder's proof of tenure sent to the institution with an unbind request (opened from the
    /// request's `unbind.requested` notification), if it is still there.
    pub async fn unbind_proof(&self, institution_seq: i64, id: &UnbindRequestId) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        let key = self.inner.hash_key.clone();
        self.read(move |c| {
            let row = c.query_one(
                "SELECT attestation FROM notifications WHERE institution_seq = $1 AND unbind_request_id = $2 \
                 AND attestation IS NOT NULL",
                &[institution_seq.into(), id.as_str().into()],
            )?;
            Ok(row.and_then(|r| r.opt_text(0)).and_then(|sealed| key.unseal(&sealed).ok()))
        })
        .await
    }

    /// The institution's requests as its operators work through them (`UnbindQueue`).
    pub async fn unbind_queue(
        &self,
        institution_seq: i64,
        open_max: u32,
        answered_max: u32,
    ) -> Result<ops::unbind::UnbindQueue, StoreError> {
        self.read(move |c| ops::unbind::queue_of(c, institution_seq, open_max, answered_max)).await
    }

    /// The institution's unbind requests in id order after the cursor.
    pub async fn unbind_requests(
        &self,
        institution_seq: i64,
        after: &str,
        limit: u32,
    ) -> Result<Vec<UnbindRequest>, StoreError> {
        let after = after.to_string();
        self.read(move |c| ops::unbind::requests_of(c, institution_seq, &after, limit)).await
    }

    /// Institutions' checks of the number since `since_unix`, within the current tenure, newest first.
    /// `None` if the number changed hands since the tenure `mark`.
    pub async fn lookups(
        &self,
        n: PhoneNumber,
        mark: TenureMark,
        since_unix: i64,
        limit: u32,
    ) -> Result<Option<Vec<Lookup>>, StoreError> {
        self.write(move |ctx| {
            ctx.as_holder(n, mark, |ctx| {
                let tenure = domain::Tenure::of(&ctx.facts(n)?);
                let today = ctx.clock.today();
                ops::checklog::lookups(ctx.conn.as_mut(), &ctx.hash_key, n, tenure, today, since_unix, limit)
            })
        })
        .await
    }

    /// Records a proof of tenure issued to the holder of tenure `mark`; false (nothing recorded) if the
    /// number changed hands since, when the proof must not be handed out.
    pub async fn attestation_issued(
        &self,
        n: PhoneNumber,
        mark: TenureMark,
        attestation: IssuedAttestation,
    ) -> Result<bool, StoreError> {
        self.write(move |ctx| {
            Ok(ctx.as_holder(n, mark, |ctx| ctx.attestation_issued(n, &attestation.jti, attestation.exp))?.is_some())
        })
        .await
    }

    /// Makes `kid` the signing key of proofs of tenure if none is current (or always, with `rotate`);
    /// a retired key stays published `publish_secs`. Returns the current key id.
    pub async fn attestation_key(
        &self,
        kid: &str,
        public_key: [u8; 32],
        rotate: bool,
        publish_secs: i64,
    ) -> Result<String, StoreError> {
        let kid = kid.to_string();
        self.write(move |ctx| ctx.attestation_key(&kid, &public_key, rotate, publish_secs)).await
    }

    /// The keys to publish (current and retired but still needed), newest first.
    pub async fn attestation_keys(&self) -> Result<Vec<AttestationKey>, StoreError> {
        let now = self.inner.clock.now().as_second();
        self.read(move |c| ops::attestation::attestation_keys(c, now)).await
    }

    /// The regulator's report as of today, over the requests and notifications made in `period` (all,
    /// if `None`).
    pub async fn institution_report(
        &self,
        unacked_working_days: u32,
        period: Option<ops::report::Period>,
    ) -> Result<Vec<InstitutionReport>, StoreError> {
        let today = self.today();
        self.read(move |c| ops::report::institution_report(c, today, unacked_working_days, period)).await
    }

    /// The series of the regulator's charts as of today, over the requests and notifications made in
    /// `period` (the last `weeks_max` weeks, if `None`), at most `weeks_max` weeks of overdue counts.
    pub async fn report_series(&self, period: Option<Period>, weeks_max: usize) -> Result<ReportSeries, StoreError> {
        let today = self.today();
        self.read(move |c| ops::report::report_series(c, today, period, weeks_max)).await
    }

    // ----- real names -----

    /// CAMARA KYC Match against the current holder's record, audited; at most `max_per_day` per
    /// institution and number.
    pub async fn kyc_match(
        &self,
        actor: Participant,
        n: PhoneNumber,
        asked: Kyc,
        max_per_day: u32,
    ) -> Result<KycAnswer, StoreError> {
        self.write(move |ctx| ctx.kyc_match(&actor, n, &asked, max_per_day)).await
    }

    /// Moves a binding to a customer's new number if the real names match its holder.
    pub async fn rebind(
        &self,
        institution: Participant,
        binding_id: &BindingId,
        new_number: PhoneNumber,
        id_document: &str,
        name: &str,
        max_per_day: u32,
    ) -> Result<Rebind, StoreError> {
        let (id, doc, name) = (binding_id.to_string(), id_document.to_string(), name.to_string());
        self.write(move |ctx| ctx.rebind(&institution, &id, new_number, &doc, &name, max_per_day)).await
    }

    /// Drops KYC Match counts of past days, at most `max` rows. True if more are left.
    pub async fn prune_kyc_attempts(&self, max: u32) -> Result<bool, StoreError> {
        self.write(move |ctx| ctx.prune_kyc_attempts(max)).await
    }

    // ----- the SMS outbox -----

    /// Puts a message (its JSON, sealed here) in the outbox for any node to send, until `expires_at`
    /// (unix seconds); false when `max` wait already (the message is not kept).
    pub async fn queue_sms(&self, plain: String, expires_at: i64, max: u64) -> Result<bool, StoreError> {
        let sealed = self.inner.hash_key.seal(&plain);
        self.write(move |ctx| ctx.queue_sms(&sealed, expires_at, max)).await
    }

    /// Whether a message is due in the outbox that no other node holds.
    pub async fn sms_due(&self) -> Result<bool, StoreError> {
        let (node, now) = (self.inner.node.clone(), self.clock().now().as_second());
        self.read(move |c| ops::sms::due(c, &node, now)).await
    }

    /// Claims for this node at most `max` messages due (expired ones are dropped first), each with its
    /// JSON unsealed (`Err` for one that does not open: it is to be dropped).
    pub async fn claim_sms(&self, max: u32) -> Result<Vec<(ClaimedSms, Result<String, StoreError>)>, StoreError> {
        let node = self.inner.node.clone();
        let claimed = self.write(move |ctx| ctx.claim_sms(&node, max)).await?;
        Ok(claimed
            .into_iter()
            .map(|m| {
                let plain = self.inner.hash_key.unseal(&m.sealed);
                (m, plain)
            })
            .collect())
    }

    /// Records what became of claimed messages: `(seq, None)` sent or given up, `(seq, Some(at))` to be
    /// tried again at `at` (unix seconds).
    pub async fn sms_attempted(&self, outcomes: Vec<(i64, Option<i64>)>) -> Result<(), StoreError> {
        self.write(move |ctx| ctx.sms_attempted(&outcomes)).await
    }

    // ----- limits on anonymous clients -----

    /// Counts a request of the anonymous client `client` (its address as limits see it) in `scope`,
    /// if it is within `max` in its window of `window_secs`; `Ok(Err(retry_after_secs))`, counting
    /// nothing, if it is not. Every node on the database shares the count.
    pub async fn count_client(
        &self,
        scope: &'static str,
        client: std::net::IpAddr,
        max: u32,
        window_secs: i64,
    ) -> Result<Result<(), i64>, StoreError> {
        self.write(move |ctx| ctx.count_client(scope, client, max, window_secs)).await
    }

    /// Whether `client` has used its `max` in `scope` in its window: `Some(retry_after_secs)`.
    pub async fn client_over(
        &self,
        scope: &'static str,
        client: std::net::IpAddr,
        max: u32,
        window_secs: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (key, now) = (self.inner.hash_key.clone(), self.clock().now().as_second());
        self.read(move |c| ops::limits::over(c, &key, scope, client, max, window_secs, now)).await
    }

    /// Drops the counts of clients' windows that began over a day ago (every limit's window is
    /// shorter), at most `max`. True if more may be left.
    pub async fn prune_client_limits(&self, max: u32) -> Result<bool, StoreError> {
        let before = self.clock().now().as_second() - 86_400;
        self.write(move |ctx| ctx.prune_client_limits(before, max)).await
    }

    // ----- webhooks -----

    /// Registers an endpoint with its signing secret, sent up to `batch_events` notifications a
    /// request; at most `endpoints_max` per institution.
    pub async fn add_endpoint(
        &self,
        institution: Participant,
        url: &str,
        secret: &str,
        endpoints_max: u32,
        batch_events: u32,
    ) -> Result<Endpoint, StoreError> {
        let (url, secret) = (url.to_string(), secret.to_string());
        self.write(move |ctx| ctx.add_endpoint(&institution, &url, &secret, endpoints_max, batch_events)).await
    }

    pub async fn endpoints(&self, institution_seq: i64) -> Result<Vec<Endpoint>, StoreError> {
        self.read(move |c| ops::webhooks::list(c, institution_seq)).await
    }

    pub async fn delete_endpoint(&self, institution: Participant, id: &EndpointId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ctx.delete_endpoint(&institution, &id)).await
    }

    /// Replaces an endpoint's secret; the previous one keeps signing for `overlap_secs`.
    pub async fn rotate_endpoint_secret(
        &self,
        institution: Participant,
        id: &EndpointId,
        new_secret: &str,
        overlap_secs: i64,
    ) -> Result<Option<Endpoint>, StoreError> {
        let (id, secret) = (id.to_string(), new_secret.to_string());
        self.write(move |ctx| ctx.rotate_endpoint_secret(&institution, &id, &secret, overlap_secs)).await
    }

    /// One of the institution's endpoints.
    pub async fn endpoint(&self, institution_seq: i64, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
        let id = id.to_string();
        self.read(move |c| ops::webhooks::endpoint_of(c, institution_seq, &id)).await
    }

    /// One of the institution's endpoints with its newest deliveries, before the feed place `before`;
    /// `None` if it has no such endpoint.
    pub async fn endpoint_deliveries(
        &self,
        institution_seq: i64,
        id: &EndpointId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Option<(Endpoint, Vec<LoggedDelivery>)>, StoreError> {
        let id = id.to_string();
        self.read(move |c| ops::webhooks::endpoint_deliveries(c, institution_seq, &id, before, limit)).await
    }

    /// Sends a test notification to one of the institution's endpoints alone.
    pub async fn test_endpoint(
        &self,
        institution: Participant,
        id: &EndpointId,
    ) -> Result<EndpointAction<NotificationId>, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ctx.test_endpoint(&institution, &id)).await
    }

    /// Queues one delivery of one of the institution's endpoints again, from the first attempt.
    pub async fn replay_delivery(
        &self,
        institution: Participant,
        endpoint: &EndpointId,
        notification: &NotificationId,
    ) -> Result<EndpointAction<()>, StoreError> {
        let (endpoint, notification) = (endpoint.to_string(), notification.to_string());
        self.write(move |ctx| ctx.replay_delivery(&institution, &endpoint, &notification)).await
    }

    /// Enables one of the institution's endpoints again; `None` if it has no such endpoint.
    pub async fn enable_endpoint(
        &self,
        institution: Participant,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ctx.enable_endpoint(&institution, &id)).await
    }

    /// Queues a notification again for every enabled endpoint; `None` if the institution has no such notification.
    pub async fn replay(
        &self,
        institution: Participant,
        notification_id: &NotificationId,
    ) -> Result<Option<u64>, StoreError> {
        let id = notification_id.to_string();
        self.write(move |ctx| ctx.replay(&institution, &id)).await
    }

    /// Deliveries due at `now` (unix seconds), per endpoint: each enabled endpoint's oldest, at most
    /// `per_endpoint` (times its batch factor), for at most `endpoints_max` endpoints not in `busy` and
    /// not claimed by another node (see `ops::webhooks::due_endpoints`). This node claims each
    /// endpoint returned until its lane's outcomes are recorded ([`Store::record_attempts`]) or it ends
    /// without any ([`Store::end_lane`]), for [`LANE_LEASE_SECS`] at most.
    pub async fn due_by_endpoint(
        &self,
        now: i64,
        per_endpoint: u32,
        endpoints_max: u32,
        busy: Vec<String>,
    ) -> Result<Vec<Vec<DueDelivery>>, StoreError> {
        let node = self.inner.node.clone();
        let candidates = self.read(move |c| ops::webhooks::due_endpoints(c, now, endpoints_max, &busy, &node)).await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // Each endpoint's deliveries are this node's to attempt once it holds the endpoint's lease,
        // and read only then: another node that held it has recorded its lane's outcomes by the time
        // it gave the lease back.
        let node = self.inner.node.clone();
        let held: Vec<(String, u32)> = self
            .write(move |ctx| {
                let mut held = Vec::with_capacity(candidates.len());
                for (endpoint, factor) in candidates {
                    if ctx.take_lease(&ops::webhooks::lane_lease(&endpoint), &node, ops::webhooks::LANE_LEASE_SECS)? {
                        held.push((endpoint, factor));
                    }
                }
                Ok(held)
            })
            .await?;
        let share_of = move |factor: u32| i64::from(per_endpoint) * i64::from(factor);
        let (queues, empty) = self
            .read(move |c| {
                let (mut queues, mut empty) = (Vec::new(), Vec::new());
                for (endpoint, factor) in held {
                    let queue = ops::webhooks::due_of_endpoint(c, &endpoint, now, share_of(factor))?;
                    if queue.is_empty() {
                        empty.push(endpoint);
                    } else {
                        queues.push(queue);
                    }
                }
                Ok((queues, empty))
            })
            .await?;
        if !empty.is_empty() {
            self.release_lanes(empty).await?;
        }
        let mut due = queues;
        for d in due.iter_mut().flatten() {
            d.notification.unseal(&self.inner.hash_key);
        }
        Ok(due)
    }

    /// Gives back this node's leases on the lanes of `endpoints`.
    async fn release_lanes(&self, endpoints: Vec<String>) -> Result<(), StoreError> {
        let node = self.inner.node.clone();
        self.write(move |ctx| {
            for e in &endpoints {
                ctx.release_lease(&ops::webhooks::lane_lease(e), &node)?;
            }
            Ok(())
        })
        .await
    }

    /// When the next pending delivery is due (unix seconds).
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(ops::webhooks::next_due).await
    }

    /// Records the outcomes of delivery attempts (notification seq, endpoint id, outcome), in one
    /// transaction.
    pub async fn record_attempts(
        &self,
        attempts: Vec<(i64, EndpointId, AttemptOutcome)>,
        disable_after_secs: i64,
    ) -> Result<(), StoreError> {
        let node = self.inner.node.clone();
        self.write(move |ctx| {
            let mut lanes = std::collections::BTreeSet::new();
            for (seq, endpoint, outcome) in &attempts {
                ctx.record_attempt(*seq, endpoint, outcome, disable_after_secs)?;
                lanes.insert(endpoint.as_str());
            }
            // With the outcomes, the lanes' leases go: the next node to take one reads them.
            for endpoint in lanes {
                ctx.release_lease(&ops::webhooks::lane_lease(endpoint), &node)?;
            }
            Ok(())
        })
        .await
    }

    /// Ends this node's lane of `endpoint` without outcomes to record (it made no attempt).
    pub async fn end_lane(&self, endpoint: &str) -> Result<(), StoreError> {
        self.release_lanes(vec![endpoint.to_string()]).await
    }

    /// The delivery rows of a notification, for operators and tests.
    pub async fn deliveries_of(&self, notification_id: &NotificationId) -> Result<Vec<DeliveryState>, StoreError> {
        let id = notification_id.to_string();
        self.read(move |c| ops::webhooks::deliveries_of(c, &id)).await
    }

    // ----- jobs -----

    pub async fn create_job(
        &self,
        owner: Participant,
        kind: JobKind,
        format: String,
        spool_path: &Path,
    ) -> Result<Job, StoreError> {
        let spool = spool_path.to_string_lossy().into_owned();
        self.write(move |ctx| ctx.create_job(&owner, kind, &format, &spool)).await
    }

    /// A job, if it exists and belongs to `owner_seq`.
    pub async fn job(&self, id: &JobId, owner_seq: i64) -> Result<Option<Job>, StoreError> {
        let id = id.to_string();
        self.read(move |c| ops::jobs::get(c, &id, Some(owner_seq))).await
    }

    /// An owner's newest jobs, at most `limit`.
    pub async fn jobs_of(&self, owner_seq: i64, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.read(move |c| ops::jobs::of_owner(c, owner_seq, limit)).await
    }

    /// Claims for this node the oldest job that is queued, or running without a live claim (its node
    /// stopped, or died), or claimed by this node before it restarted.
    pub async fn next_job(&self) -> Result<Option<Job>, StoreError> {
        let node = self.inner.node.clone();
        self.write(move |ctx| ctx.claim_job(&node)).await
    }

    /// Renews this node's claim on a running job; false if another node holds it now, or it is over.
    pub async fn renew_job_claim(&self, job_id: &JobId) -> Result<bool, StoreError> {
        let (id, node) = (job_id.to_string(), self.inner.node.clone());
        self.write(move |ctx| ctx.renew_job_claim(&id, &node)).await
    }

    /// Says that this process, started as `boot` (an id of its own), is this node, for
    /// [`NODE_NAME_LEASE_SECS`]: call it every third of that. `Ok(None)` when it is; `Ok(Some(until))`
    /// when another process holds the node's name until then. That is a predecessor that died, if
    /// `until` stays as it is; another process running under the same name, if it moves on.
    pub async fn announce_node(&self, boot: String) -> Result<Option<i64>, StoreError> {
        let name = format!("node:{}", self.inner.node);
        self.write(move |ctx| {
            if let Some((holder, until)) = ctx.lease_holder(&name)?
                && holder != boot
                && until >= ctx.now_unix()
            {
                return Ok(Some(until));
            }
            ctx.take_lease(&name, &boot, NODE_NAME_LEASE_SECS)?;
            Ok(None)
        })
        .await
    }

    /// This process's name among the nodes (see [`StoreConfig::node`]).
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Whether the database keeps uploaded files and check files' results for every node (PostgreSQL,
    /// which several nodes share) rather than each node's spool directory alone (SQLite, one node).
    pub fn shares_files(&self) -> bool {
        matches!(self.inner.url, DbUrl::Postgres(_))
    }

    /// Keeps the file at `path` under `name` for every node (see [`Store::shares_files`]), before the
    /// job that reads it is queued. Returns its bytes.
    pub async fn keep_file(&self, name: String, path: std::path::PathBuf) -> Result<u64, StoreError> {
        self.read(move |c| ops::jobs::put_file(c, &name, &path)).await
    }

    /// Writes the first `upto` bytes (`u64::MAX`: all) of the kept file `name` to `path`. False if the
    /// database keeps no such file.
    pub async fn fetch_file(&self, name: String, path: std::path::PathBuf, upto: u64) -> Result<bool, StoreError> {
        self.read(move |c| ops::jobs::fetch_file(c, &name, &path, upto)).await
    }

    /// Drops the kept file `name` (an upload whose job was not queued).
    pub async fn drop_kept_file(&self, name: String) -> Result<(), StoreError> {
        self.read(move |c| ops::jobs::drop_kept_file(c, &name)).await
    }

    /// The part of the kept file `name` that holds byte `at`: where it starts, and its bytes.
    pub async fn file_part(&self, name: String, at: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(move |c| ops::jobs::file_part(c, &name, at)).await
    }

    /// Computes off the writer's thread what applying `rows` needs (a check file's packed audit
    /// entries, a lifecycle file's keyed hashes). Blocking: it hashes every row, on every core.
    pub fn prepare_chunk(&self, job: &Job, rows: Vec<ChunkRow>) -> PreparedChunk {
        let prepared = ops::jobs::Prepared::of(&self.inner.hash_key, domain::CarrierId(job.owner_seq), &rows);
        PreparedChunk { rows, checks: 0, prepared }
    }

    /// A check file's chunk for the writer: its answered checks, as the result file has them (packed
    /// here for the audit, 21 bytes each, on every core), and its bad rows. Packed rather than as
    /// [`ChunkRow`]s (176 bytes each) because a check file's rows are many and cheap: moving them
    /// through the stages cost more than answering them.
    pub fn prepare_checks(&self, answered: &[AnsweredCheck], bad: Vec<ChunkRow>) -> PreparedChunk {
        let prepared = ops::jobs::Prepared::checks(&self.inner.hash_key, answered);
        PreparedChunk { rows: bad, checks: answered.len(), prepared }
    }

    /// Applies a chunk of a file read from `job`'s checkpoint and moves the checkpoint to `to`, in one
    /// transaction. If the job's checkpoint is elsewhere by then (another runner got there first, or
    /// the chunk was read ahead of a commit that failed), nothing is applied and the job is returned as
    /// it is.
    pub async fn apply_prepared(&self, job: &Job, chunk: PreparedChunk, to: Checkpoint) -> Result<Job, StoreError> {
        let (job_id, from_offset, node) = (job.id.clone(), job.byte_offset, self.inner.node.clone());
        self.write_bulk(move |ctx| ctx.apply_chunk(&node, &job_id, from_offset, chunk, to)).await
    }

    /// [`Store::prepare_chunk`] (on a blocking thread) and [`Store::apply_prepared`].
    pub async fn apply_chunk(&self, job: &Job, rows: Vec<ChunkRow>, to: Checkpoint) -> Result<Job, StoreError> {
        let (store, for_prepare) = (self.clone(), job.clone());
        let chunk = tokio::task::spawn_blocking(move || store.prepare_chunk(&for_prepare, rows))
            .await
            .map_err(|e| StoreError::database(format!("hashing a chunk failed: {e}")))?;
        self.apply_prepared(job, chunk, to).await
    }

    /// R2 for many questions from the index, without an audit record: for a check file's runner,
    /// which audits each answer with the chunk that commits it.
    pub fn answer_many(
        &self,
        items: &[(PhoneNumber, Day)],
    ) -> Vec<Result<domain::Answer, domain::answer::DateAfterToday>> {
        let today = self.today();
        let mut out = Vec::with_capacity(items.len());
        self.inner.index.read().unwrap_or_else(|p| p.into_inner()).answer_many(items, today, &mut out);
        out
    }

    /// Ended jobs whose outputs are kept though they ended before `before` (RFC 3339), oldest first.
    pub async fn job_outputs_before(&self, before: String, limit: u32) -> Result<Vec<Job>, StoreError> {
        let before = time::stamp_unix(time::parse_unix(&before).map_err(|_| {
            StoreError::invalid(
                "TIME",
                format!("not an RFC 3339 time: {}", domain::number::truncate_for_message(&before)),
            )
        })?);
        self.read(move |c| ops::jobs::outputs_before(c, &before, limit)).await
    }

    /// Records that a job's outputs are gone (the caller removed its files); its rejected rows go with
    /// [`Store::purge_jobs`].
    pub async fn job_outputs_deleted(&self, job_id: &JobId) -> Result<(), StoreError> {
        let id = job_id.to_string();
        self.write(move |ctx| ctx.job_outputs_deleted(&id)).await
    }

    /// One step of deleting the rejected rows (and deleted jobs' rows) of jobs whose outputs are gone,
    /// at most `max` rows. True if more may be left.
    pub async fn purge_jobs(&self, max: u32) -> Result<bool, StoreError> {
        self.write(move |ctx| ctx.purge_jobs(max)).await
    }

    /// Deletes an ended job of `owner` with its rejected rows (the caller removes its files first).
    pub async fn delete_job(&self, owner: Participant, job_id: &JobId) -> Result<JobDeleted, StoreError> {
        let id = job_id.to_string();
        self.write(move |ctx| ctx.delete_job(&owner, &id)).await
    }

    /// Drops the check log older than `before` (RFC 3339), at most `max` entries in this step. True if
    /// more may be left.
    pub async fn prune_check_log(&self, before: String, max: usize) -> Result<bool, StoreError> {
        self.write(move |ctx| ctx.prune_check_log(&before, max)).await
    }

    pub async fn fail_job(&self, job_id: &JobId, error: String) -> Result<(), StoreError> {
        let id = job_id.to_string();
        self.write(move |ctx| ctx.fail_job(&id, &error)).await
    }

    /// Rejected rows of a job after `after_line`, at most `limit`.
    pub async fn job_rejections(
        &self,
        job_id: &JobId,
        after_line: u64,
        limit: u32,
    ) -> Result<Vec<RejectionRow>, StoreError> {
        let id = job_id.to_string();
        self.read(move |c| ops::jobs::rejections(c, &id, after_line, limit)).await
    }

    // ----- audit -----

    /// Walks the audit chain and reports the first record whose hash does not match.
    pub async fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        self.read(ops::audit::verify).await
    }

    pub async fn audit_tail(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |c| ops::audit::tail(c, limit)).await
    }

    /// A cheap query on a read connection, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query("SELECT 1", &[]).map(|_| ())).await
    }
}
