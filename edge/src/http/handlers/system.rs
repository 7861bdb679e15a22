//! `GET /healthz`, `GET /me`, `GET /openapi.json` and the `POST /echo`
//! diagnostic.

use serde_json::{Value, json};
use worker::Request;

use crate::domain::error::Error;
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{self, SendStream};
use crate::runtime::{body, budget};

pub const OPENAPI: &str = include_str!("../../../openapi.json");

pub fn health(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    Ok(Answer::json(
        200,
        json!({
            "status": "ok",
            "wasm_memory_bytes": wasm_memory_bytes(),
            "upload_reserved_bytes": budget::held(),
            "upload_budget_bytes": ctx.app.config.limits.memory_budget,
        }),
    ))
}

/// `GET /me`: who the credential stands for, so an operator can name a
/// bare token's owner in `API_TOKENS` (`owner=token`) and rotate it.
pub fn me(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let caller = ctx.caller()?;
    Ok(Answer::json(
        200,
        json!({
            "owner": caller.owner,
            "scopes": caller.scopes.names(),
            "grant": caller.grant.as_ref().map(|g| json!({
                "image_id": g.image_id, "expires_at": g.expires_at,
            })),
        }),
    ))
}

pub fn openapi() -> ApiResult<Answer> {
    let doc: Value = serde_json::from_str(OPENAPI)
        .map_err(|e| Error::Runtime(format!("openapi.json does not parse: {e}")))?;
    Ok(Answer::json(200, doc))
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

/// `POST /echo`: the names and sizes of a multipart body's parts, stored
/// nowhere. A diagnostic for clients checking what their form really sends.
pub async fn echo(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    // Bounded like an upload: no more parts or bytes than `POST /images` takes.
    let limits = &ctx.app.config.limits;
    let (max_parts, max_bytes) = (limits.max_fields + 1, limits.image.max_bytes);
    let content_type = extract::header(req, "content-type").unwrap_or_default();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        Error::UnsupportedMediaType("expected multipart/form-data with a boundary".into())
    })?;
    let (body, rest) = extract::body_stream(req)?;
    let fields = echo_parts(body, boundary, max_parts, max_bytes).await;
    if fields.is_err() {
        // The client may still be sending: let the rest go so it sees the answer.
        rest.discard(limits.body_limit()).await;
    }
    Ok(Answer::json(200, json!({"fields": fields?})))
}

async fn echo_parts(
    body: SendStream<body::Chunks>,
    boundary: String,
    max_parts: usize,
    max_bytes: u64,
) -> ApiResult<Vec<Value>> {
    use crate::domain::upload::framing;
    let body = framing::Framed::new(body, &boundary);
    let mut form = multer::Multipart::new(body, boundary);
    let mut fields = Vec::new();
    let mut total = 0u64;
    let bad = |e: multer::Error| -> ApiError {
        match framing::framing_error(&e) {
            Some(bound) => Error::MalformedMultipart(bound.to_string()).into(),
            None => Error::MalformedMultipart(e.to_string()).into(),
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        if fields.len() == max_parts {
            return Err(Error::TooManyFields(max_parts).into());
        }
        let mut size = 0usize;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            size += chunk.len();
            total += chunk.len() as u64;
            if total > max_bytes {
                return Err(Error::PayloadTooLarge(format!("body over {max_bytes} bytes")).into());
            }
        }
        fields.push(json!({"name": name, "file_name": file_name, "size": size}));
    }
    Ok(fields)
}
