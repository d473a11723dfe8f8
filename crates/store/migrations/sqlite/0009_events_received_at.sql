-- An event's time of receipt is its audit record's: the `events` record of the request or file chunk
-- that accepted it (its `at`) names each accepted event by its keyed hash in `event_batches`. The copy
-- in every row of `events`, written and never read, was a fifth of the row: dropped, a lifecycle file
-- applies 11% faster (`cargo xtask bench --only lifecycle`, BENCHMARKS.md).
ALTER TABLE events DROP COLUMN received_at;
