//! The tamper-evident audit log: every record carries the hash of the one before it, so a changed,
//! removed or inserted record breaks the chain from there on.

use crate::StoreError;
use crate::keys::sha256;
use crate::sql::{Conn, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    /// The keyed hash of the number concerned, if any.
    pub subject: Option<Vec<u8>>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub records: u64,
    /// The first record whose hash does not follow from its content and predecessor, or whose batch of
    /// checks or events does not match the digest it states; or a batch no record states.
    pub first_broken: Option<i64>,
    /// `checks` records whose entries were dropped after the retention period (their counts and
    /// digests are still chained).
    pub pruned_check_batches: u64,
}

fn chain_hash(prev: &[u8], at: &str, actor: &str, action: &str, subject: Option<&[u8]>, detail: &str) -> [u8; 32] {
    let mut buf = Vec::with_capacity(128 + detail.len());
    buf.extend_from_slice(prev);
    for part in [at.as_bytes(), actor.as_bytes(), action.as_bytes(), subject.unwrap_or(&[]), detail.as_bytes()] {
        buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
        buf.extend_from_slice(part);
    }
    sha256(&buf)
}

/// The head of the chain as the writer holds it within a batch: read at the batch's start (another
/// process may have written since), moved by each record appended, set back by a rolled-back savepoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AuditChain {
    head: [u8; 32],
}

