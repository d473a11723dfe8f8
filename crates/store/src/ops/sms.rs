//! The SMS outbox: one-time codes on their way, sealed, for any node to send (see migration 31).

use crate::StoreError;
use crate::sql::{Conn, Dialect};
use crate::writer::WriteCtx;

/// How long a node's claim on the messages it is sending lasts (seconds): longer than an attempt
/// (a gateway's timeout), so that no message is sent by two nodes at once while its node lives.
pub const SMS_LEASE_SECS: i64 = 60;

/// A message claimed for sending: its place in the outbox, its sealed text, and the attempts made.
#[derive(Clone, Debug)]
pub struct ClaimedSms {
    pub seq: i64,
    pub sealed: String,
    pub attempts: u32,
}

/// Whether a message is due that no other node holds.
pub(crate) fn due(conn: &mut dyn Conn, node: &str, now: i64) -> Result<bool, StoreError> {
    Ok(conn
        .query_one(
            "SELECT 1 FROM sms_outbox WHERE next_attempt_at <= $1 \
             AND (claimed_by IS NULL OR claimed_by = $2 OR lease_until < $3) LIMIT 1",
            &[now.into(), node.into(), now.into()],
        )?
        .is_some())
}

impl WriteCtx {
    /// Puts a sealed message in the outbox until `expires_at` (unix seconds); false (nothing put) when
    /// `max` wait already.
    pub(crate) fn queue_sms(&mut self, sealed: &str, expires_at: i64, max: u64) -> Result<bool, StoreError> {
        let waiting = self.conn.query_one("SELECT COUNT(*) FROM sms_outbox", &[])?.map_or(Ok(0), |r| r.i64(0))?;
        if waiting as u64 >= max {
            return Ok(false);
        }
        let now = self.now_unix();
        self.conn.exec(
            "INSERT INTO sms_outbox (sealed, expires_at, next_attempt_at, attempts) VALUES ($1, $2, $3, 0)",
            &[sealed.into(), expires_at.into(), now.into()],
        )?;
        Ok(true)
    }

    /// Drops the messages whose codes have expired, and claims for `node` at most `max` of those due
    /// that no other node holds, oldest first.
    pub(crate) fn claim_sms(&mut self, node: &str, max: u32) -> Result<Vec<ClaimedSms>, StoreError> {
        let now = self.now_unix();
        let expired = self.conn.exec("DELETE FROM sms_outbox WHERE expires_at < $1", &[now.into()])?;
        if expired > 0 {
            tracing::warn!(expired, "one-time codes expired before they could be sent");
        }
        let skip_locked = if self.conn.dialect() == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows = self.conn.query(
            &format!(
                "SELECT seq, sealed, attempts FROM sms_outbox WHERE next_attempt_at <= $1 \
                 AND (claimed_by IS NULL OR claimed_by = $2 OR lease_until < $3) ORDER BY seq LIMIT $4{skip_locked}"
            ),
            &[now.into(), node.into(), now.into(), i64::from(max).into()],
        )?;
        let claimed = rows
            .iter()
            .map(|r| Ok(ClaimedSms { seq: r.i64(0)?, sealed: r.text(1)?, attempts: r.i64(2)? as u32 }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for m in &claimed {
            self.conn.exec(
                "UPDATE sms_outbox SET claimed_by = $1, lease_until = $2 WHERE seq = $3",
                &[node.into(), (now + SMS_LEASE_SECS).into(), m.seq.into()],
            )?;
        }
        Ok(claimed)
    }

    /// Records what became of claimed messages: sent or given up (`None`: dropped), or to be tried
    /// again at the given time.
    pub(crate) fn sms_attempted(&mut self, outcomes: &[(i64, Option<i64>)]) -> Result<(), StoreError> {
        for &(seq, again_at) in outcomes {
            match again_at {
                None => self.conn.exec("DELETE FROM sms_outbox WHERE seq = $1", &[seq.into()])?,
                Some(at) => self.conn.exec(
                    "UPDATE sms_outbox SET attempts = attempts + 1, next_attempt_at = $1, claimed_by = NULL, \
                     lease_until = NULL WHERE seq = $2",
                    &[at.into(), seq.into()],
                )?,
            };
        }
        Ok(())
    }
}
