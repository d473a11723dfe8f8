-- The numbers whose summaries each write batch changed, one row per batch in commit order (seq is
-- meta.index_seq, counted by the writer). A server that starts from a snapshot of its index (stamped
-- with the seq it reflects) reads the summaries of the numbers named after it. Rows up to
-- meta.index_changes_pruned_through are gone: a snapshot older than that is stale. db_id tells this
-- database's snapshots from another's.
CREATE TABLE index_changes (
    seq     INTEGER PRIMARY KEY,
    numbers BLOB NOT NULL
);
INSERT INTO meta (key, value) VALUES ('index_seq', 0);
INSERT INTO meta (key, value) VALUES ('index_changes_pruned_through', 0);
INSERT INTO meta (key, value) VALUES ('db_id', abs(random()));
