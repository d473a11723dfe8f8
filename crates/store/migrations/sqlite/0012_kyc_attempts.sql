-- KYC Match is not an oracle: an institution may match one number's real-name record a few times a
-- day (`kyc_matches_per_number_per_day_max`, rebinding attempts included), so that it cannot recover an
-- attribute one guess at a time. Counted per institution, number and UTC day; past days are dropped by
-- the upkeep.
CREATE TABLE kyc_attempts (
    institution_seq INTEGER NOT NULL REFERENCES participants (seq),
    number_hash     BLOB NOT NULL,
    day             INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    PRIMARY KEY (institution_seq, number_hash, day)
);
CREATE INDEX kyc_attempts_day ON kyc_attempts (day);
