//! The index's upkeep, the writer's half that keeps the in-memory index in step with the tables:
//! built at start by scanning `numbers` in parallel slices, given each batch's summaries after its
//! commit, re-read for the numbers of a commit whose outcome is unknown (`resync_index`), and the
//! `events_stamp` that tells a writer another process wrote events its index lacks.

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
    /// `meta.events_stamp` read before the index was built: whatever changes it later, the index
    /// may not know of.
    pub(crate) events_stamp: i64,
    /// Cleared when another process's events are seen (see `IndexKeep::complete`).
    pub(crate) complete: Arc<std::sync::atomic::AtomicBool>,
}

/// What the writer keeps to hold the index in step with what it commits.
pub(super) struct IndexKeep {
    /// The in-memory index checks answer from; changed only after a batch commits.
    shared: Arc<RwLock<Index>>,
    /// False in a store opened without an index: checks read the tables.
    enabled: bool,
    /// Summaries written by this batch, for the index once it commits.
    pending: Vec<(PhoneNumber, Summary)>,
    /// Numbers this batch wrote an event of (also those of commands rolled back since): with the
    /// index, what tells the writer a number has no history without reading it.
    written: HashSet<u64>,
    /// Numbers whose summaries the index may lack: written by a batch whose commit failed, whose
    /// outcome a connection lost during COMMIT leaves unknown. Read again from the tables at the start
    /// of the next batch, before its commands: its write lock (on PostgreSQL an advisory lock the lost
    /// transaction holds until it ends) makes the outcome settled by then.
    resync: Vec<PhoneNumber>,
    /// `meta.events_stamp` as this writer expects to find it. Each batch that writes events sets it to
    /// this writer's id (high 32 bits) and a count of such batches; another value means another
    /// process wrote events since (a second server on the database), which this process's index does
    /// not know of.
    events_stamp: i64,
    /// The stamp of a batch whose commit failed: it may have committed (see `resync`).
    stamp_attempted: Option<i64>,
    /// This writer's id in `events_stamp`.
    writer_id: i64,
    /// Another process has written events: the index's "no history" is not trusted any more.
    foreign_events: bool,
    /// The ranges the index was last given (prefix digits → reportingSince).
    ranges: HashMap<String, Option<Day>>,
    /// The seq under which this batch logged the numbers it changed (`index_changes`), once logged:
    /// the index reflects it once the batch commits.
    seq_attempted: Option<u64>,
    /// Shared with the store: false once another process has written events this index lacks (a
    /// snapshot of it would then miss them).
    complete: Arc<std::sync::atomic::AtomicBool>,
}

impl IndexKeep {
    pub(super) fn new(setup: IndexSetup) -> IndexKeep {
        IndexKeep {
            shared: setup.index,
            enabled: setup.enabled,
            pending: Vec::new(),
            written: HashSet::new(),
            resync: Vec::new(),
            events_stamp: setup.events_stamp,
            stamp_attempted: None,
            // 1 to 2^31 - 1: the stamp (id << 32 | count) stays a positive i64.
            writer_id: i64::from(u32::from_be_bytes(crate::keys::random_bytes()) >> 1).max(1),
            foreign_events: false,
            ranges: setup.ranges,
            seq_attempted: None,
            complete: setup.complete,
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

    /// `meta.events_stamp` as a batch finds it: not what this writer left means another process
    /// wrote events since, which the index does not know of.
    pub(super) fn note_events_stamp(&mut self, stamp: i64) {
        let attempted = self.stamp_attempted.take();
        let expected = stamp == self.events_stamp || attempted == Some(stamp);
        if !expected && self.enabled && !self.foreign_events {
            self.foreign_events = true;
            self.complete.store(false, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!(
                "another process has written lifecycle events to this database (one writing node per database): \
                 this server reads every number's history from the tables from now on, and its checks may miss \
                 the other's events until it is restarted"
            );
        }
        self.events_stamp = stamp;
    }

    /// After the batch's commit, before any caller is answered: its summaries go into the index. If
    /// the commit failed, it may have happened all the same (a lost reply): the index reads these
    /// numbers' summaries from the tables before the next batch's commands run; until then none of
    /// their events has been acknowledged.
    pub(super) fn after_commit(&mut self, committed: bool) {
        if committed {
            if let Some(stamp) = self.stamp_attempted.take() {
                self.events_stamp = stamp;
            }
            let seq = self.seq_attempted.take();
            if !self.pending.is_empty() || seq.is_some() {
                let mut ix = self.shared.write().unwrap_or_else(|p| p.into_inner());
                for (n, s) in self.pending.drain(..) {
                    ix.put(n, &s);
                }
                if let Some(seq) = seq {
                    ix.set_change_seq(seq);
                }
            }
        } else {
            self.seq_attempted = None;
            self.resync.extend(self.pending.drain(..).map(|(n, _)| n));
        }
        self.written.clear();
    }
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
        if self.index.enabled {
            self.index.pending.push((n, s));
        }
    }

    /// False only if `n` surely has no event stored: the index says it has no history and this batch
    /// wrote none of it (commands run only while the index holds every summary this process committed:
    /// see `resync`; and while no other process has written events: see `events_stamp`). A carrier's
    /// first load is all such numbers; their histories are not read.
    pub(crate) fn may_have_history(&self, n: PhoneNumber) -> bool {
        !self.index.enabled
            || self.index.foreign_events
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

    /// Marks the batch's events as this writer's in `meta.events_stamp`, if it wrote any.
    pub(super) fn stamp_events(&mut self) -> Result<(), StoreError> {
        if self.index.written.is_empty() {
            return Ok(());
        }
        let ours = self.index.events_stamp >> 32 == self.index.writer_id;
        let count = if ours { (self.index.events_stamp + 1) & 0xffff_ffff } else { 0 };
        let stamp = (self.index.writer_id << 32) | count;
        self.conn.exec("UPDATE meta SET value = $1 WHERE key = 'events_stamp'", &[stamp.into()])?;
        self.index.stamp_attempted = Some(stamp);
        Ok(())
    }

    /// Logs the numbers whose summaries this batch changed (`index_changes`, under the next
    /// `meta.index_seq`), in its transaction: what a server started from an older snapshot of its index
    /// reads again.
    pub(super) fn log_index_changes(&mut self) -> Result<(), StoreError> {
        if self.index.pending.is_empty() {
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
        self.index.seq_attempted = Some(seq as u64);
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
