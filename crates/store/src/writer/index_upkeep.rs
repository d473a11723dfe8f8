//! The index's upkeep, the writer's half that keeps the in-memory index in step with the tables:
//! built at start by scanning `numbers` in parallel slices, given each batch's summaries after its
//! commit, re-read for the numbers of a commit whose outcome is unknown (`resync_index`), and caught
//! up with what other processes committed (`follow_changes`): every batch that changes summaries logs
//! their numbers under the next `meta.index_seq` (`index_changes`), and a writer reads the numbers
//! logged after its index's seq before each batch's commands (under the write lock, so nothing is
//! missed) and whenever it is woken while quiet (a tick, or PostgreSQL's `NOTIFY` of a commit).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use domain::{Day, PhoneNumber, Prefix, Summary};
use index::Index;

use super::WriteCtx;
use crate::StoreError;
use crate::sql::Conn;

/// The index the writer keeps in step: shared with the store's readers, the ranges it was built with,
/// and whether there is one at all (the CLI's short-lived stores have none).
pub(crate) struct IndexSetup {
    pub(crate) index: Arc<RwLock<Index>>,
    pub(crate) ranges: HashMap<String, Option<Day>>,
    pub(crate) enabled: bool,
    /// Told each change seq the index reaches (see [`crate::Store::wait_for_position`]).
    pub(crate) position: Arc<tokio::sync::watch::Sender<u64>>,
    /// `meta.participants_generation` as the writer last read it: API keys remembered under an
    /// older one are read again (another process may have revoked them).
    pub(crate) participants_generation: Arc<std::sync::atomic::AtomicI64>,
    /// Set by whoever queues a follow command, cleared by the writer as it begins one.
    pub(crate) follow_requested: Arc<std::sync::atomic::AtomicBool>,
    /// Opens a reading connection, for the threads of a rebuild (see `follow_changes`).
    pub(crate) connect: Arc<dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Send + Sync>,
}

/// What the writer keeps to hold the index in step with what it commits.
pub(super) struct IndexKeep {
    /// The in-memory index checks answer from; changed only after a batch commits.
    shared: Arc<RwLock<Index>>,
    /// False in a store opened without an index: checks read the tables.
    enabled: bool,
    /// Summaries written by this batch, for the index once it commits (and, index or not, the
    /// numbers the batch logs as changed).
    pending: Vec<(PhoneNumber, Summary)>,
    /// Numbers this batch wrote an event of (also those of commands rolled back since): with the
    /// index, what tells the writer a number has no history without reading it.
    written: HashSet<u64>,
    /// Numbers whose summaries the index may lack: written by a batch whose commit failed, whose
    /// outcome a connection lost during COMMIT leaves unknown. Read again from the tables at the start
    /// of the next batch, before its commands: its write lock (on PostgreSQL an advisory lock the lost
    /// transaction holds until it ends) makes the outcome settled by then.
    resync: Vec<PhoneNumber>,
    /// The ranges the index was last given (prefix digits → reportingSince).
    ranges: HashMap<String, Option<Day>>,
    /// The seq under which this batch logged the numbers it changed (`index_changes`), once logged:
    /// the index reflects it once the batch commits.
    seq_attempted: Option<u64>,
    /// See [`IndexSetup::position`].
    position: Arc<tokio::sync::watch::Sender<u64>>,
    /// See [`IndexSetup::participants_generation`].
    pub(super) participants_generation: Arc<std::sync::atomic::AtomicI64>,
    /// See [`IndexSetup::follow_requested`].
    pub(super) follow_requested: Arc<std::sync::atomic::AtomicBool>,
    /// See [`IndexSetup::connect`].
    connect: Arc<dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Send + Sync>,
    /// The batch changed the carriers' ranges, which other processes' indexes follow too: it logs a
    /// change even if no summary changed.
    pub(super) ranges_changed: bool,
    /// When this writer last found changes of another process to follow: while that is recent, a
    /// batch follows them before it takes the write lock too (see `WriteCtx::begin`).
    pub(super) others_committed_at: Option<std::time::Instant>,
}

