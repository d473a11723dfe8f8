-- The holder's side: carriers' SMS gateways, one-time-code challenges and their limits, unbind
-- requests, real-name records, and the keys that sign proofs of tenure. Numbers appear only as keyed
-- hashes; codes and real-name attributes only as keyed hashes of their normal forms. Times that limits
-- are computed on are unix seconds.

CREATE TABLE sms_gateways (
    carrier_seq INTEGER PRIMARY KEY REFERENCES participants (seq),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE otp_challenges (
    id          TEXT PRIMARY KEY,
    number_hash BLOB NOT NULL,
    -- HMAC of (challenge id, code): a code is bound to its challenge.
    code_hash   BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX otp_challenges_number ON otp_challenges (number_hash, created_at);

-- Per number: wrong codes in a row across challenges, and the lock they lead to.
CREATE TABLE otp_numbers (
    number_hash          BLOB PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL,
    locked_until         INTEGER
);

CREATE TABLE unbind_requests (
    id              TEXT PRIMARY KEY,
    institution_seq INTEGER NOT NULL REFERENCES participants (seq),
    number_hash     BLOB NOT NULL,
    -- The tenure the request was made in: a later holder does not see it.
    tenure_start    INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('open', 'unbound', 'rejected')),
    reason          TEXT,
    deadline        INTEGER NOT NULL,
    attestation_id  TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_unix    INTEGER NOT NULL,
    resolved_at     TEXT,
    resolved_unix   INTEGER
);
CREATE INDEX unbind_requests_number ON unbind_requests (number_hash, tenure_start);
CREATE INDEX unbind_requests_institution ON unbind_requests (institution_seq, id);

-- The bindings a request is about, as they were when it was made.
CREATE TABLE unbind_request_bindings (
    request_id  TEXT NOT NULL REFERENCES unbind_requests (id),
    binding_id  TEXT NOT NULL,
    account_ref TEXT NOT NULL,
    bound_on    INTEGER NOT NULL,
    PRIMARY KEY (request_id, binding_id)
);

-- A keyed hash of the real-name record an event came with: part of what makes a resent eventId a
-- duplicate rather than a conflict.
ALTER TABLE events ADD COLUMN kyc_hash BLOB;

ALTER TABLE notifications ADD COLUMN unbind_request_id TEXT;
ALTER TABLE notifications ADD COLUMN deadline INTEGER;
ALTER TABLE notifications ADD COLUMN attestation TEXT;

-- The current holder's real-name attributes as a carrier sent them, each a keyed hash of its normal
-- form (bound to the number, so equal documents on two numbers do not hash alike). Deleted when the
-- tenure ends.
CREATE TABLE kyc_records (
    number_hash      BLOB PRIMARY KEY,
    tenure_start     INTEGER NOT NULL,
    id_document      BLOB,
    id_document_type BLOB,
    name             BLOB,
    given_name       BLOB,
    family_name      BLOB,
    birthdate        BLOB,
    updated_at       TEXT NOT NULL
);

-- Ed25519 keys that sign proofs of tenure. The private half is derived from the hash key (outside
-- the database); a retired key stays published until the last token it signed has expired.
CREATE TABLE attestation_keys (
    kid           TEXT PRIMARY KEY,
    public_key    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER
);

-- "Who looked my number up": the holder's view reads the audit log by subject, for lookups only. Partial:
-- the records of events and bindings (most of the log) do not pay for it (a full index made lifecycle
-- files 3x slower).
CREATE INDEX audit_lookups ON audit (subject, seq) WHERE action IN ('check', 'kyc.match');
