//! Lifecycle events (R3 through `domain::validate_new`) and checks (R2 through
//! `domain::reassigned_since`), each audited in the transaction that does it.

pub(crate) mod buffer;

use domain::answer::DateAfterToday;
use domain::history::Summary;
use domain::{
    Answer, CarrierId, Day, EventId, EventKind, HistoryEvent, NumberFacts, PhoneNumber, Rejection, RejectionCode,
    reassigned_since, validate_new,
};

use crate::StoreError;
use crate::keys::HashKey;
use crate::ops::bindings::Binding;
use crate::ops::kyc::Kyc;
use crate::ops::participants::{Participant, Role};
use crate::sql::{Row, Value};
use crate::time;
use crate::writer::WriteCtx;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: EventId,
    pub number: PhoneNumber,
    pub kind: EventKind,
    pub date: Day,
    /// The holder's real-name attributes, with an `activated` or `transferred` event.
    pub kyc: Option<Kyc>,
    /// A port's recipient, as a carrier's participant id: named by a donor on its `ported_out`, or by
    /// the number-portability database on a whole port (see `domain::HistoryEvent::recipient`).
    pub recipient: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// The same `eventId` with the identical payload was accepted before: counted, not applied again.
    Duplicate,
    /// A carrier's `ported_in` waiting for the serving carrier's `ported_out` of its day (R3): kept,
    /// applied when that arrives, dropped unapplied after `domain::history::PORT_PENDING_DAYS`.
    Pending,
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
const EVENT_COLUMNS: usize = 7;

