//! Lifecycle events (R3 through `domain::validate_new`) and checks (R2 through
//! `domain::reassigned_since`), each audited in the transaction that does it.

use domain::answer::DateAfterToday;
use domain::history::Summary;
use domain::{
    Answer, CarrierId, Day, EventKind, HistoryEvent, NumberFacts, PhoneNumber, Rejection, RejectionCode,
    reassigned_since, validate_new,
};

use crate::StoreError;
use crate::keys::HashKey;
use crate::ops::kyc::Kyc;
use crate::ops::participants::Participant;
use crate::sql::{Row, Value};
use crate::writer::WriteCtx;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: String,
    pub number: PhoneNumber,
    pub kind: EventKind,
    pub date: Day,
    /// The holder's real-name attributes, with an `activated` or `transferred` event.
    pub kyc: Option<Kyc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// The same `eventId` with the identical payload was accepted before: counted, not applied again.
    Duplicate,
    Rejected(Rejection),
}

fn packed(d: Option<Day>) -> Value {
    d.map(|d| d.packed()).into()
}

fn day_of(r: &Row, i: usize) -> Option<Day> {
    r.opt_i64(i).and_then(|v| Day::from_packed(v as i32))
}

/// The keyed hashes an event needs once accepted, computed off the writer's thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventKeys {
    /// [`HashKey::number`] of the event's number: how bindings and real-name records name it.
    pub subject: [u8; 32],
    /// [`HashKey::event`] of (carrier, eventId): how notifications and the audit log name the event.
    pub event: [u8; 32],
}

impl EventKeys {
    pub(crate) fn of(key: &HashKey, carrier: CarrierId, e: &NewEvent) -> EventKeys {
        EventKeys { subject: key.number(e.number), event: key.event(carrier, &e.event_id) }
    }
}

/// Summaries a statement of [`WriteCtx::put_summaries`] upserts, and events one of
/// [`WriteCtx::write_events`] inserts: a file's chunk pays a statement's fixed costs (rusqlite's
/// statement cache, SQLite's setup, and on SQLite the statement journal, which copies each page a
/// statement changes first) once per this many rows. Measured at 3,000,000 events (`bench lifecycle`,
/// alternating): 50 rows to a statement about 290 thousand events/s, 200 rows 340, 500 and 1,000 rows
/// 325.
const SUMMARY_ROWS: usize = 200;
const SUMMARY_COLUMNS: usize = 6;
const EVENT_ROWS: usize = 200;
const EVENT_COLUMNS: usize = 6;

/// The insert of `rows` events (1 or [`EVENT_ROWS`]); a row whose key is held is not inserted, which
/// the count of rows changed shows.
fn events_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    crate::sql::one_or_many(&SQL, rows, EVENT_ROWS, |rows| {
        format!(
            "INSERT INTO events (carrier_seq, event_id, number, kind, day, kyc_hash) VALUES {} \
             ON CONFLICT (carrier_seq, event_id) DO NOTHING",
            values_list(rows, EVENT_COLUMNS)
        )
    })
}

