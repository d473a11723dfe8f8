//! Checks are audited by the batch. A check records who asked about which number, for which date,
//! and the answer; at millions of numbers a second a chained record per number costs more than the
//! answer itself (a SHA-256 link, an index insert and ~150 bytes of WAL each). So the writer gathers
//! the checks of a commit per caller (and job) and writes, in that same commit, one chained audit
//! record `checks` (detail `count=N;sha256=HEX[;job=ID]`) and, under its seq, the packed entries in
//! `check_batches`. The record's SHA-256 of the entries makes each of them as tamper-evident as a
//! record of its own; `audit verify` recomputes it.
//!
//! The holder's lookups need the batches by number: `check_tags` (day, tag, seq) is filled behind the
//! writer, when it is idle, up to a watermark in `meta`; lookups read it (a probe per day of the period
//! shown) and scan the batches after the watermark, so they are exact whether or not the compaction
//! has caught up. After the retention period, the upkeep drops a day's tags (a contiguous range of the
//! key) and the batches, a bounded step at a time.
//!
//! A holder sees who looked the number up in the current tenure (`lookups`): checks from
//! their batches, KYC matches from their own audit records.

use domain::{Day, PhoneNumber, Tenure};

use crate::StoreError;
use crate::keys::HashKey;
use crate::ops::audit::{AuditChain, entries_digest};
use crate::sql::{Conn, Value};

/// The bytes of a number's keyed tag ([`HashKey::tag`]) per entry: 128 bits, no collision in any
/// country's numbers.
pub const TAG_BYTES: usize = 16;
/// One entry: tag, date (`yyyymmdd`, i32 big-endian), answer.
pub const ENTRY_BYTES: usize = TAG_BYTES + 4 + 1;
/// Tags moved into `check_tags` per compaction step: a step holds the writer for a millisecond or two.
pub const COMPACT_STEP: usize = 512;
/// Rows per multi-row insert of tags (3 parameters each).
const TAGS_PER_INSERT: usize = 256;
/// Batches of entries dropped in one step of the pruning (a check file's batch holds up to 100,000).
pub const PRUNE_BATCHES: usize = 16;

/// An institution's check of a number, as the holder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub institution_name: String,
    pub at: String,
    pub action: String,
}

/// The UTC day of an RFC 3339 time, as the audit log writes them.
fn day_of_rfc3339(at: &str) -> Result<Day, StoreError> {
    at.get(..10)
        .and_then(|d| Day::parse(d).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("a time that is not RFC 3339: {at:?}")))
}

/// The answer a check gave, as logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoggedAnswer {
    Yes,
    No,
    NoData,
    /// The date asked about was after today (`OUT_OF_RANGE`).
    DateAfterToday,
}

