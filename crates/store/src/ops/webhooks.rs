//! Webhook endpoints and the delivery outbox. The delivery worker asks for due deliveries and
//! records each attempt's outcome; the policy (schedule, jitter, what counts as success) is the
//! worker's, the bookkeeping (attempts, the endpoint's failing streak, disabling) is here.

use crate::StoreError;
use crate::ids::{EndpointId, NotificationId};
use crate::ops::bindings::{NOTIFICATION_COLUMNS, Notification, NotificationType, notification_from};
use crate::ops::participants::Participant;
use crate::sql::{Conn, Row};
use crate::time;
use crate::writer::WriteCtx;

#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub institution_seq: i64,
    pub url: String,
    /// `whsec_…`: the signing secret.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until` (unix s).
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: String,
    /// Notifications one request may carry: 1 sends each alone; more, up to that many as a CloudEvents
    /// batch.
    pub batch_events: u32,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The secrets to sign with at `now` (unix s): the current one, and the previous one during the
    /// overlap after a rotation.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut s = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && now < until
        {
            s.push(prev);
        }
        s
    }
}

/// A delivery that is due, with what it takes to send it.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub notification: Notification,
    pub endpoint: Endpoint,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What the worker decided after one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered {
        status: u16,
    },
    /// Failed; try again at `next_attempt_at` (unix s), or never if `None`.
    Failed {
        status: Option<u16>,
        error: String,
        next_attempt_at: Option<i64>,
    },
    /// The endpoint asked to be forgotten (410 Gone): disable it.
    Gone {
        status: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryState {
    pub endpoint_id: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub state: String,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// A delivery in an endpoint's log: the notification, and where its delivery to this endpoint stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedDelivery {
    /// The log's cursor: the notification's place in the institution's feed.
    pub seq: i64,
    pub notification_id: NotificationId,
    pub kind: NotificationType,
    /// When the notification was made.
    pub created_at: String,
    /// Attempts made so far (0: not yet tried).
    pub attempts: u32,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// The status code of the last attempt's answer, if one came.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// The next attempt (unix s), while the delivery is pending.
    pub next_attempt_at: Option<i64>,
    /// When the delivery last changed.
    pub updated_at: String,
}

/// What an action on one of an institution's endpoints came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointAction<T> {
    Done(T),
    /// The institution has no endpoint (or delivery) of that id.
    NotFound,
    /// The endpoint is disabled: nothing is sent to it until it is enabled again.
    Disabled,
}

const ENDPOINT_COLUMNS: &str = "id, institution_seq, url, secret, previous_secret, previous_secret_until, enabled, disabled_reason, failing_since, created_at, batch_events";

fn endpoint_from(r: &Row, at: usize) -> Result<Endpoint, StoreError> {
    Ok(Endpoint {
        id: EndpointId::stored(r.text(at)?),
        institution_seq: r.i64(at + 1)?,
        url: r.text(at + 2)?,
        secret: r.text(at + 3)?,
        previous_secret: r.opt_text(at + 4),
        previous_secret_until: time::opt_unix(r, at + 5)?,
        enabled: r.i64(at + 6)? != 0,
        disabled_reason: r.opt_text(at + 7),
        failing_since: time::opt_unix(r, at + 8)?,
        created_at: r.text(at + 9)?,
        batch_events: u32::try_from(r.i64(at + 10)?).unwrap_or(1).max(1),
    })
}

pub(crate) fn list(conn: &mut dyn Conn, institution_seq: i64) -> Result<Vec<Endpoint>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE institution_seq = $1 ORDER BY created_at, id"),
        &[institution_seq.into()],
    )?;
    rows.iter().map(|r| endpoint_from(r, 0)).collect()
}

/// One of the institution's endpoints.
pub(crate) fn endpoint_of(conn: &mut dyn Conn, institution_seq: i64, id: &str) -> Result<Option<Endpoint>, StoreError> {
    let row = conn.query_one(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND institution_seq = $2"),
        &[id.into(), institution_seq.into()],
    )?;
    row.map(|r| endpoint_from(&r, 0)).transpose()
}

