//! The S3 signing routes `@uppy/aws-s3` speaks to a Companion-compatible
//! `endpoint`, so a browser sends the bytes straight to S3 in parts and a
//! reload resumes from the parts S3 already holds (ListParts).
//!
//! The worker allocates the image id and key; every later call names the
//! key it was given and is refused unless that key is an upload of the
//! caller's token still `uploading`. The declaration is checked like
//! `POST /uploads`; the completion checks the assembled size against it
//! and the bytes' head like `POST /images`, and leaves the row `pending`
//! for the S3 event.

use pixport_contract::{Status, keys};
use serde_json::{Value, json};
use worker::{Request, Url};

use super::{Answer, Ctx, json_limit, new_id, owner, read_json, view};
use crate::companion::{self, CompleteBody, CreateBody, Declared};
use crate::error::{ApiError, ApiResult};
use crate::fields::{Metadata, Patch, clean_file_name};
use crate::model::Image;
use crate::ports::{MetadataStore, NewImage, ObjectStore};
use crate::sniff::Probe;
use crate::upload::{HEAD_BYTES, check_probe};

/// Routes `/s3/...`; `None` when the path is not one of them.
pub async fn route(
    ctx: &Ctx<'_>,
    req: &mut Request,
    method: &str,
    segments: &[&str],
    url: &Url,
) -> Option<ApiResult<Answer>> {
    Some(match (method, segments) {
        ("GET", ["s3", "params"]) => params(ctx, req, url).await,
        ("POST", ["s3", "multipart"]) => create(ctx, req).await,
        ("GET", ["s3", "multipart", upload_id]) => list(ctx, req, url, upload_id).await,
        ("DELETE", ["s3", "multipart", upload_id]) => abort(ctx, req, url, upload_id).await,
        ("GET", ["s3", "multipart", upload_id, part]) => sign(ctx, req, url, upload_id, part).await,
        ("POST", ["s3", "multipart", upload_id, "complete"]) => {
            complete(ctx, req, url, upload_id).await
        }
        (_, ["s3", "multipart"] | ["s3", "multipart", _, "complete"]) => {
            Err(ApiError::MethodNotAllowed("POST"))
        }
        (_, ["s3", "params"] | ["s3", "multipart", _, _]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["s3", "multipart", _]) => Err(ApiError::MethodNotAllowed("GET, DELETE")),
        _ => return None,
    })
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Uppy puts the upload id through `encodeURIComponent`.
fn upload_id(raw: &str) -> ApiResult<String> {
    let id = urlencoding_decode(raw)
        .filter(|s| !s.is_empty() && s.len() <= 1024)
        .ok_or_else(|| ApiError::invalid_field("uploadId", "the id this upload was given"))?;
    Ok(id)
}

fn urlencoding_decode(s: &str) -> Option<String> {
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

/// A new row for a declared browser upload, with the title taken from the
/// file's metadata when the page sent one.
fn new_image(
    owner: String,
    d: Declared,
    file_name: Option<&str>,
    meta: &std::collections::BTreeMap<String, Value>,
    max_field_bytes: usize,
) -> ApiResult<NewImage> {
    let mut m = Metadata::default();
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
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
    }
    .apply(&mut m, max_field_bytes)?;
    let id = new_id();
    Ok(NewImage {
        original_key: keys::original(&id),
        id,
        owner,
        idempotency_key: None,
        meta: m,
        file_name: file_name.and_then(clean_file_name),
        probe: Probe {
            format: d.format,
            width: 0,
            height: 0,
        },
    })
}

/// `GET /s3/params`: one presigned PUT for the whole file.
async fn params(ctx: &Ctx<'_>, req: &Request, url: &Url) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    let meta: std::collections::BTreeMap<String, Value> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string();
            Some((k, Value::from(v.into_owned())))
        })
        .collect();
    let d = companion::declared(
        query(url, "type").as_deref(),
        meta.get("size"),
        ctx.cfg.limits.max_upload_bytes,
    )?;
    let filename = query(url, "filename");
    let new = new_image(
        owner,
        d,
        filename.as_deref(),
        &meta,
        ctx.cfg.limits.max_field_bytes,
    )?;
    let put = ctx
        .s3()
        .presign_browser_put(&new.original_key, d.format.content_type(), d.bytes)?;
    ctx.db().insert_declared(&new, d.bytes, true).await?;
    // A browser sets the length itself and refuses to be told it.
    let headers: serde_json::Map<String, Value> = put
        .headers
        .iter()
        .filter(|(k, _)| *k != http::header::CONTENT_LENGTH && *k != http::header::HOST)
        .filter_map(|(k, v)| Some((k.as_str().to_string(), Value::from(v.to_str().ok()?))))
        .collect();
    Ok(Answer::json(
        200,
        json!({"method": "PUT", "url": put.url, "fields": {}, "headers": headers, "key": new.original_key}),
    ))
}

