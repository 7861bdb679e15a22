-- pixport schema, version 3: placeholders a page paints before the image
-- loads, computed by the resizer from the smallest variant and written by the
-- resize Lambda with the row's move to `ready` (NULL until then).

ALTER TABLE images
  -- ThumbHash bytes in standard base64 (at most 25 bytes: 36 characters).
  ADD COLUMN thumbhash      VARCHAR(48) NULL AFTER variants,
  -- BlurHash with 4 x 3 (or 3 x 4) components: 28 characters.
  ADD COLUMN blurhash       VARCHAR(64) NULL AFTER thumbhash,
  -- `#rrggbb`.
  ADD COLUMN dominant_color CHAR(7)     NULL AFTER blurhash;
