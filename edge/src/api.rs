//! The HTTP API: routing, handlers and the JSON views of images.

use std::time::Duration;

use futures_util::StreamExt;
use pixport_contract::{Failure, Status, StoredVariant, keys};
use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Request, ResponseBody};

use crate::body;
use crate::budget;
use crate::config::Config;
use crate::db::{Db, ListQuery};
use crate::error::{ApiError, ApiResult};
use crate::fields::{Metadata, Patch, clean_file_name};
use crate::model::Image;
use crate::ports::{Hold, MetadataStore, NewImage};
use crate::quota;
use crate::ratelimit::{self, Limiters};
use crate::sniff::{Format, Probe};
use crate::store::S3;
use crate::upload::{self, UploadRequest, Uploaded};
use crate::webhook::{self, Hooks};
use crate::{clock, delete, id, srcset};

mod delivery;
mod resumable;

pub const OPENAPI: &str = include_str!("../openapi.json");

/// A successful answer: status, JSON body or an object's bytes, extra headers.
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
    /// A stored object streamed to the client as S3 sent it (never with `body`).
    pub object: Option<ResponseBody>,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Answer {
            body: Some(body),
            ..Answer::empty(status)
        }
    }

    pub fn empty(status: u16) -> Self {
        Answer {
            status,
            body: None,
            object: None,
            headers: Vec::new(),
        }
    }

    fn object(object: ResponseBody) -> Self {
        Answer {
            object: Some(object),
            ..Answer::empty(200)
        }
    }

    fn with_headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers.extend(headers);
        self
    }
}

/// Everything a handler needs besides the request.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub request_id: &'a str,
    /// The burst limits, counted on every request (`ratelimit`).
    pub limiters: &'a Limiters,
    /// The worker's own origin as the client reached it: delivery URLs
    /// (`/images/{id}/{width}?format=`, the original) are built on it.
    pub base_url: &'a str,
}

impl Ctx<'_> {
    fn s3(&self) -> S3<'_> {
        S3 { cfg: self.cfg }
    }
    fn db(&self) -> Db<'_> {
        Db { cfg: self.cfg }
    }
}

pub async fn route(ctx: &Ctx<'_>, mut req: Request) -> ApiResult<Answer> {
    let url = req
        .url()
        .map_err(|_| ApiError::NoRoute("an invalid URL".into()))?;
    let path = url.path().to_string();
    // The raw method: worker's `Method` reads every method it does not know
    // (QUERY, TRACE spelled oddly, ...) as GET, which would answer them as GETs.
    let method = req.inner().method();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    limit(ctx, &req, &method, &segments).await?;
    if let Some(answer) = resumable::route(ctx, &mut req, &method, &segments, &url).await {
        return answer;
    }
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["healthz"]) => Ok(Answer::json(
            200,
            json!({
                "status": "ok",
                "wasm_memory_bytes": wasm_memory_bytes(),
                "upload_reserved_bytes": crate::budget::held(),
                "upload_budget_bytes": ctx.cfg.limits.memory_budget,
            }),
        )),
        ("GET", ["openapi.json"]) => {
            let doc: Value =
                serde_json::from_str(OPENAPI).map_err(|e| ApiError::Config(e.to_string()))?;
            Ok(Answer::json(200, doc))
        }
        // A diagnostic that reads a whole upload-sized body: off unless a
        // local development config turns it on, and even then for tokens only.
        ("POST", ["echo"]) if ctx.cfg.echo_enabled => echo(ctx, &mut req).await,
        ("POST", ["echo"]) => Err(ApiError::NoRoute(path)),
        ("POST", ["images"]) => create(ctx, &mut req).await,
        ("GET", ["images"]) => list(ctx, &req, &url).await,
        ("POST", ["uploads"]) => direct_upload(ctx, &mut req).await,
        ("GET", ["images", id]) => show(ctx, &req, id).await,
        ("GET", ["images", id, "original"]) => delivery::original(ctx, &req, id, false).await,
        ("HEAD", ["images", id, "original"]) => delivery::original(ctx, &req, id, true).await,
        ("GET", ["images", id, width]) => {
            delivery::variant(ctx, &req, &url, id, width, false).await
        }
        ("HEAD", ["images", id, width]) => {
            delivery::variant(ctx, &req, &url, id, width, true).await
        }
        ("PATCH", ["images", id]) => patch(ctx, &mut req, id).await,
        ("DELETE", ["images", id]) => delete(ctx, &req, id).await,
        ("PUT", ["webhook"]) => put_webhook(ctx, &mut req).await,
        ("GET", ["webhook"]) => get_webhook(ctx, &req).await,
        ("DELETE", ["webhook"]) => delete_webhook(ctx, &req).await,
        (_, ["healthz"] | ["openapi.json"]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["echo"] | ["uploads"]) => Err(ApiError::MethodNotAllowed("POST")),
        (_, ["images"]) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (_, ["images", _]) => Err(ApiError::MethodNotAllowed("GET, PATCH, DELETE")),
        (_, ["images", _, _]) => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        (_, ["webhook"]) => Err(ApiError::MethodNotAllowed("GET, PUT, DELETE")),
        _ => Err(ApiError::NoRoute(path)),
    }
}

