-- pixport schema: where the sweep's reconciler stopped in each prefix.
--
-- Listing a whole bucket every run does not scale: at a few hundred
-- thousand objects the listing pages and row lookups alone pass a Worker
-- invocation's subrequest limit, the run dies part way, and since it always
-- started from the first key, objects past that point were never reached.
-- Each run now goes a bounded number of pages past the key stored here and
-- stores where it stopped; at the end of a prefix the cursor is cleared and
-- the next run starts over.
CREATE TABLE sweep_cursors (
  prefix     VARCHAR(32)   NOT NULL,
  -- The last key the reconciler handled; NULL = start from the beginning.
  after_key  VARCHAR(1024) NULL,
  updated_at DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (prefix)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