impl LoggedAnswer {
    pub(crate) fn byte(self) -> u8 {
        match self {
            LoggedAnswer::Yes => b'y',
            LoggedAnswer::No => b'n',
            LoggedAnswer::NoData => b'd',
            LoggedAnswer::DateAfterToday => b'o',
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<LoggedAnswer> {
        Some(match b {
            b'y' => LoggedAnswer::Yes,
            b'n' => LoggedAnswer::No,
            b'd' => LoggedAnswer::NoData,
            b'o' => LoggedAnswer::DateAfterToday,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LoggedAnswer::Yes => "yes",
            LoggedAnswer::No => "no",
            LoggedAnswer::NoData => "no_data",
            LoggedAnswer::DateAfterToday => "OUT_OF_RANGE",
        }
    }
}

impl From<&Result<domain::Answer, domain::answer::DateAfterToday>> for LoggedAnswer {
    fn from(a: &Result<domain::Answer, domain::answer::DateAfterToday>) -> LoggedAnswer {
        match a {
            Ok(domain::Answer::Yes) => LoggedAnswer::Yes,
            Ok(domain::Answer::No) => LoggedAnswer::No,
            Ok(domain::Answer::NoData(_)) => LoggedAnswer::NoData,
            Err(domain::answer::DateAfterToday) => LoggedAnswer::DateAfterToday,
        }
    }
}

/// A check answered: the number, the date asked about, the answer.
pub type AnsweredCheck = (PhoneNumber, Day, LoggedAnswer);

/// One check as the audit log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedCheck {
    /// The seq of the audit record of its batch.
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub job: Option<String>,
    /// The number's keyed tag ([`HashKey::tag`]).
    pub tag: [u8; TAG_BYTES],
    pub date: Day,
    pub answer: LoggedAnswer,
}

/// Checks a command logged, written at the batch's commit.
struct PendingChecks {
    actor: String,
    job: Option<String>,
    entries: Vec<u8>,
}

/// The writer's buffer of the check log: the checks its batch's commands logged, written at the
/// batch's commit (`flush`), and whether batches wait for their tags to move into `check_tags`.
pub(crate) struct CheckLog {
    pending: Vec<PendingChecks>,
    behind: bool,
    /// Whether the writer moves tags when idle (a serving store).
    compact_when_idle: bool,
}

fn decode(entries: &[u8]) -> impl Iterator<Item = Result<([u8; TAG_BYTES], Day, LoggedAnswer), StoreError>> + '_ {
    entries.chunks(ENTRY_BYTES).map(|e| {
        let bad = || StoreError::Corrupt("a check_batches entry".into());
        if e.len() != ENTRY_BYTES {
            return Err(bad());
        }
        let tag: [u8; TAG_BYTES] = e[..TAG_BYTES].try_into().map_err(|_| bad())?;
        let packed = i32::from_be_bytes(e[TAG_BYTES..TAG_BYTES + 4].try_into().map_err(|_| bad())?);
        let date = Day::from_packed(packed).ok_or_else(bad)?;
        let answer = LoggedAnswer::from_byte(e[ENTRY_BYTES - 1]).ok_or_else(bad)?;
        Ok((tag, date, answer))
    })
}

fn has_tag(entries: &[u8], tag: &[u8]) -> bool {
    entries.chunks_exact(ENTRY_BYTES).any(|e| &e[..TAG_BYTES] == tag)
}

/// The `sha256=` value of a `checks` or `events` record's detail.
/// Checks packed as entries, ready for [`CheckLog::log`]. Packing hashes every number, so it
/// is done on the caller's thread, not the writer's.
pub(crate) fn encode(key: &HashKey, items: impl ExactSizeIterator<Item = (PhoneNumber, Day, LoggedAnswer)>) -> Vec<u8> {
    let mut entries = Vec::with_capacity(items.len() * ENTRY_BYTES);
    for (n, d, a) in items {
        entries.extend_from_slice(&key.tag(n));
        entries.extend_from_slice(&d.packed().to_be_bytes());
        entries.push(a.byte());
    }
    entries
}

impl CheckLog {
    pub(crate) fn new(compact_when_idle: bool) -> CheckLog {
        // Behind until the first compaction step says otherwise (a restart may leave work).
        CheckLog { pending: Vec::new(), behind: compact_when_idle, compact_when_idle }
    }

    /// Logs checks `actor` made (in `job`, for a check file), packed by [`encode`].
    pub(crate) fn log(&mut self, actor: &str, job: Option<&str>, entries: Vec<u8>) {
        self.pending.push(PendingChecks { actor: actor.to_string(), job: job.map(str::to_string), entries });
    }

    /// Where the buffer stands, for a savepoint taken now.
    pub(crate) fn marks(&self) -> usize {
        self.pending.len()
    }

    /// Forgets what was logged since `marks` (a rolled-back savepoint; 0: a failed batch).
    pub(crate) fn undo_to(&mut self, marks: usize) {
        self.pending.truncate(marks);
    }

    pub(crate) fn behind(&self) -> bool {
        self.behind
    }

    pub(crate) fn set_behind(&mut self, behind: bool) {
        self.behind = behind;
    }

