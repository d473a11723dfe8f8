-- Which writer last wrote lifecycle events: its id (high 32 bits) and a count of its batches. A server
-- whose index was built before another process's events (a second server on the database) sees it move
-- and stops trusting its index's "no history" for a number (see WriteCtx::events_stamp).
INSERT INTO meta (key, value) VALUES ('events_stamp', 0);
