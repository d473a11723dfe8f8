-- One time convention (crates/store/src/time.rs): a moment is RFC 3339 UTC text of fixed width, to
-- the millisecond ("2026-12-06T23:47:47.123Z"), so that text order is time order. The columns that
-- held unix seconds become such text, unbind requests lose the unix twins of their text times, and
-- the text written before, whose width varied ("...:47Z", "...:47.5Z"), is rewritten to the fixed
-- width. The audit log's `at` stays as written: it is hashed into the chain.

CREATE FUNCTION pg_temp.moment_of_unix(secs BIGINT) RETURNS TEXT AS $$
    SELECT to_char(to_timestamp(secs) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$ LANGUAGE SQL IMMUTABLE;
CREATE FUNCTION pg_temp.moment_of_text(t TEXT) RETURNS TEXT AS $$
    SELECT to_char(t::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$ LANGUAGE SQL STABLE;

ALTER TABLE otp_challenges
    ALTER COLUMN created_at TYPE TEXT USING pg_temp.moment_of_unix(created_at),
    ALTER COLUMN expires_at TYPE TEXT USING pg_temp.moment_of_unix(expires_at),
    ALTER COLUMN used_at TYPE TEXT USING pg_temp.moment_of_unix(used_at);
ALTER TABLE otp_numbers ALTER COLUMN locked_until TYPE TEXT USING pg_temp.moment_of_unix(locked_until);
ALTER TABLE attestation_keys
    ALTER COLUMN created_at TYPE TEXT USING pg_temp.moment_of_unix(created_at),
    ALTER COLUMN retired_at TYPE TEXT USING pg_temp.moment_of_unix(retired_at),
    ALTER COLUMN publish_until TYPE TEXT USING pg_temp.moment_of_unix(publish_until);
ALTER TABLE pending_ports ALTER COLUMN received_unix TYPE TEXT USING pg_temp.moment_of_unix(received_unix);
ALTER TABLE pending_ports RENAME COLUMN received_unix TO received_at;
ALTER TABLE webhook_endpoints
    ALTER COLUMN previous_secret_until TYPE TEXT USING pg_temp.moment_of_unix(previous_secret_until),
    ALTER COLUMN failing_since TYPE TEXT USING pg_temp.moment_of_unix(failing_since);
ALTER TABLE deliveries ALTER COLUMN next_attempt_at TYPE TEXT USING pg_temp.moment_of_unix(next_attempt_at);

ALTER TABLE unbind_requests DROP COLUMN created_unix, DROP COLUMN resolved_unix;

UPDATE participants SET created_at = pg_temp.moment_of_text(created_at);
UPDATE api_keys SET created_at = pg_temp.moment_of_text(created_at), revoked_at = pg_temp.moment_of_text(revoked_at);
UPDATE jobs SET created_at = pg_temp.moment_of_text(created_at), updated_at = pg_temp.moment_of_text(updated_at),
                outputs_deleted_at = pg_temp.moment_of_text(outputs_deleted_at),
                deleted_at = pg_temp.moment_of_text(deleted_at);
UPDATE bindings SET created_at = pg_temp.moment_of_text(created_at);
UPDATE notifications SET created_at = pg_temp.moment_of_text(created_at), acked_at = pg_temp.moment_of_text(acked_at);
UPDATE webhook_endpoints SET created_at = pg_temp.moment_of_text(created_at);
UPDATE deliveries SET updated_at = pg_temp.moment_of_text(updated_at);
UPDATE sms_gateways SET updated_at = pg_temp.moment_of_text(updated_at);
UPDATE unbind_requests SET created_at = pg_temp.moment_of_text(created_at),
                           resolved_at = pg_temp.moment_of_text(resolved_at);
UPDATE kyc_records SET updated_at = pg_temp.moment_of_text(updated_at);
