//! What `@uppy/aws-s3` sends to a Companion-compatible `endpoint`, and the
//! checks on it that need no I/O: the declared file, the key the worker
//! issued, part numbers and the part list of a completion.
//!
//! Uppy is a client nobody here wrote, so its requests are taken as they
//! come (`filename`, `type`, `metadata` with every value a string or a
//! number), and everything the worker relies on is checked here.

use std::collections::BTreeMap;

use pixport_contract::keys;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::id;
use pixport_contract::SourceFormat;

/// S3's part numbers run from 1 to 10 000.
pub const MAX_PARTS: u32 = 10_000;

/// The part size of a browser's multipart upload unless the file needs
/// larger ones: S3's smallest part (5 MiB).
pub const PART_BYTES: u64 = 5 * 1024 * 1024;

/// How a declared file is cut into parts: every part but the last is
/// `part_size` bytes, the last the remainder. The part size is 5 MiB, or
/// what keeps the file within S3's 10 000 parts; the upload page cuts its
/// files the same way (`getChunkSize` in web/src/app.js, which Uppy's own
/// 5 MiB floor leaves as it is), and `POST /s3/multipart` answers it as
/// `partSize`. Each part URL is signed for its exact length, so S3 itself
/// refuses a part of any other size: an upload holds at most its declared
/// bytes, whoever sends them.
pub fn part_size(total: u64) -> u64 {
    PART_BYTES.max(total.div_ceil(u64::from(MAX_PARTS)))
}

/// How many parts a file of `total` bytes has.
pub fn part_count(total: u64) -> u32 {
    u32::try_from(total.div_ceil(part_size(total)).max(1)).unwrap_or(MAX_PARTS)
}

/// The exact length of part `n` of a file of `total` bytes; a part number
/// past the file's last part is refused.
pub fn part_length(total: u64, n: u32) -> ApiResult<u64> {
    let count = part_count(total);
    if n == 0 || n > count {
        return Err(ApiError::invalid_field(
            "partNumber",
            format!("this upload has parts 1 to {count}"),
        ));
    }
    let size = part_size(total);
    Ok(if n < count {
        size
    } else {
        total - size * u64::from(count - 1)
    })
}

/// `POST /s3/multipart`'s body.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

/// What a client declares before sending a byte: the format (from its
/// content type) and the exact size, which the page puts in the file's
/// metadata as `size` (Uppy sends the metadata, not the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    pub format: SourceFormat,
    pub bytes: u64,
}

/// Checks a declaration like `POST /uploads` does: an accepted image type,
/// not empty, within `max_bytes`.
pub fn declared(
    content_type: Option<&str>,
    size: Option<&Value>,
    max_bytes: u64,
) -> ApiResult<Declared> {
    let content_type = content_type.unwrap_or_default();
    let format = SourceFormat::ALL
        .into_iter()
        .find(|f| f.content_type() == content_type)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "`{content_type}` is not an accepted image type (JPEG, PNG, WebP or GIF)"
            ))
        })?;
    let bytes = match size {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::invalid_field("metadata.size", "the file's size in bytes is required")
    })?;
    if bytes == 0 {
        return Err(ApiError::EmptyFile);
    }
    if bytes > max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "file over {max_bytes} bytes"
        )));
    }
    Ok(Declared { format, bytes })
}

/// The image id behind a key the worker issued (`originals/<id>`); any
/// other key is no upload of this service.
pub fn issued_id(key: &str) -> ApiResult<&str> {
    keys::original_id(key)
        .filter(|id| id::is_valid(id) && keys::original(id) == key)
        .ok_or(ApiError::NotFound)
}

/// A part number from the path.
pub fn part_number(s: &str) -> ApiResult<u32> {
    s.parse()
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| ApiError::invalid_field("partNumber", "an integer from 1 to 10000"))
}

/// `POST /s3/multipart/{uploadId}/complete`'s body.
#[derive(Debug, Deserialize)]
pub struct CompleteBody {
    pub parts: Vec<CompletePart>,
}

