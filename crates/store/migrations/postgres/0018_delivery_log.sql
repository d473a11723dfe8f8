-- An endpoint's delivery log (the console's endpoint page, GET /v1/webhook-endpoints/{id}/deliveries):
-- its deliveries, newest first.
CREATE INDEX deliveries_endpoint_log ON deliveries (endpoint_id, notification_seq);
