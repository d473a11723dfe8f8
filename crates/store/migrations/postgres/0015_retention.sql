-- What stays on disk is bounded. A job's outputs (a check file's result file, the list of rejected
-- rows) are dropped some days after the job ended (`[retention] job_outputs_days`, 7), or when its
-- owner deletes the job; the job's counts stay. The check log (the entries under each `checks` audit
-- record, and the lookups' index of them in `check_tags`) is dropped after `[retention] lookups_days`
-- (180), the holder's view of who looked the number up: a bounded step at a time, behind the writer.
-- The `checks` records themselves stay in the chain with their counts and digests; `audit verify`
-- knows that the entries of the records up to `check_log_pruned_through` are gone. The tags of the
-- first batch after it are deleted up to `check_log_pruned_offset` entries.
ALTER TABLE jobs ADD COLUMN outputs_deleted_at TEXT;
INSERT INTO meta (key, value) VALUES ('check_log_pruned_through', 0), ('check_log_pruned_offset', 0);
