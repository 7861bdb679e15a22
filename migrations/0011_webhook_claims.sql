-- pixport schema: delivery runs claim the outbox rows they send.
--
-- A cron run leases the rows it is about to send to its own token with one
-- conditional UPDATE (only rows with no unexpired lease), so two runs that
-- overlap never send the same event at once; a run that dies midway frees
-- its rows when `claimed_until` passes (edge/src/webhook.rs, docs/webhooks.md).
ALTER TABLE webhook_outbox
  ADD COLUMN claim_token   CHAR(26)    NULL AFTER gave_up_at,
  ADD COLUMN claimed_until DATETIME(3) NULL AFTER claim_token,
  ADD KEY webhook_outbox_claim (claim_token);