    /// Writes the batch's logged checks at `at`: per caller and job, one chained record and its
    /// entries.
    pub(crate) fn flush(&mut self, conn: &mut dyn Conn, chain: &mut AuditChain, at: &str) -> Result<(), StoreError> {
        let mut groups: Vec<PendingChecks> = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            match groups.iter_mut().find(|g| g.actor == p.actor && g.job == p.job) {
                Some(g) => g.entries.extend_from_slice(&p.entries),
                None => groups.push(p),
            }
        }
        for g in groups.into_iter().filter(|g| !g.entries.is_empty()) {
            let mut detail = format!("count={};sha256={}", g.entries.len() / ENTRY_BYTES, entries_digest(&g.entries));
            if let Some(job) = &g.job {
                detail.push_str(";job=");
                detail.push_str(job);
            }
            let seq = chain.append_seq(conn, at, &g.actor, "checks", None, &detail)?;
            conn.exec(
                "INSERT INTO check_batches (seq, entries) VALUES ($1, $2)",
                &[seq.into(), Value::Bytes(g.entries)],
            )?;
            // A serving store moves their tags for the holder's lookups when idle.
            self.behind = self.compact_when_idle;
        }
        Ok(())
    }

    /// Moves up to `max` tags of logged checks into `check_tags`, oldest first, in the current
    /// transaction. False when there was nothing left to move.
    pub(crate) fn compact(conn: &mut dyn Conn, max: usize) -> Result<bool, StoreError> {
        let meta = |c: &mut dyn Conn, key: &str| -> Result<i64, StoreError> {
            Ok(c.query_one("SELECT value FROM meta WHERE key = $1", &[key.into()])?
                .map(|r| r.i64(0))
                .transpose()?
                .unwrap_or(0))
        };
        let (mut upto, mut offset) = (meta(conn, "check_tags_upto")?, meta(conn, "check_tags_offset")?);
        let mut budget = max;
        let mut moved_any = false;
        while budget > 0 {
            let row = conn.query_one(
                "SELECT b.seq, length(b.entries), substr(b.entries, $1, $2), a.at FROM check_batches b \
                 JOIN audit a ON a.seq = b.seq WHERE b.seq > $3 ORDER BY b.seq LIMIT 1",
                // substr takes 32-bit positions (PostgreSQL is strict about it); a batch is far smaller.
                &[
                    Value::I32(i32::try_from(offset * ENTRY_BYTES as i64 + 1).unwrap_or(i32::MAX)),
                    Value::I32(i32::try_from(budget * ENTRY_BYTES).unwrap_or(i32::MAX)),
                    upto.into(),
                ],
            )?;
            let Some(row) = row else { break };
            let (seq, len) = (row.i64(0)?, row.i64(1)?);
            let day = day_of_rfc3339(&row.text(3)?)?;
            let slice = row.opt_bytes(2).unwrap_or_default();
            let mut tags: Vec<&[u8]> = slice.chunks_exact(ENTRY_BYTES).map(|e| &e[..TAG_BYTES]).collect();
            let taken = tags.len();
            tags.sort_unstable();
            tags.dedup();
            for chunk in tags.chunks(TAGS_PER_INSERT) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
                let params: Vec<Value> = chunk
                    .iter()
                    .flat_map(|t| [Value::from(day.packed()), Value::Bytes(t.to_vec()), Value::from(seq)])
                    .collect();
                conn.exec(
                    &format!(
                        "INSERT INTO check_tags (day, tag, seq) VALUES {} ON CONFLICT DO NOTHING",
                        values.join(", ")
                    ),
                    &params,
                )?;
            }
            offset += taken as i64;
            if offset * ENTRY_BYTES as i64 >= len {
                (upto, offset) = (seq, 0);
            }
            budget = budget.saturating_sub(taken.max(1));
            moved_any = true;
        }
        if moved_any {
            for (key, value) in [("check_tags_upto", upto), ("check_tags_offset", offset)] {
                conn.exec("UPDATE meta SET value = $1 WHERE key = $2", &[value.into(), key.into()])?;
            }
        }
        Ok(moved_any)
    }

    /// Drops the check log of the days before `before`'s (RFC 3339), a bounded step: at most `max` tags
    /// of the lookups' index (a contiguous range of its key: the oldest days first), and at most
    /// [`PRUNE_BATCHES`] batches of entries, oldest first. The `checks` records stay; `audit verify`
    /// reads `check_log_pruned_through`. True if this step reached a bound (more may be left).
    pub(crate) fn prune(
        conn: &mut dyn Conn,
        chain: &mut AuditChain,
        at: &str,
        before: &str,
        max: usize,
    ) -> Result<bool, StoreError> {
        let cutoff = day_of_rfc3339(before)?;
        let tags = conn.exec(
            "DELETE FROM check_tags WHERE (day, tag, seq) IN \
             (SELECT day, tag, seq FROM check_tags WHERE day < $1 ORDER BY day, tag, seq LIMIT $2)",
            &[cutoff.packed().into(), (max as i64).into()],
        )?;
        let through = conn
            .query_one("SELECT value FROM meta WHERE key = 'check_log_pruned_through'", &[])?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        let old = conn.query(
            "SELECT b.seq, a.at FROM check_batches b JOIN audit a ON a.seq = b.seq WHERE b.seq > $1 \
             ORDER BY b.seq LIMIT $2",
            &[through.into(), (PRUNE_BATCHES as i64).into()],
        )?;
        let mut dropped = 0;
        let mut through_now = through;
        for r in &old {
            if day_of_rfc3339(&r.text(1)?)? >= cutoff {
                break;
            }
            through_now = r.i64(0)?;
            conn.exec("DELETE FROM check_batches WHERE seq = $1", &[through_now.into()])?;
            dropped += 1;
        }
        if dropped > 0 {
            conn.exec("UPDATE meta SET value = $1 WHERE key = 'check_log_pruned_through'", &[through_now.into()])?;
            // The compaction's place, if it was within what is gone, moves past it (its offset
            // counted entries of a batch that no longer exists).
            conn.exec(
                "UPDATE meta SET value = CASE key WHEN 'check_tags_upto' THEN CAST($1 AS BIGINT) ELSE 0 END \
                 WHERE key IN ('check_tags_upto', 'check_tags_offset') \
                 AND (SELECT value FROM meta WHERE key = 'check_tags_upto') < $2",
                &[through_now.into(), through_now.into()],
            )?;
            // What `audit verify` trusts: a chained record saying up to where batches are gone, and
            // that they were older than the day they were dropped before.
            chain.append(
                conn,
                at,
                "numlink",
                "checklog.pruned",
                None,
                &format!("through={through_now};before={cutoff};batches={dropped}"),
            )?;
        }
        Ok(tags >= max as u64 || dropped == PRUNE_BATCHES)
    }
}

