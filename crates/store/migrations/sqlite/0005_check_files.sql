-- Check files: a job's answers are appended to a result file beside its spooled input; the job keeps
-- how many bytes of it are committed, so that a restarted runner cuts what was written past that.
ALTER TABLE jobs ADD COLUMN result_bytes INTEGER NOT NULL DEFAULT 0;
