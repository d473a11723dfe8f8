-- Console sessions: a participant signed in to the pages with its API key. The browser's cookie holds
-- a random token; this table its SHA-256, the key it was opened with (revoking the key ends the
-- session at its next request), and when it was last used (30 minutes idle end it).
CREATE TABLE console_sessions (
    token_hash      BLOB PRIMARY KEY,
    key_hash        BLOB NOT NULL,
    participant_seq INTEGER NOT NULL REFERENCES participants (seq),
    created_at      TEXT NOT NULL,
    seen_at         TEXT NOT NULL
);
CREATE INDEX console_sessions_seen ON console_sessions (seen_at);

-- An institution reads back the holder's proof sent with one of its requests (its console's request
-- page): the request's notification, found by the request.
CREATE INDEX notifications_unbind_request ON notifications (unbind_request_id) WHERE unbind_request_id IS NOT NULL;
