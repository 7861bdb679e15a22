-- pixport schema, version 1. Aurora MySQL 3 (MySQL 8.0) syntax that also runs
-- on MariaDB 10.11 (the local stand-in). Applied in file-name order, once each.

CREATE TABLE images (
  -- ULID (26 chars, Crockford base32): sorts by creation time, so keyset
  -- pagination on id lists newest/oldest first without a second index.
  id              CHAR(26)        NOT NULL,
  -- Who uploaded it: a stable, non-secret fingerprint of the bearer token.
  owner           VARCHAR(64)     NOT NULL,
  -- uploading: row reserved, original not confirmed in S3 yet
  -- pending:   original stored, variants not made yet
  -- ready / failed: set by the resize Lambda; deleting: objects being removed
  status          VARCHAR(16)     NOT NULL DEFAULT 'uploading',
  title           VARCHAR(200)    NULL,
  description     TEXT            NULL,
  tags            TEXT            NOT NULL,          -- JSON array of strings
  extra           TEXT            NOT NULL,          -- JSON object of other form fields
  file_name       VARCHAR(255)    NULL,
  content_type    VARCHAR(100)    NOT NULL,
  format          VARCHAR(16)     NULL,
  bytes           BIGINT UNSIGNED NULL,
  width           INT UNSIGNED    NULL,
  height          INT UNSIGNED    NULL,
  checksum_sha256 CHAR(44)        NULL,              -- base64, as S3's x-amz-checksum-sha256
  original_key    VARCHAR(300)    NOT NULL,
  variants        TEXT            NULL,              -- JSON array set by the resize Lambda
  failure_reason  VARCHAR(500)    NULL,
  -- The S3 event sequencer last applied: a replayed or older event changes nothing.
  event_sequencer VARCHAR(64)     NULL,
  attempts        INT UNSIGNED    NOT NULL DEFAULT 0,
  idempotency_key VARCHAR(128)    NULL,
  created_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY images_owner_idempotency (owner, idempotency_key),
  KEY images_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per tag so `GET /images?tag=` is an index lookup, not a JSON scan.
CREATE TABLE image_tags (
  tag      VARCHAR(64) NOT NULL,
  image_id CHAR(26)    NOT NULL,
  PRIMARY KEY (tag, image_id),
  KEY image_tags_image (image_id),
  CONSTRAINT image_tags_image_fk FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