/// Counts the request against its burst limit, before any route runs: a
/// write by a token against the token's writes, anything else (reads, and
/// writes without a valid token, which are refused next) against the
/// reads of its owner or client address (`ratelimit`).
async fn limit(ctx: &Ctx<'_>, req: &Request, method: &str, segments: &[&str]) -> ApiResult<()> {
    let owner = reader(ctx, req);
    let allowed = match owner.as_deref() {
        Some(owner) if ratelimit::counts_as_write(method, segments) => {
            ctx.limiters.writes.allow(owner).await
        }
        owner => match ratelimit::read_key(owner, header(req, "cf-connecting-ip").as_deref()) {
            Some(key) => ctx.limiters.reads.allow(&key).await,
            None => true,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: ratelimit::PERIOD_SECS,
        })
    }
}

/// The size of this isolate's wasm linear memory: it only ever grows, so it
/// is the high-water mark of everything the worker held at once (the upload
/// benchmark reads it to show memory stays flat whatever the upload size).
fn wasm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u64 * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

fn owner(ctx: &Ctx<'_>, req: &Request) -> ApiResult<String> {
    ctx.cfg
        .tokens
        .authenticate(header(req, "authorization").as_deref())
        .ok_or(ApiError::Unauthorized)
}

fn new_id() -> String {
    let mut random = [0u8; 10];
    // The Workers runtime always provides crypto.getRandomValues; should it
    // fail, the millisecond timestamp still keeps ids unique per request.
    let _ = getrandom::fill(&mut random);
    id::ulid(clock::unix_ms(clock::now()), random)
}

/// The caller's identity on a read, where a token is optional.
fn reader(ctx: &Ctx<'_>, req: &Request) -> Option<String> {
    ctx.cfg
        .tokens
        .authenticate(header(req, "authorization").as_deref())
}

/// The JSON view of an image.
///
/// Anyone holding a public image's id sees how to show it: its size,
/// format, variants and placeholder. What the owner wrote about it (title,
/// description, tags, extra), what identifies the uploaded file (its name,
/// size and SHA-256, which would confirm a guessed file) and the original
/// (which keeps the uploader's EXIF, GPS included) are the owner's alone.
/// No URL here carries a credential or expires (docs/security.md).
pub fn view(ctx: &Ctx<'_>, img: &Image, viewer: Option<&str>) -> ApiResult<Value> {
    let urls = img
        .variants
        .iter()
        .map(|v| variant_url(ctx, &img.id, v))
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
    if viewer == Some(img.owner.as_str())
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
        });
        if let Value::Object(owned) = owned {
            fields.extend(owned);
        }
    }
    Ok(out)
}

/// Where a client fetches one variant: under the public base (a CDN in
/// front of `variants/`) when one is set, else the worker's delivery route
/// pinned to the variant's format. Neither expires nor carries a
/// credential, so browsers and CDNs can cache what they point at.
fn variant_url(ctx: &Ctx<'_>, id: &str, v: &StoredVariant) -> ApiResult<String> {
    if let Some(url) = ctx.s3().public_variant_url(&v.key)? {
        return Ok(url);
    }
    Ok(format!(
        "{}/images/{id}/{}?format={}",
        ctx.base_url,
        v.width,
        v.format.as_str()
    ))
}

