//! Console sessions: a participant (an institution, a carrier, the regulator) signs in to the pages
//! with its API key and gets a session token for its browser's cookie. The table keeps only the
//! token's SHA-256, the key's hash and when the session was last used; a session ends when it has been
//! idle too long, when it is closed (sign-out), or when the key it was opened with is revoked (checked
//! at every request, from the tables).

use crate::StoreError;
use crate::keys::{ApiKey, random_bytes, sha256};
use crate::ops::participants::{self, Participant};
use crate::sql::Conn;
use crate::time;
use crate::writer::WriteCtx;

/// What every console session token starts with.
pub const CONSOLE_TOKEN_PREFIX: &str = "nlc_";
/// A session's use is written down at most this often (a page view is a read, not a write).
const SEEN_STEP_SECS: i64 = 60;

fn token_hash(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

impl WriteCtx {
    /// A new session for the participant of `presented_key`, if the key is known and not revoked; the
    /// sessions idle longer than `idle_secs` are dropped meanwhile.
    pub(crate) fn open_console_session(
        &mut self,
        presented_key: &str,
        idle_secs: i64,
    ) -> Result<Option<(String, Participant)>, StoreError> {
        let key_hash = ApiKey::hash_of(presented_key);
        let Some(p) = participants::by_key_hash(self.conn.as_mut(), &key_hash)? else { return Ok(None) };
        let now = self.now_unix();
        self.conn
            .exec("DELETE FROM console_sessions WHERE seen_at < $1", &[time::stamp_unix(now - idle_secs).into()])?;
        let token = format!("{CONSOLE_TOKEN_PREFIX}{}", hex::encode(random_bytes::<32>()));
        let at = time::stamp_unix(now);
        self.conn.exec(
            "INSERT INTO console_sessions (token_hash, key_hash, participant_seq, created_at, seen_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                token_hash(&token).as_slice().into(),
                key_hash.as_slice().into(),
                p.seq.into(),
                at.clone().into(),
                at.into(),
            ],
        )?;
        self.audit(p.id.as_str(), "console.signed_in", None, "")?;
        Ok(Some((token, p)))
    }

    /// Notes that the session was used now.
    pub(crate) fn touch_console_session(&mut self, token: &str) -> Result<(), StoreError> {
        let now = time::stamp_unix(self.now_unix());
        self.conn.exec(
            "UPDATE console_sessions SET seen_at = $1 WHERE token_hash = $2",
            &[now.into(), token_hash(token).as_slice().into()],
        )?;
        Ok(())
    }

    /// Ends the session (sign-out); `false` if there was none.
    pub(crate) fn close_console_session(&mut self, token: &str) -> Result<bool, StoreError> {
        let hash = token_hash(token);
        let row = self.conn.query_one(
            "SELECT p.id FROM console_sessions s JOIN participants p ON p.seq = s.participant_seq WHERE s.token_hash = $1",
            &[hash.as_slice().into()],
        )?;
        let Some(row) = row else { return Ok(false) };
        self.conn.exec("DELETE FROM console_sessions WHERE token_hash = $1", &[hash.as_slice().into()])?;
        self.audit(&row.text(0)?, "console.signed_out", None, "")?;
        Ok(true)
    }
}

/// The participant of a session that is open: not idle past `idle_secs` at `now`, its key not revoked.
/// Also says whether its use should be written down (last written over a minute ago).
pub(crate) fn console_session(
    conn: &mut dyn Conn,
    token: &str,
    now: i64,
    idle_secs: i64,
) -> Result<Option<(Participant, bool)>, StoreError> {
    if !token.starts_with(CONSOLE_TOKEN_PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    let row = conn.query_one(
        "SELECT p.seq, p.id, p.role, p.name, p.reporting_since, p.created_at, s.seen_at FROM console_sessions s \
         JOIN api_keys k ON k.key_hash = s.key_hash AND k.revoked_at IS NULL \
         JOIN participants p ON p.seq = s.participant_seq WHERE s.token_hash = $1",
        &[token_hash(token).as_slice().into()],
    )?;
    let Some(row) = row else { return Ok(None) };
    let seen = time::unix(&row, 6)?;
    if seen <= now - idle_secs {
        return Ok(None);
    }
    Ok(Some((participants::from_row(conn, &row, false)?, seen <= now - SEEN_STEP_SECS)))
}
