//! Bindings and their notifications (R4).
//!
//! The set of notifications is defined, not accumulated: binding B gets one notification for event E
//! exactly when E is on B's number and ends a tenure on or after B's `boundOn`, or starts one after it
//! (the same boundaries as R2). Both paths — an event arriving for existing bindings, a binding
//! arriving for an existing history — insert into that set in the transaction of the event or
//! binding, and each only for what it brings that is new: the event for the bindings already there,
//! the binding for the events already there. An event is stored once and never deleted, a binding's
//! id is never issued again (a deleted binding's included), and a rebind, which moves a binding to
//! another number, notifies nothing of that number's past; so whatever order they arrive in, no event
//! notifies a binding twice and none is missed.
//!
//! Which notifications name a binding is kept beside them, in two tables (migration 27): each new
//! notification's (binding, seq) goes into `binding_notifications_recent`, small, and the writer files
//! that table's rows into `binding_notifications`, large, in key order a step at a time
//! (`writer::notifications_filing`): a page of the large table is written once per pass over it, not
//! once per notification. What reads them (a binding's staleness, an unbind's acknowledgements) reads
//! both.

use domain::{
    AccountRef, Answer, BindingNotice, Day, EventKind, HistoryEvent, PhoneNumber, Rejection, RejectionCode,
    reassigned_since,
};

use crate::StoreError;
use crate::ids::{BindingId, NotificationId};
use crate::ops::participants::Participant;
use crate::sql::{Conn, Row, Value};
use crate::writer::WriteCtx;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBinding {
    pub account_ref: AccountRef,
    pub number: PhoneNumber,
    pub bound_on: Day,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub id: BindingId,
    pub institution_seq: i64,
    pub account_ref: String,
    pub bound_on: Day,
    /// Made with someone who no longer holds the number (R2 at `bound_on`, or notified since).
    pub stale: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub binding: Binding,
    /// False when the same (institution, accountRef, number) was registered before.
    pub created: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationType {
    Disconnected,
    Transferred,
    Reassigned,
    /// About the institution's own webhook endpoint, told through the pull feed.
    EndpointDisabled,
    /// A holder asks the institution to unbind its bindings made before their tenure (R5).
    UnbindRequested,
    /// A test the institution sent to one of its endpoints.
    Test,
}

impl NotificationType {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::Disconnected => "number.disconnected",
            NotificationType::Transferred => "number.transferred",
            NotificationType::Reassigned => "number.reassigned",
            NotificationType::EndpointDisabled => "webhook.endpoint_disabled",
            NotificationType::UnbindRequested => "unbind.requested",
            NotificationType::Test => "webhook.test",
        }
    }

    pub const ALL: [NotificationType; 6] = [
        NotificationType::Disconnected,
        NotificationType::Transferred,
        NotificationType::Reassigned,
        NotificationType::EndpointDisabled,
        NotificationType::UnbindRequested,
        NotificationType::Test,
    ];

    pub fn parse(s: &str) -> Option<NotificationType> {
        NotificationType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The notification an event causes for a binding made on `bound_on`, if any: R4's set,
    /// `domain::notice_for`.
    pub fn for_event(kind: EventKind, event_date: Day, bound_on: Day) -> Option<NotificationType> {
        domain::notice_for(kind, event_date, bound_on).map(NotificationType::from)
    }
}

