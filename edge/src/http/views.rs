//! The JSON views of images.

use pixport_contract::{Failure, Status, StoredVariant};
use serde_json::{Value, json};

use super::Ctx;
use super::error::ApiResult;
use super::srcset;
use crate::domain::delivery::{DeliveryKeys, Target};
use crate::domain::fields::Visibility;
use crate::domain::model::Image;
use crate::domain::ports::ObjectStore;
use crate::runtime::clock;

/// The JSON view of an image, as `owner` (the caller, if any) may see it.
///
/// Anyone holding a public image's id sees how to show it: its size,
/// format, variants and placeholder. What the owner wrote about it (title,
/// description, tags, extra), what identifies the uploaded file (its name,
/// size and SHA-256, which would confirm a guessed file) and the original
/// (which keeps the uploader's EXIF, GPS included) are the owner's alone.
/// A public image's URLs carry no credential and never expire
/// (docs/security.md); a private image's are signed and expire
/// (`domain::delivery`).
pub fn image(ctx: &Ctx<'_>, img: &Image, owner: Option<&str>) -> ApiResult<Value> {
    let signer = signer(ctx, img);
    let urls = img
        .variants
        .iter()
        .map(|v| variant_url(ctx, &img.id, v, signer.as_ref()))
        .collect::<ApiResult<Vec<String>>>()?;
    let variants: Vec<Value> = img
        .variants
        .iter()
        .zip(&urls)
        .map(|(v, url)| {
            json!({
                "width": v.width, "height": v.height, "bytes": v.bytes,
                "content_type": v.format.content_type(), "url": url,
            })
        })
        .collect();
    let srcset = srcset::by_format(
        img.variants
            .iter()
            .zip(&urls)
            .map(|(v, url)| (v.format.as_str(), v.width, url.as_str())),
    );
    let mut out = json!({
        "id": img.id,
        "status": img.status.as_str(),
        "visibility": img.meta.visibility.as_str(),
        "content_type": img.content_type,
        "format": img.format,
        "width": img.width,
        "height": img.height,
        "variants": variants,
        "srcset": srcset,
        "placeholder": img.placeholder,
        "created_at": img.created_at,
        "updated_at": img.updated_at,
    });
    if owner == Some(img.owner.as_str())
        && let Some(fields) = out.as_object_mut()
    {
        let stored = matches!(img.status, Status::Pending | Status::Ready | Status::Failed);
        let owned = json!({
            "title": img.meta.title,
            "description": img.meta.description,
            "tags": img.meta.tags,
            "extra": img.meta.extra,
            "file_name": img.file_name,
            "bytes": img.bytes,
            "checksum_sha256": img.checksum_sha256,
            "original_url": stored.then(|| format!("{}/images/{}/original", ctx.base_url, img.id)),
            "failure_reason": img.failure_reason.as_deref().map(Failure::public_reason),
            "recipe": img.recipe,
        });
        if let Value::Object(owned) = owned {
            fields.extend(owned);
        }
    }
    Ok(out)
}

/// The owner's view of its own image.
pub fn own_image(ctx: &Ctx<'_>, img: &Image) -> ApiResult<Value> {
    image(ctx, img, Some(&img.owner))
}

/// What signs a private image's URLs, and until when they are valid.
struct Signer<'a> {
    keys: &'a DeliveryKeys,
    expires: u64,
}

/// A private image's signer; `None` for a public one. The expiry is
/// rounded up to a step of a quarter of the lifetime, so views of an image
/// made within one step name the same URLs and a browser's cache of them
/// holds; every URL is valid at least `DELIVERY_URL_TTL_SECONDS`.
fn signer<'a>(ctx: &Ctx<'a>, img: &Image) -> Option<Signer<'a>> {
    if img.meta.visibility != Visibility::Private {
        return None;
    }
    let keys = ctx.app.config.delivery_keys.as_ref()?;
    let ttl = ctx.app.config.delivery_url_ttl_secs;
    let step = (ttl / 4).max(1);
    let now = clock::unix_ms(clock::now()) / 1000;
    Some(Signer {
        keys,
        expires: (now + ttl).div_ceil(step) * step,
    })
}

/// Where a client fetches one variant: under the public base (a CDN in
/// front of `variants/`) when one is set, else the worker's delivery route
/// pinned to the variant's format. A public image's URL neither expires
/// nor carries a credential, so browsers and CDNs can cache what it points
/// at; a private image's is signed (never under the public base, which
/// refuses private images at upload).
fn variant_url(
    ctx: &Ctx<'_>,
    id: &str,
    v: &StoredVariant,
    signer: Option<&Signer<'_>>,
) -> ApiResult<String> {
    let format = v.format.as_str();
    if let Some(s) = signer {
        let signature = s.keys.sign(
            Target {
                id,
                width: v.width,
                format: Some(format),
            },
            s.expires,
        );
        return Ok(format!(
            "{}/images/{id}/{}?format={format}&expires={}&signature={signature}",
            ctx.base_url, v.width, s.expires
        ));
    }
    if let Some(url) = ctx.app.objects.public_url(&v.key)? {
        return Ok(url);
    }
    Ok(format!(
        "{}/images/{id}/{}?format={format}",
        ctx.base_url, v.width
    ))
}
