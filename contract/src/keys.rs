//! The S3 key layout. The edge stores `originals/<id>`; the bucket's
//! notification fires the Lambda for that prefix only, and it writes
//! `variants/<id>/<width>.<ext>` (a reprocess,
//! `variants/<id>/<tag>/<width>.<ext>`); a DELETE removes everything under
//! `variants/<id>/`.

use crate::format::OutputFormat;

pub const ORIGINALS_PREFIX: &str = "originals/";
pub const VARIANTS_PREFIX: &str = "variants/";
/// Small objects outside the image layout that let scheduled work skip
/// the database when it has nothing to do, so an idle Aurora cluster can
/// pause (docs/deploy.md, "Auto-pause"). The sweep's reconciler never
/// touches them (`image_id` is `None`).
pub const STATE_PREFIX: &str = "state/";
/// Rewritten (a new token each time) by whoever settles an image, after
/// the UPDATE whose trigger may have queued a webhook event: the edge's
/// one-minute cron reads the database only when it changed.
pub const OUTBOX_ENQUEUED: &str = "state/outbox-enqueued";
/// Written by the edge's cron after each delivery run: when the next event
/// is due and which `OUTBOX_ENQUEUED` token that run had seen.
pub const OUTBOX_NEXT: &str = "state/outbox-next";
/// Rewritten when a resize may need the scheduled redrive: by the Lambda
/// when an invocation fails (its rows wait for a retry), by the edge's
/// sweep every half hour (an S3 event lost, attempts that died).
pub const REDRIVE_SIGNAL: &str = "state/redrive-signal";
/// Written by the redrive after each run that read the table.
pub const REDRIVE_NEXT: &str = "state/redrive-next";
/// Longest id accepted from a key (the `id` column's size).
pub const MAX_ID_LEN: usize = 64;

pub fn original(id: &str) -> String {
    format!("{ORIGINALS_PREFIX}{id}")
}

/// `Some(id)` for `originals/<id>` with a plausible id; everything else (a
/// variant, a nested path, an empty id) is `None`, so a misconfigured
/// notification filter cannot make the Lambda trigger itself.
pub fn original_id(key: &str) -> Option<&str> {
    let id = key.strip_prefix(ORIGINALS_PREFIX)?;
    valid_id(id).then_some(id)
}

/// The image a stored object belongs to: `originals/<id>` or
/// `variants/<id>/<anything>`; `None` for keys outside that layout (the
/// reconciler leaves those alone).
pub fn image_id(key: &str) -> Option<&str> {
    if let Some(id) = original_id(key) {
        return Some(id);
    }
    let (id, rest) = key.strip_prefix(VARIANTS_PREFIX)?.split_once('/')?;
    (valid_id(id) && !rest.is_empty()).then_some(id)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Every variant of `id` is under this prefix.
pub fn variants_prefix(id: &str) -> String {
    format!("{VARIANTS_PREFIX}{id}/")
}

pub fn variant(id: &str, width: u32, format: OutputFormat) -> String {
    format!("{}{width}.{}", variants_prefix(id), format.extension())
}

/// A reprocessed variant: under a tag of the run's output (`tag`, a digest
/// of its variants' bytes), so a key never holds other bytes than the ones
/// first written to it, and caches may keep every variant forever.
pub fn reprocessed_variant(id: &str, tag: &str, width: u32, format: OutputFormat) -> String {
    format!(
        "{}{tag}/{width}.{}",
        variants_prefix(id),
        format.extension()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_objects_belong_to_no_image() {
        for key in [OUTBOX_ENQUEUED, OUTBOX_NEXT, REDRIVE_SIGNAL, REDRIVE_NEXT] {
            assert!(key.starts_with(STATE_PREFIX));
            assert_eq!(image_id(key), None);
            assert_eq!(original_id(key), None);
        }
    }

    #[test]
    fn ids_only_from_originals() {
        assert_eq!(
            original_id("originals/01J0ABCDEFGHJKMNPQRSTVWXYZ"),
            Some("01J0ABCDEFGHJKMNPQRSTVWXYZ")
        );
        for key in [
            "variants/01J/1920.jpg",
            "originals/",
            "originals/a/b",
            "originals/a b",
            "xoriginals/a",
        ] {
            assert_eq!(original_id(key), None, "{key}");
        }
        let long = original(&"a".repeat(MAX_ID_LEN + 1));
        assert_eq!(image_id(&long), None);
        assert_eq!(original_id(&long), None);
    }

    #[test]
    fn keys_round_trip_through_the_id() {
        let id = "01JABCDEFGHJKMNPQRSTVWXYZ0";
        assert_eq!(original_id(&original(id)), Some(id));
        assert!(variant(id, 320, OutputFormat::Webp).starts_with(&variants_prefix(id)));
    }

    #[test]
    fn objects_name_their_image() {
        assert_eq!(image_id("originals/ABC"), Some("ABC"));
        assert_eq!(image_id("variants/ABC/320.jpg"), Some("ABC"));
        for key in [
            "variants/ABC/",
            "variants/ABC",
            "variants//320.jpg",
            "other/ABC",
            "variants/a b/1.jpg",
        ] {
            assert_eq!(image_id(key), None, "{key}");
        }
    }
}
