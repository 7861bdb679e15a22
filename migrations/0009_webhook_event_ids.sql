-- pixport schema: webhook event ids that tell a receiver nothing.
--
-- `webhook-id` was the outbox row's AUTO_INCREMENT id, shared by every
-- owner: two events' ids told a receiver how many events all other owners
-- had in between. An event's id is now a ULID (its creation time and 80
-- random bits), given by the edge before its first delivery attempt and
-- kept for every retry, so receivers still dedupe on it.
ALTER TABLE webhook_outbox
  ADD COLUMN event_id CHAR(26) NULL AFTER id,
  ADD UNIQUE KEY webhook_outbox_event_id (event_id);
