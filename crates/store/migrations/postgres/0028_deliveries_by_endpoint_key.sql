-- A delivery keyed by (endpoint_id, notification_seq), its endpoint's delivery log, with an index by
-- notification and the due queue's index; the indexes by (state, next_attempt_at) and the log's go
-- (see the SQLite migration of the same number).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
ALTER TABLE deliveries ADD PRIMARY KEY (endpoint_id, notification_seq);
DROP INDEX deliveries_due;
DROP INDEX deliveries_endpoint_log;
CREATE INDEX deliveries_notification ON deliveries (notification_seq);