impl AuditChain {
    /// The chain as the database holds it now.
    pub(crate) fn read(conn: &mut dyn Conn) -> Result<AuditChain, StoreError> {
        let row = conn.query_one("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
        let head = match row.and_then(|r| r.opt_bytes(0)) {
            Some(b) => b.try_into().map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes".into()))?,
            None => [0; 32],
        };
        Ok(AuditChain { head })
    }

    /// Appends one record at `at` (RFC 3339) in the current transaction.
    pub(crate) fn append(
        &mut self,
        conn: &mut dyn Conn,
        at: &str,
        actor: &str,
        action: &str,
        subject: Option<&[u8]>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let (params, hash) = self.params(at, actor, action, subject, detail);
        conn.exec(
            "INSERT INTO audit (at, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &params,
        )?;
        self.head = hash;
        Ok(())
    }

    /// As [`AuditChain::append`], answering the record's seq. (`RETURNING` costs more than a plain
    /// insert: for the records other rows refer to.)
    pub(crate) fn append_seq(
        &mut self,
        conn: &mut dyn Conn,
        at: &str,
        actor: &str,
        action: &str,
        subject: Option<&[u8]>,
        detail: &str,
    ) -> Result<i64, StoreError> {
        let (params, hash) = self.params(at, actor, action, subject, detail);
        let row = conn.query_one(
            "INSERT INTO audit (at, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING seq",
            &params,
        )?;
        self.head = hash;
        row.ok_or_else(|| StoreError::database("an audit insert returned no seq"))?.i64(0)
    }

    fn params(
        &self,
        at: &str,
        actor: &str,
        action: &str,
        subject: Option<&[u8]>,
        detail: &str,
    ) -> ([Value; 7], [u8; 32]) {
        let hash = chain_hash(&self.head, at, actor, action, subject, detail);
        (
            [
                at.into(),
                actor.into(),
                action.into(),
                subject.map(|s| Value::Bytes(s.to_vec())).unwrap_or(Value::Null),
                detail.into(),
                self.head.as_slice().into(),
                hash.as_slice().into(),
            ],
            hash,
        )
    }
}

/// The SHA-256 a batch's record states of its entries (`…;sha256=HEX`), if it states one.
pub(crate) fn detail_digest(detail: &str) -> Option<&str> {
    detail.split(';').find_map(|kv| kv.strip_prefix("sha256="))
}

/// The SHA-256 of a batch's entries (checks or events), as its record states it.
pub(crate) fn entries_digest(entries: &[u8]) -> String {
    hex::encode(sha256(entries))
}

pub(crate) fn verify(conn: &mut dyn Conn) -> Result<ChainReport, StoreError> {
    const PAGE: i64 = 10_000;
    let mut prev = [0u8; 32];
    let mut after = 0i64;
    let mut records = 0u64;
    let mut pruned_check_batches = 0u64;
    // `checks` records whose entries are gone: allowed only up to where a chained `checklog.pruned`
    // record says batches were dropped, and only for checks made before the day it dropped them
    // before (told once the walk has read them all).
    let (mut missing_seq, mut missing_day) = (0i64, String::new());
    let (mut pruned_through, mut pruned_before) = (0i64, String::new());
    loop {
        let rows = conn.query(
            "SELECT a.seq, a.at, a.actor, a.action, a.subject, a.detail, a.prev_hash, a.hash, b.seq, e.seq \
             FROM audit a LEFT JOIN check_batches b ON b.seq = a.seq LEFT JOIN event_batches e ON e.seq = a.seq \
             WHERE a.seq > $1 ORDER BY a.seq LIMIT $2",
            &[after.into(), PAGE.into()],
        )?;
        if rows.is_empty() {
            // Entries with no record of their own were added behind the log's back.
            let orphan = conn.query_one(
                "SELECT MIN(seq) FROM (\
                   SELECT b.seq FROM check_batches b LEFT JOIN audit a ON a.seq = b.seq \
                   WHERE a.seq IS NULL OR a.action <> 'checks' \
                   UNION ALL SELECT e.seq FROM event_batches e LEFT JOIN audit a ON a.seq = e.seq \
                   WHERE a.seq IS NULL OR a.action <> 'events') orphans",
                &[],
            )?;
            let mut first_broken = orphan.and_then(|r| r.opt_i64(0));
            if missing_seq > pruned_through || (missing_seq > 0 && missing_day >= pruned_before) {
                first_broken = Some(first_broken.map_or(missing_seq, |o| o.min(missing_seq)));
            }
            return Ok(ChainReport { records, first_broken, pruned_check_batches });
        }
        for r in &rows {
            let seq = r.i64(0)?;
            let subject = r.opt_bytes(4);
            let expect = chain_hash(&prev, &r.text(1)?, &r.text(2)?, &r.text(3)?, subject.as_deref(), &r.text(5)?);
            if r.opt_bytes(6).as_deref() != Some(&prev[..]) || r.opt_bytes(7).as_deref() != Some(&expect[..]) {
                return Ok(ChainReport { records, first_broken: Some(seq), pruned_check_batches });
            }
            // A batch of checks or of accepted events: its entries must be the ones the record's
            // digest names, and no other record has entries. (Read one batch at a time: a page of
            // records may name gigabytes of them.)
            let (checks, events) = (r.opt_i64(8).is_some(), r.opt_i64(9).is_some());
            let action = r.text(3)?;
            let table = match (action.as_str(), checks, events) {
                ("checks", true, false) => Some("check_batches"),
                ("events", false, true) => Some("event_batches"),
                _ => None,
            };
            if action == "checklog.pruned" {
                let detail = r.text(5)?;
                let field = |k: &str| detail.split(';').find_map(|kv| kv.strip_prefix(k)).map(str::to_string);
                pruned_through = field("through=").and_then(|v| v.parse().ok()).unwrap_or(0);
                pruned_before = field("before=").unwrap_or_default();
            }
            let pruned = action == "checks" && !checks;
            if pruned {
                pruned_check_batches += 1;
                missing_seq = seq;
                missing_day = r.text(1)?.chars().take(10).collect();
            }
            let intact = pruned
                || match table {
                    Some(table) => {
                        let entries = conn
                            .query_one(&format!("SELECT entries FROM {table} WHERE seq = $1"), &[seq.into()])?
                            .and_then(|e| e.opt_bytes(0))
                            .unwrap_or_default();
                        let detail = r.text(5)?;
                        detail_digest(&detail) == Some(entries_digest(&entries).as_str())
                    }
                    None => !matches!(action.as_str(), "checks" | "events") && !checks && !events,
                };
            if !intact {
                return Ok(ChainReport { records, first_broken: Some(seq), pruned_check_batches });
            }
            prev = expect;
            after = seq;
            records += 1;
        }
    }
}

pub(crate) fn tail(conn: &mut dyn Conn, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = conn.query(
        "SELECT seq, at, actor, action, subject, detail FROM audit ORDER BY seq DESC LIMIT $1",
        &[i64::from(limit).into()],
    )?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(AuditRecord {
                seq: r.i64(0)?,
                at: r.text(1)?,
                actor: r.text(2)?,
                action: r.text(3)?,
                subject: r.opt_bytes(4),
                detail: r.text(5)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.reverse();
    Ok(out)
}
