-- A delivery row is written with each notification and changed with each attempt. It lived in five
-- B-trees (the rowid table, its (notification_seq, endpoint_id) key, and three indexes), which took a
-- fifth of the writer's time in a fan-out (a disconnection file touching 1,000,000 bindings with an
-- endpoint). Keyed by (endpoint_id, notification_seq) without a rowid, the row is its endpoint's
-- delivery log; the index by notification serves a notification's page and the due queue's index
-- stays. The index by (state, next_attempt_at) goes: the deliverer's next wake-up is the least of each
-- enabled endpoint's own (`ops::webhooks::next_due`).
CREATE TABLE deliveries_new (
    endpoint_id      TEXT NOT NULL,
    notification_seq INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    last_status      INTEGER,
    last_error       TEXT,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, notification_seq)
) WITHOUT ROWID;
INSERT INTO deliveries_new (endpoint_id, notification_seq, attempts, next_attempt_at, state, last_status, last_error, updated_at)
SELECT endpoint_id, notification_seq, attempts, next_attempt_at, state, last_status, last_error, updated_at
FROM deliveries ORDER BY endpoint_id, notification_seq;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_notification ON deliveries (notification_seq);
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, state, next_attempt_at, notification_seq);
