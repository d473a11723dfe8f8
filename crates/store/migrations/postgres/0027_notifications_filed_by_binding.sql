-- Which notifications name a binding, out of the notifications table (see the SQLite migration of the
-- same number): a small table takes each notification's (binding, seq), and the writer files its rows
-- into the large one in key order, a step at a time. The (binding_id, event_key) dedupe goes: a
-- notification is only made for an event just stored (events are never deleted) or a binding just
-- created (ids are never issued again), and a rebind notifies nothing of its new number's past.
CREATE TABLE binding_notifications (
    binding_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (binding_id, seq)
);
CREATE TABLE binding_notifications_recent (
    binding_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (binding_id, seq)
);
INSERT INTO binding_notifications (binding_id, seq)
SELECT binding_id, seq FROM notifications WHERE binding_id IS NOT NULL ORDER BY binding_id, seq;
ALTER TABLE notifications DROP CONSTRAINT notifications_binding_id_event_key_key;
