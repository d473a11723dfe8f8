-- A binding is stale when R2 said so at bound_on (the stored flag), or when a notification newer than
-- notified_after names it: the fan-out no longer rewrites the binding's row, which sits at a random
-- page of the table (a disconnection file touching 1,000,000 bindings wrote 17 of its 25 GB there).
-- A rebind sets notified_after to the newest notification's seq, so what came before no longer counts.
ALTER TABLE bindings ADD COLUMN notified_after BIGINT NOT NULL DEFAULT 0;
-- Until now the stored flag was the whole truth (a rebind cleared it, leaving the old number's
-- notifications behind): what is already stored stays as it was.
UPDATE bindings SET notified_after = (SELECT COALESCE(MAX(seq), 0) FROM notifications);