impl From<BindingNotice> for NotificationType {
    fn from(n: BindingNotice) -> NotificationType {
        match n {
            BindingNotice::Disconnected => NotificationType::Disconnected,
            BindingNotice::Transferred => NotificationType::Transferred,
            BindingNotice::Reassigned => NotificationType::Reassigned,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The feed cursor.
    pub seq: i64,
    pub id: NotificationId,
    pub institution_seq: i64,
    /// The binding concerned (binding notifications).
    pub binding_id: Option<String>,
    pub account_ref: Option<String>,
    /// The endpoint concerned (endpoint notifications).
    pub endpoint_id: Option<String>,
    pub kind: NotificationType,
    /// The lifecycle event's date (binding notifications).
    pub event_date: Option<Day>,
    /// For a disconnection: the first day the aging period allows the number to be reissued.
    pub reissuable_from: Option<Day>,
    /// Why, for an endpoint notification.
    pub detail: Option<String>,
    /// The holder's request (`unbind.requested`), its deadline, and the holder's proof of tenure.
    pub unbind_request_id: Option<String>,
    pub deadline: Option<Day>,
    pub attestation: Option<String>,
    pub created_at: String,
    pub acked_at: Option<String>,
    pub ack_action: Option<String>,
}

impl Notification {
    /// Opens the sealed columns (the proof of tenure of an `unbind.requested`). One that does not open
    /// (a hash key changed without its data) is dropped and logged, so that it cannot stop the feed or
    /// the deliveries of everything else.
    pub(crate) fn unseal(&mut self, key: &crate::HashKey) {
        if let Some(sealed) = self.attestation.take() {
            match key.unseal(&sealed) {
                Ok(open) => self.attestation = Some(open),
                Err(e) => {
                    tracing::error!(notification = %self.id, error = %e, "a proof of tenure does not open; sent without it")
                }
            }
        }
    }
}

/// What an institution did about a notification.
pub const ACK_ACTIONS: [&str; 3] = ["unbound", "customer_reverified", "contact_suspended"];

/// Hashes per statement of [`WriteCtx::bound_numbers`].
const BOUND_PROBE_LIST: usize = 256;
/// At most this many hashes are asked one by one instead.
const BOUND_PROBE_ONE_BY_ONE: usize = 8;

/// The probe of `n` hashes (1 or [`BOUND_PROBE_LIST`]): the bindings on them, as the fan-out reads them.
fn bound_probe_sql(n: usize) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    crate::sql::one_or_many(&SQL, n, BOUND_PROBE_LIST, |n| {
        let list: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
        format!("SELECT {FAN_OUT_COLUMNS}, number_hash FROM bindings WHERE number_hash IN ({})", list.join(", "))
    })
}

/// A binding as read: stale if the stored flag says so (R2 at `bound_on`) or a notification newer than
/// `notified_after` names it (migration 24), filed or not yet (migration 27, `writer::notifications_filing`).
const BINDING_COLUMNS: &str = "id, institution_seq, account_ref, bound_on, \
    CASE WHEN stale <> 0 \
    OR EXISTS (SELECT 1 FROM binding_notifications n WHERE n.binding_id = bindings.id AND n.seq > bindings.notified_after) \
    OR EXISTS (SELECT 1 FROM binding_notifications_recent n WHERE n.binding_id = bindings.id AND n.seq > bindings.notified_after) \
    THEN 1 ELSE 0 END, created_at";
/// A binding as the fan-out reads it: what [`NotificationType::for_event`] needs, without the
/// notifications lookup (its `stale` is the stored flag, which the fan-out does not use).
const FAN_OUT_COLUMNS: &str = "id, institution_seq, account_ref, bound_on, stale, created_at";
/// The number of [`FAN_OUT_COLUMNS`].
const FAN_OUT_COLUMN_COUNT: usize = 6;

/// The bindings on each bound number of a batch of events, by the number's keyed hash.
pub(crate) type BoundNumbers = std::collections::HashMap<[u8; 32], Vec<Binding>>;
pub(crate) const NOTIFICATION_COLUMNS: &str = "seq, id, institution_seq, binding_id, account_ref, endpoint_id, type, event_date, \
                                               reissuable_from, detail, created_at, acked_at, ack_action, \
                                               unbind_request_id, deadline, attestation";

pub(crate) fn day(r: &Row, i: usize) -> Result<Day, StoreError> {
    r.opt_i64(i)
        .and_then(|v| Day::from_packed(v as i32))
        .ok_or_else(|| StoreError::Corrupt(format!("column {i} is not a day")))
}

fn binding_from(r: &Row) -> Result<Binding, StoreError> {
    Ok(Binding {
        id: BindingId::stored(r.text(0)?),
        institution_seq: r.i64(1)?,
        account_ref: r.text(2)?,
        bound_on: day(r, 3)?,
        stale: r.i64(4)? != 0,
        created_at: r.text(5)?,
    })
}

pub(crate) fn notification_from(r: &Row) -> Result<Notification, StoreError> {
    let t = r.text(6)?;
    let opt_day = |i| r.opt_i64(i).and_then(|v| Day::from_packed(v as i32));
    Ok(Notification {
        seq: r.i64(0)?,
        id: NotificationId::stored(r.text(1)?),
        institution_seq: r.i64(2)?,
        binding_id: r.opt_text(3),
        account_ref: r.opt_text(4),
        endpoint_id: r.opt_text(5),
        kind: NotificationType::parse(&t).ok_or_else(|| StoreError::Corrupt(format!("notification type {t:?}")))?,
        event_date: opt_day(7),
        reissuable_from: opt_day(8),
        detail: r.opt_text(9),
        created_at: r.text(10)?,
        acked_at: r.opt_text(11),
        ack_action: r.opt_text(12),
        unbind_request_id: r.opt_text(13),
        deadline: opt_day(14),
        attestation: r.opt_text(15),
    })
}

pub(crate) fn get(conn: &mut dyn Conn, institution_seq: i64, id: &str) -> Result<Option<Binding>, StoreError> {
    let row = conn.query_one(
        &format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE id = $1 AND institution_seq = $2"),
        &[id.into(), institution_seq.into()],
    )?;
    row.map(|r| binding_from(&r)).transpose()
}

/// An institution's bindings in id order, after the cursor `after` (an id), at most `limit`.
pub(crate) fn list(
    conn: &mut dyn Conn,
    institution_seq: i64,
    after: &str,
    limit: u32,
) -> Result<Vec<Binding>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE institution_seq = $1 AND id > $2 ORDER BY id LIMIT $3"),
        &[institution_seq.into(), after.into(), i64::from(limit).into()],
    )?;
    rows.iter().map(binding_from).collect()
}

