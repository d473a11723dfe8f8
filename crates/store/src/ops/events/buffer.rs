//! The writer's buffer of lifecycle events, filled by `ops::events` within a batch: the rows of
//! `events` held back to be inserted many to a statement, whether such a list met a key another
//! event holds, and the pending ports counted per carrier. No row is held between commands, no count
//! between batches, and a rolled-back savepoint empties it.

use std::collections::HashMap;

use crate::sql::Value;

#[derive(Default)]
pub(crate) struct EventsBuffer {
    /// Rows of `events` a batch of events holds back to insert many to a statement (see
    /// `WriteCtx::write_events`); empty between commands.
    pub(crate) unwritten: Vec<Value>,
    /// Set when a list of them met a key another event holds (the batch is then applied row by row).
    pub(crate) key_held: bool,
    /// Pending `ported_in` events per carrier, as counted (at most up to the limit) once in a batch
    /// and kept up to date in it.
    pub(crate) pending_ports_counted: HashMap<i64, u64>,
}

impl EventsBuffer {
    /// Forgets what it holds: at the start of a batch, and after a rollback to a savepoint.
    pub(crate) fn clear(&mut self) {
        self.unwritten.clear();
        self.pending_ports_counted.clear();
    }
}
