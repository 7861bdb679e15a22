-- pixport schema, version 3: a newer upload of a `failed` image restarts its
-- attempt count, but only so often (issue 13). Without a cap, every PUT of
-- a direct upload's presigned URL bought another full retry schedule.

ALTER TABLE images
  -- How many newer uploads have restarted this image after it failed; the
  -- Lambda's claim refuses a restart once it reaches PIXPORT_MAX_RESTARTS.
  ADD COLUMN restarts INT NOT NULL DEFAULT 0 AFTER attempts;