/// The seqs of the `checks` records whose batches hold `tag`, made at or after `since` (RFC 3339,
/// compared as text by the caller's rough bound) and up to `today`, newest first, with when and who.
fn batches_with(
    conn: &mut dyn Conn,
    tag: &[u8],
    rough_since: &str,
    today: Day,
    limit: u32,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut found: Vec<(i64, String, String)> = Vec::new();
    // The index is kept by day first: each day of the period is asked for (one probe of the key each).
    let mut day = day_of_rfc3339(rough_since)?;
    let mut days = Vec::new();
    while day <= today {
        days.push(day.packed().to_string());
        day = day.plus_days(1);
    }
    if days.is_empty() {
        days.push(today.packed().to_string());
    }
    let rows = conn.query(
        &format!(
            "SELECT a.seq, a.at, p.name FROM check_tags t JOIN audit a ON a.seq = t.seq \
                 JOIN participants p ON p.id = a.actor WHERE t.day IN ({}) AND t.tag = $1 AND a.at >= $2 \
                 ORDER BY t.seq DESC LIMIT $3",
            days.join(", ")
        ),
        &[tag.into(), rough_since.into(), i64::from(limit).into()],
    )?;
    for r in &rows {
        found.push((r.i64(0)?, r.text(1)?, r.text(2)?));
    }
    // The batches the compaction has not finished: scanned.
    let upto = conn
        .query_one("SELECT value FROM meta WHERE key = 'check_tags_upto'", &[])?
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0);
    conn.query_each(
        "SELECT a.seq, a.at, p.name, b.entries FROM check_batches b JOIN audit a ON a.seq = b.seq \
             JOIN participants p ON p.id = a.actor WHERE b.seq > $1 AND a.at >= $2",
        &[upto.into(), rough_since.into()],
        &mut |r| {
            if has_tag(&r.opt_bytes(3).unwrap_or_default(), tag) {
                found.push((r.i64(0)?, r.text(1)?, r.text(2)?));
            }
            Ok(())
        },
    )?;
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.dedup_by_key(|f| f.0);
    found.truncate(limit as usize);
    Ok(found)
}

