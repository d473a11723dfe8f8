//! Unbind requests (R5): the stale bindings a holder sees, one request per institution with a
//! snapshot of the bindings it is about and its `unbind.requested` notification in the same
//! transaction, and the institution's answer. When a request is due, late, or may be asked again
//! is `domain::unbind`'s to say.

use domain::{Day, PhoneNumber, RejectReason, Tenure};

use crate::StoreError;
use crate::ids::{NotificationId, ParticipantId, UnbindRequestId};
use crate::ops::HOLDER_ACTOR;
use crate::ops::bindings::{NotificationType, day};
use crate::ops::participants::Participant;
use crate::sql::{Conn, Row};
use crate::time;
use crate::writer::WriteCtx;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnbindState {
    Open,
    Unbound,
    Rejected,
}

impl UnbindState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnbindState::Open => "open",
            UnbindState::Unbound => "unbound",
            UnbindState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<UnbindState> {
        [UnbindState::Open, UnbindState::Unbound, UnbindState::Rejected].into_iter().find(|x| x.as_str() == s)
    }
}

/// A binding an unbind request is about, as it was when the request was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedBinding {
    pub binding_id: String,
    pub account_ref: String,
    pub bound_on: Day,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbindRequest {
    pub id: UnbindRequestId,
    pub institution_id: String,
    pub institution_name: String,
    pub state: UnbindState,
    pub reason: Option<RejectReason>,
    pub deadline: Day,
    pub attestation_id: String,
    pub created_at: String,
    pub created_unix: i64,
    pub resolved_at: Option<String>,
    pub resolved_unix: Option<i64>,
    /// Filled for the institution's own views; never for the holder's.
    pub bindings: Vec<RequestedBinding>,
}

impl UnbindRequest {
    /// Open past its deadline.
    pub fn overdue(&self, today: Day) -> bool {
        self.state == UnbindState::Open && domain::unbind::overdue(self.deadline, today)
    }

    /// Asking the same institution again at `now_unix` gives this request back rather than a new one:
    /// it is open, or it is a rejection that still stands.
    pub fn stands(&self, now_unix: i64) -> bool {
        self.state == UnbindState::Open
            || (self.state == UnbindState::Rejected
                && self.resolved_unix.is_some_and(|t| domain::unbind::rejection_stands(t, now_unix)))
    }
}

/// An institution holding bindings made before the holder's tenure, as the holder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleHolder {
    pub institution_id: String,
    pub institution_name: String,
    /// Stale bindings it still holds.
    pub bindings: u32,
    /// The latest unbind request of this tenure to this institution.
    pub request: Option<UnbindRequest>,
}

/// What the holder of a number sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderView {
    pub tenure: Tenure,
    pub institutions: Vec<StaleHolder>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnbindRefused {
    /// Nobody holds the number, or no change of holder is known: nothing can be stale.
    NoTenure,
    /// These institutions hold no stale binding on the number.
    NotStale(Vec<String>),
    /// The number changed hands since the holder's session began.
    TenureChanged,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Unbound,
    Rejected(RejectReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    NotFound,
    /// It was resolved before; the first resolution stands.
    AlreadyResolved(UnbindRequest),
    Done {
        request: UnbindRequest,
        bindings_removed: u64,
    },
}

const REQUEST_COLUMNS: &str =
    "r.id, p.id, p.name, r.state, r.reason, r.deadline, r.attestation_id, r.created_at, r.resolved_at";

fn request_from(r: &Row) -> Result<UnbindRequest, StoreError> {
    let state = r.text(3)?;
    Ok(UnbindRequest {
        id: UnbindRequestId::stored(r.text(0)?),
        institution_id: r.text(1)?,
        institution_name: r.text(2)?,
        state: UnbindState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("unbind state {state:?}")))?,
        reason: r.opt_text(4).as_deref().and_then(RejectReason::parse),
        deadline: day(r, 5)?,
        attestation_id: r.text(6)?,
        created_at: r.text(7)?,
        created_unix: time::unix(r, 7)?,
        resolved_at: r.opt_text(8),
        resolved_unix: time::opt_unix(r, 8)?,
        bindings: Vec::new(),
    })
}

