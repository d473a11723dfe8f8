//! File jobs: a spooled upload applied in chunks, each chunk and the job's checkpoint (byte offset,
//! line, counters) committed together, so a crash resumes exactly where the last commit left off.

use domain::{CarrierId, Rejection};

use crate::StoreError;
use crate::ids::JobId;
use crate::keys::HashKey;
use crate::ops::bindings::NewBinding;
use crate::ops::checklog::AnsweredCheck;
use crate::ops::events::{EventKeys, NewEvent, Outcome};
use crate::ops::participants::{Participant, by_seq};
use crate::sql::{Conn, Dialect, Row};
use crate::writer::WriteCtx;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// A carrier's lifecycle file.
    Lifecycle,
    /// An institution's binding file.
    Bindings,
    /// An institution's check file: (number, date) rows answered from the index into a result file.
    Checks,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Lifecycle => "lifecycle",
            JobKind::Bindings => "bindings",
            JobKind::Checks => "checks",
        }
    }
    pub fn parse(s: &str) -> Option<JobKind> {
        [JobKind::Lifecycle, JobKind::Bindings, JobKind::Checks].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Option<JobState> {
        [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed]
            .into_iter()
            .find(|j| j.as_str() == s)
    }
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub owner_seq: i64,
    pub kind: JobKind,
    /// The file's format, as detected from its header.
    pub format: String,
    pub state: JobState,
    pub spool_path: String,
    /// Where the next unapplied row starts in the spooled file; for a job applied in number order,
    /// how many rows of that order are applied.
    pub byte_offset: u64,
    /// The line number of that row (the header is line 1).
    pub line: u64,
    pub rows_read: u64,
    pub accepted: u64,
    pub duplicates: u64,
    /// A lifecycle file's `ported_in` rows waiting for the donor's `ported_out` (R3).
    pub pending: u64,
    pub rejected: u64,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// A check file's committed bytes of its result file.
    pub result_bytes: u64,
    /// When the job's outputs (result file, rejected rows) were dropped, if they were: some days
    /// after it ended (retention).
    pub outputs_deleted_at: Option<String>,
    /// When its owner deleted it: the API knows it no more.
    pub deleted_at: Option<String>,
    /// Applied in number order (a lifecycle file uploaded since migration 22), not in the file's.
    pub in_number_order: bool,
    /// The file's data rows, once counted (a number-order job counts them before applying any).
    pub rows_total: Option<u64>,
    /// The node whose runner claimed it last (see [`JOB_LEASE_SECS`]).
    pub claimed_by: Option<String>,
}

/// How long a node's claim on a job lasts (seconds) unless renewed: its runner renews it with every
/// chunk it commits and every [`JOB_LEASE_RENEW_SECS`] while it reads, so a claim runs out only when
/// its node has died or lost the database. Then another node takes the job from its checkpoint.
pub const JOB_LEASE_SECS: i64 = 30;

/// How often a running job's claim is renewed.
pub const JOB_LEASE_RENEW_SECS: u64 = 10;

impl Job {
    /// Where a check file's answers go: beside the spooled input, which is removed when the job ends.
    pub fn result_path(&self) -> String {
        format!("{}.result.csv", self.spool_path)
    }

    /// The uploaded file's name, as the database keeps it for every node (the spool file's name).
    pub fn file_name(&self) -> String {
        let path = std::path::Path::new(&self.spool_path);
        path.file_name().map_or_else(|| self.spool_path.clone(), |n| n.to_string_lossy().into_owned())
    }

    /// A check file's result's name, as the database keeps it for every node.
    pub fn result_file_name(&self) -> String {
        format!("{}.result.csv", self.file_name())
    }

    /// The job as a node whose spool directory is `dir` runs it: its files there, by their names.
    pub fn spooled_in(&self, dir: &std::path::Path) -> Job {
        Job { spool_path: dir.join(self.file_name()).to_string_lossy().into_owned(), ..self.clone() }
    }
}