/// One of the institution's endpoints with its newest deliveries, at most `limit`, those made before
/// the notification `before` (a `seq`) if given; `None` if the institution has no such endpoint.
pub(crate) fn endpoint_deliveries(
    conn: &mut dyn Conn,
    institution_seq: i64,
    endpoint_id: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<Option<(Endpoint, Vec<LoggedDelivery>)>, StoreError> {
    let Some(endpoint) = endpoint_of(conn, institution_seq, endpoint_id)? else {
        return Ok(None);
    };
    let rows = conn.query(
        "SELECT n.seq, n.id, n.type, n.created_at, d.attempts, d.state, d.last_status, d.last_error, \
         d.next_attempt_at, d.updated_at FROM deliveries d JOIN notifications n ON n.seq = d.notification_seq \
         WHERE d.endpoint_id = $1 AND d.notification_seq < $2 ORDER BY d.notification_seq DESC LIMIT $3",
        &[endpoint_id.into(), before.unwrap_or(i64::MAX).into(), i64::from(limit).into()],
    )?;
    rows.iter()
        .map(|r| {
            let kind = r.text(2)?;
            let state = r.text(5)?;
            Ok(LoggedDelivery {
                seq: r.i64(0)?,
                notification_id: NotificationId::stored(r.text(1)?),
                kind: NotificationType::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown notification type {kind:?}")))?,
                created_at: r.text(3)?,
                attempts: r.i64(4)? as u32,
                next_attempt_at: if state == "pending" { Some(time::unix(r, 8)?) } else { None },
                state,
                last_status: r.opt_i64(6).map(|s| s as u16),
                last_error: r.opt_text(7),
                updated_at: r.text(9)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()
        .map(|log| Some((endpoint, log)))
}

/// A lane of an endpoint that takes batches carries this many times `per_endpoint` deliveries at most
/// (when its batches are at least this large): a lane waits for the writer once to record its outcomes,
/// so while a file fans out, a lane of 1,000 delivered 1,000 notifications for each chunk of 10,000
/// the writer applied. Its requests stay `per_endpoint` or fewer.
pub const BATCH_LANE_FACTOR_MAX: u32 = 10;

/// The due deliveries of each enabled endpoint that has some and is not in `busy`: at most
/// `per_endpoint` each (its oldest; times its batch size, up to [`BATCH_LANE_FACTOR_MAX`], for an
/// endpoint that takes batches), for at most `endpoints_max` endpoints, those whose oldest is oldest
/// first. Each endpoint's queue is read on its own (`deliveries_endpoint_due`), so that no endpoint's
/// backlog takes another's place.
/// The enabled endpoints with deliveries due by `now`, not in `busy` nor claimed by another node than
/// `node`, those whose oldest is oldest first, at most `endpoints_max`: each with its lane's factor (see [`BATCH_LANE_FACTOR_MAX`]).
pub(crate) fn due_endpoints(
    conn: &mut dyn Conn,
    now: i64,
    endpoints_max: u32,
    busy: &[String],
    node: &str,
) -> Result<Vec<(String, u32)>, StoreError> {
    // Not those another node holds a live lease on: their turn is that node's.
    let mut due: Vec<(i64, String, u32)> = conn
        .query(
            "SELECT e.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d \
             WHERE d.endpoint_id = e.id AND d.state = 'pending'), e.batch_events FROM webhook_endpoints e WHERE e.enabled = 1 \
             AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.name = 'endpoint:' || e.id AND l.node <> $1 AND l.until >= $2)",
            &[node.into(), now.into()],
        )?
        .iter()
        .map(|r| {
            let factor = u32::try_from(r.i64(2)?).unwrap_or(1).clamp(1, BATCH_LANE_FACTOR_MAX);
            Ok((time::opt_unix(r, 1)?, r.text(0)?, factor))
        })
        .collect::<Result<Vec<_>, StoreError>>()?
        .into_iter()
        .filter_map(|(at, id, factor)| Some((at?, id, factor)))
        .filter(|(at, id, _)| *at <= now && !busy.contains(id))
        .collect();
    due.sort();
    due.truncate(endpoints_max as usize);
    Ok(due.into_iter().map(|(_, id, factor)| (id, factor)).collect())
}

/// An endpoint's due deliveries, its oldest `share` at most. Each endpoint's queue is read on its
/// own (`deliveries_endpoint_due`), so that no endpoint's backlog takes another's place.
pub(crate) fn due_of_endpoint(
    conn: &mut dyn Conn,
    endpoint: &str,
    now: i64,
    share: i64,
) -> Result<Vec<DueDelivery>, StoreError> {
    let n_cols: Vec<String> = NOTIFICATION_COLUMNS.split(',').map(|c| format!("n.{}", c.trim())).collect();
    let e_cols: Vec<String> = ENDPOINT_COLUMNS.split(',').map(|c| format!("e.{}", c.trim())).collect();
    let sql = format!(
        "SELECT d.attempts, {}, {} FROM deliveries d JOIN notifications n ON n.seq = d.notification_seq \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.endpoint_id = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2 AND e.enabled = 1 \
         ORDER BY d.next_attempt_at, d.notification_seq LIMIT $3",
        n_cols.join(", "),
        e_cols.join(", ")
    );
    let rows = conn.query(&sql, &[endpoint.into(), time::stamp_unix(now).into(), share.into()])?;
    rows.iter()
        .map(|r| {
            // Columns: attempts, then the notification's, then the endpoint's.
            let shifted = Row(r.0[1..].to_vec());
            Ok(DueDelivery {
                attempts: r.i64(0)? as u32,
                notification: notification_from(&shifted)?,
                endpoint: endpoint_from(r, 1 + n_cols.len())?,
            })
        })
        .collect()
}

/// How long a node's claim on an endpoint's deliveries (its lane) lasts: longer than a lane runs
/// (no attempt starts after the round's budget, each ends by its timeout), and given back when the
/// lane's outcomes are recorded. A node that dies mid-lane holds the endpoint until then; its
/// deliveries, still pending, are attempted again with the same webhook-id by whichever node next
/// claims it.
pub const LANE_LEASE_SECS: i64 = 120;

/// The name of an endpoint's lane among the leases.
pub(crate) fn lane_lease(endpoint: &str) -> String {
    format!("endpoint:{endpoint}")
}

/// The earliest time a pending delivery is due, if any: the worker sleeps until then.
pub(crate) fn next_due(conn: &mut dyn Conn) -> Result<Option<i64>, StoreError> {
    let row = conn.query_one(
        "SELECT MIN((SELECT MIN(d.next_attempt_at) FROM deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending')) \
         FROM webhook_endpoints e WHERE e.enabled = 1",
        &[],
    )?;
    row.map(|r| time::opt_unix(&r, 0)).transpose().map(Option::flatten)
}

pub(crate) fn deliveries_of(conn: &mut dyn Conn, notification_id: &str) -> Result<Vec<DeliveryState>, StoreError> {
    let rows = conn.query(
        "SELECT d.endpoint_id, d.attempts, d.next_attempt_at, d.state, d.last_status, d.last_error FROM deliveries d \
         JOIN notifications n ON n.seq = d.notification_seq WHERE n.id = $1 ORDER BY d.endpoint_id",
        &[notification_id.into()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryState {
                endpoint_id: r.text(0)?,
                attempts: r.i64(1)? as u32,
                next_attempt_at: time::unix(r, 2)?,
                state: r.text(3)?,
                last_status: r.opt_i64(4).map(|s| s as u16),
                last_error: r.opt_text(5),
            })
        })
        .collect()
}

impl WriteCtx {
    /// A delivery to every enabled endpoint of the institution, due now.
    pub(crate) fn enqueue_deliveries(&mut self, institution_seq: i64, notification_seq: i64) -> Result<(), StoreError> {
        // Asked once an institution in a transaction: a file's fan-out asks for every notification.
        let endpoints = match self.enabled_endpoints.get(&institution_seq) {
            Some(known) => known.clone(),
            None => {
                let mut endpoints = Vec::new();
                self.conn.query_each(
                    "SELECT id FROM webhook_endpoints WHERE institution_seq = $1 AND enabled = 1",
                    &[institution_seq.into()],
                    &mut |r| {
                        endpoints.push(r.text(0)?);
                        Ok(())
                    },
                )?;
                let endpoints: std::sync::Arc<[String]> = endpoints.into();
                self.enabled_endpoints.insert(institution_seq, endpoints.clone());
                endpoints
            }
        };
        if endpoints.is_empty() {
            return Ok(());
        }
        let now = time::stamp_unix(self.now_unix());
        let at = self.now_rfc3339();
        // A row a statement: an INSERT … SELECT writes several rows and may fail midway (a CHECK), so
        // SQLite would copy every page it changes into a statement journal before changing it.
        for endpoint in endpoints.iter() {
            self.conn.exec(
                "INSERT INTO deliveries (notification_seq, endpoint_id, attempts, next_attempt_at, state, updated_at) \
                 VALUES ($1, $2, 0, $3, 'pending', $4) \
                 ON CONFLICT (endpoint_id, notification_seq) DO UPDATE SET attempts = 0, \
                 next_attempt_at = excluded.next_attempt_at, state = 'pending', updated_at = excluded.updated_at",
                &[notification_seq.into(), endpoint.as_str().into(), now.clone().into(), at.clone().into()],
            )?;
        }
        Ok(())
    }

    pub(crate) fn add_endpoint(
        &mut self,
        institution: &Participant,
        url: &str,
        secret: &str,
        endpoints_max: u32,
        batch_events: u32,
    ) -> Result<Endpoint, StoreError> {
        let count = self
            .conn
            .query_one("SELECT COUNT(*) FROM webhook_endpoints WHERE institution_seq = $1", &[institution.seq.into()])?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        if count >= i64::from(endpoints_max) {
            return Err(StoreError::Limit {
                limit: "webhook_endpoints_max",
                max: u64::from(endpoints_max),
                what: "webhook endpoints per institution",
            });
        }
        let id = EndpointId::issue("whe");
        let now = self.now_rfc3339();
        self.enabled_endpoints.clear();
        self.conn.exec(
            "INSERT INTO webhook_endpoints (id, institution_seq, url, secret, enabled, created_at, batch_events) \
             VALUES ($1, $2, $3, $4, 1, $5, $6)",
            &[
                id.as_str().into(),
                institution.seq.into(),
                url.into(),
                secret.into(),
                now.as_str().into(),
                // An INTEGER column: PostgreSQL takes an i32 for it.
                i32::try_from(batch_events).unwrap_or(i32::MAX).into(),
            ],
        )?;
        self.audit(
            &institution.id,
            "webhook_endpoint.added",
            None,
            &format!("id={id};url={url};batchEvents={batch_events}"),
        )?;
        self.endpoint(institution.seq, &id)?.ok_or_else(|| StoreError::Corrupt("endpoint vanished".into()))
    }

    fn endpoint(&mut self, institution_seq: i64, id: &str) -> Result<Option<Endpoint>, StoreError> {
        endpoint_of(self.conn.as_mut(), institution_seq, id)
    }

    /// Sends a `webhook.test` notification to one of the institution's endpoints, and to it alone.
    /// It is in the feed, acknowledged as it is made: a test asks nothing of anyone.
    pub(crate) fn test_endpoint(
        &mut self,
        institution: &Participant,
        id: &str,
    ) -> Result<EndpointAction<NotificationId>, StoreError> {
        let Some(endpoint) = self.endpoint(institution.seq, id)? else { return Ok(EndpointAction::NotFound) };
        if !endpoint.enabled {
            return Ok(EndpointAction::Disabled);
        }
        let notification = NotificationId::issue("ntf");
        let at = self.now_rfc3339();
        self.conn.exec(
            "INSERT INTO notifications (id, institution_seq, endpoint_id, type, detail, created_at, acked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                notification.as_str().into(),
                institution.seq.into(),
                id.into(),
                NotificationType::Test.as_str().into(),
                "a test event sent from the console or the API".into(),
                at.as_str().into(),
                at.as_str().into(),
            ],
        )?;
        self.conn.exec(
            "INSERT INTO deliveries (notification_seq, endpoint_id, attempts, next_attempt_at, state, updated_at) \
             SELECT seq, $1, 0, $2, 'pending', $3 FROM notifications WHERE id = $4",
            &[id.into(), at.as_str().into(), at.as_str().into(), notification.as_str().into()],
        )?;
        self.audit(&institution.id, "webhook_endpoint.tested", None, &format!("id={id};notification={notification}"))?;
        Ok(EndpointAction::Done(notification))
    }

    /// Queues one delivery of one of the institution's endpoints again, from the first attempt, with
    /// the same `webhook-id`.
    pub(crate) fn replay_delivery(
        &mut self,
        institution: &Participant,
        endpoint_id: &str,
        notification_id: &str,
    ) -> Result<EndpointAction<()>, StoreError> {
        let Some(endpoint) = self.endpoint(institution.seq, endpoint_id)? else {
            return Ok(EndpointAction::NotFound);
        };
        let at = self.now_rfc3339();
        let changed = if endpoint.enabled {
            self.conn.exec(
                "UPDATE deliveries SET attempts = 0, state = 'pending', next_attempt_at = $1, updated_at = $2 \
                 WHERE endpoint_id = $3 AND notification_seq = \
                 (SELECT seq FROM notifications WHERE id = $4 AND institution_seq = $5)",
                &[
                    at.as_str().into(),
                    at.as_str().into(),
                    endpoint_id.into(),
                    notification_id.into(),
                    institution.seq.into(),
                ],
            )?
        } else {
            // Whether the delivery exists decides the answer: a disabled endpoint's is refused as such.
            self.conn
                .query_one(
                    "SELECT 1 FROM deliveries WHERE endpoint_id = $1 AND notification_seq = \
                     (SELECT seq FROM notifications WHERE id = $2 AND institution_seq = $3)",
                    &[endpoint_id.into(), notification_id.into(), institution.seq.into()],
                )?
                .map_or(0, |_| 1)
        };
        if changed == 0 {
            return Ok(EndpointAction::NotFound);
        }
        if !endpoint.enabled {
            return Ok(EndpointAction::Disabled);
        }
        self.audit(
            &institution.id,
            "webhook_delivery.replayed",
            None,
            &format!("endpoint={endpoint_id};notification={notification_id}"),
        )?;
        Ok(EndpointAction::Done(()))
    }

    /// Enables one of the institution's endpoints again, its failing streak forgotten. Deliveries
    /// failed while it was disabled stay failed; each can be replayed from the endpoint's log.
    pub(crate) fn enable_endpoint(
        &mut self,
        institution: &Participant,
        id: &str,
    ) -> Result<Option<Endpoint>, StoreError> {
        self.enabled_endpoints.clear();
        let changed = self.conn.exec(
            "UPDATE webhook_endpoints SET enabled = 1, disabled_reason = NULL, failing_since = NULL \
             WHERE id = $1 AND institution_seq = $2",
            &[id.into(), institution.seq.into()],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.audit(&institution.id, "webhook_endpoint.enabled", None, &format!("id={id}"))?;
        self.endpoint(institution.seq, id)
    }

    pub(crate) fn delete_endpoint(&mut self, institution: &Participant, id: &str) -> Result<bool, StoreError> {
        if self.endpoint(institution.seq, id)?.is_none() {
            return Ok(false);
        }
        self.conn.exec("DELETE FROM deliveries WHERE endpoint_id = $1", &[id.into()])?;
        self.enabled_endpoints.clear();
        self.conn.exec("DELETE FROM webhook_endpoints WHERE id = $1", &[id.into()])?;
        self.audit(&institution.id, "webhook_endpoint.deleted", None, &format!("id={id}"))?;
        Ok(true)
    }

    /// Replaces the secret; the old one keeps signing for `overlap_secs`.
    pub(crate) fn rotate_endpoint_secret(
        &mut self,
        institution: &Participant,
        id: &str,
        new_secret: &str,
        overlap_secs: i64,
    ) -> Result<Option<Endpoint>, StoreError> {
        let until = self.now_unix() + overlap_secs;
        let changed = self.conn.exec(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $1, secret = $2 \
             WHERE id = $3 AND institution_seq = $4",
            &[time::stamp_unix(until).into(), new_secret.into(), id.into(), institution.seq.into()],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.audit(&institution.id, "webhook_endpoint.secret_rotated", None, &format!("id={id}"))?;
        self.endpoint(institution.seq, id)
    }

    /// Queues a notification again for every enabled endpoint of its institution, from the first attempt.
    pub(crate) fn replay(
        &mut self,
        institution: &Participant,
        notification_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        let row = self.conn.query_one(
            "SELECT seq FROM notifications WHERE id = $1 AND institution_seq = $2",
            &[notification_id.into(), institution.seq.into()],
        )?;
        let Some(seq) = row.map(|r| r.i64(0)).transpose()? else {
            return Ok(None);
        };
        self.enqueue_deliveries(institution.seq, seq)?;
        let n = self
            .conn
            .query_one(
                "SELECT COUNT(*) FROM deliveries WHERE notification_seq = $1 AND state = 'pending'",
                &[seq.into()],
            )?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        self.audit(&institution.id, "notification.replayed", None, &format!("id={notification_id};deliveries={n}"))?;
        Ok(Some(n as u64))
    }

    /// Records one attempt. An endpoint failing without a success for `disable_after_secs` is
    /// disabled, as is one that answered 410; the institution is told through its pull feed.
    pub(crate) fn record_attempt(
        &mut self,
        notification_seq: i64,
        endpoint_id: &str,
        outcome: &AttemptOutcome,
        disable_after_secs: i64,
    ) -> Result<(), StoreError> {
        let now = self.now_unix();
        let at = self.now_rfc3339();
        let (state, status, error, next) = match outcome {
            AttemptOutcome::Delivered { status } => ("delivered", Some(*status), None, None),
            AttemptOutcome::Failed { status, error, next_attempt_at } => (
                if next_attempt_at.is_some() { "pending" } else { "failed" },
                *status,
                Some(error.clone()),
                *next_attempt_at,
            ),
            AttemptOutcome::Gone { status } => {
                ("failed", Some(*status), Some("the endpoint answered 410 Gone".to_string()), None)
            }
        };
        self.conn.exec(
            "UPDATE deliveries SET attempts = attempts + 1, state = $1, last_status = $2, last_error = $3, \
             next_attempt_at = COALESCE($4, next_attempt_at), updated_at = $5 \
             WHERE notification_seq = $6 AND endpoint_id = $7 AND state = 'pending'",
            &[
                state.into(),
                status.map(i32::from).into(),
                error.into(),
                next.map(time::stamp_unix).into(),
                at.into(),
                notification_seq.into(),
                endpoint_id.into(),
            ],
        )?;
        match outcome {
            AttemptOutcome::Delivered { .. } => {
                self.conn
                    .exec("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1", &[endpoint_id.into()])?;
            }
            AttemptOutcome::Gone { .. } => self.disable_endpoint(endpoint_id, "the endpoint answered 410 Gone")?,
            AttemptOutcome::Failed { .. } => {
                self.conn.exec(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2",
                    &[time::stamp_unix(now).into(), endpoint_id.into()],
                )?;
                let since = self
                    .conn
                    .query_one("SELECT failing_since FROM webhook_endpoints WHERE id = $1", &[endpoint_id.into()])?
                    .map(|r| time::opt_unix(&r, 0))
                    .transpose()?
                    .flatten();
                if since.is_some_and(|s| now - s >= disable_after_secs) {
                    let days = disable_after_secs / 86_400;
                    self.disable_endpoint(
                        endpoint_id,
                        &format!("deliveries have failed for {days} days without a success"),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn disable_endpoint(&mut self, endpoint_id: &str, reason: &str) -> Result<(), StoreError> {
        let row = self
            .conn
            .query_one("SELECT institution_seq, enabled FROM webhook_endpoints WHERE id = $1", &[endpoint_id.into()])?;
        let Some(row) = row else { return Ok(()) };
        if row.i64(1)? == 0 {
            return Ok(());
        }
        let institution_seq = row.i64(0)?;
        self.enabled_endpoints.clear();
        self.conn.exec(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1 WHERE id = $2",
            &[reason.into(), endpoint_id.into()],
        )?;
        let at = self.now_rfc3339();
        self.conn.exec(
            "UPDATE deliveries SET state = 'failed', last_error = $1, updated_at = $2 WHERE endpoint_id = $3 AND state = 'pending'",
            &[format!("endpoint disabled: {reason}").into(), at.as_str().into(), endpoint_id.into()],
        )?;
        // The institution hears of it through its other channel: the pull feed.
        self.conn.exec(
            "INSERT INTO notifications (id, institution_seq, endpoint_id, type, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                NotificationId::issue("ntf").as_str().into(),
                institution_seq.into(),
                endpoint_id.into(),
                NotificationType::EndpointDisabled.as_str().into(),
                reason.into(),
                at.into(),
            ],
        )?;
        tracing::warn!(endpoint = endpoint_id, reason, "webhook endpoint disabled");
        self.audit("numlink", "webhook_endpoint.disabled", None, &format!("id={endpoint_id};reason={reason}"))?;
        Ok(())
    }
}