/// An institution's bindings of one account reference, or of one number (its keyed hash), in id
/// order after the cursor `after` (an id), at most `limit`.
pub(crate) fn find(
    conn: &mut dyn Conn,
    institution_seq: i64,
    by: &BindingsOf,
    after: &str,
    limit: u32,
) -> Result<Vec<Binding>, StoreError> {
    let (column, value): (&str, crate::sql::Value) = match by {
        BindingsOf::Account(a) => ("account_ref", a.as_str().into()),
        BindingsOf::NumberHash(h) => ("number_hash", h.as_slice().into()),
    };
    let rows = conn.query(
        &format!(
            "SELECT {BINDING_COLUMNS} FROM bindings WHERE institution_seq = $1 AND {column} = $2 AND id > $3 \
             ORDER BY id LIMIT $4"
        ),
        &[institution_seq.into(), value, after.into(), i64::from(limit).into()],
    )?;
    rows.iter().map(binding_from).collect()
}

/// Which bindings to find: those of an account reference, or of a number.
pub enum BindingsOf {
    Account(String),
    /// The keyed hash of the number (`HashKey::number`).
    NumberHash(Vec<u8>),
}

/// An institution's notifications after the cursor `after_seq`, oldest first.
pub(crate) fn feed(
    conn: &mut dyn Conn,
    institution_seq: i64,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<Notification>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE institution_seq = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
        &[institution_seq.into(), after_seq.into(), i64::from(limit).into()],
    )?;
    rows.iter().map(notification_from).collect()
}

/// Which notifications an operator looks at: of one type or all, acknowledged or not or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub kind: Option<NotificationType>,
    pub acked: Option<bool>,
}

/// The institution's notifications that pass `filter`, newest first, before the feed position
/// `before_seq` (0: from the newest).
pub(crate) fn newest(
    conn: &mut dyn Conn,
    institution_seq: i64,
    filter: NotificationFilter,
    before_seq: i64,
    limit: u32,
) -> Result<Vec<Notification>, StoreError> {
    let acked = match filter.acked {
        None => "",
        Some(true) => " AND acked_at IS NOT NULL",
        Some(false) => " AND acked_at IS NULL",
    };
    // Only the conditions asked for, so that each parameter has one plain type on both backends.
    let before = if before_seq > 0 { before_seq } else { i64::MAX };
    let mut params: Vec<crate::sql::Value> = vec![institution_seq.into(), before.into()];
    let kind = match filter.kind {
        Some(k) => {
            params.push(k.as_str().into());
            " AND type = $3"
        }
        None => "",
    };
    params.push(i64::from(limit).into());
    let limit_at = params.len();
    let rows = conn.query(
        &format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE institution_seq = $1 AND seq < $2{kind}{acked} \
             ORDER BY seq DESC LIMIT ${limit_at}"
        ),
        &params,
    )?;
    rows.iter().map(notification_from).collect()
}

