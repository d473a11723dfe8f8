-- Webhook endpoints and the delivery outbox. A delivery row is created with its notification, in
-- the same transaction, for every enabled endpoint of the institution: a notification committed
-- before a crash is delivered after it.

CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    institution_seq       BIGINT NOT NULL REFERENCES participants (seq),
    url                   TEXT NOT NULL,
    secret                TEXT NOT NULL,
    -- After a rotation, deliveries are signed with both secrets until previous_secret_until (unix s).
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    enabled               SMALLINT NOT NULL,
    disabled_reason       TEXT,
    -- Unix seconds of the first failure since the last success.
    failing_since         BIGINT,
    created_at            TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_institution ON webhook_endpoints (institution_seq);

CREATE TABLE deliveries (
    notification_seq BIGINT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    last_status      INTEGER,
    last_error       TEXT,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (notification_seq, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