impl IndexKeep {
    pub(super) fn new(setup: IndexSetup) -> IndexKeep {
        IndexKeep {
            shared: setup.index,
            enabled: setup.enabled,
            pending: Vec::new(),
            written: HashSet::new(),
            resync: Vec::new(),
            ranges: setup.ranges,
            seq_attempted: None,
            position: setup.position,
            participants_generation: setup.participants_generation,
            follow_requested: setup.follow_requested,
            connect: setup.connect,
            ranges_changed: false,
            others_committed_at: None,
        }
    }

    /// Where the batch's summaries stand, for a savepoint taken now.
    pub(super) fn marks(&self) -> usize {
        self.pending.len()
    }

    /// After a rollback to a savepoint: the summaries written since are not the batch's.
    pub(super) fn undo_to(&mut self, marks: usize) {
        self.pending.truncate(marks);
    }

    /// A failed commit left numbers whose summaries must be read again before any command runs.
    pub(super) fn resync_pending(&self) -> bool {
        !self.resync.is_empty()
    }

    /// After the batch's commit, before any caller is answered: its summaries go into the index. If
    /// the commit failed, it may have happened all the same (a lost reply): the index reads these
    /// numbers' summaries from the tables before the next batch's commands run; until then none of
    /// their events has been acknowledged.
    pub(super) fn after_commit(&mut self, committed: bool) {
        self.ranges_changed = false;
        if !self.enabled {
            self.pending.clear();
            self.seq_attempted = None;
        } else if committed {
            let seq = self.seq_attempted.take();
            if !self.pending.is_empty() || seq.is_some() {
                let mut ix = self.shared.write().unwrap_or_else(|p| p.into_inner());
                for (n, s) in self.pending.drain(..) {
                    ix.put(n, &s);
                }
                if let Some(seq) = seq {
                    ix.set_change_seq(seq);
                    drop(ix);
                    self.position.send_replace(seq);
                }
            }
        } else {
            self.seq_attempted = None;
            self.resync.extend(self.pending.drain(..).map(|(n, _)| n));
        }
        self.written.clear();
    }
}

/// How long a process's index may go without recording its seq (at each snapshot it writes) before
/// the changes it has not read may be dropped.
pub(crate) const FOLLOWER_SILENT_SECS: i64 = 3600;

/// The summaries of `numbers` (sorted), as the tables hold them now: those with no row have none. Read
/// a thousand at a time by a list given as text (PostgreSQL's array, SQLite's JSON), one statement for
/// each.
fn read_summaries(conn: &mut dyn Conn, numbers: &[u64]) -> Result<Vec<(PhoneNumber, Summary)>, StoreError> {
    let sql = match conn.dialect() {
        crate::sql::Dialect::Postgres => {
            format!("SELECT {SUMMARY_COLUMNS} FROM numbers WHERE number = ANY(string_to_array($1, ',')::bigint[])")
        }
        crate::sql::Dialect::Sqlite => {
            format!("SELECT {SUMMARY_COLUMNS} FROM numbers WHERE number IN (SELECT value FROM json_each($1))")
        }
    };
    let mut read = Vec::with_capacity(numbers.len());
    for part in numbers.chunks(1000) {
        let list = part.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let list = match conn.dialect() {
            crate::sql::Dialect::Postgres => list,
            crate::sql::Dialect::Sqlite => format!("[{list}]"),
        };
        let mut found = std::collections::HashMap::with_capacity(part.len());
        conn.query_each(&sql, &[list.into()], &mut |r| {
            let (n, s) = summary_row(r)?;
            found.insert(n.digits(), s);
            Ok(())
        })?;
        for &d in part {
            let n = PhoneNumber::from_digits(d)
                .ok_or_else(|| StoreError::Corrupt(format!("a number in index_changes: {d}")))?;
            read.push((n, found.remove(&d).unwrap_or_default()));
        }
    }
    Ok(read)
}

/// The summary columns of `numbers`, as the index is built from them.
pub(crate) const SUMMARY_COLUMNS: &str = "number, first_event, last_end, last_activation, disconnected";

pub(crate) fn summary_row(r: &crate::sql::Row) -> Result<(PhoneNumber, Summary), StoreError> {
    let day = |i| r.opt_i64(i).and_then(|v| Day::from_packed(v as i32));
    let n =
        PhoneNumber::from_digits(r.i64(0)? as u64).ok_or_else(|| StoreError::Corrupt("a number in numbers".into()))?;
    Ok((
        n,
        Summary {
            first_event: day(1),
            last_end: day(2),
            last_activation: day(3),
            disconnected: r.i64(4)? != 0,
            serving: None,
        },
    ))
}

