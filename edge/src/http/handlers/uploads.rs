//! `POST /images` (a form upload) and `POST /uploads` (a direct upload).

use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Request, Url};

use crate::domain::error::Error;
use crate::domain::fields::{Metadata, Patch, Visibility, clean_file_name};
use crate::domain::id;
use crate::domain::model::Image;
use crate::domain::upload::direct::{DirectFile, Granted};
use crate::domain::upload::{FormUpload, Uploaded};
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::ApiResult;
use crate::http::extract::{self, SendStream};
use crate::http::views;
use crate::runtime::{body, budget, clock};

/// Set on a `200` that returns the owner's existing image with the same bytes.
const DUPLICATE_HEADER: &str = "pixport-duplicate";

fn located(a: Answer, img: &Image) -> Answer {
    a.with_header("location", format!("/images/{}", img.id))
}

/// `POST /images`: admitted against the quota and the isolate's memory
/// budget before a byte of the body is kept, then streamed through the
/// upload service; a refusal lets the unread body go so the client sees it.
pub async fn form(ctx: &Ctx<'_>, req: &mut Request, url: &Url) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let limits = &ctx.app.config.limits;
    let content_type = extract::header(req, "content-type").unwrap_or_default();
    let idempotency_key = extract::header(req, "idempotency-key").map(|k| k.trim().to_string());
    if idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 128)
    {
        return Err(Error::invalid_field("Idempotency-Key", "1 to 128 characters").into());
    }
    let content_length = extract::header(req, "content-length").and_then(|v| v.parse().ok());
    let allow_duplicates = extract::duplicates_allowed(url)?;
    let uploads = ctx.app.uploads(Some(ctx.request_id));
    // The body bounds the file: its declared length is what the quota sees.
    // A body that fits one PUT is read whole before its row is claimed, and
    // the claim counts it exactly, so only a body that may stream to S3 is
    // counted early (a refusal then reads none of it).
    let may_stream = content_length.is_none_or(|n| n > limits.multipart_threshold as u64);
    if may_stream
        && let Err(e) = uploads
            .within_quota(&owner, content_length.unwrap_or(0))
            .await
    {
        extract::drain(req, limits.body_limit()).await;
        return Err(e.into());
    }
    // Admitted before a byte of the body is kept: a refusal stores nothing.
    // The body is then read only as far as its grant covers, and only while
    // the client keeps sending (`budget::Metered`).
    let permit = match budget::admit(&limits.sizing(), &owner, content_length).await {
        Ok(p) => p,
        Err(refused) => {
            extract::drain(req, limits.body_limit()).await;
            return Err(Error::from(refused).into());
        }
    };
    let (chunks, rest) = body::chunks(req).map_err(|e| Error::MalformedMultipart(e.to_string()))?;
    let chunks = budget::Metered::chunks(
        chunks,
        permit.clone(),
        ctx.app.config.upload_idle_timeout,
        clock::sleep,
    );
    let body = SendStream(worker::send::SendWrapper::new(chunks));
    let grant = ctx.caller()?.grant.clone();
    let up = FormUpload {
        id: grant
            .as_ref()
            .map_or_else(id::new_id, |g| g.image_id.clone()),
        grant,
        owner,
        idempotency_key,
        content_length,
        allow_duplicates,
    };
    let (status, img, duplicate) = match uploads.form(up, &content_type, body).await {
        Ok(Uploaded::Created(img)) => (201, img, false),
        Ok(Uploaded::Replayed(img)) => (200, img, false),
        Ok(Uploaded::Duplicate(img)) => (200, img, true),
        // A stalled client is sending nothing: there is no rest to read.
        Err(e @ Error::UploadStalled { .. }) => return Err(e.into()),
        Err(e) => {
            rest.discard(limits.body_limit()).await;
            return Err(e.into());
        }
    };
    drop(permit);
    tracing::info!(
        metric = "upload",
        route = "form",
        request_id = ctx.request_id,
        id = %img.id,
        status,
        duplicate,
        bytes = img.bytes,
        "upload stored"
    );
    let mut a = located(Answer::json(status, views::own_image(ctx, &img)?), &img);
    if duplicate {
        a = a.with_header(DUPLICATE_HEADER, "true".into());
    }
    Ok(a)
}

/// `POST /uploads`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectBody {
    content_type: String,
    #[serde(deserialize_with = "extract::whole_number")]
    bytes: u64,
    sha256: String,
    file_name: Option<String>,
    #[serde(flatten)]
    meta: DirectMeta,
}

#[derive(Deserialize, Default)]
struct DirectMeta {
    title: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    extra: Option<std::collections::BTreeMap<String, String>>,
    visibility: Option<Visibility>,
}

/// `POST /uploads`: the client declares the file, gets a presigned PUT and
/// sends the bytes straight to S3; the S3 event does the rest.
pub async fn direct(ctx: &Ctx<'_>, req: &mut Request, url: &Url) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let allow_duplicates = extract::duplicates_allowed(url)?;
    let limits = &ctx.app.config.limits;
    let d: DirectBody = extract::read_json(req, limits.json_limit()).await?;
    let mut meta = Metadata::default();
    Patch {
        title: d.meta.title.map(Some),
        description: d.meta.description.map(Some),
        tags: d.meta.tags,
        extra: d.meta.extra,
        visibility: d.meta.visibility,
    }
    .apply(&mut meta, limits.max_field_bytes)?;
    let file = DirectFile {
        owner,
        content_type: d.content_type,
        bytes: d.bytes,
        sha256_b64: d.sha256,
        file_name: d.file_name.as_deref().and_then(clean_file_name),
        meta,
        allow_duplicates,
        grant: ctx.caller()?.grant.clone(),
    };
    match ctx.app.uploads(Some(ctx.request_id)).direct(file).await? {
        Granted::Duplicate(img) => {
            tracing::info!(request_id = ctx.request_id, id = %img.id, "direct upload is a duplicate");
            let body = json!({"image": views::own_image(ctx, &img)?, "upload": null});
            Ok(located(Answer::json(200, body), &img).with_header(DUPLICATE_HEADER, "true".into()))
        }
        Granted::Put { image, put } => {
            let headers: serde_json::Map<String, Value> = put
                .headers
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect();
            let body = json!({
                "image": views::own_image(ctx, &image)?,
                "upload": {
                    "method": "PUT",
                    "url": put.url,
                    "headers": headers,
                    "expires_in": ctx.app.config.presign_ttl_secs,
                },
            });
            Ok(located(Answer::json(201, body), &image))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(bytes: &str) -> serde_json::Result<DirectBody> {
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