fn body_stream(req: &mut Request) -> ApiResult<(SendStream<body::Chunks>, body::Rest)> {
    let (chunks, rest) =
        body::chunks(req).map_err(|e| ApiError::MalformedMultipart(e.to_string()))?;
    Ok((SendStream(worker::send::SendWrapper::new(chunks)), rest))
}

/// `POST /echo`: the names and sizes of a multipart body's parts, stored
/// nowhere. A diagnostic for clients checking what their form really sends.
async fn echo(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    owner(ctx, req)?;
    // Bounded like an upload: no more parts or bytes than `POST /images` takes.
    let limits = &ctx.cfg.limits;
    let (max_parts, max_bytes) = (limits.max_fields + 1, limits.max_upload_bytes);
    let content_type = header(req, "content-type").unwrap_or_default();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        ApiError::UnsupportedMediaType("expected multipart/form-data with a boundary".into())
    })?;
    let (body, rest) = body_stream(req)?;
    let fields = echo_parts(body, boundary, max_parts, max_bytes).await;
    if fields.is_err() {
        // The client may still be sending: let the rest go so it sees the answer.
        rest.discard(upload::body_limit(limits)).await;
    }
    Ok(Answer::json(200, json!({"fields": fields?})))
}

async fn echo_parts(
    body: SendStream<body::Chunks>,
    boundary: String,
    max_parts: usize,
    max_bytes: u64,
) -> ApiResult<Vec<serde_json::Value>> {
    let body = crate::framing::Framed::new(body, &boundary);
    let mut form = multer::Multipart::new(body, boundary);
    let mut fields = Vec::new();
    let mut total = 0u64;
    let bad = |e: multer::Error| match crate::framing::framing_error(&e) {
        Some(bound) => ApiError::MalformedMultipart(bound.to_string()),
        None => ApiError::MalformedMultipart(e.to_string()),
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        if fields.len() == max_parts {
            return Err(ApiError::TooManyFields(max_parts));
        }
        let mut size = 0usize;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            size += chunk.len();
            total += chunk.len() as u64;
            if total > max_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "body over {max_bytes} bytes"
                )));
            }
        }
        fields.push(json!({"name": name, "file_name": file_name, "size": size}));
    }
    Ok(fields)
}

async fn create(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    let content_type = header(req, "content-type").unwrap_or_default();
    let idempotency_key = header(req, "idempotency-key").map(|k| k.trim().to_string());
    if idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 128)
    {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "1 to 128 characters",
        ));
    }
    let content_length = header(req, "content-length").and_then(|v| v.parse().ok());
    let allow_duplicates = duplicates_allowed(req)?;
    // The body bounds the file: its declared length is what the quota sees.
    if let Err(e) = within_quota(ctx, &owner, content_length.unwrap_or(0)).await {
        drain(req, upload::body_limit(&ctx.cfg.limits)).await;
        return Err(e);
    }
    // Admitted before a byte of the body is kept: a refusal stores nothing.
    let _permit = match budget::admit(&ctx.cfg.limits, content_length).await {
        Ok(p) => p,
        Err(e) => {
            drain(req, upload::body_limit(&ctx.cfg.limits)).await;
            return Err(e);
        }
    };
    let (body, rest) = body_stream(req)?;
    let up = UploadRequest {
        id: new_id(),
        owner,
        idempotency_key,
        content_length,
        allow_duplicates,
    };
    let (s3, db) = (ctx.s3(), ctx.db());
    let (status, img, duplicate) =
        match upload::upload(up, &ctx.cfg.limits, &content_type, body, &s3, &db).await {
            Ok(Uploaded::Created(img)) => (201, img, false),
            Ok(Uploaded::Replayed(img)) => (200, img, false),
            Ok(Uploaded::Duplicate(img)) => (200, img, true),
            Err(e) => {
                rest.discard(upload::body_limit(&ctx.cfg.limits)).await;
                return Err(e);
            }
        };
    tracing::info!(request_id = ctx.request_id, id = %img.id, status, duplicate, bytes = img.bytes, "upload stored");
    let mut a = Answer::json(status, view(ctx, &img, Some(&img.owner))?);
    a.headers.push(("location", format!("/images/{}", img.id)));
    if duplicate {
        a.headers.push((DUPLICATE_HEADER, "true".into()));
    }
    Ok(a)
}

