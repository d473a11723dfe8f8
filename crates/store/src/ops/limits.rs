//! Limits on anonymous clients that hold across every node on the database: a count per scope and
//! client address in a fixed window. Only what is allowed is counted (so a client over its limit
//! costs no write), and a caller remembers who is over until their window ends (so it costs no
//! read either, on that node).

use std::net::IpAddr;

use crate::StoreError;
use crate::sql::Conn;
use crate::writer::WriteCtx;

/// A client's address as counted: a keyed hash, so that the table holds no address.
fn client_hash(ctx_key: &crate::keys::HashKey, scope: &str, client: IpAddr) -> Vec<u8> {
    let mut msg = format!("client-limit|{scope}|").into_bytes();
    msg.extend_from_slice(&match client {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    });
    ctx_key.mac(&msg)[..16].to_vec()
}

/// The client's window and count, if its window is still open at `now`.
fn current(
    conn: &mut dyn Conn,
    scope: &str,
    hash: &[u8],
    now: i64,
    window_secs: i64,
) -> Result<Option<(i64, i64)>, StoreError> {
    let row = conn.query_one(
        "SELECT window_start, count FROM client_limits WHERE scope = $1 AND client = $2",
        &[scope.into(), hash.into()],
    )?;
    Ok(row
        .map(|r| Ok::<_, StoreError>((r.i64(0)?, r.i64(1)?)))
        .transpose()?
        .filter(|&(start, _)| start > now - window_secs))
}

/// `Some(retry_after_secs)` if the client has used its `max` in the window open at `now`.
pub(crate) fn over(
    conn: &mut dyn Conn,
    key: &crate::keys::HashKey,
    scope: &str,
    client: IpAddr,
    max: u32,
    window_secs: i64,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let hash = client_hash(key, scope, client);
    Ok(current(conn, scope, &hash, now, window_secs)?
        .filter(|&(_, count)| count >= i64::from(max))
        .map(|(start, _)| start + window_secs - now))
}

impl WriteCtx {
    /// Counts a request of `client` in `scope` if it is within `max` in its window (opened now if it
    /// has none); `Err(retry_after_secs)`, counting nothing, if it is not.
    pub(crate) fn count_client(
        &mut self,
        scope: &str,
        client: IpAddr,
        max: u32,
        window_secs: i64,
    ) -> Result<Result<(), i64>, StoreError> {
        let now = self.now_unix();
        let hash = client_hash(&self.hash_key, scope, client);
        match current(self.conn.as_mut(), scope, &hash, now, window_secs)? {
            Some((start, count)) if count >= i64::from(max) => Ok(Err(start + window_secs - now)),
            Some(_) => {
                self.conn.exec(
                    "UPDATE client_limits SET count = count + 1 WHERE scope = $1 AND client = $2",
                    &[scope.into(), hash.as_slice().into()],
                )?;
                Ok(Ok(()))
            }
            None if max == 0 => Ok(Err(window_secs)),
            None => {
                self.conn.exec(
                    "INSERT INTO client_limits (scope, client, window_start, count) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (scope, client) DO UPDATE SET window_start = excluded.window_start, count = 1",
                    &[scope.into(), hash.as_slice().into(), now.into()],
                )?;
                Ok(Ok(()))
            }
        }
    }

    /// Drops the counts of windows that began before `before` (unix seconds), at most `max`. True if
    /// more may be left.
    pub(crate) fn prune_client_limits(&mut self, before: i64, max: u32) -> Result<bool, StoreError> {
        let deleted = self.conn.exec(
            "DELETE FROM client_limits WHERE (scope, client) IN \
             (SELECT scope, client FROM client_limits WHERE window_start < $1 LIMIT $2)",
            &[before.into(), i64::from(max).into()],
        )?;
        Ok(deleted >= u64::from(max))
    }
}
