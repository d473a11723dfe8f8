-- Checks are audited by the batch: per writer commit and caller, one audit record (action 'checks',
-- detail `count=N;sha256=HEX[;job=ID]`) whose seq keys the row here holding its entries, 21 bytes each:
-- the number's 16-byte keyed tag (SHA-256 over the hash key and the number), the date (yyyymmdd as an i32, big-endian) and
-- the answer (y, n, d = no_data, o = date after today). The SHA-256 of `entries` is in the chained
-- record, so a changed entry breaks `audit verify`.
CREATE TABLE check_batches (
    seq     BIGINT PRIMARY KEY,
    entries BYTEA NOT NULL
);

-- "Who looked my number up": each entry's tag and batch, filled behind the writer (when it is idle)
-- up to meta 'check_tags_upto'; the holder's lookups read this and scan the batches after it.
CREATE TABLE check_tags (
    tag BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (tag, seq)
);

INSERT INTO meta (key, value) VALUES ('check_tags_upto', 0), ('check_tags_offset', 0);