/// `POST /s3/multipart`: the row (`uploading`), then S3's multipart upload.
async fn create(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    let body: CreateBody = read_json(req, json_limit(ctx.cfg)).await?;
    let d = companion::declared(
        body.content_type.as_deref(),
        body.metadata.get("size"),
        ctx.cfg.limits.max_upload_bytes,
    )?;
    let new = new_image(
        owner,
        d,
        body.filename.as_deref(),
        &body.metadata,
        ctx.cfg.limits.max_field_bytes,
    )?;
    let (s3, db) = (ctx.s3(), ctx.db());
    db.insert_declared(&new, d.bytes, false).await?;
    let upload_id = match s3
        .create_multipart(&new.original_key, d.format.content_type())
        .await
    {
        Ok(u) => u,
        Err(e) => {
            // Nothing was stored: the row goes (the sweep settles it if this fails too).
            let _ = db.delete_row(&new.id).await;
            return Err(e);
        }
    };
    tracing::info!(request_id = ctx.request_id, id = %new.id, bytes = d.bytes, "browser upload started");
    Ok(Answer::json(
        200,
        json!({"key": new.original_key, "uploadId": upload_id, "partSize": companion::part_size(d.bytes)}),
    ))
}

/// The row behind `?key=`, if it is the caller's and still being uploaded;
/// anything else is 404, so others' ids are not confirmed.
async fn owned_upload(ctx: &Ctx<'_>, req: &Request, url: &Url) -> ApiResult<Image> {
    let owner = owner(ctx, req)?;
    let key = query(url, "key").ok_or_else(|| {
        ApiError::invalid_field("key", "the key this upload was given is required")
    })?;
    let id = companion::issued_id(&key)?;
    let img = ctx.db().get(id).await?.ok_or(ApiError::NotFound)?;
    if img.owner != owner || img.status != Status::Uploading || img.original_key != key {
        return Err(ApiError::NotFound);
    }
    Ok(img)
}

/// S3 answers an upload id that is not this key's with `NoSuchUpload`.
fn no_such_upload(e: pixport_aws::Error) -> ApiError {
    match &e {
        pixport_aws::Error::S3(s) if s.code == "NoSuchUpload" || s.is_not_found() => {
            ApiError::NotFound
        }
        _ => e.into(),
    }
}

/// `GET /s3/multipart/{uploadId}/{partNumber}`: a presigned PUT of one
/// part, for exactly its length (the browser sets `Content-Length` itself).
async fn sign(
    ctx: &Ctx<'_>,
    req: &Request,
    url: &Url,
    upload_id_raw: &str,
    part: &str,
) -> ApiResult<Answer> {
    let img = owned_upload(ctx, req, url).await?;
    let upload_id = upload_id(upload_id_raw)?;
    let part = companion::part_number(part)?;
    let len = companion::part_length(img.bytes.unwrap_or(0), part)?;
    let p = ctx
        .s3()
        .presign_browser_part(&img.original_key, &upload_id, part, len)?;
    Ok(Answer::json(
        200,
        json!({"url": p.url, "expires": ctx.cfg.presign_ttl_secs}),
    ))
}

