-- Work any node may take. A job is claimed by one node at a time: claimed_by names it, and the claim
-- lasts until lease_until (unix seconds), renewed while it runs; a node that dies leaves a claim that
-- runs out, and another node takes the job from its checkpoint.
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;

-- Other claims, by name (a webhook endpoint's deliveries: 'endpoint:' and its id), on the same terms.
CREATE TABLE leases (
    name  TEXT PRIMARY KEY,
    node  TEXT NOT NULL,
    until BIGINT NOT NULL
);

-- Files every node reads (on PostgreSQL): an uploaded file, and a check file's result, in parts by
-- the byte offset each starts at. A result's parts are written with the chunk that commits them.
CREATE TABLE file_parts (
    name  TEXT NOT NULL,
    at    BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (name, at)
);

-- Limits on anonymous clients, counted for every node: per scope (code requests, failed console
-- sign-ins) and client (a keyed hash of its IPv4 address or IPv6 /64), the requests counted in the
-- window that began at window_start (unix seconds). Windows long past are pruned by the upkeep.
CREATE TABLE client_limits (
    scope        TEXT NOT NULL,
    client       BYTEA NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (scope, client)
);
CREATE INDEX client_limits_by_window ON client_limits (window_start);