/// Bytes in each part of a file the database keeps for every node.
pub const FILE_PART_BYTES: usize = 4 << 20;

/// The part of a kept file that holds byte `at`: where it starts, and its bytes.
pub(crate) fn file_part(conn: &mut dyn Conn, name: &str, at: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let row = conn.query_one(
        "SELECT at, bytes FROM file_parts WHERE name = $1 AND at <= $2 ORDER BY at DESC LIMIT 1",
        &[name.into(), (at as i64).into()],
    )?;
    row.map(|r| Ok((r.i64(0)? as u64, r.opt_bytes(1).unwrap_or_default()))).transpose()
}

/// Drops a file the database keeps for every node, if it keeps it.
pub(crate) fn drop_kept_file(conn: &mut dyn Conn, name: &str) -> Result<(), StoreError> {
    conn.exec("DELETE FROM file_parts WHERE name = $1", &[name.into()])?;
    Ok(())
}

/// Keeps the file at `path` under `name`, in parts of [`FILE_PART_BYTES`], in one transaction.
pub(crate) fn put_file(conn: &mut dyn Conn, name: &str, path: &std::path::Path) -> Result<u64, StoreError> {
    use std::io::Read;
    let io = |e: std::io::Error| StoreError::database(format!("reading {} to keep it: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    conn.batch("BEGIN")?;
    let mut at = 0u64;
    let kept = (|| {
        loop {
            let mut buf = Vec::with_capacity(FILE_PART_BYTES);
            (&mut file).take(FILE_PART_BYTES as u64).read_to_end(&mut buf).map_err(io)?;
            if buf.is_empty() {
                return Ok(at);
            }
            let n = buf.len() as u64;
            conn.exec(
                "INSERT INTO file_parts (name, at, bytes) VALUES ($1, $2, $3)",
                &[name.into(), (at as i64).into(), buf.into()],
            )?;
            at += n;
        }
    })();
    match kept {
        Ok(n) => conn.commit().map(|()| n),
        Err(e) => {
            let _ = conn.rollback();
            Err(e)
        }
    }
}

/// Writes the first `upto` bytes of the kept file `name` to `path` (through a file beside it, renamed
/// when complete and durable). False if the database keeps no such file.
pub(crate) fn fetch_file(
    conn: &mut dyn Conn,
    name: &str,
    path: &std::path::Path,
    upto: u64,
) -> Result<bool, StoreError> {
    use std::io::Write;
    let io = |e: std::io::Error| StoreError::database(format!("writing {}: {e}", path.display()));
    let part_path = path.with_extension("fetching");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&part_path).map_err(io)?);
    let mut at = 0u64;
    while at < upto {
        let Some((start, bytes)) = file_part(conn, name, at)? else { break };
        let skip = (at - start) as usize;
        if skip >= bytes.len() {
            break;
        }
        let take = (bytes.len() - skip).min((upto - at) as usize);
        out.write_all(&bytes[skip..skip + take]).map_err(io)?;
        at += take as u64;
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    if at == 0 && upto > 0 {
        drop(file);
        let _ = std::fs::remove_file(&part_path);
        return Ok(false);
    }
    if at < upto && upto != u64::MAX {
        drop(file);
        let _ = std::fs::remove_file(&part_path);
        return Err(StoreError::Corrupt(format!("the kept file {name} ends at byte {at}, before {upto}")));
    }
    file.sync_all().map_err(io)?;
    std::fs::rename(&part_path, path).map_err(io)?;
    Ok(true)
}

/// Where a job stands after a chunk: the next unapplied row (byte offset and line, or its place in
/// number order), whether the file is done, for a check file the committed length of its result file,
/// and the file's rows once counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub next_offset: u64,
    pub next_line: u64,
    pub finished: bool,
    pub result_bytes: u64,
    pub rows_total: Option<u64>,
}

