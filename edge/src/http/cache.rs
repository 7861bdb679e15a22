//! The delivery cache: repeat reads of a public image's variants answered
//! by this data centre without the database or S3.
//!
//! Two kinds of entry in the data centre's cache (`runtime::cache`), both
//! under the worker's own origin, where the zone's purge can reach them:
//!
//! - an image's variant list, `{origin}/images/{id}?cache=variants`, kept
//!   `DELIVERY_CACHE_SECONDS` (default a minute): it stands for the row;
//! - a variant's bytes, `{origin}/images/{id}/{width}?format={f}&sha256={hash}`,
//!   kept a year: the hash is in the key, so the bytes under a key never
//!   change, and a reprocessed image's new list names new keys.
//!
//! Only a `ready`, public image is cached. A delete or a change to private
//! removes the entries here and, with `CF_ZONE_ID` set, in every data
//! centre (`forget`); without it another data centre serves its copy until
//! its list expires. Browsers keep what they were sent for the year
//! `Cache-Control` allows (docs/delivery.md).

use futures_util::future::join_all;
use pixport_contract::StoredVariant;
use worker::{Response, ResponseBody};

use super::Ctx;
use crate::domain::model::Image;
use crate::runtime::cache;

/// What a variant's answer is stored with: the year a variant may be kept.
pub const VARIANT_CACHE: &str = "public, max-age=31536000, immutable";

fn list_key(base: &str, id: &str) -> String {
    format!("{base}/images/{id}?cache=variants")
}

fn variant_key(base: &str, id: &str, v: &StoredVariant) -> String {
    format!(
        "{base}/images/{id}/{}?format={}&sha256={}",
        v.width,
        v.format.as_str(),
        v.sha256
    )
}

fn enabled(ctx: &Ctx<'_>) -> bool {
    ctx.app.config.delivery_cache_secs > 0
}

/// The variants of a public, ready image, if this data centre has its list.
pub async fn variants(ctx: &Ctx<'_>, id: &str) -> Option<Vec<StoredVariant>> {
    if !enabled(ctx) {
        return None;
    }
    let mut found = cache::get(&list_key(ctx.base_url, id)).await?;
    found.json().await.ok()
}

/// Keeps a public, ready image's variant list for `DELIVERY_CACHE_SECONDS`.
pub fn keep_variants(ctx: &Ctx<'_>, img: &Image) {
    if !enabled(ctx) {
        return;
    }
    let Ok(mut entry) = Response::from_json(&img.variants) else {
        return;
    };
    let control = format!("public, max-age={}", ctx.app.config.delivery_cache_secs);
    if entry.headers_mut().set("cache-control", &control).is_err() {
        return;
    }
    let key = list_key(ctx.base_url, &img.id);
    ctx.after_response(move |_| async move { cache::put(&key, entry).await });
}

/// A variant's bytes, if this data centre has them.
pub async fn variant(ctx: &Ctx<'_>, id: &str, v: &StoredVariant) -> Option<ResponseBody> {
    if !enabled(ctx) {
        return None;
    }
    let found = cache::get(&variant_key(ctx.base_url, id, v)).await?;
    (found.status_code() == 200).then(|| found.into_parts().1)
}

/// Streams `body` (a variant read from S3) to the client and, through a
/// tee, into the cache; the store finishes after the answer is sent.
pub fn keep_variant(
    ctx: &Ctx<'_>,
    id: &str,
    v: &StoredVariant,
    body: ResponseBody,
) -> worker::Result<ResponseBody> {
    if !enabled(ctx) {
        return Ok(body);
    }
    let mut to_client = Response::from_body(body)?;
    let h = to_client.headers_mut();
    h.set("content-type", v.format.content_type())?;
    h.set("content-length", &v.bytes.to_string())?;
    h.set("cache-control", VARIANT_CACHE)?;
    let to_cache = to_client.cloned()?;
    let key = variant_key(ctx.base_url, id, v);
    ctx.after_response(move |_| async move { cache::put(&key, to_cache).await });
    Ok(to_client.into_parts().1)
}

/// Removes an image's entries: here at once, and in every data centre
/// through the zone's purge when it is configured. Never fails the request
/// it follows (the image is already gone or private); a purge that fails
/// is logged, and the entries elsewhere expire with their list.
pub async fn forget(ctx: &Ctx<'_>, img: &Image) {
    let mut keys = vec![list_key(ctx.base_url, &img.id)];
    keys.extend(
        img.variants
            .iter()
            .map(|v| variant_key(ctx.base_url, &img.id, v)),
    );
    let removed = join_all(keys.iter().map(|k| cache::delete(k)))
        .await
        .into_iter()
        .filter(|r| *r)
        .count();
    let everywhere = ctx.app.purge_everywhere(&keys).await;
    match &everywhere {
        Ok(purged) => tracing::info!(
            request_id = ctx.request_id,
            id = %img.id,
            removed_here = removed,
            purged_everywhere = purged,
            "delivery cache forgot the image"
        ),
        Err(e) => tracing::error!(
            request_id = ctx.request_id,
            id = %img.id,
            removed_here = removed,
            error = %e,
            "the zone's cache purge failed; other data centres keep the image until its list expires"
        ),
    }
}
