-- pixport schema: a list is its owner's images.
--
-- `GET /images` lists only the caller's own rows, newest first
-- (`WHERE owner = ? ... ORDER BY id DESC LIMIT ?`): this key answers it
-- without reading other owners' rows, however many there are.
ALTER TABLE images
  ADD KEY images_owner_list (owner, id);