/// What one row of a lifecycle or binding file parsed to. (A check file's rows travel packed: see
/// [`crate::Store::prepare_checks`].)
#[derive(Clone, Debug)]
pub enum RowData {
    Event(NewEvent),
    Binding(NewBinding),
}

/// What the caller's threads compute from a chunk's rows before the writer applies them: a check
/// file's packed audit entries, a lifecycle file's keyed hashes (one per event row, in row order).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub check_entries: Vec<u8>,
    pub event_keys: Vec<EventKeys>,
    /// A check file's answers to this chunk, as appended to its result at this offset, when the
    /// database keeps the result for every node (see [`crate::Store::shares_files`]).
    pub result_part: Option<(u64, Vec<u8>)>,
}

impl Prepared {
    /// A lifecycle or binding file's: the events' keyed hashes, on every core when the chunk is large.
    pub(crate) fn of(key: &HashKey, owner: CarrierId, rows: &[ChunkRow]) -> Prepared {
        let events: Vec<&NewEvent> = rows
            .iter()
            .filter_map(|r| match &r.row {
                Ok(RowData::Event(e)) => Some(e),
                _ => None,
            })
            .collect();
        let event_keys =
            crate::ops::parallel(&events, |part| part.iter().map(|e| EventKeys::of(key, owner, e)).collect::<Vec<_>>())
                .concat();
        Prepared { check_entries: Vec::new(), event_keys, result_part: None }
    }

    /// A check file's: the answered checks packed for the audit, on every core when there are many.
    pub(crate) fn checks(key: &HashKey, answered: &[AnsweredCheck]) -> Prepared {
        let check_entries =
            crate::ops::parallel(answered, |part| crate::ops::checklog::encode(key, part.iter().copied())).concat();
        Prepared { check_entries, event_keys: Vec::new(), result_part: None }
    }
}

/// One row of a chunk: its line number and what it parsed to, or why it did not parse.
#[derive(Clone, Debug)]
pub struct ChunkRow {
    pub line: u64,
    pub row: Result<RowData, Rejection>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionRow {
    pub line: u64,
    pub code: String,
    pub message: String,
}

const SELECT: &str = "SELECT id, owner_seq, kind, format, state, spool_path, byte_offset, line, rows_read, accepted, \
                      duplicates, rejected, error, created_at, updated_at, result_bytes, pending, outputs_deleted_at, deleted_at, \
                      in_number_order, rows_total, claimed_by FROM jobs";

fn from_row(r: &Row) -> Result<Job, StoreError> {
    let u = |i| r.i64(i).map(|v| v.max(0) as u64);
    let kind = r.text(2)?;
    let state = r.text(4)?;
    Ok(Job {
        id: JobId::stored(r.text(0)?),
        owner_seq: r.i64(1)?,
        kind: JobKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown job kind {kind:?}")))?,
        format: r.text(3)?,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("unknown job state {state:?}")))?,
        spool_path: r.text(5)?,
        byte_offset: u(6)?,
        line: u(7)?,
        rows_read: u(8)?,
        accepted: u(9)?,
        duplicates: u(10)?,
        rejected: u(11)?,
        error: r.opt_text(12),
        created_at: r.text(13)?,
        updated_at: r.text(14)?,
        result_bytes: u(15)?,
        pending: u(16)?,
        outputs_deleted_at: r.opt_text(17),
        deleted_at: r.opt_text(18),
        in_number_order: r.i64(19)? != 0,
        rows_total: r.opt_i64(20).map(|v| v.max(0) as u64),
        claimed_by: r.opt_text(21),
    })
}

pub(crate) fn get(conn: &mut dyn Conn, id: &str, owner_seq: Option<i64>) -> Result<Option<Job>, StoreError> {
    let row = conn.query_one(&format!("{SELECT} WHERE id = $1"), &[id.into()])?;
    let job = row.map(|r| from_row(&r)).transpose()?;
    // Its owner's view knows a deleted job no more.
    Ok(job.filter(|j| owner_seq.is_none_or(|o| o == j.owner_seq && j.deleted_at.is_none())))
}

