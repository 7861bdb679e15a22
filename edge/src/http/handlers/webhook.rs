//! `PUT|GET|DELETE /webhook`: the caller's endpoint.

use serde::Deserialize;
use serde_json::json;
use worker::Request;

use crate::domain::error::Error;
use crate::domain::ports::Endpoint;
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::ApiResult;
use crate::http::extract;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookUrl {
    url: String,
}

fn render(e: &Endpoint) -> Answer {
    Answer::json(200, json!({"url": e.url, "secret": e.secret}))
}

/// Sets the endpoint; answers it with its secret.
pub async fn put(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let body: WebhookUrl = extract::read_json(req, ctx.app.config.limits.json_limit()).await?;
    let endpoint = ctx.app.webhooks().put(&owner, &body.url).await?;
    Ok(render(&endpoint))
}

pub async fn get(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let endpoint = ctx
        .app
        .webhooks()
        .get(&owner)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(render(&endpoint))
}

pub async fn delete(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    ctx.app.webhooks().delete(&owner).await?;
    Ok(Answer::empty(204))
}