/// Set on a `200` that returns the owner's existing image with the same bytes.
const DUPLICATE_HEADER: &str = "pixport-duplicate";

/// Reads `?duplicates=allow|return` (default `return`): whether an upload
/// of bytes the owner already has keeps a second copy.
fn duplicates_allowed(req: &Request) -> ApiResult<bool> {
    let url = req
        .url()
        .map_err(|_| ApiError::NoRoute("an invalid URL".into()))?;
    let mut allow = false;
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("duplicates", "allow") => allow = true,
            ("duplicates", "return") => allow = false,
            _ => return Err(ApiError::InvalidQuery("duplicates (allow or return)")),
        }
    }
    Ok(allow)
}

/// Refuses an upload that would take `owner` over its image or byte quota.
async fn within_quota(ctx: &Ctx<'_>, owner: &str, incoming: u64) -> ApiResult<()> {
    let usage = ctx.db().usage(owner).await?;
    quota::check(&ctx.cfg.limits, usage, incoming)
}

/// Lets a refused upload's unread body go (up to `max` bytes), so a client
/// still sending gets the answer instead of a reset connection.
async fn drain(req: &mut Request, max: u64) {
    body::Rest::of(req).discard(max).await;
}

async fn load(ctx: &Ctx<'_>, id: &str) -> ApiResult<Image> {
    if !id::is_valid(id) {
        return Err(ApiError::NotFound);
    }
    ctx.db().get(id).await?.ok_or(ApiError::NotFound)
}

/// Loads an image its owner may change; other owners get 404 so ids of
/// others' images are not confirmed.
async fn load_owned(ctx: &Ctx<'_>, req: &Request, id: &str) -> ApiResult<Image> {
    let owner = owner(ctx, req)?;
    let img = load(ctx, id).await?;
    if img.owner != owner {
        return Err(ApiError::NotFound);
    }
    Ok(img)
}

async fn show(ctx: &Ctx<'_>, req: &Request, id: &str) -> ApiResult<Answer> {
    let img = load(ctx, id).await?;
    let viewer = reader(ctx, req);
    // A deleted image is gone for everyone, its owner too, even while its
    // row stays as a tombstone. Rows still uploading or failed are the
    // owner's business: anyone else is told the id does not exist.
    if img.status == Status::Deleting
        || (!Status::PUBLIC.contains(&img.status) && viewer.as_deref() != Some(img.owner.as_str()))
    {
        return Err(ApiError::NotFound);
    }
    Ok(Answer::json(200, view(ctx, &img, viewer.as_deref())?))
}

const MAX_PAGE: u32 = 100;

async fn list(ctx: &Ctx<'_>, req: &Request, url: &worker::Url) -> ApiResult<Answer> {
    // A list is the caller's own images: listing everyone's would hand
    // out every public id with its metadata (docs/security.md).
    let owner = owner(ctx, req)?;
    let mut q = ListQuery {
        limit: 20,
        after: None,
        tag: None,
        status: None,
        owner: owner.clone(),
    };
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "limit" => {
                q.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(ApiError::InvalidQuery("limit"))?
            }
            "cursor" => {
                if !id::is_valid(&v) {
                    return Err(ApiError::InvalidQuery("cursor"));
                }
                q.after = Some(v.into_owned());
            }
            "tag" => q.tag = Some(v.into_owned()),
            "status" => q.status = Some(Status::parse(&v).ok_or(ApiError::InvalidQuery("status"))?),
            _ => return Err(ApiError::InvalidQuery("unknown parameter")),
        }
    }
    let (rows, more) = ctx.db().list(&q).await?;
    let next = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    let items = rows
        .iter()
        .map(|r| view(ctx, r, Some(&owner)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Answer::json(
        200,
        json!({"items": items, "next_cursor": next}),
    ))
}

