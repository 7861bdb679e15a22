//! `GET /images/{id}/{width}`: one URL per width for `<img src>`, answered
//! in the best format the request's `Accept` names (see `negotiate`);
//! `GET /images/{id}/{width}?format=webp`: one variant in the format named
//! (the URLs of the JSON views and `srcset`), whatever `Accept` says;
//! `GET /images/{id}/original`: the upload, to its owner.
//!
//! Variants never change once made (a reprocess writes new keys), so a
//! public image's answer may be cached for a year by browsers and CDNs,
//! keyed on `Accept` (`Vary`), and repeat reads are answered from the data
//! centre's cache without the database or S3 (`http::cache`). With a
//! public base URL (a CDN in front of `variants/`) the answer is a redirect
//! to the chosen object; without one the worker streams it, so no presigned
//! URL (which expires) is ever cached. A private image's variants go to its
//! owner and to signed URLs (`?expires=&signature=`, `domain::delivery`),
//! never into a shared cache.

use pixport_aws::Error as AwsError;
use pixport_contract::{OutputFormat, SourceFormat, Status, StoredVariant};
use worker::Request;

use crate::domain::delivery::Target;
use crate::domain::error::Error;
use crate::domain::fields::Visibility;
use crate::domain::ports::ObjectStore;
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::cache;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::header;
use crate::http::negotiate::{self, Offer};
use crate::runtime::clock;

/// A year: the longest lifetime caches are asked to honour (RFC 9111).
const PUBLIC_CACHE: &str = "public, max-age=31536000, immutable";
/// An image only its owner may see (failed, hidden while uploading) must not
/// land in a shared cache.
const PRIVATE_CACHE: &str = "private, no-store";

/// How the request reached the image, which decides what caches may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// A public image anyone may see: kept by every cache for a year, and
    /// by the delivery cache.
    Public,
    /// A private image through a signed URL: the browser may keep it until
    /// the URL expires, no shared cache may.
    Signed { expires: u64 },
    /// The owner's own image that others cannot see (uploading, failed,
    /// private): kept by no cache.
    Owner,
}

impl Reach {
    fn cache_control(self, now: u64) -> String {
        match self {
            Reach::Public => PUBLIC_CACHE.into(),
            Reach::Signed { expires } => {
                format!("private, max-age={}", expires.saturating_sub(now))
            }
            Reach::Owner => PRIVATE_CACHE.into(),
        }
    }
}

pub async fn variant(
    ctx: &Ctx<'_>,
    req: &Request,
    url: &worker::Url,
    id: &str,
    width: &str,
    head: bool,
) -> ApiResult<Answer> {
    let query = DeliveryQuery::parse(url)?;
    let now = clock::unix_ms(clock::now()) / 1000;
    let signed = match &query.signature {
        Some((expires, signature)) => {
            let keys = ctx
                .app
                .config
                .delivery_keys
                .as_ref()
                .ok_or(Error::BadSignature)?;
            let target = Target {
                id,
                width: parse_width(width).ok_or(Error::BadSignature)?,
                format: query.format.map(OutputFormat::as_str),
            };
            keys.verify(target, *expires, signature, now)?;
            Some(*expires)
        }
        None => None,
    };
    if signed.is_none()
        && let Some(variants) = cache::variants(ctx, id).await
    {
        let at_width = at_width(&variants, width);
        if at_width.is_empty() {
            return Err(no_such_width(&variants, width).into());
        }
        match choose_and_serve(
            ctx,
            req,
            id,
            &at_width,
            query.format,
            Reach::Public,
            head,
            now,
        )
        .await
        {
            // A reprocess replaced the variants the cached list names (the
            // list lives `DELIVERY_CACHE_SECONDS`): the row knows the new ones.
            Err(e) if is_missing_object(&e) => {
                tracing::info!(
                    request_id = ctx.request_id,
                    id,
                    "the cached list named a removed variant; reading the row"
                );
            }
            answer => return answer,
        }
    }
    let owner = ctx.owner_if_any().map(str::to_string);
    let img = ctx
        .app
        .images()
        .deliverable(id, owner.as_deref(), signed.is_some())
        .await?;
    let public = Status::PUBLIC.contains(&img.status);
    let reach = match (public, img.meta.visibility, signed) {
        (true, Visibility::Public, _) => Reach::Public,
        (true, Visibility::Private, Some(expires)) => Reach::Signed { expires },
        _ => Reach::Owner,
    };
    let at_width = at_width(&img.variants, width);
    if at_width.is_empty() {
        if img.status != Status::Ready {
            return Err(Error::NotReady {
                status: img.status.as_str(),
            }
            .into());
        }
        return Err(no_such_width(&img.variants, width).into());
    }
    if reach == Reach::Public && img.status == Status::Ready {
        cache::keep_variants(ctx, &img);
    }
    choose_and_serve(ctx, req, id, &at_width, query.format, reach, head, now).await
}

