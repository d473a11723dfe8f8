-- A port takes both sides (R3): a carrier's `ported_in` moves a number only once the serving
-- carrier's `ported_out` of the same day is stored, so that no carrier takes a number, and with it the
-- number's one-time codes, on its own word.

-- The national number-portability database reports whole ports: a participant of its own role.
ALTER TABLE participants DROP CONSTRAINT participants_role_check;
ALTER TABLE participants ADD CONSTRAINT participants_role_check
    CHECK (role IN ('carrier', 'institution', 'regulator', 'portability'));

-- A port's recipient: the carrier a donor's `ported_out` names, if any; on a `ported_in`, set only for
-- a whole port, which moves the number to it without a `ported_out`. Every `ported_in` accepted before
-- this change was accepted on its own word: each stands as the whole port it was taken for, so that
-- existing histories keep their answers and their serving carriers. (Read only for a history's ports,
-- outside the covering index `events_number`.)
ALTER TABLE events ADD COLUMN recipient_seq BIGINT;
UPDATE events SET recipient_seq = carrier_seq WHERE kind = 1;

-- A carrier's `ported_in` waiting for the donor's `ported_out` of its day: applied when that arrives,
-- dropped unapplied 30 days after it was received. Its (carrier, eventId) is not in `events` until then.
CREATE TABLE pending_ports (
    carrier_seq   BIGINT NOT NULL REFERENCES participants (seq),
    event_id      TEXT NOT NULL,
    number        BIGINT NOT NULL,
    day           INTEGER NOT NULL,
    received_unix BIGINT NOT NULL,
    job_id        TEXT,
    PRIMARY KEY (carrier_seq, event_id)
);
CREATE INDEX pending_ports_number ON pending_ports (number, day);
CREATE INDEX pending_ports_received ON pending_ports (received_unix);

ALTER TABLE jobs ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
