-- What stays on disk is bounded. A job's outputs (a check file's result file, the list of rejected
-- rows) are dropped some days after the job ended (`[retention] job_outputs_days`, 7), or when its
-- owner deletes the job; the job's counts stay.
ALTER TABLE jobs ADD COLUMN outputs_deleted_at TEXT;
-- A job its owner deleted: gone from the API at once, its row removed once its rejected rows are.
ALTER TABLE jobs ADD COLUMN deleted_at TEXT;
-- Set while the rejected rows of a job whose outputs are gone are being deleted, a bounded step at a
-- time (a file may have millions).
ALTER TABLE jobs ADD COLUMN purge_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_purge ON jobs (purge_pending) WHERE purge_pending = 1;

-- The check log (the entries under each `checks` audit record, and the lookups' index of them) is
-- dropped after `[retention] lookups_days` (180), the holder's view of who looked the number up, a
-- bounded step at a time behind the writer. The `checks` records themselves stay in the chain with
-- their counts and digests; each step that drops batches writes a chained `checklog.pruned` record
-- (up to which batch, and before which day), which is what `audit verify` trusts; the pruning resumes
-- from `check_log_pruned_through`.
INSERT INTO meta (key, value) VALUES ('check_log_pruned_through', 0);

-- The lookups' index is kept by the day of the check (`yyyymmdd`, UTC) first: a day's rows are one
-- contiguous range of the key, dropped in order, where rows keyed by tag alone lay scattered over the
-- whole table (measured at 1,000,000 checks: 12 s of writer time to drop by tag, in steps touching a
-- page each). The holder's lookups ask for each day of the period they show.
CREATE TABLE check_tags_by_day (
    day INTEGER NOT NULL,
    tag BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (day, tag, seq)
) WITHOUT ROWID;
INSERT INTO check_tags_by_day (day, tag, seq)
    SELECT CAST(replace(substr(a.at, 1, 10), '-', '') AS INTEGER), t.tag, t.seq
    FROM check_tags t JOIN audit a ON a.seq = t.seq;
DROP TABLE check_tags;
ALTER TABLE check_tags_by_day RENAME TO check_tags;
