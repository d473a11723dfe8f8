-- The processes whose indexes follow index_changes, each with the last seq it recorded (at each
-- snapshot of its index it writes) and when (unix seconds). Logged changes are dropped only once every
-- follower heard from within the last hour has read them. meta.events_stamp, which told a writer that
-- another process had written events its index lacked, is no longer read: every writer now follows
-- the others' changes.
CREATE TABLE index_followers (
    node    TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
);
