-- One-time codes on their way to an SMS gateway, for any node to send: the message sealed under a
-- key derived from the hash key (a copy of the database does not reveal a code), dropped once sent,
-- once its code has expired, or after its last attempt. A node claims a few at a time (claimed_by,
-- lease_until, unix seconds); a node that dies leaves claims that run out, and another sends them.
CREATE TABLE sms_outbox (
    seq             INTEGER PRIMARY KEY,
    sealed          TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    claimed_by      TEXT,
    lease_until     INTEGER
);
CREATE INDEX sms_outbox_due ON sms_outbox (next_attempt_at);
