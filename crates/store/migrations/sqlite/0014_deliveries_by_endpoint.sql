-- Deliveries are fair across endpoints: each round takes every endpoint's own due queue (a bounded
-- share), so one endpoint that never answers cannot hold another institution's deliveries back. The
-- queues are read per endpoint, through this index.
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, state, next_attempt_at);
