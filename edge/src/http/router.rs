//! The route table: method and path to a handler. A known path with
//! another method is 405 with the methods it takes (`Allow`, RFC 9110);
//! an unknown path is 404 `no_route`. Every request is counted against its
//! burst limit first (`limit`).

use worker::Request;

use super::Ctx;
use super::answer::Answer;
use super::error::{ApiError, ApiResult};
use super::extract;
use super::handlers::{browser, delivery, images, system, uploads, webhook};
use crate::runtime::ratelimit;

pub async fn route(ctx: &Ctx<'_>, mut req: Request) -> ApiResult<Answer> {
    let url = req
        .url()
        .map_err(|_| ApiError::NoRoute("an invalid URL".into()))?;
    let path = url.path().to_string();
    let method = req.inner().method();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    limit(ctx, &req, &method, &segments).await?;
    let req = &mut req;
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["healthz"]) => system::health(ctx),
        ("GET", ["openapi.json"]) => system::openapi(),
        // A diagnostic that reads a whole upload-sized body: off unless a
        // local development config turns it on, and even then for tokens only.
        ("POST", ["echo"]) if ctx.app.config.echo_enabled => system::echo(ctx, req).await,
        ("POST", ["echo"]) => Err(ApiError::NoRoute(path)),
        ("POST", ["images"]) => uploads::form(ctx, req, &url).await,
        ("GET", ["images"]) => images::list(ctx, req, &url).await,
        ("POST", ["uploads"]) => uploads::direct(ctx, req, &url).await,
        ("GET", ["images", id]) => images::show(ctx, req, id).await,
        ("PATCH", ["images", id]) => images::edit(ctx, req, id).await,
        ("DELETE", ["images", id]) => images::delete(ctx, req, id).await,
        ("GET", ["images", id, "original"]) => delivery::original(ctx, req, id, false).await,
        ("HEAD", ["images", id, "original"]) => delivery::original(ctx, req, id, true).await,
        ("GET", ["images", id, width]) => delivery::variant(ctx, req, &url, id, width, false).await,
        ("HEAD", ["images", id, width]) => delivery::variant(ctx, req, &url, id, width, true).await,
        ("PUT", ["webhook"]) => webhook::put(ctx, req).await,
        ("GET", ["webhook"]) => webhook::get(ctx, req).await,
        ("DELETE", ["webhook"]) => webhook::delete(ctx, req).await,
        ("GET", ["s3", "params"]) => browser::params(ctx, req, &url).await.map_err(for_uppy),
        ("POST", ["s3", "multipart"]) => browser::create(ctx, req).await.map_err(for_uppy),
        ("GET", ["s3", "multipart", upload_id]) => browser::list(ctx, req, &url, upload_id)
            .await
            .map_err(for_uppy),
        ("DELETE", ["s3", "multipart", upload_id]) => browser::abort(ctx, req, &url, upload_id)
            .await
            .map_err(for_uppy),
        // `complete` is no part number: that path takes POST only.
        (_, ["s3", "multipart", _, "complete"]) if method != "POST" => {
            Err(for_uppy(ApiError::MethodNotAllowed("POST")))
        }
        ("GET", ["s3", "multipart", upload_id, part]) => {
            browser::sign(ctx, req, &url, upload_id, part)
                .await
                .map_err(for_uppy)
        }
        ("POST", ["s3", "multipart", upload_id, "complete"]) => {
            browser::complete(ctx, req, &url, upload_id)
                .await
                .map_err(for_uppy)
        }
        (_, ["healthz"] | ["openapi.json"]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["echo"] | ["uploads"]) => Err(ApiError::MethodNotAllowed("POST")),
        (_, ["images"]) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (_, ["images", _]) => Err(ApiError::MethodNotAllowed("GET, PATCH, DELETE")),
        (_, ["images", _, _]) => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        (_, ["webhook"]) => Err(ApiError::MethodNotAllowed("GET, PUT, DELETE")),
        (_, ["s3", "multipart"] | ["s3", "multipart", _, "complete"]) => {
            Err(for_uppy(ApiError::MethodNotAllowed("POST")))
        }
        (_, ["s3", "params"] | ["s3", "multipart", _, _]) => {
            Err(for_uppy(ApiError::MethodNotAllowed("GET")))
        }
        (_, ["s3", "multipart", _]) => Err(for_uppy(ApiError::MethodNotAllowed("GET, DELETE"))),
        _ => Err(ApiError::NoRoute(path)),
    }
}

fn for_uppy(e: ApiError) -> ApiError {
    ApiError::ForUppy(Box::new(e))
}

/// Counts the request against its burst limit, before any route runs: a
/// write by a token against the token's writes, anything else (reads, and
/// writes without a valid token, which are refused next) against the
/// reads of its owner or client address (`ratelimit`).
async fn limit(ctx: &Ctx<'_>, req: &Request, method: &str, segments: &[&str]) -> ApiResult<()> {
    let owner = extract::owner_if_any(ctx, req);
    let limiters = &ctx.app.limiters;
    let allowed = match owner.as_deref() {
        Some(owner) if ratelimit::counts_as_write(method, segments) => {
            limiters.writes.allow(owner).await
        }
        owner => {
            match ratelimit::read_key(owner, extract::header(req, "cf-connecting-ip").as_deref()) {
                Some(key) => limiters.reads.allow(&key).await,
                None => true,
            }
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: ratelimit::PERIOD_SECS,
        })
    }
}
