-- The lifecycle registry, participants, the audit log and file jobs.
-- Dates are INTEGER yyyymmdd (they sort like dates); numbers are INTEGER digits of the E.164 number.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('participants_generation', 0);

CREATE TABLE participants (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('carrier', 'institution', 'regulator')),
    name            TEXT NOT NULL,
    reporting_since INTEGER,
    created_at      TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_hash        BLOB PRIMARY KEY,
    participant_seq INTEGER NOT NULL REFERENCES participants (seq),
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);
CREATE INDEX api_keys_participant ON api_keys (participant_seq);

CREATE TABLE prefixes (
    prefix          TEXT PRIMARY KEY,
    participant_seq INTEGER NOT NULL REFERENCES participants (seq)
);

CREATE TABLE events (
    carrier_seq INTEGER NOT NULL REFERENCES participants (seq),
    event_id    TEXT NOT NULL,
    number      INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (carrier_seq, event_id)
) WITHOUT ROWID;
CREATE INDEX events_number ON events (number, day);

-- Per number, the summary of its sorted history (domain::Summary), kept in the transaction that adds
-- an event: a check reads one row.
CREATE TABLE numbers (
    number          INTEGER PRIMARY KEY,
    first_event     INTEGER,
    last_end        INTEGER,
    last_activation INTEGER,
    disconnected    INTEGER NOT NULL,
    serving         INTEGER
);

-- Tamper-evident: each record's hash covers the previous record's hash and its own fields.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   BLOB,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    owner_seq   INTEGER NOT NULL REFERENCES participants (seq),
    kind        TEXT NOT NULL,
    format      TEXT NOT NULL,
    state       TEXT NOT NULL,
    spool_path  TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    line        INTEGER NOT NULL,
    rows_read   INTEGER NOT NULL,
    accepted    INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX jobs_state ON jobs (state, created_at);

CREATE TABLE job_rejections (
    job_id  TEXT NOT NULL REFERENCES jobs (id),
    line    INTEGER NOT NULL,
    code    TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
) WITHOUT ROWID;