/// Picks the variant the URL pins or `Accept` prefers, then serves it.
#[allow(clippy::too_many_arguments)]
async fn choose_and_serve(
    ctx: &Ctx<'_>,
    req: &Request,
    id: &str,
    at_width: &[&StoredVariant],
    pinned: Option<OutputFormat>,
    reach: Reach,
    head: bool,
    now: u64,
) -> ApiResult<Answer> {
    if let Some(format) = pinned {
        let chosen = at_width
            .iter()
            .find(|v| v.format == format)
            .ok_or(Error::NotFound)?;
        return serve(ctx, req, id, chosen, reach, head, None, now).await;
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
            available: types(at_width),
        })?;
    serve(
        ctx,
        req,
        id,
        chosen,
        reach,
        head,
        Some(("vary", "accept".into())),
        now,
    )
    .await
}

/// Answers with one chosen variant: its validators and cache lifetime,
/// then a redirect to the public base, the headers alone (HEAD, 304) or
/// the bytes, from the delivery cache or streamed from S3 (and kept).
#[allow(clippy::too_many_arguments)]
async fn serve(
    ctx: &Ctx<'_>,
    req: &Request,
    id: &str,
    chosen: &StoredVariant,
    reach: Reach,
    head: bool,
    vary: Option<(&'static str, String)>,
    now: u64,
) -> ApiResult<Answer> {
    let etag = format!("\"{}\"", chosen.sha256);
    let mut headers: Vec<(&'static str, String)> = vary.into_iter().collect();
    headers.push(("cache-control", reach.cache_control(now)));
    headers.push(("etag", etag.clone()));
    if header(req, "if-none-match").is_some_and(|tags| matches_etag(&tags, &etag)) {
        return Ok(Answer::empty(304).with_headers(headers));
    }
    if reach == Reach::Public
        && let Some(url) = ctx.app.objects.public_url(&chosen.key)?
    {
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
    if reach == Reach::Public
        && let Some(body) = cache::variant(ctx, id, chosen).await
    {
        tracing::info!(
            request_id = ctx.request_id,
            id,
            width = chosen.width,
            content_type,
            "variant served from the cache"
        );
        return Ok(Answer::object(body).with_headers(headers));
    }
    let mut object = ctx.app.objects.open(&chosen.key).await?;
    if reach == Reach::Public {
        object = cache::keep_variant(ctx, id, chosen, object)
            .map_err(|e| Error::Runtime(format!("cannot keep a variant: {e}")))?;
    }
    tracing::info!(
        request_id = ctx.request_id,
        id,
        width = chosen.width,
        content_type,
        "variant served"
    );
    Ok(Answer::object(object).with_headers(headers))
}

/// The uploaded file, to its owner only (anyone else: 404): it keeps the
/// uploader's EXIF, GPS included, so it is never public, never under the
/// public base and never kept by a shared cache.
pub async fn original(ctx: &Ctx<'_>, id: &str, head: bool) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let img = ctx.app.images().original(&owner, id).await?;
    // The type follows from the format the bytes proved at upload.
    let content_type = img
        .format
        .as_deref()
        .and_then(|f| serde_json::from_value::<SourceFormat>(f.into()).ok())
        .map_or("application/octet-stream", SourceFormat::content_type);
    let mut headers = vec![
        ("cache-control", PRIVATE_CACHE.to_string()),
        ("content-type", content_type.to_string()),
    ];
    if let Some(sha) = &img.checksum_sha256 {
        headers.push(("etag", format!("\"{sha}\"")));
    }
    if head {
        if let Some(bytes) = img.bytes {
            headers.push(("content-length", bytes.to_string()));
        }
        return Ok(Answer::empty(200).with_headers(headers));
    }
    let object = ctx.app.objects.open(&img.original_key).await?;
    tracing::info!(request_id = ctx.request_id, id, "original served");
    Ok(Answer::object(object).with_headers(headers))
}

/// What a variant URL's query may say: the pinned format
/// (`?format=jpeg|png|webp|avif`) and, for a private image, the signed
/// URL's `expires` and `signature`. Any other parameter, or one twice, is
/// refused, so each variant has one URL and one cache entry.
#[derive(Debug, Default, PartialEq)]
struct DeliveryQuery {
    format: Option<OutputFormat>,
    signature: Option<(u64, String)>,
}

impl DeliveryQuery {
    fn parse(url: &worker::Url) -> ApiResult<DeliveryQuery> {
        let mut format = None;
        let mut expires = None;
        let mut signature = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "format" if format.is_none() => {
                    format = Some(
                        OutputFormat::ALL
                            .into_iter()
                            .find(|f| f.as_str() == v)
                            .ok_or(ApiError::InvalidQuery("format"))?,
                    );
                }
                "expires" if expires.is_none() => {
                    expires = Some(whole_seconds(&v).ok_or(ApiError::InvalidQuery("expires"))?);
                }
                "signature" if signature.is_none() => signature = Some(v.into_owned()),
                "format" | "expires" | "signature" => {
                    return Err(ApiError::InvalidQuery("a parameter given twice"));
                }
                _ => return Err(ApiError::InvalidQuery("unknown parameter")),
            }
        }
        let signature = match (expires, signature) {
            (Some(e), Some(s)) => Some((e, s)),
            (None, None) => None,
            // Half a signed URL proves nothing.
            _ => return Err(Error::BadSignature.into()),
        };
        Ok(DeliveryQuery { format, signature })
    }
}

/// A whole number of seconds: digits only, no sign or leading zero.
fn whole_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 12 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// An S3 object the answer needed is not there.
fn is_missing_object(e: &ApiError) -> bool {
    matches!(e, ApiError::Domain(Error::Storage(AwsError::S3(s))) if s.is_not_found())
}

fn types(variants: &[&StoredVariant]) -> String {
    variants
        .iter()
        .map(|v| v.format.content_type())
        .collect::<Vec<_>>()
        .join(", ")
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

fn no_such_width(variants: &[StoredVariant], width: &str) -> Error {
    let mut widths: Vec<u32> = variants.iter().map(|v| v.width).collect();
    widths.sort_unstable();
    widths.dedup();
    let available = widths
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Error::NoSuchWidth {
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
    fn a_url_pins_one_format_or_none() {
        let pin = |q: &str| {
            DeliveryQuery::parse(
                &worker::Url::parse(&format!("https://x.test/images/a/640{q}")).unwrap(),
            )
            .map(|q| q.format)
            .map_err(|e| e.to_string())
        };
        assert_eq!(pin(""), Ok(None));
        assert_eq!(pin("?format=webp"), Ok(Some(OutputFormat::Webp)));
        assert_eq!(pin("?format=jpeg"), Ok(Some(OutputFormat::Jpeg)));
        for bad in [
            "?format=jpg",
            "?format=WEBP",
            "?format=",
            "?format=png&format=png",
            "?v=2",
            "?expires=100",
            "?signature=abc",
            "?expires=0100&signature=abc",
            "?expires=1&expires=2&signature=abc",
        ] {
            assert!(pin(bad).is_err(), "{bad}");
        }
        let signed = DeliveryQuery::parse(
            &worker::Url::parse(
                "https://x.test/images/a/640?format=webp&expires=1700000000&signature=c2ln",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(signed.format, Some(OutputFormat::Webp));
        assert_eq!(signed.signature, Some((1_700_000_000, "c2ln".into())));
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
