//! `GET /images/{id}/{width}`: one URL per width for `<img src>`, answered
//! in the best format the request's `Accept` names (see `negotiate`).
//!
//! Variants never change once made (a new upload is a new id), so a public
//! image's answer may be cached for a year by browsers and CDNs, keyed on
//! `Accept` (`Vary`). With a public base URL (a CDN in front of `variants/`)
//! the answer is a redirect to the chosen object; without one the worker
//! streams it from S3, so no presigned URL (which expires) is ever cached.

use pixport_contract::{OutputFormat, Status, StoredVariant};
use worker::Request;

use super::{Answer, Ctx, header, load, reader};
use crate::error::{ApiError, ApiResult};
use crate::negotiate::{self, Offer};

/// A year: the longest lifetime caches are asked to honour (RFC 9111).
const PUBLIC_CACHE: &str = "public, max-age=31536000, immutable";
/// An image only its owner may see (failed, hidden while uploading) must not
/// land in a shared cache.
const PRIVATE_CACHE: &str = "private, no-store";

pub async fn variant(
    ctx: &Ctx<'_>,
    req: &Request,
    id: &str,
    width: &str,
    head: bool,
) -> ApiResult<Answer> {
    let img = load(ctx, id).await?;
    let viewer = reader(ctx, req);
    let public = Status::PUBLIC.contains(&img.status);
    if !public && viewer.as_deref() != Some(img.owner.as_str()) {
        return Err(ApiError::NotFound);
    }
    let at_width = at_width(&img.variants, width);
    if at_width.is_empty() {
        if img.status != Status::Ready {
            return Err(ApiError::NotReady {
                status: img.status.as_str(),
            });
        }
        return Err(no_such_width(&img.variants, width));
    }
    let offers: Vec<Offer<'_>> = at_width
        .iter()
        .map(|v| Offer {
            media_type: v.format.content_type(),
            named_only: is_modern(v.format),
        })
        .collect();
    let chosen = negotiate::choose(header(req, "accept").as_deref(), &offers)
        .and_then(|i| at_width.get(i))
        .ok_or_else(|| ApiError::NotAcceptable {
            available: offers
                .iter()
                .map(|o| o.media_type)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let etag = format!("\"{}\"", chosen.sha256);
    let mut headers = vec![
        ("vary", "accept".to_string()),
        (
            "cache-control",
            if public { PUBLIC_CACHE } else { PRIVATE_CACHE }.to_string(),
        ),
        ("etag", etag.clone()),
    ];
    if header(req, "if-none-match").is_some_and(|tags| matches_etag(&tags, &etag)) {
        return Ok(Answer::empty(304).with_headers(headers));
    }
    if public && let Some(url) = ctx.s3().public_variant_url(&chosen.key)? {
        headers.push(("location", url));
        return Ok(Answer::empty(302).with_headers(headers));
    }
    // The type follows from the format, whatever the row or the object
    // says; `nosniff` (set on every answer, `respond`) keeps browsers to it.
    let content_type = chosen.format.content_type();
    headers.push(("content-type", content_type.to_string()));
    if head {
        headers.push(("content-length", chosen.bytes.to_string()));
        return Ok(Answer::empty(200).with_headers(headers));
    }
    let object = ctx.s3().open_variant(&chosen.key).await?;
    tracing::info!(
        request_id = ctx.request_id,
        id,
        width = chosen.width,
        content_type,
        "variant served"
    );
    Ok(Answer::object(object).with_headers(headers))
}

/// The variants `width` (a decimal path segment) names, most preferred
/// format first; none for a segment that is not a width.
fn at_width<'a>(variants: &'a [StoredVariant], width: &str) -> Vec<&'a StoredVariant> {
    let Some(width) = parse_width(width) else {
        return Vec::new();
    };
    let mut found: Vec<&StoredVariant> = variants.iter().filter(|v| v.width == width).collect();
    found.sort_by_key(|v| preference(v.format));
    found
}

/// Digits only, no sign or leading zero: `/images/x/0640` is not a width,
/// so each variant has one URL and one cache entry.
fn parse_width(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Smallest files first at the same quality.
fn preference(format: OutputFormat) -> u8 {
    match format {
        OutputFormat::Avif => 0,
        OutputFormat::Webp => 1,
        OutputFormat::Jpeg => 2,
        OutputFormat::Png => 3,
    }
}

/// Formats some clients still cannot decode: sent only when named.
fn is_modern(format: OutputFormat) -> bool {
    matches!(format, OutputFormat::Avif | OutputFormat::Webp)
}

fn no_such_width(variants: &[StoredVariant], width: &str) -> ApiError {
    let mut widths: Vec<u32> = variants.iter().map(|v| v.width).collect();
    widths.sort_unstable();
    widths.dedup();
    let available = widths
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::NoSuchWidth {
        width: width.chars().take(16).collect(),
        available,
    }
}

/// `If-None-Match`: `*` or a list of (possibly weak) entity tags.
fn matches_etag(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(width: u32, format: OutputFormat) -> StoredVariant {
        StoredVariant {
            width,
            height: width / 2,
            key: format!("variants/x/{width}.{}", format.extension()),
            bytes: 1,
            format,
            sha256: "ab".into(),
        }
    }

    #[test]
    fn widths_are_canonical_decimals() {
        assert_eq!(parse_width("640"), Some(640));
        for bad in [
            "", "0", "0640", "+640", "-1", "64.0", "640px", "999999", " 640",
        ] {
            assert_eq!(parse_width(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn variants_at_a_width_in_preference_order() {
        let all = [
            v(640, OutputFormat::Jpeg),
            v(320, OutputFormat::Jpeg),
            v(640, OutputFormat::Webp),
            v(640, OutputFormat::Png),
        ];
        let types: Vec<&str> = at_width(&all, "640")
            .iter()
            .map(|v| v.format.content_type())
            .collect();
        assert_eq!(types, ["image/webp", "image/jpeg", "image/png"]);
        assert!(at_width(&all, "1920").is_empty());
        assert!(at_width(&all, "abc").is_empty());
    }

    #[test]
    fn the_error_lists_each_width_once() {
        let all = [
            v(640, OutputFormat::Jpeg),
            v(320, OutputFormat::Jpeg),
            v(640, OutputFormat::Webp),
        ];
        let e = no_such_width(&all, "1000");
        assert_eq!(
            e.to_string(),
            "this image has no variant 1000 px wide; it has 320, 640"
        );
    }

    #[test]
    fn entity_tags() {
        assert!(matches_etag("\"ab\"", "\"ab\""));
        assert!(matches_etag("W/\"ab\"", "\"ab\""));
        assert!(matches_etag("\"cd\", \"ab\"", "\"ab\""));
        assert!(matches_etag("*", "\"ab\""));
        assert!(!matches_etag("\"cd\"", "\"ab\""));
        assert!(!matches_etag("ab", "\"ab\""));
    }
}
