-- How many one-time codes numlink issued for the numbers each carrier serves, per UTC day, and how
-- many of those found no SMS gateway set (dropped): what the carrier's console shows. Never a code.
CREATE TABLE sms_codes_daily (
    carrier_seq     BIGINT NOT NULL REFERENCES participants (seq),
    day             INTEGER NOT NULL,
    codes           BIGINT NOT NULL,
    without_gateway BIGINT NOT NULL,
    PRIMARY KEY (carrier_seq, day)
);
