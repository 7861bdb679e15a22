-- pixport schema: duplicate uploads (issue #16 item 6).
-- `POST /images` and `POST /uploads` look up the owner's image with the same
-- SHA-256 before storing a second copy; this makes that one index lookup.
-- Not unique: a request may opt out (`?duplicates=allow`) and keep a copy.

ALTER TABLE images
  ADD KEY images_owner_sha256 (owner, checksum_sha256);
