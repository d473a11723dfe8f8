-- How many notifications one request to the endpoint may carry: 1 (the default) sends each as its own
-- CloudEvent; more sends up to that many as one CloudEvents batch (a JSON array), each event keeping
-- its id, so that a carrier's monthly file does not cost a bank a request per bound number.
ALTER TABLE webhook_endpoints ADD COLUMN batch_events INTEGER NOT NULL DEFAULT 1;
