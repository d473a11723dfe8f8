-- Bindings (an institution's account bound to a number) and the notifications they receive.
-- The number is stored only as its keyed hash (HMAC-SHA256, key outside the database).

CREATE TABLE bindings (
    id              TEXT PRIMARY KEY,
    institution_seq INTEGER NOT NULL REFERENCES participants (seq),
    account_ref     TEXT NOT NULL,
    number_hash     BLOB NOT NULL,
    bound_on        INTEGER NOT NULL,
    -- R2 at bound_on said the holder had changed, or a notification came since: it never reverts.
    stale           INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (institution_seq, account_ref, number_hash)
);
CREATE INDEX bindings_number ON bindings (number_hash);
CREATE INDEX bindings_institution ON bindings (institution_seq, id);

-- One row per (binding, event) that ends or starts a tenure after the binding was made (R4).
CREATE TABLE notifications (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    institution_seq   INTEGER NOT NULL REFERENCES participants (seq),
    -- For a binding's notification; NULL for one about the institution's own webhook endpoint.
    binding_id        TEXT,
    account_ref       TEXT,
    endpoint_id       TEXT,
    type              TEXT NOT NULL,
    -- Keyed hash of the causing event (carrier, eventId): dedupes without linking to the events table.
    event_key         BLOB,
    event_date        INTEGER,
    reissuable_from   INTEGER,
    detail            TEXT,
    created_at        TEXT NOT NULL,
    acked_at          TEXT,
    ack_action        TEXT,
    UNIQUE (binding_id, event_key)
);
CREATE INDEX notifications_feed ON notifications (institution_seq, seq);