/// `GET /s3/multipart/{uploadId}`: the parts S3 holds, so a resumed upload
/// sends only the rest.
async fn list(ctx: &Ctx<'_>, req: &Request, url: &Url, upload_id_raw: &str) -> ApiResult<Answer> {
    let img = owned_upload(ctx, req, url).await?;
    let upload_id = upload_id(upload_id_raw)?;
    let parts = ctx
        .s3()
        .list_parts(&img.original_key, &upload_id)
        .await
        .map_err(no_such_upload)?;
    let parts: Vec<Value> = parts
        .into_iter()
        .map(|(n, etag, size)| json!({"PartNumber": n, "ETag": etag, "Size": size}))
        .collect();
    Ok(Answer::json(200, Value::Array(parts)))
}

/// `POST /s3/multipart/{uploadId}/complete`: assembles the parts if they
/// are the declared file, checks its head is an accepted image within
/// limits, and leaves the row `pending` for the S3 event. A refused file
/// is deleted with its row.
async fn complete(
    ctx: &Ctx<'_>,
    req: &mut Request,
    url: &Url,
    upload_id_raw: &str,
) -> ApiResult<Answer> {
    let img = owned_upload(ctx, req, url).await?;
    let upload_id = upload_id(upload_id_raw)?;
    let body: CompleteBody = read_json(req, json_limit(ctx.cfg).max(1 << 20)).await?;
    let chosen = companion::completion(body)?;
    let (s3, db) = (ctx.s3(), ctx.db());
    let key = img.original_key.as_str();
    let held = s3
        .list_parts(key, &upload_id)
        .await
        .map_err(no_such_upload)?;
    companion::check_assembly(&chosen, &held, img.bytes.unwrap_or(0))?;
    s3.complete_multipart(key, &upload_id, &chosen).await?;
    let checked = match s3.head_bytes(key, HEAD_BYTES as u64).await {
        Ok(head) => check_probe(&head, &ctx.cfg.limits).and_then(|p| {
            if p.format.content_type() == img.content_type {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType(format!(
                    "the file is a {} image but was declared as {}",
                    p.format.as_str(),
                    img.content_type
                )))
            }
        }),
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        // The S3 event may already be on its way; deleting the row first
        // (`deleting`) tells the resize Lambda to leave it alone.
        if let Err(cleanup) = crate::delete::delete(&s3, &db, &img).await {
            tracing::warn!(request_id = ctx.request_id, id = %img.id, error = %cleanup, "refused browser upload not yet removed; the sweep will");
        }
        return Err(e);
    }
    db.set_status_if(&img.id, Status::Uploading, Status::Pending)
        .await?;
    let img = db.get(&img.id).await?.ok_or(ApiError::NotFound)?;
    tracing::info!(request_id = ctx.request_id, id = %img.id, "browser upload stored");
    let location = format!("/images/{}", img.id);
    Ok(Answer::json(
        200,
        json!({"location": location, "key": key, "image": view(ctx, &img, Some(&img.owner))?}),
    ))
}

/// `DELETE /s3/multipart/{uploadId}`: frees the parts and the row. An
/// upload that is already gone (a refused completion deleted it; Uppy
/// aborts when such a file is removed) is aborted already: 200.
async fn abort(ctx: &Ctx<'_>, req: &Request, url: &Url, upload_id_raw: &str) -> ApiResult<Answer> {
    let upload_id = upload_id(upload_id_raw)?;
    let img = match owned_upload(ctx, req, url).await {
        Ok(img) => img,
        Err(ApiError::NotFound) => return Ok(Answer::json(200, json!({}))),
        Err(e) => return Err(e),
    };
    ctx.s3()
        .abort_multipart(&img.original_key, &upload_id)
        .await?;
    ctx.db().delete_row(&img.id).await?;
    tracing::info!(request_id = ctx.request_id, id = %img.id, "browser upload aborted");
    // Uppy reads a JSON body even here.
    Ok(Answer::json(200, json!({})))
}
