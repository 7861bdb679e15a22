-- pixport schema: who may see an image's variants, what made them, and
-- which images wait to be made again.
--
-- `visibility`: `public` variants are served to anyone who has the image's
-- id (and kept by caches); `private` ones only to their owner and through
-- signed, expiring URLs (docs/delivery.md).
-- `recipe`: the widths, quality and formats the resize Lambda made the
-- variants with (`pixport_contract::Recipe`), so a reprocess finds the
-- images an older recipe made. NULL: made before recipes were recorded.
-- `reprocess_at`: when a reprocess of this `ready` image was asked for;
-- the Lambda's scheduled run redoes queued images a batch at a time and
-- clears it (`reprocess_claimed_until`: its lease on one).
ALTER TABLE images
  ADD COLUMN visibility ENUM('public', 'private') NOT NULL DEFAULT 'public' AFTER status,
  ADD COLUMN recipe VARCHAR(255) NULL AFTER variants,
  ADD COLUMN reprocess_at DATETIME(3) NULL,
  ADD COLUMN reprocess_claimed_until DATETIME(3) NULL,
  ADD KEY images_recipe (recipe, id),
  ADD KEY images_reprocess (reprocess_at);
