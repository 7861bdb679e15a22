-- pixport schema: tombstones for deleted uploads whose presigned PUT is
-- still valid, and the bucket the sweep's reconciler belongs to.

-- When the presigned PUT handed out for this row (`POST /uploads`,
-- `GET /s3/params`) expires; NULL for uploads with none. A DELETE before
-- then keeps the row as `deleting` (a tombstone, counted in the owner's
-- quota) instead of removing it, since the PUT could still store an
-- original with no row; the sweep finishes it once the URL has expired.
ALTER TABLE images
  ADD COLUMN upload_expires_at DATETIME(3) NULL AFTER idempotency_key;

-- The bucket this database describes, recorded by the first sweep. The
-- reconciler deletes objects that have no row, so it refuses to act when
-- the bucket it lists is not this one (a staging worker pointed at the
-- production bucket, a wrong DB_NAME): see docs/security.md.
CREATE TABLE sweep_bucket (
  singleton   TINYINT      NOT NULL,
  bucket      VARCHAR(255) NOT NULL,
  recorded_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (singleton),
  CONSTRAINT sweep_bucket_one_row CHECK (singleton = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