/// Institutions' checks of `n` since `since_unix` and within `tenure`, the current one, newest first,
/// from the audit log. Checks made before the tenure concern the previous holder and are not shown.
pub(crate) fn lookups(
    conn: &mut dyn Conn,
    key: &HashKey,
    n: PhoneNumber,
    tenure: Tenure,
    today: Day,
    since_unix: i64,
    limit: u32,
) -> Result<Vec<Lookup>, StoreError> {
    let Some(start) = tenure.vouched_since() else { return Ok(Vec::new()) };
    let since = jiff::Timestamp::from_second(since_unix)
        .map_err(|e| StoreError::invalid("TIME_OUT_OF_RANGE", e.to_string()))?;
    let tenure_start = start.date().to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp());
    let from = match (tenure, tenure_start) {
        (Tenure::Since(_), Ok(t)) => since.max(t),
        _ => since,
    };
    let hash = key.number(n);
    // `at` is RFC 3339 text, whose order is the time's except within one second ("…:00.5Z" sorts
    // before "…:00Z"): select from a second earlier, then compare as times.
    let rough = from.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap_or(from);
    let rough = rough.to_string();
    // Checks, from their batches (see `checklog`); KYC matches (and checks audited one by one,
    // before batches), from their own records.
    let mut found: Vec<(i64, String, String, String)> = batches_with(conn, &key.tag(n), &rough, today, limit)?
        .into_iter()
        .map(|(seq, at, name)| (seq, name, at, "check".to_string()))
        .collect();
    let rows = conn.query(
        "SELECT a.seq, p.name, a.at, a.action FROM audit a JOIN participants p ON p.id = a.actor \
             WHERE a.subject = $1 AND a.action IN ('check', 'kyc.match') AND a.at >= $2 \
             ORDER BY a.seq DESC LIMIT $3",
        &[hash.as_slice().into(), rough.as_str().into(), i64::from(limit).into()],
    )?;
    for r in &rows {
        found.push((r.i64(0)?, r.text(1)?, r.text(2)?, r.text(3)?));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut out = Vec::with_capacity(found.len().min(limit as usize));
    for (_, institution_name, at, action) in found {
        if out.len() == limit as usize {
            break;
        }
        if at.parse::<jiff::Timestamp>().is_ok_and(|t| t >= from) {
            out.push(Lookup { institution_name, at, action });
        }
    }
    Ok(out)
}

/// The checks of the last `batches` batches, oldest first.
pub(crate) fn recent(conn: &mut dyn Conn, batches: u32) -> Result<Vec<LoggedCheck>, StoreError> {
    let rows = conn.query(
        "SELECT a.seq, a.at, a.actor, a.detail, b.entries FROM audit a JOIN check_batches b ON b.seq = a.seq \
         WHERE a.action = 'checks' ORDER BY a.seq DESC LIMIT $1",
        &[i64::from(batches).into()],
    )?;
    let mut out = Vec::new();
    for r in rows.iter().rev() {
        let (seq, at, actor, detail) = (r.i64(0)?, r.text(1)?, r.text(2)?, r.text(3)?);
        let job = detail.split(';').find_map(|kv| kv.strip_prefix("job=")).map(str::to_string);
        let entries = r.opt_bytes(4).ok_or_else(|| StoreError::Corrupt(format!("the checks of audit record {seq}")))?;
        for e in decode(&entries) {
            let (tag, date, answer) = e?;
            out.push(LoggedCheck { seq, at: at.clone(), actor: actor.clone(), job: job.clone(), tag, date, answer });
        }
    }
    Ok(out)
}
