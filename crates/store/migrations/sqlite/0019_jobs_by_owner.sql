-- A participant's uploads, newest first (GET /v1/jobs, the console's files page).
CREATE INDEX jobs_owner ON jobs (owner_seq, created_at);