fn requested_bindings(conn: &mut dyn Conn, request_id: &str) -> Result<Vec<RequestedBinding>, StoreError> {
    conn.query(
        "SELECT binding_id, account_ref, bound_on FROM unbind_request_bindings WHERE request_id = $1 ORDER BY binding_id",
        &[request_id.into()],
    )?
    .iter()
    .map(|r| Ok(RequestedBinding { binding_id: r.text(0)?, account_ref: r.text(1)?, bound_on: day(r, 2)? }))
    .collect()
}

/// One of the institution's unbind requests, with the bindings it is about.
pub(crate) fn request_of(
    conn: &mut dyn Conn,
    institution_seq: i64,
    id: &str,
) -> Result<Option<UnbindRequest>, StoreError> {
    let row = conn.query_one(
        &format!(
            "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
             WHERE r.id = $1 AND r.institution_seq = $2"
        ),
        &[id.into(), institution_seq.into()],
    )?;
    let Some(row) = row else { return Ok(None) };
    let mut req = request_from(&row)?;
    req.bindings = requested_bindings(conn, &req.id)?;
    Ok(Some(req))
}

/// The institution's unbind requests in id order after the cursor, with their bindings.
pub(crate) fn requests_of(
    conn: &mut dyn Conn,
    institution_seq: i64,
    after: &str,
    limit: u32,
) -> Result<Vec<UnbindRequest>, StoreError> {
    let rows = conn.query(
        &format!(
            "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
             WHERE r.institution_seq = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"
        ),
        &[institution_seq.into(), after.into(), i64::from(limit).into()],
    )?;
    let mut out = rows.iter().map(request_from).collect::<Result<Vec<_>, _>>()?;
    for req in &mut out {
        req.bindings = requested_bindings(conn, &req.id)?;
    }
    Ok(out)
}

/// An institution's requests as its operators work through them: the open ones by deadline (the most
/// urgent first, at most `open_max`, with how many are open in all), then the answered ones, newest
/// first (at most `answered_max`); each with how many accounts it is about.
#[derive(Clone, Debug, Default)]
pub struct UnbindQueue {
    pub open: Vec<(UnbindRequest, u32)>,
    pub open_total: u64,
    pub answered: Vec<(UnbindRequest, u32)>,
}

pub(crate) fn queue_of(
    conn: &mut dyn Conn,
    institution_seq: i64,
    open_max: u32,
    answered_max: u32,
) -> Result<UnbindQueue, StoreError> {
    let mut part = |open: bool, order: &str, limit: u32| -> Result<Vec<(UnbindRequest, u32)>, StoreError> {
        let state = if open { "r.state = 'open'" } else { "r.state <> 'open'" };
        conn.query(
            &format!(
                "SELECT {REQUEST_COLUMNS}, (SELECT COUNT(*) FROM unbind_request_bindings b WHERE b.request_id = r.id) \
                 FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
                 WHERE r.institution_seq = $1 AND {state} ORDER BY {order} LIMIT $2"
            ),
            &[institution_seq.into(), i64::from(limit).into()],
        )?
        .iter()
        .map(|r| Ok((request_from(r)?, r.i64(9)? as u32)))
        .collect()
    };
    let open = part(true, "r.deadline, r.created_at, r.id", open_max)?;
    let answered = part(false, "r.resolved_at DESC, r.id", answered_max)?;
    let open_total = conn
        .query_one(
            "SELECT COUNT(*) FROM unbind_requests WHERE institution_seq = $1 AND state = 'open'",
            &[institution_seq.into()],
        )?
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0) as u64;
    Ok(UnbindQueue { open, open_total, answered })
}

