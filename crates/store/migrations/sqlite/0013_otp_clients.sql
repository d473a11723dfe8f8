-- A number's code budget is shared fairly: the hourly and daily sends are counted per number and
-- client (a keyed hash of an IPv4 address or an IPv6 /64), so that a flood from other addresses does
-- not use up the holder's own; a number-wide daily ceiling still bounds what anyone can send to it.
ALTER TABLE otp_challenges ADD COLUMN client_hash BLOB;