/// An owner's newest jobs (not those it deleted), at most `limit`, newest first.
pub(crate) fn of_owner(conn: &mut dyn Conn, owner_seq: i64, limit: u32) -> Result<Vec<Job>, StoreError> {
    conn.query(
        &format!("{SELECT} WHERE owner_seq = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $2"),
        &[owner_seq.into(), i64::from(limit).into()],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Ended jobs whose outputs are still kept though they ended before `before` (RFC 3339), oldest
/// first, at most `limit`.
pub(crate) fn outputs_before(conn: &mut dyn Conn, before: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
    conn.query(
        &format!(
            "{SELECT} WHERE state IN ('succeeded', 'failed') AND outputs_deleted_at IS NULL AND deleted_at IS NULL \
             AND updated_at < $1 ORDER BY updated_at LIMIT $2"
        ),
        &[before.into(), i64::from(limit).into()],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Why a job was not deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobDeleted {
    NotFound,
    /// It is still queued or running: delete it once it has ended.
    NotEnded,
    /// Deleted, with its rejected rows; its files are the caller's to remove (they were, before).
    Deleted,
}

/// The oldest job queued or running that no other node holds a live claim on.
fn next_claimable(conn: &mut dyn Conn, node: &str, now: i64) -> Result<Option<String>, StoreError> {
    // On PostgreSQL a job another transaction is claiming is passed over, not waited for.
    let skip_locked = if conn.dialect() == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let row = conn.query_one(
        &format!(
            "SELECT id FROM jobs WHERE state IN ('queued', 'running') \
             AND (claimed_by IS NULL OR claimed_by = $1 OR lease_until < $2) ORDER BY created_at, id LIMIT 1{skip_locked}"
        ),
        &[node.into(), now.into()],
    )?;
    row.map(|r| r.text(0)).transpose()
}

pub(crate) fn rejections(
    conn: &mut dyn Conn,
    id: &str,
    after_line: u64,
    limit: u32,
) -> Result<Vec<RejectionRow>, StoreError> {
    let rows = conn.query(
        "SELECT line, code, message FROM job_rejections WHERE job_id = $1 AND line > $2 ORDER BY line LIMIT $3",
        &[id.into(), (after_line as i64).into(), i64::from(limit).into()],
    )?;
    rows.iter().map(|r| Ok(RejectionRow { line: r.i64(0)? as u64, code: r.text(1)?, message: r.text(2)? })).collect()
}

impl WriteCtx {
    /// Claims the oldest job no other node holds for `node`, for [`JOB_LEASE_SECS`].
    pub(crate) fn claim_job(&mut self, node: &str) -> Result<Option<Job>, StoreError> {
        let now = self.now_unix();
        let Some(id) = next_claimable(self.conn.as_mut(), node, now)? else { return Ok(None) };
        self.conn.exec(
            "UPDATE jobs SET claimed_by = $1, lease_until = $2 WHERE id = $3",
            &[node.into(), (now + JOB_LEASE_SECS).into(), id.as_str().into()],
        )?;
        get(self.conn.as_mut(), &id, None)
    }

    /// Renews `node`'s claim on a job that is not over. False if the job is over or another node
    /// holds it now.
    pub(crate) fn renew_job_claim(&mut self, id: &str, node: &str) -> Result<bool, StoreError> {
        let until = self.now_unix() + JOB_LEASE_SECS;
        let n = self.conn.exec(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND claimed_by = $3 AND state IN ('queued', 'running')",
            &[until.into(), id.into(), node.into()],
        )?;
        Ok(n == 1)
    }

    /// Whether a node other than `node` holds a live claim on the job.
    fn claimed_by_another(&mut self, job_id: &str, node: &str) -> Result<bool, StoreError> {
        let row = self.conn.query_one("SELECT claimed_by, lease_until FROM jobs WHERE id = $1", &[job_id.into()])?;
        let now = self.now_unix();
        Ok(row.is_some_and(|r| r.opt_text(0).is_some_and(|by| by != node) && r.opt_i64(1).is_some_and(|t| t >= now)))
    }

    pub(crate) fn create_job(
        &mut self,
        owner: &Participant,
        kind: JobKind,
        format: &str,
        spool: &str,
    ) -> Result<Job, StoreError> {
        let id = JobId::issue("job");
        let now = self.now_rfc3339();
        // A lifecycle file's rows are applied in number order, so that no answer depends on the order
        // they came in (and a file in random order applies as fast as a sorted one).
        let in_number_order = i32::from(kind == JobKind::Lifecycle);
        self.conn.exec(
            "INSERT INTO jobs (id, owner_seq, kind, format, state, spool_path, byte_offset, line, rows_read, accepted, \
             duplicates, rejected, created_at, updated_at, in_number_order) \
             VALUES ($1, $2, $3, $4, 'queued', $5, 0, 1, 0, 0, 0, 0, $6, $6, $7)",
            &[
                id.as_str().into(),
                owner.seq.into(),
                kind.as_str().into(),
                format.into(),
                spool.into(),
                now.into(),
                in_number_order.into(),
            ],
        )?;
        self.audit(&owner.id, "job.created", None, &format!("id={id};kind={};format={format}", kind.as_str()))?;
        get(self.conn.as_mut(), &id, None)?.ok_or_else(|| StoreError::Corrupt("job vanished after insert".into()))
    }

    pub(crate) fn apply_chunk(
        &mut self,
        node: &str,
        job_id: &str,
        from_offset: u64,
        chunk: crate::PreparedChunk,
        to: Checkpoint,
    ) -> Result<Job, StoreError> {
        let crate::PreparedChunk { rows, checks, prepared } = chunk;
        let Prepared { check_entries, event_keys, result_part } = prepared;
        let Checkpoint { next_offset, next_line, finished, result_bytes, rows_total } = to;
        let job = get(self.conn.as_mut(), job_id, None)?
            .ok_or_else(|| StoreError::NotFound { what: "job", id: job_id.to_string() })?;
        if job.state.is_final() || job.byte_offset != from_offset || self.claimed_by_another(job_id, node)? {
            return Ok(job);
        }
        let owner = by_seq(self.conn.as_mut(), job.owner_seq)?
            .ok_or_else(|| StoreError::Corrupt("job owner is gone".into()))?;
        let rows_read = (rows.len() + checks) as i64;
        if checks > 0 && job.kind != JobKind::Checks {
            return Err(StoreError::invalid(
                "CHUNK_KIND",
                format!("checks in job \"{job_id}\", which is not a check file's"),
            ));
        }
        let mut rejections: Vec<(u64, Rejection)> = Vec::new();
        let (mut lines, mut events, mut bindings) = (Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            match r.row {
                Ok(RowData::Event(e)) if job.kind == JobKind::Lifecycle => {
                    lines.push(r.line);
                    events.push(e);
                }
                Ok(RowData::Binding(b)) if job.kind == JobKind::Bindings => {
                    lines.push(r.line);
                    bindings.push(b);
                }
                Ok(_) => {
                    return Err(StoreError::invalid(
                        "CHUNK_KIND",
                        format!("a row of the wrong kind for job \"{job_id}\""),
                    ));
                }
                Err(rej) => rejections.push((r.line, rej)),
            }
        }
        let (mut accepted, mut duplicates, mut pending) = (0i64, 0i64, 0i64);
        let outcomes: Vec<Outcome> = match job.kind {
            JobKind::Lifecycle => {
                if event_keys.len() != events.len() {
                    return Err(StoreError::invalid("CHUNK_KEYS", "the chunk's event keys do not match its rows"));
                }
                let outcomes =
                    self.report_events(&owner, events.into_iter().zip(event_keys).collect(), Some(job_id))?;
                // Events that met an eventId another number holds may have been applied again in a
                // transaction of their own (`report_events`, first to write): the job must still be
                // where this chunk starts, as it was when read in the first.
                let now = get(self.conn.as_mut(), job_id, None)?
                    .ok_or_else(|| StoreError::NotFound { what: "job", id: job_id.to_string() })?;
                if now.state.is_final() || now.byte_offset != from_offset {
                    return Err(StoreError::Conflict {
                        what: format!("chunk at byte {from_offset} of job \"{job_id}\""),
                        with: "the job's checkpoint, which another writer moved meanwhile".to_string(),
                    });
                }
                outcomes
            }
            JobKind::Bindings => self
                .register_bindings(&owner, bindings)?
                .into_iter()
                .map(|r| match r {
                    Ok(reg) if reg.created => Outcome::Accepted,
                    Ok(_) => Outcome::Duplicate,
                    Err(rej) => Outcome::Rejected(rej),
                })
                .collect(),
            JobKind::Checks => {
                // Every number checked is audited, as a single check is, with the answer written
                // (packed by the caller, from these rows).
                if check_entries.len() != checks * crate::ops::checklog::ENTRY_BYTES {
                    return Err(StoreError::invalid("CHUNK_KEYS", "the chunk's packed checks do not match its rows"));
                }
                self.log_checks(&owner.id, Some(job_id), check_entries);
                accepted += checks as i64;
                Vec::new()
            }
        };
        for (line, outcome) in lines.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Accepted => accepted += 1,
                Outcome::Duplicate => duplicates += 1,
                Outcome::Pending => pending += 1,
                Outcome::Rejected(rej) => rejections.push((line, rej)),
            }
        }
        for (line, rej) in &rejections {
            self.conn.exec(
                "INSERT INTO job_rejections (job_id, line, code, message) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[job_id.into(), (*line as i64).into(), rej.code.as_str().into(), rej.message.as_str().into()],
            )?;
        }
        let state = if finished { "succeeded" } else { "running" };
        let now = self.now_rfc3339();
        self.conn.exec(
            "UPDATE jobs SET state = $1, byte_offset = $2, line = $3, rows_read = rows_read + $4, accepted = accepted + $5, \
             duplicates = duplicates + $6, rejected = rejected + $7, updated_at = $8, result_bytes = $9, \
             pending = pending + $10, rows_total = COALESCE($11, rows_total), claimed_by = $12, lease_until = $13 \
             WHERE id = $14",
            &[
                state.into(),
                (next_offset as i64).into(),
                (next_line as i64).into(),
                rows_read.into(),
                accepted.into(),
                duplicates.into(),
                (rejections.len() as i64).into(),
                now.into(),
                (result_bytes as i64).into(),
                pending.into(),
                rows_total.map(|n| n as i64).into(),
                node.into(),
                (self.now_unix() + JOB_LEASE_SECS).into(),
                job_id.into(),
            ],
        )?;
        if let Some((at, bytes)) = result_part {
            self.conn.exec(
                "INSERT INTO file_parts (name, at, bytes) VALUES ($1, $2, $3)",
                &[job.result_file_name().into(), (at as i64).into(), bytes.into()],
            )?;
        }
        let job = get(self.conn.as_mut(), job_id, None)?.ok_or_else(|| StoreError::Corrupt("job vanished".into()))?;
        if finished {
            self.drop_file(&job.file_name())?;
            self.audit(
                &owner.id,
                "job.finished",
                None,
                &format!(
                    "id={job_id};rowsRead={};accepted={};duplicates={};pending={};rejected={}",
                    job.rows_read, job.accepted, job.duplicates, job.pending, job.rejected
                ),
            )?;
        }
        Ok(job)
    }

    /// Records that a job's outputs are gone (its files removed by the caller); its rejected rows go
    /// a bounded step at a time ([`WriteCtx::purge_jobs`]).
    pub(crate) fn job_outputs_deleted(&mut self, job_id: &str) -> Result<(), StoreError> {
        let now = self.now_rfc3339();
        self.conn.exec(
            "UPDATE jobs SET outputs_deleted_at = $1, purge_pending = 1 WHERE id = $2 AND outputs_deleted_at IS NULL",
            &[now.into(), job_id.into()],
        )?;
        self.drop_files(job_id)?;
        self.audit("numlink", "job.outputs_deleted", None, &format!("id={job_id}"))
    }

    fn drop_file(&mut self, name: &str) -> Result<(), StoreError> {
        drop_kept_file(self.conn.as_mut(), name)
    }

    /// Drops the files of a job the database keeps, if it keeps them: the upload and the result.
    fn drop_files(&mut self, job_id: &str) -> Result<(), StoreError> {
        if let Some(job) = get(self.conn.as_mut(), job_id, None)? {
            self.drop_file(&job.file_name())?;
            self.drop_file(&job.result_file_name())?;
        }
        Ok(())
    }

    /// Deletes an ended job of `owner` (the caller removed its files): gone from the API at once, its
    /// rejected rows and then its row deleted a bounded step at a time ([`WriteCtx::purge_jobs`]).
    pub(crate) fn delete_job(&mut self, owner: &Participant, job_id: &str) -> Result<JobDeleted, StoreError> {
        let Some(job) = get(self.conn.as_mut(), job_id, Some(owner.seq))? else { return Ok(JobDeleted::NotFound) };
        if !job.state.is_final() {
            return Ok(JobDeleted::NotEnded);
        }
        let now = self.now_rfc3339();
        self.conn.exec(
            "UPDATE jobs SET deleted_at = $1, outputs_deleted_at = COALESCE(outputs_deleted_at, $2), purge_pending = 1 \
             WHERE id = $3",
            &[now.as_str().into(), now.as_str().into(), job_id.into()],
        )?;
        self.drop_files(job_id)?;
        self.audit(&owner.id, "job.deleted", None, &format!("id={job_id}"))?;
        Ok(JobDeleted::Deleted)
    }

    /// One step of deleting what jobs whose outputs are gone still hold: at most `max` rejected rows of
    /// one job, then, once it has none, the job's row if its owner deleted it. True if more is left.
    pub(crate) fn purge_jobs(&mut self, max: u32) -> Result<bool, StoreError> {
        let Some(row) =
            self.conn.query_one("SELECT id, deleted_at FROM jobs WHERE purge_pending = 1 ORDER BY id LIMIT 1", &[])?
        else {
            return Ok(false);
        };
        let (id, deleted) = (row.text(0)?, row.opt_text(1).is_some());
        let gone = self.conn.exec(
            "DELETE FROM job_rejections WHERE (job_id, line) IN \
             (SELECT job_id, line FROM job_rejections WHERE job_id = $1 ORDER BY line LIMIT $2)",
            &[id.as_str().into(), i64::from(max).into()],
        )?;
        if gone < u64::from(max) {
            if deleted {
                self.conn.exec("DELETE FROM jobs WHERE id = $1", &[id.as_str().into()])?;
            } else {
                self.conn.exec("UPDATE jobs SET purge_pending = 0 WHERE id = $1", &[id.as_str().into()])?;
            }
        }
        Ok(true)
    }

    /// Fails a job that has not ended; one that has (it succeeded, or failed before) stays as it is.
    pub(crate) fn fail_job(&mut self, job_id: &str, error: &str) -> Result<(), StoreError> {
        let now = self.now_rfc3339();
        let changed = self.conn.exec(
            "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 \
             WHERE id = $3 AND state NOT IN ('succeeded', 'failed')",
            &[error.into(), now.into(), job_id.into()],
        )?;
        if changed > 0 {
            if let Some(job) = get(self.conn.as_mut(), job_id, None)? {
                self.drop_file(&job.file_name())?;
            }
            self.audit("numlink", "job.failed", None, &format!("id={job_id};error={error}"))?;
        }
        Ok(())
    }
}
