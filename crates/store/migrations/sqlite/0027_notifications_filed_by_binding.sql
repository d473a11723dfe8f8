-- Which notifications name a binding, out of the notifications table: its index by (binding_id,
-- event_key) took an insert at a random page for every notification, which was most of a fan-out's
-- cost (a disconnection file touching 1,000,000 bindings, the writer reading through a memory map:
-- 30,789-36,829 notifications/s with it, 59,023 with the table rebuilt without it). A notification's
-- (binding, seq) goes first to a small table, and the writer files that table's rows into the large
-- one in key order, a step at a time (`writer::notifications_filing`), so that each page of the large
-- one is written once per pass rather than once per notification. A reader asks both. The dedupe the
-- unique index gave is not needed: a notification is only made for an event just stored (events are
-- never deleted) or a binding just created (ids are never issued again), and a rebind notifies nothing
-- of its new number's past.
CREATE TABLE binding_notifications (
    binding_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (binding_id, seq)
) WITHOUT ROWID;
CREATE TABLE binding_notifications_recent (
    binding_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (binding_id, seq)
) WITHOUT ROWID;
INSERT INTO binding_notifications (binding_id, seq)
SELECT binding_id, seq FROM notifications WHERE binding_id IS NOT NULL ORDER BY binding_id, seq;

-- SQLite drops a table's constraint by building the table again.
CREATE TABLE notifications_new (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    institution_seq   INTEGER NOT NULL REFERENCES participants (seq),
    -- For a binding's notification; NULL for one about the institution's own webhook endpoint.
    binding_id        TEXT,
    account_ref       TEXT,
    endpoint_id       TEXT,
    type              TEXT NOT NULL,
    -- Keyed hash of the causing event (carrier, eventId), without linking to the events table.
    event_key         BLOB,
    event_date        INTEGER,
    reissuable_from   INTEGER,
    detail            TEXT,
    created_at        TEXT NOT NULL,
    acked_at          TEXT,
    ack_action        TEXT,
    unbind_request_id TEXT,
    deadline          INTEGER,
    attestation       TEXT
);
INSERT INTO notifications_new (seq, id, institution_seq, binding_id, account_ref, endpoint_id, type, event_key,
    event_date, reissuable_from, detail, created_at, acked_at, ack_action, unbind_request_id, deadline, attestation)
SELECT seq, id, institution_seq, binding_id, account_ref, endpoint_id, type, event_key,
    event_date, reissuable_from, detail, created_at, acked_at, ack_action, unbind_request_id, deadline, attestation
FROM notifications ORDER BY seq;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_feed ON notifications (institution_seq, seq);
CREATE INDEX notifications_unbind_request ON notifications (unbind_request_id) WHERE unbind_request_id IS NOT NULL;
CREATE INDEX notifications_binding_made ON notifications (created_at) WHERE binding_id IS NOT NULL;