impl WriteCtx {
    /// Registers bindings; per item, the binding (new or the one registered before) or why not.
    pub(crate) fn register_bindings(
        &mut self,
        institution: &Participant,
        items: Vec<NewBinding>,
    ) -> Result<Vec<Result<Registered, Rejection>>, StoreError> {
        let today = self.clock.today();
        let mut out = Vec::with_capacity(items.len());
        for b in items {
            if b.bound_on > today {
                out.push(Err(Rejection::new(
                    RejectionCode::OutOfRange,
                    format!("boundOn \"{}\" is after today ({today})", b.bound_on),
                )));
                continue;
            }
            out.push(Ok(self.register_binding(institution, &b)?));
        }
        Ok(out)
    }

    fn register_binding(&mut self, institution: &Participant, b: &NewBinding) -> Result<Registered, StoreError> {
        let hash = self.hash_key.number(b.number);
        if let Some(r) = self.conn.query_one(
            &format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE institution_seq = $1 AND account_ref = $2 AND number_hash = $3"),
            &[institution.seq.into(), b.account_ref.as_str().into(), hash.as_slice().into()],
        )? {
            return Ok(Registered { binding: binding_from(&r)?, created: false });
        }
        let today = self.clock.today();
        let stale = reassigned_since(&self.facts(b.number)?, b.bound_on, today) == Ok(Answer::Yes);
        let id = BindingId::issue("bnd");
        let now = self.now_rfc3339();
        self.conn.exec(
            "INSERT INTO bindings (id, institution_seq, account_ref, number_hash, bound_on, stale, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                id.as_str().into(),
                institution.seq.into(),
                b.account_ref.as_str().into(),
                hash.as_slice().into(),
                b.bound_on.packed().into(),
                i16::from(stale).into(),
                now.as_str().into(),
            ],
        )?;
        self.audit(&institution.id, "binding.registered", Some(&hash), &format!("id={id};boundOn={}", b.bound_on))?;
        let binding = Binding {
            id,
            institution_seq: institution.seq,
            account_ref: b.account_ref.to_string(),
            bound_on: b.bound_on,
            stale,
            created_at: now,
        };
        // A binding that arrives after the events that concern it is notified of them now.
        let mut binding = binding;
        let mut notified = false;
        for e in self.history(b.number)? {
            if NotificationType::for_event(e.kind, e.date, binding.bound_on).is_some() {
                let event_key = self.hash_key.event(e.carrier, &e.event_id);
                notified |= self.notify(&binding, b.number, &e, &event_key)?;
            }
        }
        binding.stale |= notified;
        Ok(Registered { binding, created: true })
    }

    /// The bindings on each of `number_hashes` that has any: asked once for a batch of events, by
    /// lists of [`BOUND_PROBE_LIST`] hashes in index order, so that the many numbers nobody has bound
    /// cost no statement each, and the fan-out of a bound one reads its bindings from here.
    pub(crate) fn bound_numbers(&mut self, mut number_hashes: Vec<[u8; 32]>) -> Result<BoundNumbers, StoreError> {
        number_hashes.sort_unstable();
        number_hashes.dedup();
        let mut bound = BoundNumbers::new();
        for list in number_hashes.chunks(BOUND_PROBE_LIST) {
            // A short last list repeats its last hash (one statement text, prepared once); a few hashes,
            // as a request's, are asked one by one.
            let last = list[list.len() - 1];
            let n = if list.len() <= BOUND_PROBE_ONE_BY_ONE { 1 } else { BOUND_PROBE_LIST };
            let probes: Vec<Vec<Value>> = match n {
                1 => list.iter().map(|h| vec![h.as_slice().into()]).collect(),
                _ => vec![(0..n).map(|i| list.get(i).unwrap_or(&last).as_slice().into()).collect()],
            };
            for params in probes {
                self.conn.query_each(bound_probe_sql(n), &params, &mut |r| {
                    let Some(h) = r.opt_bytes(FAN_OUT_COLUMN_COUNT).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
                        return Err(StoreError::Corrupt("a binding's number hash is not 32 bytes".into()));
                    };
                    bound.entry(h).or_default().push(binding_from(r)?);
                    Ok(())
                })?;
            }
        }
        Ok(bound)
    }

    /// After an accepted event: notifies every binding on the number that it concerns (R4), `bindings`
    /// being those on the number (from [`WriteCtx::bound_numbers`]). `event_key` is the keyed hash of
    /// `e`, which the caller has at hand.
    pub(crate) fn fan_out(
        &mut self,
        n: PhoneNumber,
        bindings: &[Binding],
        e: &HistoryEvent,
        event_key: &[u8; 32],
    ) -> Result<u64, StoreError> {
        if !domain::notify::may_notify(e.kind) {
            return Ok(0);
        }
        let mut created = 0;
        for b in bindings {
            created += u64::from(self.notify(b, n, e, event_key)?);
        }
        Ok(created)
    }

    /// Inserts the notification of `e` for `b` if R4 calls for one; true if it is new.
    fn notify(
        &mut self,
        b: &Binding,
        n: PhoneNumber,
        e: &HistoryEvent,
        event_key: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let Some(kind) = NotificationType::for_event(e.kind, e.date, b.bound_on) else {
            return Ok(false);
        };
        let reissuable_from = (kind == NotificationType::Disconnected)
            .then(|| domain::history::reissuable_from(e.date, self.aging.days_for(n)));
        // The event is named by its keyed hash (`event_key`), so that a copy of the database cannot
        // join a notification (institution, accountRef) to the events table (plain numbers).
        let now = self.now_rfc3339();
        // One row, no RETURNING on SQLite (`Conn::insert_seq`): SQLite then takes no statement journal,
        // which would copy every page the insert changes before changing it (a RETURNING clause runs as
        // a trigger, and a statement with triggers that may fail midway gets one).
        let id = NotificationId::issue("ntf");
        let seq = self.conn.insert_seq(
            "INSERT INTO notifications (id, institution_seq, binding_id, account_ref, type, event_key, \
             event_date, reissuable_from, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING",
            &[
                id.as_str().into(),
                b.institution_seq.into(),
                b.id.as_str().into(),
                b.account_ref.as_str().into(),
                kind.as_str().into(),
                event_key.as_slice().into(),
                e.date.packed().into(),
                reissuable_from.map(|d| d.packed()).into(),
                now.into(),
            ],
        )?;
        // A notification is only made for an event just stored or a binding just created (see the
        // module's comment), so the (binding, event) pair is new: nothing but the id met again (ids from
        // two processes in one millisecond) can stop the insert, and that must not pass unseen.
        let seq = seq.ok_or_else(|| StoreError::Corrupt(format!("notification id {id} was issued twice")))?;
        self.conn.exec(
            "INSERT INTO binding_notifications_recent (binding_id, seq) VALUES ($1, $2)",
            &[b.id.as_str().into(), seq.into()],
        )?;
        self.notifications_filing.added();
        // The binding is stale from now on: the notification says so (`BINDING_COLUMNS`).
        self.enqueue_deliveries(b.institution_seq, seq)?;
        Ok(true)
    }

    pub(crate) fn delete_binding(&mut self, institution: &Participant, id: &str) -> Result<bool, StoreError> {
        let row = self.conn.query_one(
            "SELECT number_hash FROM bindings WHERE id = $1 AND institution_seq = $2",
            &[id.into(), institution.seq.into()],
        )?;
        let Some(hash) = row.and_then(|r| r.opt_bytes(0)) else {
            return Ok(false);
        };
        self.conn.exec("DELETE FROM bindings WHERE id = $1", &[id.into()])?;
        self.audit(&institution.id, "binding.deleted", Some(&hash), &format!("id={id}"))?;
        self.close_emptied_requests(institution, &hash)?;
        Ok(true)
    }

    /// Records what the institution did about a notification; the first acknowledgement stands.
    pub(crate) fn ack_notification(
        &mut self,
        institution: &Participant,
        id: &str,
        action: &str,
    ) -> Result<Option<Notification>, StoreError> {
        let now = self.now_rfc3339();
        self.conn.exec(
            "UPDATE notifications SET acked_at = $1, ack_action = $2 WHERE id = $3 AND institution_seq = $4 AND acked_at IS NULL",
            &[now.into(), action.into(), id.into(), institution.seq.into()],
        )?;
        let row = self.conn.query_one(
            &format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1 AND institution_seq = $2"),
            &[id.into(), institution.seq.into()],
        )?;
        let mut n = row.map(|r| notification_from(&r)).transpose()?;
        if let Some(n) = &mut n {
            n.unseal(&self.hash_key);
            self.audit(
                &institution.id,
                "notification.acked",
                None,
                &format!("id={id};action={}", n.ack_action.as_deref().unwrap_or("")),
            )?;
        }
        Ok(n)
    }
}