fn ranges_of(prefixes: &HashMap<String, Option<Day>>) -> Vec<(Prefix, Option<Day>)> {
    prefixes.iter().filter_map(|(p, since)| Prefix::parse(&format!("+{p}")).ok().map(|p| (p, *since))).collect()
}

/// The carriers' ranges in the tables: prefix digits → reportingSince.
pub(crate) fn read_ranges(conn: &mut dyn Conn) -> Result<HashMap<String, Option<Day>>, StoreError> {
    let mut ranges = HashMap::new();
    conn.query_each(
        "SELECT x.prefix, p.reporting_since FROM prefixes x JOIN participants p ON p.seq = x.participant_seq",
        &[],
        &mut |r| {
            ranges.insert(r.text(0)?, r.opt_i64(1).and_then(|v| Day::from_packed(v as i32)));
            Ok(())
        },
    )?;
    Ok(ranges)
}

/// Slices of number space the build splits the scan into (pulled by the build threads in turn, so
/// that clustered numbers do not leave a thread idle).
const BUILD_SLICES: u64 = 64;

/// Builds the index from the carriers' ranges and every number's summary: the `numbers` table is
/// scanned by slices of number space, one connection per core (a single scan is bounded by one core's
/// reading of rows), each thread building the blocks of its slices, which are then joined.
pub(crate) fn build_index(
    conn: &mut dyn Conn,
    connect: &(dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Sync),
) -> Result<(Index, HashMap<String, Option<Day>>), StoreError> {
    let ranges = read_ranges(conn)?;
    // Two queries: SQLite answers a lone MIN or MAX from the edge of the key's B-tree, but both in one
    // SELECT by scanning the whole table, on one thread, before the build's own scan (at 10,000,000
    // numbers the start took 2.2 s with it and 1.5 s without).
    let mut bound = |sql| conn.query_one(sql, &[]).map(|r| r.and_then(|r| r.opt_i64(0)));
    let lo = bound("SELECT MIN(number) FROM numbers")?;
    let (lo, hi) = match (lo, bound("SELECT MAX(number) FROM numbers")?) {
        (Some(lo), Some(hi)) => (lo as u64, hi as u64),
        _ => return Ok((Index::new(ranges_of(&ranges)), ranges)),
    };
    // Slice edges on block boundaries, so that no block is split between threads.
    let block = index::BLOCK_NUMBERS;
    let first = lo / block;
    let blocks = hi / block - first + 1;
    let per_slice = blocks.div_ceil(BUILD_SLICES).max(1);
    let slices: Vec<(u64, u64)> = (0..BUILD_SLICES)
        .map(|i| ((first + i * per_slice) * block, (first + (i + 1) * per_slice) * block))
        .filter(|(a, _)| *a <= hi)
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(slices.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let sql = format!("SELECT {SUMMARY_COLUMNS} FROM numbers WHERE number >= $1 AND number < $2");
    let parts: Vec<Result<Index, StoreError>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = connect()?;
                    let mut ix = Index::new(ranges_of(&ranges));
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(a, b)) = slices.get(i) else { return Ok(ix) };
                        conn.query_each(&sql, &[(a as i64).into(), (b as i64).into()], &mut |r| {
                            let n = PhoneNumber::from_digits(r.i64(0)? as u64)
                                .ok_or_else(|| StoreError::Corrupt("a number in numbers".into()))?;
                            let day = |i| r.opt_i64(i).unwrap_or(0) as i32;
                            ix.put_packed(n, day(1), day(2), day(3), r.i64(4)? != 0);
                            Ok(())
                        })?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(StoreError::database("an index build thread panicked"))))
            .collect()
    });
    let mut ix = Index::new(ranges_of(&ranges));
    for part in parts {
        ix.absorb(part?);
    }
    Ok((ix, ranges))
}

impl WriteCtx {
    /// Records a summary the batch wrote; the index gets it once the batch commits.
    pub(crate) fn index_later(&mut self, n: PhoneNumber, s: Summary) {
        self.index.written.insert(n.digits());
        self.index.pending.push((n, s));
    }

