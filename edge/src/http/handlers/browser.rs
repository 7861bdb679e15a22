//! The signing routes `@uppy/aws-s3` speaks to a Companion-compatible
//! `endpoint` (`/s3/params`, `/s3/multipart/...`), over the upload
//! service's browser uploads (`domain::upload::browser`).
//!
//! Uppy is a client nobody here wrote, so its requests are taken as they
//! come (`filename`, `type`, `metadata` with every value a string or a
//! number, the upload id through `encodeURIComponent`), and answered in
//! the shapes it reads.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Request, Url};

use crate::domain::error::Error;
use crate::domain::fields::{Metadata, Patch, Visibility, clean_file_name};
use crate::domain::upload::browser::{BrowserFile, Started, within_grant};
use crate::domain::upload::declared_format;
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::ApiResult;
use crate::http::extract;
use crate::http::views;

/// `POST /s3/multipart`'s body.
#[derive(Debug, Deserialize)]
struct CreateBody {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default, rename = "type")]
    content_type: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
}

/// `POST /s3/multipart/{uploadId}/complete`'s body.
#[derive(Debug, Deserialize)]
struct CompleteBody {
    parts: Vec<CompletePart>,
}

#[derive(Debug, Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

/// The declared size: the page puts it in the file's metadata as `size`
/// (Uppy sends the metadata, not the size), a number or a numeric string.
fn declared_size(size: Option<&Value>) -> ApiResult<u64> {
    match size {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        Error::invalid_field("metadata.size", "the file's size in bytes is required").into()
    })
}

/// A browser's file from what Uppy sent; the title and tags come from the
/// file's metadata when the page set them.
fn browser_file(
    ctx: &Ctx<'_>,
    owner: String,
    content_type: Option<&str>,
    file_name: Option<&str>,
    meta: &BTreeMap<String, Value>,
) -> ApiResult<BrowserFile> {
    // The type first, as a direct upload's: an unaccepted type is 415
    // whatever else is missing.
    declared_format(content_type.unwrap_or_default())?;
    let bytes = declared_size(meta.get("size"))?;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let mut m = Metadata::default();
    Patch {
        title: text("title").map(Some),
        description: None,
        tags: text("tags").map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        extra: None,
        visibility: text("visibility")
            .map(|v| Visibility::parse(&v))
            .transpose()?,
    }
    .apply(&mut m, ctx.app.config.limits.max_field_bytes)?;
    Ok(BrowserFile {
        owner,
        content_type: content_type.unwrap_or_default().to_string(),
        bytes,
        file_name: file_name.and_then(clean_file_name),
        meta: m,
        grant: ctx.caller()?.grant.clone(),
    })
}

/// Uppy puts the upload id through `encodeURIComponent`.
fn upload_id(raw: &str) -> ApiResult<String> {
    percent_decode(raw)
        .filter(|s| !s.is_empty() && s.len() <= 1024)
        .ok_or_else(|| Error::invalid_field("uploadId", "the id this upload was given").into())
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key this upload was given (`?key=`), if the caller may work on it
/// (a grant: only its own upload's).
fn key(ctx: &Ctx<'_>, url: &Url) -> ApiResult<String> {
    let key = extract::query(url, "key")
        .ok_or_else(|| Error::invalid_field("key", "the key this upload was given is required"))?;
    within_grant(ctx.caller()?, &key)?;
    Ok(key)
}

/// `GET /s3/params`: one presigned PUT for the whole file.
pub async fn params(ctx: &Ctx<'_>, url: &Url) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let meta: BTreeMap<String, Value> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string();
            Some((k, Value::from(v.into_owned())))
        })
        .collect();
    let content_type = extract::query(url, "type");
    let file_name = extract::query(url, "filename");
    let file = browser_file(
        ctx,
        owner,
        content_type.as_deref(),
        file_name.as_deref(),
        &meta,
    )?;
    let Started::Put { key, put } = ctx
        .app
        .uploads(Some(ctx.request_id))
        .browser_start(file, true)
        .await?
    else {
        return Err(Error::Runtime("a single PUT was asked for".into()).into());
    };
    // A browser sets the length itself and refuses to be told it.
    let headers: serde_json::Map<String, Value> = put
        .headers
        .into_iter()
        .filter(|(k, _)| k != "content-length" && k != "host")
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    Ok(Answer::json(
        200,
        json!({"method": "PUT", "url": put.url, "fields": {}, "headers": headers, "key": key}),
    ))
}