/// Reads a JSON body of at most `max` bytes: refused by its declared length
/// before reading, and while streaming when it has none or lies.
async fn read_json<T: for<'de> Deserialize<'de>>(req: &mut Request, max: usize) -> ApiResult<T> {
    let too_large = || ApiError::PayloadTooLarge(format!("JSON body over {max} bytes"));
    let declared = header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let (mut stream, _) = body_stream(req)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

fn json_limit(cfg: &Config) -> usize {
    cfg.limits.max_field_bytes * (cfg.limits.max_fields + 4)
}

async fn patch(ctx: &Ctx<'_>, req: &mut Request, id: &str) -> ApiResult<Answer> {
    let mut img = load_owned(ctx, req, id).await?;
    if img.status == Status::Deleting {
        return Err(ApiError::NotFound);
    }
    let p: Patch = read_json(req, json_limit(ctx.cfg)).await?;
    p.apply(&mut img.meta, ctx.cfg.limits.max_field_bytes)?;
    let db = ctx.db();
    db.update_meta(id, &img.meta).await?;
    let img = db.get(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Answer::json(200, view(ctx, &img, Some(&img.owner))?))
}

async fn delete(ctx: &Ctx<'_>, req: &Request, id: &str) -> ApiResult<Answer> {
    let img = load_owned(ctx, req, id).await?;
    // The row is marked first: if S3 fails half way the row says so, and a
    // retried DELETE (or the sweep) finishes the job.
    delete::delete(&ctx.s3(), &ctx.db(), &img).await?;
    tracing::info!(request_id = ctx.request_id, id, "image deleted");
    Ok(Answer::empty(204))
}

/// `POST /uploads`: the client declares the file, gets a presigned PUT and
/// sends the bytes straight to S3; the S3 event does the rest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectUpload {
    content_type: String,
    #[serde(deserialize_with = "whole_number")]
    bytes: u64,
    sha256: String,
    file_name: Option<String>,
    #[serde(flatten)]
    meta: DirectMeta,
}

/// JSON has one number type: `4418065.0` is the integer the schema allows
/// (found by schemathesis), so a whole float counts; one past `u64` (read
/// as a float) saturates, and the size limit refuses it as too large.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}")))
}

#[derive(Deserialize, Default)]
struct DirectMeta {
    title: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    extra: Option<std::collections::BTreeMap<String, String>>,
}

