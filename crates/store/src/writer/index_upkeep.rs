//! The index's upkeep, the writer's half that keeps the in-memory index in step with the tables:
//! built at start by scanning `numbers` in parallel slices, given each batch's summaries after its
//! commit, re-read for the numbers of a commit whose outcome is unknown (`resync_index`), and the
//! `events_stamp` that tells a writer another process wrote events its index lacks.

use std::collections::HashMap;
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
}

/// The summary columns of `numbers`, as the index is built from them.
const SUMMARY_COLUMNS: &str = "number, first_event, last_end, last_activation, disconnected";

fn summary_row(r: &crate::sql::Row) -> Result<(PhoneNumber, Summary), StoreError> {
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
    let mut ranges = HashMap::new();
    conn.query_each(
        "SELECT x.prefix, p.reporting_since FROM prefixes x JOIN participants p ON p.seq = x.participant_seq",
        &[],
        &mut |r| {
            ranges.insert(r.text(0)?, r.opt_i64(1).and_then(|v| Day::from_packed(v as i32)));
            Ok(())
        },
    )?;
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
        self.written.insert(n.digits());
        if self.index_enabled {
            self.pending.push((n, s));
        }
    }

    /// False only if `n` surely has no event stored: the index says it has no history and this batch
    /// wrote none of it (commands run only while the index holds every summary this process committed:
    /// see `resync`; and while no other process has written events: see `events_stamp`). A carrier's
    /// first load is all such numbers; their histories are not read.
    pub(crate) fn may_have_history(&self, n: PhoneNumber) -> bool {
        !self.index_enabled
            || self.foreign_events
            || self.written.contains(&n.digits())
            || self.index.read().unwrap_or_else(|p| p.into_inner()).has_history(n)
    }

    /// Gives the index the ranges just loaded, if they changed, and puts again every number under a
    /// prefix that came, went or changed its `reportingSince` (from the tables, inside this batch).
    pub(super) fn sync_index_ranges(&mut self) -> Result<(), StoreError> {
        let wanted: HashMap<String, Option<Day>> =
            self.prefixes.iter().map(|(p, (_, since))| (p.clone(), *since)).collect();
        if !self.index_enabled || wanted == self.index_ranges {
            return Ok(());
        }
        let mut changed: Vec<String> =
            wanted.iter().filter(|(p, s)| self.index_ranges.get(*p) != Some(s)).map(|(p, _)| p.clone()).collect();
        changed.extend(self.index_ranges.keys().filter(|p| !wanted.contains_key(*p)).cloned());
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
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
        self.index_ranges = wanted;
        Ok(())
    }

    /// Marks the batch's events as this writer's in `meta.events_stamp`, if it wrote any.
    pub(super) fn stamp_events(&mut self) -> Result<(), StoreError> {
        if self.written.is_empty() {
            return Ok(());
        }
        let ours = self.events_stamp >> 32 == self.writer_id;
        let count = if ours { (self.events_stamp + 1) & 0xffff_ffff } else { 0 };
        let stamp = (self.writer_id << 32) | count;
        self.conn.exec("UPDATE meta SET value = $1 WHERE key = 'events_stamp'", &[stamp.into()])?;
        self.stamp_attempted = Some(stamp);
        Ok(())
    }

    /// Puts into the index what the tables hold for the numbers of `resync`.
    pub(super) fn resync_index(&mut self) -> Result<(), StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM numbers WHERE number = $1");
        self.resync.sort_unstable();
        self.resync.dedup();
        let mut read = Vec::with_capacity(self.resync.len());
        for &n in &self.resync {
            let s = match self.conn.query_one(&sql, &[(n.digits() as i64).into()])? {
                Some(r) => summary_row(&r)?.1,
                None => Summary::default(),
            };
            read.push((n, s));
        }
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        for (n, s) in &read {
            ix.put(*n, s);
        }
        tracing::info!(numbers = read.len(), "the index took the tables' summaries of a failed commit's numbers");
        self.resync.clear();
        Ok(())
    }
}
