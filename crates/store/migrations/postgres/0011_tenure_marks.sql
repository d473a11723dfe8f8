-- Possession is proven for one tenure (R5): a code is good only in the tenure it was requested in. The
-- tenure is identified by the number's changes of holder (a keyed hash of them, `TenureMark`), not by
-- its first day, so that a second change on the same day is a new tenure. Challenges of before this
-- change have none, and are good for nothing (they live ten minutes).
ALTER TABLE otp_challenges ADD COLUMN tenure_mark BYTEA;
