-- One time convention (crates/store/src/time.rs): a moment is RFC 3339 UTC text of fixed width, to
-- the millisecond ("2026-12-06T23:47:47.123Z"), so that text order is time order. The columns that
-- held unix seconds become such text, unbind requests lose the unix twins of their text times, and
-- the text written before, whose width varied ("...:47Z", "...:47.5Z", "...:47.123456789Z"), is
-- rewritten to the fixed width by cutting the fraction to three digits, as the code does (text
-- operations, alike on both backends: no rounding into the next second). The audit log's `at` stays
-- as written: it is hashed into the chain.

ALTER TABLE otp_challenges
    ALTER COLUMN created_at TYPE TEXT USING to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    ALTER COLUMN expires_at TYPE TEXT USING to_char(to_timestamp(expires_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    ALTER COLUMN used_at TYPE TEXT USING to_char(to_timestamp(used_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
ALTER TABLE otp_numbers ALTER COLUMN locked_until TYPE TEXT USING to_char(to_timestamp(locked_until) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
ALTER TABLE attestation_keys
    ALTER COLUMN created_at TYPE TEXT USING to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    ALTER COLUMN retired_at TYPE TEXT USING to_char(to_timestamp(retired_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    ALTER COLUMN publish_until TYPE TEXT USING to_char(to_timestamp(publish_until) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
ALTER TABLE pending_ports ALTER COLUMN received_unix TYPE TEXT USING to_char(to_timestamp(received_unix) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
ALTER TABLE pending_ports RENAME COLUMN received_unix TO received_at;
ALTER TABLE webhook_endpoints
    ALTER COLUMN previous_secret_until TYPE TEXT USING to_char(to_timestamp(previous_secret_until) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    ALTER COLUMN failing_since TYPE TEXT USING to_char(to_timestamp(failing_since) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
ALTER TABLE deliveries ALTER COLUMN next_attempt_at TYPE TEXT USING to_char(to_timestamp(next_attempt_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

ALTER TABLE unbind_requests DROP COLUMN created_unix, DROP COLUMN resolved_unix;

UPDATE participants SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE api_keys SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z', revoked_at = left(revoked_at, 19) || '.' || left(rtrim(substr(revoked_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE jobs SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z', updated_at = left(updated_at, 19) || '.' || left(rtrim(substr(updated_at, 21), 'Z') || '000', 3) || 'Z',
                outputs_deleted_at = left(outputs_deleted_at, 19) || '.' || left(rtrim(substr(outputs_deleted_at, 21), 'Z') || '000', 3) || 'Z',
                deleted_at = left(deleted_at, 19) || '.' || left(rtrim(substr(deleted_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE bindings SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE notifications SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z', acked_at = left(acked_at, 19) || '.' || left(rtrim(substr(acked_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE webhook_endpoints SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE deliveries SET updated_at = left(updated_at, 19) || '.' || left(rtrim(substr(updated_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE sms_gateways SET updated_at = left(updated_at, 19) || '.' || left(rtrim(substr(updated_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE unbind_requests SET created_at = left(created_at, 19) || '.' || left(rtrim(substr(created_at, 21), 'Z') || '000', 3) || 'Z',
                           resolved_at = left(resolved_at, 19) || '.' || left(rtrim(substr(resolved_at, 21), 'Z') || '000', 3) || 'Z';
UPDATE kyc_records SET updated_at = left(updated_at, 19) || '.' || left(rtrim(substr(updated_at, 21), 'Z') || '000', 3) || 'Z';