    /// False only if `n` surely has no event stored: the index says it has no history and this batch
    /// wrote none of it (commands run only while the index holds every summary committed before their
    /// batch: see `resync` and `follow_changes`). A carrier's first load is all such numbers; their
    /// histories are not read.
    pub(crate) fn may_have_history(&self, n: PhoneNumber) -> bool {
        !self.index.enabled
            || self.index.written.contains(&n.digits())
            || self.index.shared.read().unwrap_or_else(|p| p.into_inner()).has_history(n)
    }

    /// Gives the index the ranges just loaded, if they changed, and puts again every number under a
    /// prefix that came, went or changed its `reportingSince` (from the tables, inside this batch).
    pub(super) fn sync_index_ranges(&mut self) -> Result<(), StoreError> {
        let wanted: HashMap<String, Option<Day>> =
            self.prefixes.iter().map(|(p, (_, since))| (p.clone(), *since)).collect();
        if !self.index.enabled || wanted == self.index.ranges {
            return Ok(());
        }
        let mut changed: Vec<String> =
            wanted.iter().filter(|(p, s)| self.index.ranges.get(*p) != Some(s)).map(|(p, _)| p.clone()).collect();
        changed.extend(self.index.ranges.keys().filter(|p| !wanted.contains_key(*p)).cloned());
        let mut ix = self.index.shared.write().unwrap_or_else(|p| p.into_inner());
        ix.set_ranges(ranges_of(&wanted));
        for p in changed.iter().filter_map(|p| Prefix::parse(&format!("+{p}")).ok()) {
            for (lo, hi) in Index::prefix_spans(&p) {
                self.conn.query_each(
                    &format!("SELECT {SUMMARY_COLUMNS} FROM numbers WHERE number >= $1 AND number < $2"),
                    &[(lo as i64).into(), (hi as i64).into()],
                    &mut |r| {
                        let (n, s) = summary_row(r)?;
                        ix.put(n, &s);
                        Ok(())
                    },
                )?;
            }
        }
        drop(ix);
        self.index.ranges = wanted;
        Ok(())
    }

