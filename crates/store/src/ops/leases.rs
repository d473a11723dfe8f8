//! Leases: named claims one node holds at a time until they run out (a webhook endpoint's lane, a
//! node's name); the table is migration 30's `leases`. A job's claim is kept on its row instead.

use crate::StoreError;
use crate::writer::WriteCtx;

impl WriteCtx {
    /// Takes (or renews) the lease `name` for `node` until `secs` from now, unless another node holds
    /// it and it has not run out. True if `node` holds it now.
    pub(crate) fn take_lease(&mut self, name: &str, node: &str, secs: i64) -> Result<bool, StoreError> {
        let now = self.now_unix();
        self.conn.exec(
            "INSERT INTO leases (name, node, until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
             SET node = excluded.node, until = excluded.until WHERE leases.node = excluded.node OR leases.until < $4",
            &[name.into(), node.into(), (now + secs).into(), now.into()],
        )?;
        Ok(self.lease_holder(name)?.is_some_and(|(holder, _)| holder == node))
    }

    /// The holder of the lease `name` and until when, if it has one.
    pub(crate) fn lease_holder(&mut self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = self.conn.query_one("SELECT node, until FROM leases WHERE name = $1", &[name.into()])?;
        row.map(|r| Ok((r.text(0)?, r.i64(1)?))).transpose()
    }

    /// Gives back the lease `name` if `node` holds it.
    pub(crate) fn release_lease(&mut self, name: &str, node: &str) -> Result<(), StoreError> {
        self.conn.exec("DELETE FROM leases WHERE name = $1 AND node = $2", &[name.into(), node.into()])?;
        Ok(())
    }
}
