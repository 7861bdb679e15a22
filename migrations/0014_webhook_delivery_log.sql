-- pixport schema: an owner's webhook delivery log.
--
-- GET /webhooks/deliveries lists one owner's outbox rows, newest first, a
-- page at a time (keyset on the row id); this index serves it without a
-- scan of every owner's events (edge/src/adapters/dataapi/webhooks.rs,
-- docs/webhooks.md).
ALTER TABLE webhook_outbox
  ADD KEY webhook_outbox_owner (owner, id);
