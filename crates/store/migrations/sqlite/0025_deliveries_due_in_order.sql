-- An endpoint's due queue is read oldest first, by (next_attempt_at, notification_seq): with the seq in
-- the index, the round reads its share in order and stops. Without it, SQLite sorted every delivery due
-- in the same second (tens of thousands in a fan-out), joined to its notification, to keep 1,000.
DROP INDEX deliveries_endpoint_due;
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, state, next_attempt_at, notification_seq);
