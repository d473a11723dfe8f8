-- The regulator's report and charts read binding notifications by when they were made, for a period.
CREATE INDEX notifications_binding_made ON notifications (created_at) WHERE binding_id IS NOT NULL;
CREATE INDEX unbind_requests_made ON unbind_requests (created_at);