#[derive(Debug, Deserialize)]
pub struct CompletePart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// The parts to assemble: at least one, in ascending order without repeats
/// (S3 refuses anything else, with a less helpful message).
pub fn completion(body: CompleteBody) -> ApiResult<Vec<(u32, String)>> {
    let bad = |why: &str| ApiError::invalid_field("parts", why);
    if body.parts.is_empty() {
        return Err(bad("at least one part"));
    }
    let mut last = 0;
    let mut out = Vec::with_capacity(body.parts.len());
    for p in body.parts {
        if p.part_number <= last || p.part_number > MAX_PARTS {
            return Err(bad("part numbers from 1 to 10000, ascending, each once"));
        }
        if p.etag.trim().is_empty() || p.etag.len() > 128 {
            return Err(bad("each part needs the ETag S3 gave it"));
        }
        last = p.part_number;
        out.push((p.part_number, p.etag));
    }
    Ok(out)
}

/// The parts named in a completion must be parts S3 holds (with the ETag
/// it gave) and must add up to exactly the declared size: the declaration
/// was what the limits were checked against. Linear in the parts: S3's
/// parts are indexed by number once (up to 10 000 of each list).
pub fn check_assembly(
    chosen: &[(u32, String)],
    held: &[(u32, String, u64)],
    declared_bytes: u64,
) -> ApiResult<()> {
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    let by_number: std::collections::HashMap<u32, (String, u64)> = held
        .iter()
        .map(|(n, etag, size)| (*n, (unquote(etag), *size)))
        .collect();
    let mut total = 0u64;
    for (n, etag) in chosen {
        let Some((_, size)) = by_number.get(n).filter(|(e, _)| *e == unquote(etag)) else {
            return Err(ApiError::invalid_field(
                "parts",
                format!("part {n} was not uploaded (or has another ETag)"),
            ));
        };
        total = total.saturating_add(*size);
    }
    if total != declared_bytes {
        return Err(ApiError::invalid_field(
            "parts",
            format!("the parts hold {total} bytes; the file was declared as {declared_bytes}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(e: ApiError) -> &'static str {
        e.status_and_code().1
    }

    #[test]
    fn declaration_needs_an_image_type_and_a_size_within_limits() {
        let d = declared(Some("image/jpeg"), Some(&json!("1234")), 10_000).unwrap();
        assert_eq!(
            d,
            Declared {
                format: SourceFormat::Jpeg,
                bytes: 1234
            }
        );
        assert_eq!(
            declared(Some("image/png"), Some(&json!(7)), 10)
                .unwrap()
                .format,
            SourceFormat::Png
        );
        let refused =
            |t: Option<&str>, s: Option<Value>| code(declared(t, s.as_ref(), 10_000).unwrap_err());
        assert_eq!(
            refused(Some("text/plain"), Some(json!(5))),
            "unsupported_media_type"
        );
        assert_eq!(refused(None, Some(json!(5))), "unsupported_media_type");
        assert_eq!(refused(Some("image/jpeg"), None), "invalid_field");
        assert_eq!(
            refused(Some("image/jpeg"), Some(json!("-3"))),
            "invalid_field"
        );
        assert_eq!(
            refused(Some("image/jpeg"), Some(json!(1.5))),
            "invalid_field"
        );
        assert_eq!(refused(Some("image/jpeg"), Some(json!(0))), "empty_file");
        assert_eq!(
            refused(Some("image/jpeg"), Some(json!(10_001))),
            "payload_too_large"
        );
    }

    #[test]
    fn only_keys_the_worker_issues_name_an_upload() {
        let id = "01JDQ4Z8XK3M5N7P9Q1R3S5T7V";
        assert_eq!(issued_id(&keys::original(id)).unwrap(), id);
        for bad in [
            "originals/../secret",
            "originals/short",
            "variants/01JDQ4Z8XK3M5N7P9Q1R3S5T7V/320.jpg",
            "01JDQ4Z8XK3M5N7P9Q1R3S5T7V",
            "originals/01JDQ4Z8XK3M5N7P9Q1R3S5T7V/x",
            "",
        ] {
            assert!(issued_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_is_cut_into_5_mib_parts_and_a_remainder() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!((part_count(1), part_length(1, 1).unwrap()), (1, 1));
        assert_eq!(part_length(5 * MIB, 1).unwrap(), 5 * MIB);
        assert_eq!(part_count(5 * MIB), 1);
        assert_eq!(part_count(5 * MIB + 1), 2);
        assert_eq!(part_length(5 * MIB + 1, 1).unwrap(), 5 * MIB);
        assert_eq!(part_length(5 * MIB + 1, 2).unwrap(), 1);
        assert_eq!(part_length(12 * MIB, 3).unwrap(), 2 * MIB);
        for (total, n) in [(1, 2), (5 * MIB + 1, 3), (1, 0)] {
            assert_eq!(
                code(part_length(total, n).unwrap_err()),
                "invalid_field",
                "{total} {n}"
            );
        }
        // Past 10 000 parts of 5 MiB the parts grow; never more than 10 000.
        let huge = 60_000 * MIB + 7;
        assert_eq!(part_size(huge), huge.div_ceil(10_000));
        assert!(part_count(huge) <= MAX_PARTS);
        let sum: u64 = (1..=part_count(huge))
            .map(|n| part_length(huge, n).unwrap())
            .sum();
        assert_eq!(sum, huge);
    }

    #[test]
    fn part_numbers_are_s3s() {
        assert_eq!(part_number("1").unwrap(), 1);
        assert_eq!(part_number("10000").unwrap(), 10_000);
        for bad in ["0", "10001", "-1", "x", ""] {
            assert!(part_number(bad).is_err(), "{bad}");
        }
    }

    fn body(parts: &[(u32, &str)]) -> CompleteBody {
        CompleteBody {
            parts: parts
                .iter()
                .map(|(n, e)| CompletePart {
                    part_number: *n,
                    etag: e.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_completion_lists_parts_ascending_once() {
        assert_eq!(completion(body(&[(1, "a"), (2, "b")])).unwrap().len(), 2);
        assert!(completion(body(&[])).is_err());
        assert!(completion(body(&[(2, "a"), (1, "b")])).is_err());
        assert!(completion(body(&[(1, "a"), (1, "a")])).is_err());
        assert!(completion(body(&[(0, "a")])).is_err());
        assert!(completion(body(&[(1, " ")])).is_err());
    }

    #[test]
    fn the_assembly_must_be_what_was_declared() {
        let held = vec![(1, "\"e1\"".to_string(), 5), (2, "\"e2\"".to_string(), 3)];
        let chosen = vec![(1, "e1".to_string()), (2, "\"e2\"".to_string())];
        check_assembly(&chosen, &held, 8).unwrap();
        assert!(check_assembly(&chosen, &held, 9).is_err());
        assert!(check_assembly(&[(1, "e1".into())], &held, 8).is_err());
        assert!(check_assembly(&[(1, "other".into()), (2, "e2".into())], &held, 8).is_err());
        assert!(check_assembly(&[(3, "e3".into())], &held, 8).is_err());
    }

    /// 10 000 parts (S3's most) checked against 10 000 held: a quadratic
    /// search would compare 10^8 pairs (seconds of a Worker's CPU time);
    /// linear is 10^4 lookups. Counted, not timed: the lookups happen
    /// through the index, so the held list is walked once.
    #[test]
    fn the_assembly_check_is_linear_in_the_parts() {
        let n = MAX_PARTS;
        let held: Vec<(u32, String, u64)> = (1..=n).map(|i| (i, format!("\"e{i}\""), 5)).collect();
        let chosen: Vec<(u32, String)> = (1..=n).map(|i| (i, format!("e{i}"))).collect();
        let t = std::time::Instant::now();
        for _ in 0..20 {
            check_assembly(&chosen, &held, 5 * u64::from(n)).unwrap();
        }
        // 20 x 10^8 comparisons of strings takes minutes; 20 x 10^4 lookups
        // take milliseconds even unoptimised on a loaded machine.
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
    }
}
