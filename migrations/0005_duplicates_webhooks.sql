-- pixport schema: duplicate uploads and webhooks (issue #16 items 6 and 5).

-- Duplicates: `POST /images` and `POST /uploads` look up the owner's image
-- with the same SHA-256 before storing a second copy; this makes that one
-- index lookup. Not unique: `?duplicates=allow` keeps a copy.
ALTER TABLE images
  ADD KEY images_owner_sha256 (owner, checksum_sha256);

-- One webhook endpoint per owner (token fingerprint), set by `PUT /webhook`.
CREATE TABLE webhooks (
  owner      VARCHAR(64)   NOT NULL,
  url        VARCHAR(2000) NOT NULL,
  -- `whsec_` + base64 of 24 random bytes (Standard Webhooks).
  secret     VARCHAR(100)  NOT NULL,
  created_at DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (owner)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Events waiting to be delivered (the outbox). A row is written by the
-- trigger below in the very statement that marks an image ready or failed,
-- so an event is never lost and never delays the resize; the edge's sweep
-- delivers due rows and reschedules failures (docs/webhooks.md).
CREATE TABLE webhook_outbox (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  owner           VARCHAR(64)  NOT NULL,
  image_id        CHAR(26)     NOT NULL,
  event_type      VARCHAR(32)  NOT NULL,
  attempts        INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  delivered_at    DATETIME(3)  NULL,
  -- Set once the schedule is used up; the row is kept for operators.
  gave_up_at      DATETIME(3)  NULL,
  last_error      VARCHAR(500) NULL,
  created_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY webhook_outbox_due (delivered_at, gave_up_at, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every writer that settles an image (the resize Lambda, its redrive, the
-- edge's sweep giving up on a `pending` row) goes through this UPDATE, so
-- the outbox row is committed atomically with the status, by no extra code
-- path. On Aurora with binary logging on, creating it needs
-- log_bin_trust_function_creators=1 in the cluster parameter group.
CREATE TRIGGER images_webhook_outbox AFTER UPDATE ON images FOR EACH ROW
  INSERT INTO webhook_outbox (owner, image_id, event_type)
  SELECT NEW.owner, NEW.id, CONCAT('image.', NEW.status)
    FROM webhooks w
   WHERE w.owner = NEW.owner
     AND NEW.status IN ('ready', 'failed')
     AND NOT (OLD.status <=> NEW.status);
