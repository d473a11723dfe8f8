//! Filing notifications by binding: the writer's upkeep that moves the rows of
//! `binding_notifications_recent` (a notification's binding and seq, written with it) into
//! `binding_notifications`, in key order a step at a time (migration 27). Each page of the large table
//! is then written once per pass over the waiting rows, not once per notification at a random page.
//! Readers ask both tables (`ops::bindings`, `ops::unbind`), so where a row stands changes no answer.

use super::WriteCtx;
use crate::StoreError;
use crate::sql::Value;

/// Notifications waiting to be filed by binding at which the writer files steps after each batch,
/// busy or not, by default (`[limits] notifications_waiting_max`); below it, it files them only when
/// idle. A pass over `binding_notifications` writes each
/// of its pages about once for as many notifications as were waiting: the more wait, the cheaper each
/// one's filing, and the larger the small table every insert goes into.
pub const NOTIFICATIONS_WAITING_MAX: u64 = 200_000;
/// Notifications filed in one step, in one transaction: a command arriving meanwhile waits for one step.
pub(crate) const NOTIFICATIONS_STEP_ROWS: u64 = 20_000;

/// When the writer files `binding_notifications_recent` into `binding_notifications`, and where its
/// pass over the keys stands.
#[derive(Debug, Default)]
pub(crate) struct NotificationsFiling {
    /// The rows waiting to be filed, as far as this writer knows: counted when first needed and after
    /// each pass, then kept up as notifications are made (a rolled-back one is counted until the
    /// pass's end: this only decides when to file).
    waiting: Option<u64>,
    /// The last key filed in the pass under way; `None` at a pass's start.
    cursor: Option<(String, i64)>,
}

impl NotificationsFiling {
    pub(crate) fn added(&mut self) {
        if let Some(n) = self.waiting.as_mut() {
            *n += 1;
        }
    }

    /// Makes the next need count the waiting rows again.
    pub(crate) fn forget_count(&mut self) {
        self.waiting = None;
    }
}

impl WriteCtx {
    /// How many notifications wait to be filed (counted when first asked).
    pub(crate) fn notifications_waiting(&mut self) -> Result<u64, StoreError> {
        if let Some(n) = self.notifications_filing.waiting {
            return Ok(n);
        }
        let n = self
            .conn
            .query_one("SELECT COUNT(*) FROM binding_notifications_recent", &[])?
            .map_or(Ok(0), |r| r.i64(0))?;
        let n = u64::try_from(n).unwrap_or(0);
        self.notifications_filing.waiting = Some(n);
        Ok(n)
    }

    /// Files up to `max` waiting notifications, the next keys of the pass, into
    /// `binding_notifications`, in the transaction under way: how many it moved, 0 when none wait. A
    /// pass starts again from the first key once it has filed the last.
    pub(crate) fn file_notifications(&mut self, max: u64) -> Result<u64, StoreError> {
        loop {
            let midway = self.notifications_filing.cursor.is_some();
            let moved = self.file_notifications_from_cursor(max)?;
            // A pass that ended with nothing after its cursor: what came behind it starts the next.
            if moved > 0 || !midway {
                return Ok(moved);
            }
        }
    }

    fn file_notifications_from_cursor(&mut self, max: u64) -> Result<u64, StoreError> {
        let (from_id, from_seq) = self.notifications_filing.cursor.clone().unwrap_or_default();
        let offset = i64::try_from(max.max(1) - 1).unwrap_or(i64::MAX);
        let last = self.conn.query_one(
            "SELECT binding_id, seq FROM binding_notifications_recent WHERE (binding_id, seq) > ($1, $2) \
             ORDER BY binding_id, seq LIMIT 1 OFFSET $3",
            &[from_id.as_str().into(), from_seq.into(), offset.into()],
        )?;
        let last = match last {
            Some(r) => Some((r.text(0)?, r.i64(1)?)),
            None => None,
        };
        let mut params: Vec<Value> = vec![from_id.as_str().into(), from_seq.into()];
        let range = match &last {
            Some((id, seq)) => {
                params.extend([id.as_str().into(), (*seq).into()]);
                "(binding_id, seq) > ($1, $2) AND (binding_id, seq) <= ($3, $4)"
            }
            None => "(binding_id, seq) > ($1, $2)",
        };
        // In key order: each page of the large table is met once in a step, and the pass's steps
        // follow one another through it.
        self.conn.exec(
            &format!(
                "INSERT INTO binding_notifications (binding_id, seq) SELECT binding_id, seq \
                 FROM binding_notifications_recent WHERE {range} ORDER BY binding_id, seq ON CONFLICT DO NOTHING"
            ),
            &params,
        )?;
        let moved = self.conn.exec(&format!("DELETE FROM binding_notifications_recent WHERE {range}"), &params)?;
        let filing = &mut self.notifications_filing;
        let pass_over = last.is_none();
        filing.cursor = last;
        filing.waiting = match (pass_over, filing.waiting) {
            // Counted again at the next need: what came behind the pass.
            (true, _) | (_, None) => None,
            (false, Some(n)) => Some(n.saturating_sub(moved)),
        };
        Ok(moved)
    }
}