    /// Logs the numbers whose summaries this batch changed (`index_changes`, under the next
    /// `meta.index_seq`), in its transaction: what a server started from an older snapshot of its index
    /// reads again, and what every other process's index reads to follow this one's. On PostgreSQL
    /// the commit also notifies the listeners of `numlink_index` (see `postgres::listen_for_changes`).
    pub(super) fn log_index_changes(&mut self) -> Result<(), StoreError> {
        if self.index.pending.is_empty() && !self.index.ranges_changed {
            return Ok(());
        }
        let row =
            self.conn.query_one("UPDATE meta SET value = value + 1 WHERE key = 'index_seq' RETURNING value", &[])?;
        let seq = row.map(|r| r.i64(0)).transpose()?.ok_or_else(|| StoreError::Corrupt("meta.index_seq".into()))?;
        let mut numbers: Vec<u64> = self.index.pending.iter().map(|(n, _)| n.digits()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let packed: Vec<u8> = numbers.iter().flat_map(|n| n.to_le_bytes()).collect();
        self.conn.exec("INSERT INTO index_changes (seq, numbers) VALUES ($1, $2)", &[seq.into(), packed.into()])?;
        if self.conn.dialect() == crate::sql::Dialect::Postgres {
            self.conn.exec("SELECT pg_notify('numlink_index', $1)", &[seq.to_string().into()])?;
        }
        self.index.seq_attempted = Some(seq as u64);
        Ok(())
    }

    /// Catches the index up with the changes other processes logged (`index_changes`) after the seq
    /// it reflects, given `meta.index_seq` and `meta.index_changes_pruned_through` as this transaction
    /// reads them: the numbers' summaries are read again, in the same transaction. Writers commit one at
    /// a time and each takes the next seq, so a transaction sees every change up to the last it sees.
    /// Changes pruned before this index read them (a process that did not follow for longer than the
    /// others kept them) leave only a scan of every number.
    pub(super) fn follow_changes(&mut self, db_seq: u64, pruned_through: u64) -> Result<(), StoreError> {
        if !self.index.enabled {
            return Ok(());
        }
        let own = self.index.shared.read().unwrap_or_else(|p| p.into_inner()).change_seq();
        if db_seq <= own {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.index.others_committed_at = Some(started);
        if pruned_through > own {
            tracing::warn!(
                own,
                pruned_through,
                "the index fell behind the changes still logged: every number is read again"
            );
            let connect = self.index.connect.clone();
            let (mut ix, ranges) = build_index(self.conn.as_mut(), &*connect)?;
            ix.set_change_seq(db_seq);
            *self.index.shared.write().unwrap_or_else(|p| p.into_inner()) = ix;
            self.index.ranges = ranges;
            self.index.position.send_replace(db_seq);
            return Ok(());
        }
        let mut numbers: Vec<u64> = Vec::new();
        self.conn.query_each(
            "SELECT numbers FROM index_changes WHERE seq > $1 AND seq <= $2",
            &[(own as i64).into(), (db_seq as i64).into()],
            &mut |r| {
                let packed =
                    r.opt_bytes(0).ok_or_else(|| StoreError::Corrupt("index_changes.numbers is not bytes".into()))?;
                numbers.extend(packed.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))));
                Ok(())
            },
        )?;
        numbers.sort_unstable();
        numbers.dedup();
        let read = read_summaries(self.conn.as_mut(), &numbers)?;
        let mut ix = self.index.shared.write().unwrap_or_else(|p| p.into_inner());
        for (n, s) in &read {
            ix.put(*n, s);
        }
        ix.set_change_seq(db_seq);
        drop(ix);
        self.index.position.send_replace(db_seq);
        tracing::debug!(
            from = own,
            to = db_seq,
            numbers = read.len(),
            seconds = started.elapsed().as_secs_f64(),
            "the index followed other processes' changes"
        );
        Ok(())
    }

    /// Drops the logged changes a snapshot written at `seq` covers.
    pub(crate) fn prune_index_changes(&mut self, seq: u64) -> Result<(), StoreError> {
        let seq = seq as i64;
        self.conn.exec("DELETE FROM index_changes WHERE seq <= $1", &[seq.into()])?;
        self.conn.exec(
            "UPDATE meta SET value = $1 WHERE key = 'index_changes_pruned_through' AND value < $2",
            &[seq.into(), seq.into()],
        )?;
        Ok(())
    }

    /// Records `snapshot_seq`, the seq of the snapshot `node` just wrote (what it needs the changes
    /// after, should it start again), in `index_followers`, then drops the logged changes that every
    /// follower heard from within `FOLLOWER_SILENT_SECS` has recorded. A follower silent for longer
    /// (stopped, or gone) reads every number when it comes back.
    pub(crate) fn record_and_prune(&mut self, node: &str, snapshot_seq: u64) -> Result<(), StoreError> {
        let now = self.now_unix();
        self.conn.exec(
            "INSERT INTO index_followers (node, seq, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, seen_at = excluded.seen_at",
            &[node.into(), (snapshot_seq as i64).into(), now.into()],
        )?;
        self.conn.exec("DELETE FROM index_followers WHERE seen_at < $1", &[(now - FOLLOWER_SILENT_SECS).into()])?;
        let slowest = self
            .conn
            .query_one("SELECT MIN(seq) FROM index_followers", &[])?
            .and_then(|r| r.opt_i64(0))
            .map_or(snapshot_seq, |s| s.max(0) as u64);
        self.prune_index_changes(snapshot_seq.min(slowest))
    }

    /// Puts into the index what the tables hold for the numbers of `resync`.
    pub(super) fn resync_index(&mut self) -> Result<(), StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM numbers WHERE number = $1");
        self.index.resync.sort_unstable();
        self.index.resync.dedup();
        let mut read = Vec::with_capacity(self.index.resync.len());
        for &n in &self.index.resync {
            let s = match self.conn.query_one(&sql, &[(n.digits() as i64).into()])? {
                Some(r) => summary_row(&r)?.1,
                None => Summary::default(),
            };
            read.push((n, s));
        }
        let mut ix = self.index.shared.write().unwrap_or_else(|p| p.into_inner());
        for (n, s) in &read {
            ix.put(*n, s);
        }
        tracing::info!(numbers = read.len(), "the index took the tables' summaries of a failed commit's numbers");
        self.index.resync.clear();
        Ok(())
    }
}
