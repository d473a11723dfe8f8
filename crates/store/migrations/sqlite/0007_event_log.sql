-- Accepted events are audited by the call (a request, or a file's chunk): one audit record (action
-- 'events', detail `accepted=N;sha256=HEX[;job=ID]`) whose seq keys the row here holding its entries,
-- 37 bytes each: the event's keyed hash (16 bytes of the HMAC over carrier and eventId), the number's
-- keyed hash (16 bytes of the HMAC bindings use), the type code (1 byte) and the date (yyyymmdd as an
-- i32, big-endian). The SHA-256 of `entries` is in the chained record, so a changed entry breaks
-- `audit verify`.
CREATE TABLE event_batches (
    seq     INTEGER PRIMARY KEY,
    entries BLOB NOT NULL
);

-- A number's history is read from this index alone (a WITHOUT ROWID table's index holds its key:
-- carrier_seq, event_id).
DROP INDEX events_number;
CREATE INDEX events_number ON events (number, day, kind);
