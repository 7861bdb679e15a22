-- pixport schema: one holder per (owner, checksum), so that two identical
-- uploads at the same moment keep one copy (issue #16 item 6).
--
-- The lookup of migration 0005 alone cannot: two uploads of the same bytes
-- both look before either is recorded. Here the upload that stores the
-- owner's copy inserts its hold first; the primary key lets exactly one of
-- two concurrent inserts in, and the other waits for the holder to be
-- stored and returns it as the duplicate (edge/src/upload.rs `hold`). A
-- hold goes with its row (cascade); a holder that failed or is being
-- deleted hands it over to the next upload of those bytes, and so does one
-- still `uploading` 30 s after it took the hold (its request died between
-- the hold and storing: a live one is seconds from `pending`). An upload
-- that fails gives its hold up before anything else.
CREATE TABLE image_checksums (
  owner           VARCHAR(64) NOT NULL,
  checksum_sha256 CHAR(44)    NOT NULL,
  image_id        CHAR(26)    NOT NULL,
  held_at         DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (owner, checksum_sha256),
  KEY image_checksums_image (image_id),
  CONSTRAINT image_checksums_image_fk FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Images already stored hold their bytes: the oldest of each set of copies.
INSERT IGNORE INTO image_checksums (owner, checksum_sha256, image_id)
  SELECT owner, checksum_sha256, MIN(id)
    FROM images
   WHERE status IN ('pending', 'ready') AND checksum_sha256 IS NOT NULL
   GROUP BY owner, checksum_sha256;

-- Every other writer of a stored row (`?duplicates=allow`, POST /uploads
-- and the upload page's routes, the resize marking it ready) records a hold
-- when there is none, so a later upload of the same bytes finds it. As
-- with the webhook trigger (0005), Aurora with binary logging needs
-- log_bin_trust_function_creators=1 to create it.
CREATE TRIGGER images_checksum_hold AFTER UPDATE ON images FOR EACH ROW
  INSERT IGNORE INTO image_checksums (owner, checksum_sha256, image_id)
  SELECT NEW.owner, NEW.checksum_sha256, NEW.id
    FROM DUAL
   WHERE NEW.status IN ('pending', 'ready') AND NEW.checksum_sha256 IS NOT NULL;
