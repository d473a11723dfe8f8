-- One time convention (crates/store/src/time.rs): a moment is RFC 3339 UTC text of fixed width, to
-- the millisecond ("2026-12-06T23:47:47.123Z"), so that text order is time order. The columns that
-- held unix seconds become such text (their tables rebuilt, SQLite's way of changing a column's
-- type), unbind requests lose the unix twins of their text times, and the text written before,
-- whose width varied ("...:47Z", "...:47.5Z", "...:47.123456789Z"), is rewritten to the fixed width
-- by cutting the fraction to three digits, as the code does (text operations: no rounding into the
-- next second, and a value that does not parse is not turned into NULL). The audit log's `at` stays
-- as written: it is hashed into the chain.

CREATE TABLE otp_challenges_new (
    id          TEXT PRIMARY KEY,
    number_hash BLOB NOT NULL,
    code_hash   BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    failures    INTEGER NOT NULL,
    used_at     TEXT,
    client_hash BLOB,
    tenure_mark BLOB
);
INSERT INTO otp_challenges_new (id, number_hash, code_hash, created_at, expires_at, failures, used_at, client_hash, tenure_mark)
SELECT id, number_hash, code_hash,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', expires_at, 'unixepoch'),
       failures,
       strftime('%Y-%m-%dT%H:%M:%fZ', used_at, 'unixepoch'),
       client_hash, tenure_mark
FROM otp_challenges;
DROP TABLE otp_challenges;
ALTER TABLE otp_challenges_new RENAME TO otp_challenges;
CREATE INDEX otp_challenges_number ON otp_challenges (number_hash, created_at);

CREATE TABLE otp_numbers_new (
    number_hash          BLOB PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL,
    locked_until         TEXT
);
INSERT INTO otp_numbers_new (number_hash, consecutive_failures, locked_until)
SELECT number_hash, consecutive_failures, strftime('%Y-%m-%dT%H:%M:%fZ', locked_until, 'unixepoch') FROM otp_numbers;
DROP TABLE otp_numbers;
ALTER TABLE otp_numbers_new RENAME TO otp_numbers;

CREATE TABLE attestation_keys_new (
    kid           TEXT PRIMARY KEY,
    public_key    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    retired_at    TEXT,
    publish_until TEXT
);
INSERT INTO attestation_keys_new (kid, public_key, created_at, retired_at, publish_until)
SELECT kid, public_key,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', retired_at, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', publish_until, 'unixepoch')
FROM attestation_keys;
DROP TABLE attestation_keys;
ALTER TABLE attestation_keys_new RENAME TO attestation_keys;

CREATE TABLE pending_ports_new (
    carrier_seq INTEGER NOT NULL REFERENCES participants (seq),
    event_id    TEXT NOT NULL,
    number      INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    job_id      TEXT,
    PRIMARY KEY (carrier_seq, event_id)
) WITHOUT ROWID;
INSERT INTO pending_ports_new (carrier_seq, event_id, number, day, received_at, job_id)
SELECT carrier_seq, event_id, number, day, strftime('%Y-%m-%dT%H:%M:%fZ', received_unix, 'unixepoch'), job_id
FROM pending_ports;
DROP TABLE pending_ports;
ALTER TABLE pending_ports_new RENAME TO pending_ports;
CREATE INDEX pending_ports_number ON pending_ports (number, day);
CREATE INDEX pending_ports_received ON pending_ports (received_at);

CREATE TABLE webhook_endpoints_new (
    id                    TEXT PRIMARY KEY,
    institution_seq       INTEGER NOT NULL REFERENCES participants (seq),
    url                   TEXT NOT NULL,
    secret                TEXT NOT NULL,
    -- After a rotation, deliveries are signed with both secrets until previous_secret_until.
    previous_secret       TEXT,
    previous_secret_until TEXT,
    enabled               INTEGER NOT NULL,
    disabled_reason       TEXT,
    -- The first failure since the last success.
    failing_since         TEXT,
    created_at            TEXT NOT NULL
);
INSERT INTO webhook_endpoints_new (id, institution_seq, url, secret, previous_secret, previous_secret_until, enabled,
                                   disabled_reason, failing_since, created_at)
SELECT id, institution_seq, url, secret, previous_secret,
       strftime('%Y-%m-%dT%H:%M:%fZ', previous_secret_until, 'unixepoch'),
       enabled, disabled_reason,
       strftime('%Y-%m-%dT%H:%M:%fZ', failing_since, 'unixepoch'),
       substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z'
FROM webhook_endpoints;
DROP TABLE webhook_endpoints;
ALTER TABLE webhook_endpoints_new RENAME TO webhook_endpoints;
CREATE INDEX webhook_endpoints_institution ON webhook_endpoints (institution_seq);

CREATE TABLE deliveries_new (
    notification_seq INTEGER NOT NULL,
    endpoint_id      TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    last_status      INTEGER,
    last_error       TEXT,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (notification_seq, endpoint_id)
);
INSERT INTO deliveries_new (notification_seq, endpoint_id, attempts, next_attempt_at, state, last_status, last_error,
                            updated_at)
SELECT notification_seq, endpoint_id, attempts, strftime('%Y-%m-%dT%H:%M:%fZ', next_attempt_at, 'unixepoch'), state,
       last_status, last_error, substr(updated_at, 1, 19) || '.' || substr(rtrim(substr(updated_at, 21), 'Z') || '000', 1, 3) || 'Z'
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, state, next_attempt_at);

ALTER TABLE unbind_requests DROP COLUMN created_unix;
ALTER TABLE unbind_requests DROP COLUMN resolved_unix;

UPDATE participants SET created_at = substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE api_keys SET created_at = substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z',
                    revoked_at = substr(revoked_at, 1, 19) || '.' || substr(rtrim(substr(revoked_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE jobs SET created_at = substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z',
                updated_at = substr(updated_at, 1, 19) || '.' || substr(rtrim(substr(updated_at, 21), 'Z') || '000', 1, 3) || 'Z',
                outputs_deleted_at = substr(outputs_deleted_at, 1, 19) || '.' || substr(rtrim(substr(outputs_deleted_at, 21), 'Z') || '000', 1, 3) || 'Z',
                deleted_at = substr(deleted_at, 1, 19) || '.' || substr(rtrim(substr(deleted_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE bindings SET created_at = substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE notifications SET created_at = substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z',
                         acked_at = substr(acked_at, 1, 19) || '.' || substr(rtrim(substr(acked_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE sms_gateways SET updated_at = substr(updated_at, 1, 19) || '.' || substr(rtrim(substr(updated_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE unbind_requests SET created_at = substr(created_at, 1, 19) || '.' || substr(rtrim(substr(created_at, 21), 'Z') || '000', 1, 3) || 'Z',
                           resolved_at = substr(resolved_at, 1, 19) || '.' || substr(rtrim(substr(resolved_at, 21), 'Z') || '000', 1, 3) || 'Z';
UPDATE kyc_records SET updated_at = substr(updated_at, 1, 19) || '.' || substr(rtrim(substr(updated_at, 21), 'Z') || '000', 1, 3) || 'Z';