/// The insert of `rows` events (1 or [`EVENT_ROWS`]); a row whose key is held is not inserted, which
/// the count of rows changed shows.
fn events_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    crate::sql::one_or_many(&SQL, rows, EVENT_ROWS, |rows| {
        format!(
            "INSERT INTO events (carrier_seq, event_id, number, kind, day, kyc_hash, recipient_seq) VALUES {} \
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

fn push_entry(entries: &mut Vec<u8>, keys: &EventKeys, kind: EventKind, date: Day) {
    entries.extend_from_slice(&keys.event[..16]);
    entries.extend_from_slice(&keys.subject[..16]);
    entries.push(kind.code() as u8);
    entries.extend_from_slice(&date.packed().to_be_bytes());
}

/// How long a carrier's `ported_in` waits for the donor's `ported_out`.
const PORT_PENDING_SECS: i64 = domain::history::PORT_PENDING_DAYS as i64 * 86_400;

/// A pending `ported_in` that a `ported_out` of its batch completed: accepted in the recipient's name,
/// audited in an `events` record of the recipient's own.
struct CompletedPort {
    carrier_id: String,
    keys: EventKeys,
    date: Day,
}

/// A carrier's `ported_in` kept waiting for the donor's `ported_out`, as the carrier sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingPort {
    pub event_id: String,
    pub number: PhoneNumber,
    pub date: Day,
    /// Unix seconds: when it was received, and when it is dropped unapplied if no `ported_out` came.
    pub received_unix: i64,
    pub expires_unix: i64,
}

/// One stored event of a number, with its reporter's and its recipient's participant ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub reporter_id: String,
    pub event_id: String,
    pub kind: EventKind,
    pub date: Day,
    pub recipient_id: Option<String>,
}

/// A number's stored events in R1 order (sorted here: a kind's stored code is not its rank).
pub(crate) fn events_of(conn: &mut dyn crate::sql::Conn, n: PhoneNumber) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = conn
        .query(
            "SELECT p.id, e.event_id, e.kind, e.day, r.id, e.carrier_seq FROM events e \
             JOIN participants p ON p.seq = e.carrier_seq LEFT JOIN participants r ON r.seq = e.recipient_seq \
             WHERE e.number = $1",
            &[(n.digits() as i64).into()],
        )?
        .iter()
        .map(|r| {
            let event = StoredEvent {
                reporter_id: r.text(0)?,
                event_id: r.text(1)?,
                kind: EventKind::from_code(r.i64(2)? as i16)
                    .ok_or_else(|| StoreError::Corrupt("unknown event kind".into()))?,
                date: day_of(r, 3).ok_or_else(|| StoreError::Corrupt("bad event day".into()))?,
                recipient_id: r.opt_text(4),
            };
            Ok((r.i64(5)?, event))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    events.sort_by(|(a_seq, a), (b_seq, b)| {
        (a.date, a.kind, a_seq, &a.event_id).cmp(&(b.date, b.kind, b_seq, &b.event_id))
    });
    Ok(events.into_iter().map(|(_, e)| e).collect())
}

/// The carrier's pending `ported_in` events, oldest first, after the cursor (received time, eventId).
pub(crate) fn pending_ports(
    conn: &mut dyn crate::sql::Conn,
    carrier_seq: i64,
    now: i64,
    limit: u32,
) -> Result<Vec<PendingPort>, StoreError> {
    conn.query(
        "SELECT event_id, number, day, received_at FROM pending_ports WHERE carrier_seq = $1 AND received_at > $2 \
         ORDER BY received_at, event_id LIMIT $3",
        &[carrier_seq.into(), time::stamp_unix(now - PORT_PENDING_SECS).into(), i64::from(limit).into()],
    )?
    .iter()
    .map(|r| {
        let number = PhoneNumber::from_digits(r.i64(1)? as u64)
            .ok_or_else(|| StoreError::Corrupt("a pending port's number".into()))?;
        let date = day_of(r, 2).ok_or_else(|| StoreError::Corrupt("a pending port's day".into()))?;
        let received_unix = time::unix(r, 3)?;
        Ok(PendingPort {
            event_id: r.text(0)?,
            number,
            date,
            received_unix,
            expires_unix: received_unix + PORT_PENDING_SECS,
        })
    })
    .collect()
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
        self.events.key_held = false;
        if self.first_to_write {
            // Nothing else of the transaction is written yet: undoing the lists is rolling it back,
            // with no savepoint copying every page before its first change (a third of the writer's
            // time in a chunk that notifies bindings).
            let marks = self.marks();
            return match self.apply_events(carrier, &events, job, true) {
                Err(_) if self.events.key_held => {
                    self.restart_first_to_write(marks)?;
                    tracing::info!(
                        carrier = %carrier.id,
                        "a batch of events holds an eventId another number has: applied again event by event"
                    );
                    self.apply_events(carrier, &events, job, false)
                }
                other => other,
            };
        }
        let (first, ended) =
            self.savepoint("events", |ctx| ctx.apply_events(carrier, &events, job, true), Result::is_ok)?;
        if let Err(undone) = ended {
            // The transaction is lost (an I/O error, a dropped connection): its batch fails; the
            // first error, if any, says why.
            if let Err(e) = &first {
                tracing::error!(error = %e, then = %undone, "a batch of events failed");
            }
            return first.and(Err(undone));
        }
        match first {
            Err(_) if self.events.key_held => {
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
            events.iter().filter(|(e, _)| domain::notify::may_notify(e.kind)).map(|(_, k)| k.subject).collect(),
        )?;
        let mut entries = Vec::new();
        // Each accepted event's number summary, in number order (as the events are taken), written
        // when all are applied: nothing here reads `numbers` (a history is read from `events`).
        let mut summaries = Vec::new();
        let mut completed = Vec::new();
        for i in order {
            let (e, keys) = &events[i];
            let bound = bound.get(&keys.subject).map_or(&[][..], Vec::as_slice);
            let outcome = self.apply_event(carrier, e, keys, bound, in_lists, job, &mut summaries, &mut completed)?;
            if outcome == Outcome::Accepted {
                push_entry(&mut entries, keys, e.kind, e.date);
            }
            out[i] = Some(outcome);
        }
        self.write_events()?;
        self.put_summaries(&summaries)?;
        let job = job.map(|j| format!(";job={j}")).unwrap_or_default();
        self.audit_events(&carrier.id, &entries, &job)?;
        // The `ported_in` events these completed are the recipients' (each waited in its own call).
        completed.sort_by(|a, b| a.carrier_id.cmp(&b.carrier_id));
        for group in completed.chunk_by(|a, b| a.carrier_id == b.carrier_id) {
            let mut entries = Vec::with_capacity(group.len() * EVENT_ENTRY_BYTES);
            for c in group {
                push_entry(&mut entries, &c.keys, EventKind::PortedIn, c.date);
            }
            self.audit_events(&group[0].carrier_id, &entries, ";completedPorts=1")?;
        }
        Ok(out.into_iter().map(|o| o.expect("every index was visited once")).collect())
    }

    /// One chained `events` record of `actor` for the accepted events packed in `entries`, if any.
    fn audit_events(&mut self, actor: &str, entries: &[u8], suffix: &str) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let accepted = entries.len() / EVENT_ENTRY_BYTES;
        let digest = crate::ops::audit::entries_digest(entries);
        let seq = self.audit_seq(actor, "events", None, &format!("accepted={accepted};sha256={digest}{suffix}"))?;
        self.conn.exec("INSERT INTO event_batches (seq, entries) VALUES ($1, $2)", &[seq.into(), entries.into()])?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments, reason = "the batch's state, passed down rather than kept in the writer")]
    fn apply_event(
        &mut self,
        carrier: &Participant,
        e: &NewEvent,
        keys: &EventKeys,
        bound: &[Binding],
        in_lists: bool,
        job: Option<&str>,
        summaries: &mut Vec<(PhoneNumber, Summary)>,
        completed: &mut Vec<CompletedPort>,
    ) -> Result<Outcome, StoreError> {
        let cid = carrier.carrier_id();
        let recipient = match &e.recipient {
            None => None,
            Some(id) => match self.carrier_seq(id)? {
                Some(seq) => Some(CarrierId(seq)),
                None => {
                    return Ok(Outcome::Rejected(Rejection::new(
                        RejectionCode::InvalidArgument,
                        format!(
                            "recipient \"{}\" is not a carrier on numlink: expected a carrier's id (car_…)",
                            domain::number::truncate_for_message(id)
                        ),
                    )));
                }
            },
        };
        if let Err(r) = domain::history::check_reporter(e.kind, recipient, carrier.role == Role::Portability) {
            return Ok(Outcome::Rejected(r));
        }
        let history = if self.may_have_history(e.number) { self.history(e.number)? } else { Vec::new() };
        if history.iter().any(|h| h.carrier == cid && h.event_id == *e.event_id) {
            return self
                .repeated(cid, e, recipient)?
                .ok_or_else(|| StoreError::Corrupt("an event of a history is missing".into()));
        }
        let coverage = self.coverage(e.number);
        let new =
            HistoryEvent { date: e.date, kind: e.kind, carrier: cid, event_id: e.event_id.to_string(), recipient };
        let aging_days = self.aging.days_for(e.number);
        let today = self.clock.today();
        let summary = match validate_new(&history, &new, &coverage, aging_days, today) {
            Ok(s) => s,
            Err(r) => {
                // An eventId reported before for another number is that conflict, whatever else is wrong.
                if let Some(repeated) = self.repeated(cid, e, recipient)? {
                    return Ok(repeated);
                }
                if r.code == RejectionCode::PortPending {
                    return self.hold_port(carrier, e, keys, job);
                }
                return Ok(Outcome::Rejected(r));
            }
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
            recipient.map(|c| c.0).into(),
        ];
        if in_lists {
            // Written before anything reads `events` again (see `write_events`); a key another number
            // holds fails the whole attempt.
            self.events.unwritten.extend(row);
            if self.events.unwritten.len() == EVENT_COLUMNS * EVENT_ROWS {
                self.write_events()?;
            }
        } else {
            // Not in the number's history, so the key is new unless another number has it (then the
            // insert does nothing and the stored row says what it was).
            let inserted = self.conn.exec(events_sql(1), &row)?;
            if inserted == 0 {
                return self
                    .repeated(cid, e, recipient)?
                    .ok_or_else(|| StoreError::Corrupt("an event insert met no stored event".into()));
            }
        }
        self.index_later(e.number, summary);
        summaries.push((e.number, summary));
        if e.kind == EventKind::PortedIn && recipient.is_none() {
            // Sent again once its `ported_out` was stored: it waits no more.
            self.conn.exec(
                "DELETE FROM pending_ports WHERE carrier_seq = $1 AND event_id = $2",
                &[cid.0.into(), e.event_id.as_str().into()],
            )?;
            self.events.pending_ports_counted.remove(&cid.0);
        }
        // A real-name record exists only for a number with a history (it is written with an accepted
        // event), so a first event without one has none to keep in step.
        if e.kind.changes_holder() && (e.kyc.is_some() || !history.is_empty()) {
            let tenure = domain::Tenure::of(&NumberFacts::new(&coverage, &summary));
            self.sync_kyc(e.number, &keys.subject, tenure, e.date, e.kyc.as_ref())?;
        }
        // Bindings are not added or moved by a batch of events: a number without one when the batch
        // began has none here.
        if !bound.is_empty() {
            self.fan_out(e.number, bound, &new, &keys.event)?;
        }
        if e.kind == EventKind::PortedOut {
            self.complete_ports(e.number, &keys.subject, e.date, recipient, &coverage, summaries, completed)?;
        }
        Ok(Outcome::Accepted)
    }

    /// The seq of the carrier with this participant id, if there is one.
    fn carrier_seq(&mut self, id: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_one("SELECT seq FROM participants WHERE id = $1 AND role = 'carrier'", &[id.into()])?
            .map(|r| r.i64(0))
            .transpose()
    }

    /// Keeps a carrier's `ported_in` until the donor's `ported_out` of its day arrives (R3). The same
    /// event sent again is pending again; a pending one that expired waits anew.
    fn hold_port(
        &mut self,
        carrier: &Participant,
        e: &NewEvent,
        keys: &EventKeys,
        job: Option<&str>,
    ) -> Result<Outcome, StoreError> {
        let now = self.now_unix();
        let (number, day) = (e.number.digits() as i64, e.date.packed());
        let held = self.conn.query_one(
            "SELECT number, day, received_at FROM pending_ports WHERE carrier_seq = $1 AND event_id = $2",
            &[carrier.seq.into(), e.event_id.as_str().into()],
        )?;
        if let Some(row) = held {
            if row.i64(0)? != number || row.i64(1)? != i64::from(day) {
                return Ok(Outcome::Rejected(Rejection::new(
                    RejectionCode::Conflict,
                    format!("eventId \"{}\" was reported before with a different payload", e.event_id),
                )));
            }
            if time::unix(&row, 2)? > now - PORT_PENDING_SECS {
                return Ok(Outcome::Pending);
            }
            self.conn.exec(
                "DELETE FROM pending_ports WHERE carrier_seq = $1 AND event_id = $2",
                &[carrier.seq.into(), e.event_id.as_str().into()],
            )?;
        }
        let max = self.pending_ports_max;
        let pending = match self.events.pending_ports_counted.get(&carrier.seq) {
            Some(&n) => n,
            None => {
                // Counted up to the limit only, once a batch: a carrier at its limit costs no more.
                let n = self
                    .conn
                    .query_one(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM pending_ports WHERE carrier_seq = $1 LIMIT $2) p",
                        &[carrier.seq.into(), (max as i64).into()],
                    )?
                    .map(|r| r.i64(0))
                    .transpose()?
                    .unwrap_or(0) as u64;
                self.events.pending_ports_counted.insert(carrier.seq, n);
                n
            }
        };
        if pending >= max {
            return Ok(Outcome::Rejected(Rejection::new(
                RejectionCode::TooManyItems,
                format!(
                    "{max} ported_in events of this carrier already wait for their ported_out: this one is not kept (pending_ports_per_carrier_max)"
                ),
            )));
        }
        self.events.pending_ports_counted.insert(carrier.seq, pending + 1);
        self.conn.exec(
            "INSERT INTO pending_ports (carrier_seq, event_id, number, day, received_at, job_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                carrier.seq.into(),
                e.event_id.as_str().into(),
                number.into(),
                day.into(),
                time::stamp_unix(now).into(),
                job.into(),
            ],
        )?;
        let job = job.map(|j| format!(";job={j}")).unwrap_or_default();
        self.audit(
            &carrier.id,
            "port.pending",
            Some(&keys.subject),
            &format!("event={};date={}{job}", hex::encode(&keys.event[..16]), e.date),
        )?;
        Ok(Outcome::Pending)
    }

    /// After a `ported_out` of `n` on `date` (naming `named`, if any) was accepted: the first waiting
    /// `ported_in` of that day (of the named carrier) that the history now takes is accepted. If the
    /// `ported_out` names nobody and several carriers wait, none is: which of them the donor meant
    /// only the donor or the number-portability database can say.
    #[allow(clippy::too_many_arguments, reason = "the batch's state, passed down rather than kept in the writer")]
    fn complete_ports(
        &mut self,
        n: PhoneNumber,
        subject: &[u8; 32],
        date: Day,
        named: Option<CarrierId>,
        coverage: &domain::Coverage,
        summaries: &mut Vec<(PhoneNumber, Summary)>,
        completed: &mut Vec<CompletedPort>,
    ) -> Result<(), StoreError> {
        let now = self.now_unix();
        let number = n.digits() as i64;
        let mut waiting: Vec<(i64, String, String)> = self
            .conn
            .query(
                "SELECT p.carrier_seq, p.event_id, c.id FROM pending_ports p JOIN participants c ON c.seq = p.carrier_seq \
                 WHERE p.number = $1 AND p.day = $2 AND p.received_at > $3 \
                 ORDER BY p.received_at, p.carrier_seq, p.event_id",
                &[number.into(), date.packed().into(), time::stamp_unix(now - PORT_PENDING_SECS).into()],
            )?
            .iter()
            .map(|r| Ok((r.i64(0)?, r.text(1)?, r.text(2)?)))
            .collect::<Result<_, StoreError>>()?;
        if let Some(to) = named {
            waiting.retain(|w| w.0 == to.0);
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if named.is_none() && waiting.iter().any(|w| w.0 != waiting[0].0) {
            tracing::warn!(
                number = %n.masked(),
                %date,
                carriers = waiting.len(),
                "several carriers wait to complete a port that names no recipient: none is applied"
            );
            return self.audit("numlink", "port.ambiguous", Some(subject), &format!("date={date}"));
        }
        let aging_days = self.aging.days_for(n);
        let today = self.clock.today();
        for (seq, event_id, carrier_id) in waiting {
            let history = self.history(n)?;
            let new =
                HistoryEvent { date, kind: EventKind::PortedIn, carrier: CarrierId(seq), event_id, recipient: None };
            let Ok(summary) = validate_new(&history, &new, coverage, aging_days, today) else {
                continue;
            };
            self.conn.exec(
                "DELETE FROM pending_ports WHERE carrier_seq = $1 AND event_id = $2",
                &[seq.into(), new.event_id.as_str().into()],
            )?;
            self.events.pending_ports_counted.remove(&seq);
            let row = [
                seq.into(),
                new.event_id.as_str().into(),
                number.into(),
                EventKind::PortedIn.code().into(),
                date.packed().into(),
                Value::Null,
                Value::Null,
            ];
            if self.conn.exec(events_sql(1), &row)? == 0 {
                // The carrier used the eventId for another event meanwhile: that one stands.
                tracing::warn!(carrier = %carrier_id, "a pending ported_in's eventId was used since: dropped");
                self.audit(&carrier_id, "port.dropped", Some(subject), &format!("date={date};reason=eventId reused"))?;
                continue;
            }
            self.index_later(n, summary);
            summaries.push((n, summary));
            let keys = EventKeys { subject: *subject, event: self.hash_key.event(new.carrier, &new.event_id) };
            completed.push(CompletedPort { carrier_id, keys, date });
            break;
        }
        Ok(())
    }

    /// Drops the `ported_in` events that waited longer than `PORT_PENDING_DAYS` for their `ported_out`
    /// (at most `max` of them), each audited. True if more are left.
    pub(crate) fn expire_pending_ports(&mut self, max: u32) -> Result<bool, StoreError> {
        let before = self.now_unix() - PORT_PENDING_SECS;
        let rows = self.conn.query(
            "SELECT p.carrier_seq, p.event_id, p.number, p.day, c.id FROM pending_ports p \
             JOIN participants c ON c.seq = p.carrier_seq WHERE p.received_at <= $1 \
             ORDER BY p.received_at LIMIT $2",
            &[time::stamp_unix(before).into(), i64::from(max).into()],
        )?;
        for r in &rows {
            let (seq, event_id) = (r.i64(0)?, r.text(1)?);
            self.conn.exec(
                "DELETE FROM pending_ports WHERE carrier_seq = $1 AND event_id = $2",
                &[seq.into(), event_id.as_str().into()],
            )?;
            let n = PhoneNumber::from_digits(r.i64(2)? as u64)
                .ok_or_else(|| StoreError::Corrupt("a pending port's number".into()))?;
            let date = day_of(r, 3).ok_or_else(|| StoreError::Corrupt("a pending port's day".into()))?;
            let event = self.hash_key.event(CarrierId(seq), &event_id);
            self.audit(
                &r.text(4)?,
                "port.expired",
                Some(&self.hash_key.number(n)),
                &format!("event={};date={date}", hex::encode(&event[..16])),
            )?;
        }
        Ok(rows.len() == max as usize)
    }

    /// What an event whose (carrier, eventId) is stored already is: a duplicate if the payload is the
    /// same, else a conflict. `None` if it is not stored.
    fn repeated(
        &mut self,
        cid: CarrierId,
        e: &NewEvent,
        recipient: Option<CarrierId>,
    ) -> Result<Option<Outcome>, StoreError> {
        self.write_events()?;
        let Some(row) = self.conn.query_one(
            "SELECT number, kind, day, kyc_hash, recipient_seq FROM events WHERE carrier_seq = $1 AND event_id = $2",
            &[cid.0.into(), e.event_id.as_str().into()],
        )?
        else {
            return Ok(None);
        };
        // A `ported_in` accepted on its own word before ports took both sides names its reporter as
        // its recipient (migration 0010); sent again, it names none.
        let stored_recipient =
            row.opt_i64(4).filter(|&r| !(e.kind == EventKind::PortedIn && r == cid.0 && recipient.is_none()));
        let same = row.i64(0)? == e.number.digits() as i64
            && row.i64(1)? == i64::from(e.kind.code())
            && row.i64(2)? == i64::from(e.date.packed())
            && stored_recipient == recipient.map(|c| c.0)
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
                Ok(HistoryEvent { date, kind, carrier: CarrierId(r.i64(0)?), event_id: r.text(1)?, recipient: None })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // A port's recipient is outside the covering index the history is read from: read for ports only.
        if events.iter().any(|e| matches!(e.kind, EventKind::PortedIn | EventKind::PortedOut)) {
            for r in self.conn.query(
                "SELECT carrier_seq, event_id, recipient_seq FROM events WHERE number = $1 AND kind IN ($2, $3) \
                 AND recipient_seq IS NOT NULL",
                &[(n.digits() as i64).into(), EventKind::PortedOut.code().into(), EventKind::PortedIn.code().into()],
            )? {
                let (carrier, id) = (CarrierId(r.i64(0)?), r.text(1)?);
                if let Some(e) = events.iter_mut().find(|e| e.carrier == carrier && e.event_id == id) {
                    e.recipient = r.opt_i64(2).map(CarrierId);
                }
            }
        }
        domain::history::sort_r1(&mut events);
        Ok(events)
    }

    /// Inserts the events' rows held back by [`WriteCtx::apply_events`]: [`EVENT_ROWS`] to a statement,
    /// the rest one by one. Called before anything reads `events`, so that no read misses one.
    pub(crate) fn write_events(&mut self) -> Result<(), StoreError> {
        if self.events.unwritten.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.events.unwritten);
        let written = self.insert_events(&rows);
        // The buffer's capacity is kept for the next rows.
        self.events.unwritten = rows;
        self.events.unwritten.clear();
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

    /// Fails, with `EventsBuffer::key_held` set, if another event holds a row's key.
    fn insert_events(&mut self, rows: &[Value]) -> Result<(), StoreError> {
        let inserted = self.exec_in_lists(rows, EVENT_COLUMNS, EVENT_ROWS, events_sql)?;
        if inserted < (rows.len() / EVENT_COLUMNS) as u64 {
            self.events.key_held = true;
            return Err(StoreError::database("an eventId of the batch is held by another number's event"));
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