/// `POST /s3/multipart`: the row (`uploading`), then S3's multipart upload.
pub async fn create(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let body: CreateBody = extract::read_json(req, ctx.app.config.limits.json_limit()).await?;
    let file = browser_file(
        ctx,
        owner,
        body.content_type.as_deref(),
        body.filename.as_deref(),
        &body.metadata,
    )?;
    let Started::Multipart {
        key,
        upload_id,
        part_size,
    } = ctx
        .app
        .uploads(Some(ctx.request_id))
        .browser_start(file, false)
        .await?
    else {
        return Err(Error::Runtime("a multipart upload was asked for".into()).into());
    };
    Ok(Answer::json(
        200,
        json!({"key": key, "uploadId": upload_id, "partSize": part_size}),
    ))
}

/// `GET /s3/multipart/{uploadId}/{partNumber}`: a presigned PUT of one
/// part, for exactly its length (the browser sets `Content-Length` itself).
pub async fn sign(ctx: &Ctx<'_>, url: &Url, upload_id_raw: &str, part: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let key = key(ctx, url)?;
    let upload_id = upload_id(upload_id_raw)?;
    let part = crate::domain::upload::browser::part_number(part)?;
    let p = ctx
        .app
        .uploads(Some(ctx.request_id))
        .browser_sign_part(&owner, &key, &upload_id, part)
        .await?;
    Ok(Answer::json(
        200,
        json!({"url": p.url, "expires": ctx.app.config.presign_ttl_secs}),
    ))
}

/// `GET /s3/multipart/{uploadId}`: the parts S3 holds, so a resumed upload
/// sends only the rest.
pub async fn list(ctx: &Ctx<'_>, url: &Url, upload_id_raw: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let key = key(ctx, url)?;
    let upload_id = upload_id(upload_id_raw)?;
    let parts = ctx
        .app
        .uploads(Some(ctx.request_id))
        .browser_parts(&owner, &key, &upload_id)
        .await?;
    let parts: Vec<Value> = parts
        .into_iter()
        .map(|p| json!({"PartNumber": p.number, "ETag": p.etag, "Size": p.size}))
        .collect();
    Ok(Answer::json(200, Value::Array(parts)))
}

/// `POST /s3/multipart/{uploadId}/complete`: the image, `pending`.
pub async fn complete(
    ctx: &Ctx<'_>,
    req: &mut Request,
    url: &Url,
    upload_id_raw: &str,
) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let key = key(ctx, url)?;
    let upload_id = upload_id(upload_id_raw)?;
    // Checked before the body is read: another owner's key is a 404.
    let uploads = ctx.app.uploads(Some(ctx.request_id));
    let img = uploads.browser_upload(&owner, &key).await?;
    let limit = ctx.app.config.limits.json_limit().max(1 << 20);
    let body: CompleteBody = extract::read_json(req, limit).await?;
    let parts = body
        .parts
        .into_iter()
        .map(|p| (p.part_number, p.etag))
        .collect();
    let img = uploads.browser_complete(img, &upload_id, parts).await?;
    let location = format!("/images/{}", img.id);
    Ok(Answer::json(
        200,
        json!({"location": location, "key": key, "image": views::own_image(ctx, &img)?}),
    ))
}

/// `DELETE /s3/multipart/{uploadId}`: frees the parts and the row. Uppy
/// reads a JSON body even here.
pub async fn abort(ctx: &Ctx<'_>, url: &Url, upload_id_raw: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let upload_id = upload_id(upload_id_raw)?;
    let key = key(ctx, url)?;
    ctx.app
        .uploads(Some(ctx.request_id))
        .browser_abort(&owner, &key, &upload_id)
        .await?;
    Ok(Answer::json(200, json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_declared_size_is_a_whole_number_or_its_string() {
        assert_eq!(declared_size(Some(&json!("1234"))).ok(), Some(1234));
        assert_eq!(declared_size(Some(&json!(7))).ok(), Some(7));
        for bad in [json!("-3"), json!(1.5), json!(null), json!("x")] {
            assert!(declared_size(Some(&bad)).is_err(), "{bad}");
        }
        assert!(declared_size(None).is_err());
    }

    #[test]
    fn upload_ids_arrive_percent_encoded() {
        assert_eq!(upload_id("a%2Bb%3D").ok().as_deref(), Some("a+b="));
        assert!(upload_id("").is_err());
        assert!(upload_id("%zz").is_err());
    }
}