async fn direct_upload(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    let allow_duplicates = duplicates_allowed(req)?;
    let d: DirectUpload = read_json(req, json_limit(ctx.cfg)).await?;
    let format = [Format::Jpeg, Format::Png, Format::WebP, Format::Gif]
        .into_iter()
        .find(|f| f.content_type() == d.content_type)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "{} is not an accepted image type",
                d.content_type
            ))
        })?;
    if d.bytes == 0 {
        return Err(ApiError::EmptyFile);
    }
    if d.bytes > ctx.cfg.limits.max_upload_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "file over {} bytes",
            ctx.cfg.limits.max_upload_bytes
        )));
    }
    let sha_ok = d.sha256.len() == 44 && {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&d.sha256)
            .is_ok_and(|b| b.len() == 32)
    };
    if !sha_ok {
        return Err(ApiError::invalid_field(
            "sha256",
            "base64 of the file's SHA-256 (44 characters)",
        ));
    }
    // The client declared the hash: a duplicate is found before any row or
    // presigned URL exists, and the client sends nothing.
    let duplicate = |img: Image| -> ApiResult<Answer> {
        tracing::info!(request_id = ctx.request_id, id = %img.id, "direct upload is a duplicate");
        let mut a = Answer::json(
            200,
            json!({"image": view(ctx, &img, Some(&img.owner))?, "upload": null}),
        );
        a.headers.push(("location", format!("/images/{}", img.id)));
        a.headers.push((DUPLICATE_HEADER, "true".into()));
        Ok(a)
    };
    if !allow_duplicates && let Some(img) = ctx.db().duplicate_of(&owner, &d.sha256, "").await? {
        return duplicate(img);
    }
    within_quota(ctx, &owner, d.bytes).await?;
    let mut meta = Metadata::default();
    Patch {
        title: d.meta.title.map(Some),
        description: d.meta.description.map(Some),
        tags: d.meta.tags,
        extra: d.meta.extra,
    }
    .apply(&mut meta, ctx.cfg.limits.max_field_bytes)?;
    let id = new_id();
    let new = NewImage {
        original_key: keys::original(&id),
        id,
        owner,
        idempotency_key: None,
        meta,
        file_name: d.file_name.as_deref().and_then(clean_file_name),
        probe: Probe {
            format,
            width: 0,
            height: 0,
        },
    };
    let s3 = ctx.s3();
    let put =
        s3.presign_client_put(&new.original_key, format.content_type(), d.bytes, &d.sha256)?;
    ctx.db().insert_direct(&new, d.bytes, &d.sha256).await?;
    // The same bytes declared twice at once both pass the lookup; the hold
    // lets one through. The other is not made to wait: the holder's client
    // may take minutes to send its bytes (its hold lapses after 30 s).
    if !allow_duplicates {
        let hold = ctx.db().hold_checksum(&new.owner, &d.sha256, &new.id).await;
        if !matches!(hold, Ok(Hold::Held)) {
            if let Err(e) = ctx.db().delete_row(&new.id).await {
                tracing::error!(id = %new.id, error = %e, "withdrawing a duplicate's row failed");
            }
            match hold? {
                Hold::Duplicate(img) => return duplicate(*img),
                Hold::InFlight | Hold::Held => return Err(ApiError::DuplicateInProgress),
            }
        }
    }
    let img = ctx.db().get(&new.id).await?.ok_or(ApiError::NotFound)?;
    let headers: serde_json::Map<String, Value> = put
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), Value::from(v.to_str().ok()?))))
        .collect();
    let expires_in = Duration::from_secs(ctx.cfg.presign_ttl_secs).as_secs();
    let mut a = Answer::json(
        201,
        json!({
            "image": view(ctx, &img, Some(&img.owner))?,
            "upload": {"method": "PUT", "url": put.url, "headers": headers, "expires_in": expires_in},
        }),
    );
    a.headers.push(("location", format!("/images/{}", img.id)));
    Ok(a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookUrl {
    url: String,
}

/// `PUT /webhook`: sets the token's endpoint; answers it with its secret.
async fn put_webhook(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    let body: WebhookUrl = read_json(req, json_limit(ctx.cfg)).await?;
    let mut random = [0u8; 24];
    getrandom::fill(&mut random).map_err(|e| ApiError::Config(format!("no randomness: {e}")))?;
    let hook = Hooks { cfg: ctx.cfg }
        .put(&owner, body.url.trim(), &webhook::new_secret(random))
        .await?;
    Ok(Answer::json(200, hook))
}

async fn get_webhook(ctx: &Ctx<'_>, req: &Request) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    let hook = Hooks { cfg: ctx.cfg }.get(&owner).await?;
    Ok(Answer::json(200, hook.ok_or(ApiError::NotFound)?))
}

async fn delete_webhook(ctx: &Ctx<'_>, req: &Request) -> ApiResult<Answer> {
    let owner = owner(ctx, req)?;
    if !(Hooks { cfg: ctx.cfg }).delete(&owner).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Answer::empty(204))
}

/// multer wants a `Send` stream, but a JS body stream is not `Send`. A Worker
/// isolate runs one thread, so the stream can never cross threads.
struct SendStream<S>(worker::send::SendWrapper<S>);

impl<S: futures_util::Stream + Unpin> futures_util::Stream for SendStream<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut *self.0).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(bytes: &str) -> serde_json::Result<DirectUpload> {
        serde_json::from_str(&format!(
            r#"{{"content_type":"image/png","bytes":{bytes},"sha256":"x","title":"t"}}"#
        ))
    }

    /// Found by schemathesis: `4418065.0` is a JSON Schema integer.
    #[test]
    fn bytes_take_whole_numbers_in_any_json_spelling() {
        assert_eq!(direct("4418065").map(|d| d.bytes).ok(), Some(4418065));
        assert_eq!(direct("4418065.0").map(|d| d.bytes).ok(), Some(4418065));
        assert_eq!(direct("1e3").map(|d| d.bytes).ok(), Some(1000));
        let huge = direct("22077185055095156375552").map(|d| d.bytes).ok();
        assert_eq!(huge, Some(u64::MAX));
        assert!(direct("1.5").is_err());
        assert!(direct("-1").is_err());
        assert!(direct("\"10\"").is_err());
    }
}
