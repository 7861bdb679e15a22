-- pixport schema, version 2: transient resize failures are re-driven, not
-- recorded as `failed`. A row whose resize hit an S3 / Data API outage stays
-- `pending` with the time of its next try; the Lambda's scheduled redrive
-- picks up rows whose time has come (see docs/reliability.md).

ALTER TABLE images
  -- When the redrive may try this row again: set on a transient failure
  -- (backoff by `attempts`) and, as a lease, when an attempt starts, so a
  -- resize killed mid-way is picked up once the lease runs out.
  ADD COLUMN next_attempt_at DATETIME(3) NULL AFTER attempts,
  -- The last transient error, for operators; clients still see `pending`
  -- (failure_reason is only for `failed`).
  ADD COLUMN last_error VARCHAR(500) NULL AFTER next_attempt_at,
  ADD KEY images_redrive (status, next_attempt_at);

-- Rows the old code marked `failed` for a passing outage (or the sweep gave
-- up on after an hour) get their re-drive now.
UPDATE images
   SET status = 'pending', last_error = failure_reason, failure_reason = NULL,
       attempts = 0, next_attempt_at = CURRENT_TIMESTAMP(3)
 WHERE status = 'failed'
   AND (failure_reason LIKE 'transient:%' OR failure_reason LIKE 'store:%'
        OR failure_reason LIKE 'timeout: not resized within%');