impl WriteCtx {
    /// The requests of the current tenure, newest first.
    fn tenure_requests(&mut self, number_hash: &[u8], start: Day) -> Result<Vec<UnbindRequest>, StoreError> {
        self.conn
            .query(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq \
                     WHERE r.number_hash = $1 AND r.tenure_start = $2 ORDER BY r.created_at DESC, r.id DESC"
                ),
                &[number_hash.into(), start.packed().into()],
            )?
            .iter()
            .map(request_from)
            .collect()
    }

    /// R5: the institutions holding bindings made before the current tenure, with the state of any
    /// request. Nothing about the bindings beyond their count, nothing about the previous holder.
    pub(crate) fn holder_view(&mut self, n: PhoneNumber) -> Result<HolderView, StoreError> {
        let tenure = Tenure::of(&self.facts(n)?);
        let Tenure::Since(start) = tenure else {
            return Ok(HolderView { tenure, institutions: Vec::new() });
        };
        let hash = self.hash_key.number(n);
        let rows = self.conn.query(
            "SELECT p.id, p.name, COUNT(*) FROM bindings b JOIN participants p ON p.seq = b.institution_seq \
             WHERE b.number_hash = $1 AND b.bound_on < $2 GROUP BY p.id, p.name",
            &[hash.as_slice().into(), start.packed().into()],
        )?;
        let mut institutions: Vec<StaleHolder> = rows
            .iter()
            .map(|r| {
                Ok(StaleHolder {
                    institution_id: r.text(0)?,
                    institution_name: r.text(1)?,
                    bindings: r.i64(2)? as u32,
                    request: None,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // Institutions that already unbound everything still show, with their answer.
        for req in self.tenure_requests(&hash, start)? {
            match institutions.iter_mut().find(|i| i.institution_id == req.institution_id) {
                Some(i) if i.request.is_none() => i.request = Some(req),
                Some(_) => {}
                None => institutions.push(StaleHolder {
                    institution_id: req.institution_id.clone(),
                    institution_name: req.institution_name.clone(),
                    bindings: 0,
                    request: Some(req),
                }),
            }
        }
        institutions
            .sort_by(|a, b| (&a.institution_name, &a.institution_id).cmp(&(&b.institution_name, &b.institution_id)));
        Ok(HolderView { tenure, institutions })
    }

    /// The holder's requests in the current tenure, newest first.
    pub(crate) fn holder_requests(&mut self, n: PhoneNumber) -> Result<Vec<UnbindRequest>, StoreError> {
        let Tenure::Since(start) = Tenure::of(&self.facts(n)?) else { return Ok(Vec::new()) };
        let hash = self.hash_key.number(n);
        self.tenure_requests(&hash, start)
    }

    /// One request per institution (all of them, or those named) holding stale bindings on `n`; an open
    /// request of this tenure is answered again rather than duplicated. Each new request notifies its
    /// institution (`unbind.requested`, with the holder's proof of tenure) in this transaction.
    pub(crate) fn request_unbind(
        &mut self,
        n: PhoneNumber,
        institution_ids: Option<Vec<ParticipantId>>,
        deadline: Day,
        attestation_id: &str,
        attestation: &str,
    ) -> Result<Result<(Vec<UnbindRequest>, usize), UnbindRefused>, StoreError> {
        let Tenure::Since(start) = Tenure::of(&self.facts(n)?) else {
            return Ok(Err(UnbindRefused::NoTenure));
        };
        let hash = self.hash_key.number(n);
        let rows = self.conn.query(
            "SELECT b.institution_seq, p.id, b.id, b.account_ref, b.bound_on FROM bindings b \
             JOIN participants p ON p.seq = b.institution_seq WHERE b.number_hash = $1 AND b.bound_on < $2 \
             ORDER BY p.id, b.id",
            &[hash.as_slice().into(), start.packed().into()],
        )?;
        // (institution seq, institution id, its stale bindings), in institution id order.
        let mut groups: Vec<(i64, String, Vec<RequestedBinding>)> = Vec::new();
        for r in &rows {
            let (seq, id) = (r.i64(0)?, r.text(1)?);
            let b = RequestedBinding { binding_id: r.text(2)?, account_ref: r.text(3)?, bound_on: day(r, 4)? };
            match groups.last_mut() {
                Some(g) if g.0 == seq => g.2.push(b),
                _ => groups.push((seq, id, vec![b])),
            }
        }
        if let Some(ids) = &institution_ids {
            let unknown: Vec<String> =
                ids.iter().filter(|id| !groups.iter().any(|g| **id == *g.1)).map(ToString::to_string).collect();
            if !unknown.is_empty() {
                return Ok(Err(UnbindRefused::NotStale(unknown)));
            }
            groups.retain(|g| ids.iter().any(|id| *id == *g.1));
        }
        let existing = self.tenure_requests(&hash, start)?;
        let (now, now_unix) = (self.now_rfc3339(), self.now_unix());
        let mut out = Vec::with_capacity(groups.len());
        let mut created = 0;
        for (seq, institution_id, bindings) in groups {
            // An open request is answered again; so is a rejection that still stands.
            let earlier = existing.iter().find(|r| r.institution_id == institution_id && r.stands(now_unix));
            if let Some(earlier) = earlier {
                out.push(earlier.clone());
                continue;
            }
            created += 1;
            let id = UnbindRequestId::issue("unb");
            self.conn.exec(
                "INSERT INTO unbind_requests (id, institution_seq, number_hash, tenure_start, state, deadline, \
                 attestation_id, created_at) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7)",
                &[
                    id.as_str().into(),
                    seq.into(),
                    hash.as_slice().into(),
                    start.packed().into(),
                    deadline.packed().into(),
                    attestation_id.into(),
                    now.as_str().into(),
                ],
            )?;
            for b in &bindings {
                self.conn.exec(
                    "INSERT INTO unbind_request_bindings (request_id, binding_id, account_ref, bound_on) VALUES ($1, $2, $3, $4)",
                    &[id.as_str().into(), b.binding_id.as_str().into(), b.account_ref.as_str().into(), b.bound_on.packed().into()],
                )?;
            }
            let seq_row = self.conn.query_one(
                "INSERT INTO notifications (id, institution_seq, type, unbind_request_id, deadline, attestation, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                &[
                    NotificationId::issue("ntf").as_str().into(),
                    seq.into(),
                    NotificationType::UnbindRequested.as_str().into(),
                    id.as_str().into(),
                    deadline.packed().into(),
                    // The proof states the number: sealed, so that a copy of the database does not link
                    // the institution to it.
                    self.hash_key.seal(attestation).into(),
                    now.as_str().into(),
                ],
            )?;
            let notification_seq = seq_row.ok_or_else(|| StoreError::database("no notification seq"))?.i64(0)?;
            self.enqueue_deliveries(seq, notification_seq)?;
            self.audit(
                HOLDER_ACTOR,
                "unbind.requested",
                Some(&hash),
                &format!("id={id};institution={institution_id};bindings={};deadline={deadline}", bindings.len()),
            )?;
            let row = self.conn.query_one(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM unbind_requests r JOIN participants p ON p.seq = r.institution_seq WHERE r.id = $1"
                ),
                &[id.as_str().into()],
            )?;
            let mut req = request_from(&row.ok_or_else(|| StoreError::database("request vanished"))?)?;
            req.bindings = bindings;
            out.push(req);
        }
        Ok(Ok((out, created)))
    }

    /// The institution's answer to a request; `Unbound` removes its bindings on the number made before
    /// the tenure. The first answer stands.
    pub(crate) fn resolve_unbind(
        &mut self,
        institution: &Participant,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Resolved, StoreError> {
        let Some(req) = request_of(self.conn.as_mut(), institution.seq, id)? else {
            return Ok(Resolved::NotFound);
        };
        if req.state != UnbindState::Open {
            return Ok(Resolved::AlreadyResolved(req));
        }
        let row = self
            .conn
            .query_one("SELECT number_hash, tenure_start FROM unbind_requests WHERE id = $1", &[id.into()])?
            .ok_or_else(|| StoreError::database("request vanished"))?;
        let hash = row.opt_bytes(0).unwrap_or_default();
        let start = day(&row, 1)?;
        let (state, reason, removed) = match resolution {
            Resolution::Unbound => {
                // The notifications about these bindings are answered by this too.
                self.conn.exec(
                    "UPDATE notifications SET acked_at = $1, ack_action = 'unbound' WHERE acked_at IS NULL AND seq IN \
                     (SELECT n.seq FROM bindings b JOIN binding_notifications n ON n.binding_id = b.id \
                      WHERE b.institution_seq = $2 AND b.number_hash = $3 AND b.bound_on < $4 \
                      UNION ALL \
                      SELECT n.seq FROM bindings b JOIN binding_notifications_recent n ON n.binding_id = b.id \
                      WHERE b.institution_seq = $5 AND b.number_hash = $6 AND b.bound_on < $7)",
                    &[
                        self.now_rfc3339().into(),
                        institution.seq.into(),
                        hash.as_slice().into(),
                        start.packed().into(),
                        institution.seq.into(),
                        hash.as_slice().into(),
                        start.packed().into(),
                    ],
                )?;
                let removed = self.conn.exec(
                    "DELETE FROM bindings WHERE institution_seq = $1 AND number_hash = $2 AND bound_on < $3",
                    &[institution.seq.into(), hash.as_slice().into(), start.packed().into()],
                )?;
                (UnbindState::Unbound, None, removed)
            }
            Resolution::Rejected(r) => (UnbindState::Rejected, Some(r.as_str()), 0),
        };
        let now = self.now_rfc3339();
        self.conn.exec(
            "UPDATE unbind_requests SET state = $1, reason = $2, resolved_at = $3 WHERE id = $4",
            &[state.as_str().into(), reason.into(), now.into(), id.into()],
        )?;
        self.audit(
            &institution.id,
            "unbind.resolved",
            Some(&hash),
            &format!("id={id};outcome={};reason={};removed={removed}", state.as_str(), reason.unwrap_or("")),
        )?;
        let request = request_of(self.conn.as_mut(), institution.seq, id)?
            .ok_or_else(|| StoreError::database("request vanished"))?;
        Ok(Resolved::Done { request, bindings_removed: removed })
    }

    /// Closes the institution's open requests on this number whose bindings are all gone some other
    /// way (deleted, or moved to another number): they are done, as if answered `unbound`.
    pub(crate) fn close_emptied_requests(
        &mut self,
        institution: &Participant,
        number_hash: &[u8],
    ) -> Result<(), StoreError> {
        let open = self.conn.query(
            "SELECT r.id FROM unbind_requests r WHERE r.institution_seq = $1 AND r.number_hash = $2 AND r.state = 'open' \
             AND NOT EXISTS (SELECT 1 FROM bindings b WHERE b.institution_seq = r.institution_seq \
             AND b.number_hash = r.number_hash AND b.bound_on < r.tenure_start)",
            &[institution.seq.into(), number_hash.into()],
        )?;
        let now = self.now_rfc3339();
        for r in open {
            let id = r.text(0)?;
            self.conn.exec(
                "UPDATE unbind_requests SET state = 'unbound', resolved_at = $1 WHERE id = $2",
                &[now.as_str().into(), id.as_str().into()],
            )?;
            self.audit(
                &institution.id,
                "unbind.resolved",
                Some(number_hash),
                &format!("id={id};outcome=unbound;by=bindings_removed"),
            )?;
        }
        Ok(())
    }
}
