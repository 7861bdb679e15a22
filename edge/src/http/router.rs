//! The route table: method and path to a handler. A known path with
//! another method is 405 with the methods it takes (`Allow`, RFC 9110);
//! an unknown path is 404 `no_route`. Every request is counted against its
//! burst limit first (`limit`), then its caller is checked against what
//! the route needs (`need`: the one table of scopes, `domain::auth`).

use worker::Request;

use super::Ctx;
use super::answer::Answer;
use super::error::{ApiError, ApiResult};
use super::extract;
use super::handlers::{browser, delivery, grants, images, reprocess, system, uploads, webhook};
use crate::domain::auth::{self, Need};
use crate::runtime::ratelimit;

pub async fn route(ctx: &Ctx<'_>, mut req: Request) -> ApiResult<Answer> {
    let url = req
        .url()
        .map_err(|_| ApiError::NoRoute("an invalid URL".into()))?;
    let path = url.path().to_string();
    let method = req.inner().method();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    limit(ctx, &req, &method, &segments).await?;
    let needs = need(ctx, &method, &segments);
    auth::allow(ctx.caller.as_ref(), needs).map_err(|e| {
        let e = match e {
            None => ApiError::Unauthorized,
            Some(e) => ApiError::Domain(e),
        };
        if segments.first() == Some(&"s3") {
            for_uppy(e)
        } else {
            e
        }
    })?;
    let req = &mut req;
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["healthz"]) => system::health(ctx),
        ("GET", ["me"]) => system::me(ctx),
        ("POST", ["grants"]) => grants::mint(ctx, req).await,
        ("GET", ["openapi.json"]) => system::openapi(),
        // A diagnostic that reads a whole upload-sized body: off unless a
        // local development config turns it on, and even then for tokens only.
        ("POST", ["echo"]) if ctx.app.config.echo_enabled => system::echo(ctx, req).await,
        ("POST", ["echo"]) => Err(ApiError::NoRoute(path)),
        ("POST", ["images"]) => uploads::form(ctx, req, &url).await,
        ("GET", ["images"]) => images::list(ctx, &url).await,
        ("GET", ["admin", "images"]) => images::list_all(ctx, &url).await,
        ("POST", ["admin", "reprocess"]) => reprocess::batch(ctx, req).await,
        ("GET", ["admin", "reprocess"]) => reprocess::state(ctx).await,
        ("POST", ["images", id, "reprocess"]) => reprocess::one(ctx, id).await,
        // Not a width: the path takes POST only.
        (_, ["images", _, "reprocess"]) => Err(ApiError::MethodNotAllowed("POST")),
        ("POST", ["uploads"]) => uploads::direct(ctx, req, &url).await,
        ("GET", ["images", id]) => images::show(ctx, id).await,
        ("PATCH", ["images", id]) => images::edit(ctx, req, id).await,
        ("DELETE", ["images", id]) => images::delete(ctx, id).await,
        ("GET", ["images", id, "original"]) => delivery::original(ctx, id, false).await,
        ("HEAD", ["images", id, "original"]) => delivery::original(ctx, id, true).await,
        ("GET", ["images", id, width]) => delivery::variant(ctx, req, &url, id, width, false).await,
        ("HEAD", ["images", id, width]) => delivery::variant(ctx, req, &url, id, width, true).await,
        ("PUT", ["webhook"]) => webhook::put(ctx, req).await,
        ("GET", ["webhook"]) => webhook::get(ctx).await,
        ("DELETE", ["webhook"]) => webhook::delete(ctx).await,
        ("GET", ["webhooks", "deliveries"]) => webhook::deliveries(ctx, &url).await,
        ("POST", ["webhooks", "deliveries", id, "redeliver"]) => webhook::redeliver(ctx, id).await,
        ("POST", ["internal", "wake"]) => webhook::wake(ctx, req).await,
        ("GET", ["s3", "params"]) => browser::params(ctx, &url).await.map_err(for_uppy),
        ("POST", ["s3", "multipart"]) => browser::create(ctx, req).await.map_err(for_uppy),
        ("GET", ["s3", "multipart", upload_id]) => {
            browser::list(ctx, &url, upload_id).await.map_err(for_uppy)
        }
        ("DELETE", ["s3", "multipart", upload_id]) => {
            browser::abort(ctx, &url, upload_id).await.map_err(for_uppy)
        }
        // `complete` is no part number: that path takes POST only.
        (_, ["s3", "multipart", _, "complete"]) if method != "POST" => {
            Err(for_uppy(ApiError::MethodNotAllowed("POST")))
        }
        ("GET", ["s3", "multipart", upload_id, part]) => browser::sign(ctx, &url, upload_id, part)
            .await
            .map_err(for_uppy),
        ("POST", ["s3", "multipart", upload_id, "complete"]) => {
            browser::complete(ctx, req, &url, upload_id)
                .await
                .map_err(for_uppy)
        }
        (_, ["healthz"] | ["openapi.json"] | ["me"]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["echo"] | ["uploads"] | ["grants"]) => Err(ApiError::MethodNotAllowed("POST")),
        (_, ["images"]) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (_, ["admin", "images"]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["admin", "reprocess"]) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (_, ["images", _]) => Err(ApiError::MethodNotAllowed("GET, PATCH, DELETE")),
        (_, ["images", _, _]) => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        (_, ["webhook"]) => Err(ApiError::MethodNotAllowed("GET, PUT, DELETE")),
        (_, ["webhooks", "deliveries"]) => Err(ApiError::MethodNotAllowed("GET")),
        (_, ["webhooks", "deliveries", _, "redeliver"] | ["internal", "wake"]) => {
            Err(ApiError::MethodNotAllowed("POST"))
        }
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

/// What each route needs of its caller. Reads of public images need
/// nobody (a caller sees more of its own); uploads take a write scope or
/// an upload grant; everything else a token's read or write scope.
fn need(ctx: &Ctx<'_>, method: &str, segments: &[&str]) -> Need {
    match (method, segments) {
        ("GET", ["me"]) => Need::AnyCaller,
        ("POST", ["echo"]) if ctx.app.config.echo_enabled => Need::Write,
        ("POST", ["images"] | ["uploads"]) => Need::Upload,
        ("GET", ["s3", "params"] | ["s3", "multipart", _] | ["s3", "multipart", _, _])
        | ("POST", ["s3", "multipart"] | ["s3", "multipart", _, "complete"])
        | ("DELETE", ["s3", "multipart", _]) => Need::Upload,
        ("GET", ["images"]) => Need::Read,
        ("GET" | "HEAD", ["images", _, "original"]) => Need::Read,
        ("POST", ["images", _, "reprocess"]) => Need::Write,
        ("GET" | "HEAD", ["images", _] | ["images", _, _]) => Need::Nobody,
        ("PATCH" | "DELETE", ["images", _]) => Need::Write,
        ("GET", ["webhook"]) => Need::Read,
        ("PUT" | "DELETE", ["webhook"]) => Need::Write,
        ("GET", ["webhooks", "deliveries"]) => Need::Read,
        ("POST", ["webhooks", "deliveries", _, "redeliver"]) => Need::Write,
        // Signed with the wake secret instead of a caller's credential.
        ("POST", ["internal", "wake"]) => Need::Nobody,
        ("POST", ["grants"]) => Need::Write,
        ("GET", ["admin", "images"]) | (_, ["admin", "reprocess"]) => Need::Admin,
        _ => Need::Nobody,
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
    let owner = ctx.caller.as_ref().map(|c| c.owner.as_str());
    let limiters = &ctx.app.limiters;
    let allowed = match owner {
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