/// `($1, …, $columns), (…), …` for `rows` rows.
fn values_list(rows: usize, columns: usize) -> String {
    let row = |r: usize| {
        let params: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
        format!("({})", params.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// The upsert of `rows` summaries (1 or [`SUMMARY_ROWS`]).
fn summaries_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    crate::sql::one_or_many(&SQL, rows, SUMMARY_ROWS, |rows| {
        format!(
            "INSERT INTO numbers (number, first_event, last_end, last_activation, disconnected, serving) \
             VALUES {} ON CONFLICT (number) DO UPDATE SET first_event = excluded.first_event, \
             last_end = excluded.last_end, last_activation = excluded.last_activation, \
             disconnected = excluded.disconnected, serving = excluded.serving",
            values_list(rows, SUMMARY_COLUMNS)
        )
    })
}

/// Accepted events are audited by the call (a request, or a file's chunk): one chained record `events`
/// (detail `accepted=N;sha256=HEX[;job=ID]`) and, under its seq in `event_batches`, one entry per
/// event: its keyed hash (16 bytes), its number's keyed hash (16), its type code (1) and its date
/// (`yyyymmdd`, i32 big-endian). `audit verify` recomputes the digest.
pub const EVENT_ENTRY_BYTES: usize = 16 + 16 + 1 + 4;

fn push_entry(entries: &mut Vec<u8>, e: &NewEvent, keys: &EventKeys) {
    entries.extend_from_slice(&keys.event[..16]);
    entries.extend_from_slice(&keys.subject[..16]);
    entries.push(e.kind.code() as u8);
    entries.extend_from_slice(&e.date.packed().to_be_bytes());
}

impl WriteCtx {
    /// Applies a carrier's events. Within the batch, events are taken per number in date order, so
    /// that the order of lines in one request or file never changes what is accepted; outcomes come
    /// back in input order. The accepted ones are audited in one record (see [`EVENT_ENTRY_BYTES`]).
    pub(crate) fn report_events(
        &mut self,
        carrier: &Participant,
        events: Vec<(NewEvent, EventKeys)>,
        job: Option<&str>,
    ) -> Result<Vec<Outcome>, StoreError> {
        // First with the events' rows written [`EVENT_ROWS`] to a statement, assuming each key new: if
        // another number holds one, then again, row by row, each insert saying whether it was new.
        let marks = self.marks();
        self.events_key_held = false;
        self.conn.batch("SAVEPOINT events")?;
        let first = self.apply_events(carrier, &events, job, true);
        let undo = if first.is_ok() {
            "RELEASE SAVEPOINT events"
        } else {
            "ROLLBACK TO SAVEPOINT events; RELEASE SAVEPOINT events"
        };
        if first.is_err() {
            self.undo_to(marks);
        }
        if let Err(undone) = self.conn.batch(undo) {
            // The transaction is lost (an I/O error, a dropped connection): its batch fails; the
            // first error, if any, says why.
            if let Err(e) = &first {
                tracing::error!(error = %e, then = %undone, "a batch of events failed");
            }
            return first.and(Err(undone));
        }
        match first {
            Err(_) if self.events_key_held => {
                tracing::info!(
                    carrier = %carrier.id,
                    "a batch of events holds an eventId another number has: applied again event by event"
                );
                self.apply_events(carrier, &events, job, false)
            }
            other => other,
        }
    }

    /// [`WriteCtx::report_events`], with the events' rows written in lists (`in_lists`) or one by one.
    fn apply_events(
        &mut self,
        carrier: &Participant,
        events: &[(NewEvent, EventKeys)],
        job: Option<&str>,
        in_lists: bool,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].0.number, events[i].0.date, events[i].0.kind));
        let mut out: Vec<Option<Outcome>> = vec![None; events.len()];
        let bound = self.bound_numbers(
            events.iter().filter(|(e, _)| crate::ops::bindings::fans_out(e.kind)).map(|(_, k)| k.subject).collect(),
        )?;
        let mut entries = Vec::new();
        // Each accepted event's number summary, in number order (as the events are taken), written
        // when all are applied: nothing here reads `numbers` (a history is read from `events`).
        let mut summaries = Vec::new();
        for i in order {
            let (e, keys) = &events[i];
            let outcome =
                self.apply_event(carrier, e, keys, bound.contains(&keys.subject), in_lists, &mut summaries)?;
            if outcome == Outcome::Accepted {
                push_entry(&mut entries, e, keys);
            }
            out[i] = Some(outcome);
        }
        self.write_events()?;
        self.put_summaries(&summaries)?;
        if !entries.is_empty() {
            let accepted = entries.len() / EVENT_ENTRY_BYTES;
            let digest = crate::ops::checklog::entries_digest(&entries);
            let job = job.map(|j| format!(";job={j}")).unwrap_or_default();
            let seq =
                self.audit_seq(&carrier.id, "events", None, &format!("accepted={accepted};sha256={digest}{job}"))?;
            self.conn
                .exec("INSERT INTO event_batches (seq, entries) VALUES ($1, $2)", &[seq.into(), entries.into()])?;
        }
        Ok(out.into_iter().map(|o| o.expect("every index was visited once")).collect())
    }

    fn apply_event(
        &mut self,
        carrier: &Participant,
        e: &NewEvent,
        keys: &EventKeys,
        bound: bool,
        in_lists: bool,
        summaries: &mut Vec<(PhoneNumber, Summary)>,
    ) -> Result<Outcome, StoreError> {
        let cid = carrier.carrier_id();
        let history = if self.may_have_history(e.number) { self.history(e.number)? } else { Vec::new() };
        if history.iter().any(|h| h.carrier == cid && h.event_id == e.event_id) {
            return self
                .repeated(cid, e)?
                .ok_or_else(|| StoreError::Corrupt("an event of a history is missing".into()));
        }
        let coverage = self.coverage(e.number);
        let new = HistoryEvent { date: e.date, kind: e.kind, carrier: cid, event_id: e.event_id.clone() };
        let aging_days = self.aging.days_for(e.number);
        let today = self.clock.today();
        let summary = match validate_new(&history, &new, &coverage, aging_days, today) {
            Ok(s) => s,
            // An eventId reported before for another number is that conflict, whatever else is wrong.
            Err(r) => return Ok(self.repeated(cid, e)?.unwrap_or(Outcome::Rejected(r))),
        };
        let number = e.number.digits() as i64;
        let kyc_hash = e.kyc.as_ref().map(|k| self.kyc_digest(e.number, k));
        let row = [
            cid.0.into(),
            e.event_id.as_str().into(),
            number.into(),
            e.kind.code().into(),
            e.date.packed().into(),
            kyc_hash.into(),
        ];
        if in_lists {
            // Written before anything reads `events` again (see `write_events`); a key another number
            // holds fails the whole attempt.
            self.events_unwritten.extend(row);
            if self.events_unwritten.len() == EVENT_COLUMNS * EVENT_ROWS {
                self.write_events()?;
            }
        } else {
            // Not in the number's history, so the key is new unless another number has it (then the
            // insert does nothing and the stored row says what it was).
            let inserted = self.conn.exec(
                "INSERT INTO events (carrier_seq, event_id, number, kind, day, kyc_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (carrier_seq, event_id) DO NOTHING",
                &row,
            )?;
            if inserted == 0 {
                return self
                    .repeated(cid, e)?
                    .ok_or_else(|| StoreError::Corrupt("an event insert met no stored event".into()));
            }
        }
        self.index_later(e.number, summary);
        summaries.push((e.number, summary));
        // A real-name record exists only for a number with a history (it is written with an accepted
        // event), so a first event without one has none to keep in step.
        if (e.kind.ends_tenure() || e.kind == EventKind::Activated) && (e.kyc.is_some() || !history.is_empty()) {
            let tenure = domain::Tenure::of(&NumberFacts::new(&coverage, &summary));
            self.sync_kyc(e.number, &keys.subject, tenure, e.date, e.kyc.as_ref())?;
        }
        // Bindings are not added or moved by a batch of events: a number without one when the batch
        // began has none here.
        if bound {
            self.fan_out(e.number, &keys.subject, &new, &keys.event)?;
        }
        Ok(Outcome::Accepted)
    }

    /// What an event whose (carrier, eventId) is stored already is: a duplicate if the payload is the
    /// same, else a conflict. `None` if it is not stored.
    fn repeated(&mut self, cid: CarrierId, e: &NewEvent) -> Result<Option<Outcome>, StoreError> {
        self.write_events()?;
        let Some(row) = self.conn.query_one(
            "SELECT number, kind, day, kyc_hash FROM events WHERE carrier_seq = $1 AND event_id = $2",
            &[cid.0.into(), e.event_id.as_str().into()],
        )?
        else {
            return Ok(None);
        };
        let same = row.i64(0)? == e.number.digits() as i64
            && row.i64(1)? == i64::from(e.kind.code())
            && row.i64(2)? == i64::from(e.date.packed())
            && row.opt_bytes(3) == e.kyc.as_ref().map(|k| self.kyc_digest(e.number, k));
        Ok(Some(if same {
            Outcome::Duplicate
        } else {
            Outcome::Rejected(Rejection::new(
                RejectionCode::Conflict,
                format!("eventId \"{}\" was reported before with a different payload", e.event_id),
            ))
        }))
    }

    pub(crate) fn history(&mut self, n: PhoneNumber) -> Result<Vec<HistoryEvent>, StoreError> {
        self.write_events()?;
        let rows = self.conn.query(
            "SELECT carrier_seq, event_id, kind, day FROM events WHERE number = $1",
            &[(n.digits() as i64).into()],
        )?;
        let mut events = rows
            .iter()
            .map(|r| {
                let kind = EventKind::from_code(r.i64(2)? as i16)
                    .ok_or_else(|| StoreError::Corrupt("unknown event kind".into()))?;
                let date = day_of(r, 3).ok_or_else(|| StoreError::Corrupt("bad event day".into()))?;
                Ok(HistoryEvent { date, kind, carrier: CarrierId(r.i64(0)?), event_id: r.text(1)? })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        domain::history::sort_r1(&mut events);
        Ok(events)
    }

    /// Inserts the events' rows held back by [`WriteCtx::apply_events`]: [`EVENT_ROWS`] to a statement,
    /// the rest one by one. Called before anything reads `events`, so that no read misses one.
    pub(crate) fn write_events(&mut self) -> Result<(), StoreError> {
        if self.events_unwritten.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.events_unwritten);
        let written = self.insert_events(&rows);
        // The buffer's capacity is kept for the next rows.
        self.events_unwritten = rows;
        self.events_unwritten.clear();
        written
    }

    /// Executes `sql` on `rows` (`columns` values each): `many` rows to a statement, the rest one by
    /// one. The rows changed.
    fn exec_in_lists(
        &mut self,
        rows: &[Value],
        columns: usize,
        many: usize,
        sql: fn(usize) -> &'static str,
    ) -> Result<u64, StoreError> {
        let mut lists = rows.chunks_exact(columns * many);
        let mut changed = 0;
        for list in lists.by_ref() {
            changed += self.conn.exec(sql(many), list)?;
        }
        for row in lists.remainder().chunks(columns) {
            changed += self.conn.exec(sql(1), row)?;
        }
        Ok(changed)
    }

    /// Fails, with [`WriteCtx::events_key_held`] set, if another event holds a row's key.
    fn insert_events(&mut self, rows: &[Value]) -> Result<(), StoreError> {
        let inserted = self.exec_in_lists(rows, EVENT_COLUMNS, EVENT_ROWS, events_sql)?;
        if inserted < (rows.len() / EVENT_COLUMNS) as u64 {
            self.events_key_held = true;
            return Err(StoreError::Database("an eventId of the batch is held by another number's event".into()));
        }
        Ok(())
    }

    /// Upserts the summaries into `numbers`, the last of each number's run (`summaries` is in number
    /// order), [`SUMMARY_ROWS`] to a statement.
    fn put_summaries(&mut self, summaries: &[(PhoneNumber, Summary)]) -> Result<(), StoreError> {
        let last_of_each = summaries
            .iter()
            .enumerate()
            .filter(|&(i, (n, _))| summaries.get(i + 1).is_none_or(|(next, _)| next != n))
            .map(|(_, row)| row);
        let params: Vec<Value> = last_of_each
            .flat_map(|(n, s)| {
                [
                    (n.digits() as i64).into(),
                    packed(s.first_event),
                    packed(s.last_end),
                    packed(s.last_activation),
                    i16::from(s.disconnected).into(),
                    s.serving.map(|c| c.0).into(),
                ]
            })
            .collect();
        self.exec_in_lists(&params, SUMMARY_COLUMNS, SUMMARY_ROWS, summaries_sql)?;
        Ok(())
    }

    /// What R2 needs to know about `n`, from its kept summary and the carriers' ranges.
    pub(crate) fn facts(&mut self, n: PhoneNumber) -> Result<NumberFacts, StoreError> {
        let coverage = self.coverage(n);
        let row = self.conn.query_one(
            "SELECT first_event, last_end, last_activation, disconnected FROM numbers WHERE number = $1",
            &[(n.digits() as i64).into()],
        )?;
        let summary = match row {
            Some(r) => Summary {
                first_event: day_of(&r, 0),
                last_end: day_of(&r, 1),
                last_activation: day_of(&r, 2),
                disconnected: r.i64(3)? != 0,
                serving: None,
            },
            None => Summary::default(),
        };
        Ok(NumberFacts::new(&coverage, &summary))
    }

    /// R2 from the tables, audited: what a store without an index answers checks with.
    pub(crate) fn check_from_tables(
        &mut self,
        actor: &Participant,
        items: &[(PhoneNumber, Day)],
    ) -> Result<Vec<Result<Answer, DateAfterToday>>, StoreError> {
        let today = self.clock.today();
        let answers = items
            .iter()
            .map(|&(n, d)| Ok(reassigned_since(&self.facts(n)?, d, today)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let entries = crate::ops::checklog::encode(
            &self.hash_key,
            items.iter().zip(&answers).map(|(&(n, d), a)| (n, d, crate::ops::checklog::LoggedAnswer::from(a))),
        );
        self.log_checks(&actor.id, None, entries);
        Ok(answers)
    }
}
