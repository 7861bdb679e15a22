//! `PUT|GET|DELETE /webhook`: the caller's endpoint; `GET
//! /webhooks/deliveries` and `POST /webhooks/deliveries/{id}/redeliver`:
//! its events; `POST /internal/wake`: the Lambda's wake-up call.

use pixport_contract::wake::call;
use serde::Deserialize;
use serde_json::json;
use worker::{Request, Url};

use crate::app::events;
use crate::domain::error::Error;
use crate::domain::ports::{Delivery, Endpoint};
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract;
use crate::runtime::clock;

/// The most events one page of the delivery log lists.
const MAX_PAGE: u32 = 100;
/// A wake-up call's body is a few dozen bytes of JSON.
const MAX_WAKE_BODY: usize = 4096;

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

/// One event of the log as JSON: `id` is the `webhook-id` it is (or was)
/// sent with, `null` until its first attempt.
fn delivery(d: &Delivery) -> serde_json::Value {
    json!({
        "id": d.event_id.as_ref().map(|e| format!("msg_{e}")),
        "type": d.event_type,
        "image_id": d.image_id,
        "status": d.state.as_str(),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "next_attempt_at": d.next_attempt_at,
        "delivered_at": d.delivered_at,
        "gave_up_at": d.gave_up_at,
    })
}

/// The caller's events, newest first: `?limit=` (1-100, 20) and the
/// `cursor` a page's `next_cursor` gave.
pub async fn deliveries(ctx: &Ctx<'_>, url: &Url) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let (mut limit, mut before) = (20, None);
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(ApiError::InvalidQuery("limit"))?;
            }
            "cursor" => {
                before = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ApiError::InvalidQuery("cursor"))?,
                );
            }
            _ => return Err(ApiError::InvalidQuery("unknown parameter")),
        }
    }
    let (page, more) = ctx.app.webhooks().deliveries(&owner, limit, before).await?;
    let next = more
        .then(|| page.last().map(|d| d.outbox_id.to_string()))
        .flatten();
    let items: Vec<_> = page.iter().map(delivery).collect();
    Ok(Answer::json(
        200,
        json!({"items": items, "next_cursor": next}),
    ))
}

/// Queues one of the caller's events to be sent again now (same
/// `webhook-id`, one more attempt) and starts a delivery run after the
/// response.
pub async fn redeliver(ctx: &Ctx<'_>, id: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let d = ctx.app.webhooks().redeliver(&owner, id).await?;
    tracing::info!(
        request_id = ctx.request_id,
        event = id,
        "webhook event requeued"
    );
    ctx.after_response(events::wake);
    Ok(Answer::json(202, delivery(&d)))
}

/// The Lambda's wake-up call: signed with `WAKE_SECRET` over its
/// timestamp and body (`pixport_contract::wake::call`), refused 401
/// `wake_refused` otherwise; no route where no secret is configured. It
/// starts a delivery run after the response and answers at once, so the
/// Lambda waits for no receiver.
pub async fn wake(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let Some(secret) = ctx.app.config.wake_secret.as_deref() else {
        return Err(ApiError::NoRoute(call::PATH.into()));
    };
    let timestamp = extract::header(req, call::TIMESTAMP_HEADER).unwrap_or_default();
    let signature = extract::header(req, call::SIGNATURE_HEADER).unwrap_or_default();
    let body = extract::read_bytes(req, MAX_WAKE_BODY).await?;
    let now = clock::unix_ms(clock::now()) / 1000;
    call::verify(secret, &timestamp, &signature, &body, now).map_err(Error::WakeRefused)?;
    // What the Lambda says it settled, for following one upload's path.
    let said: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    tracing::info!(
        request_id = ctx.request_id,
        upload_request_id = said["request_id"].as_str(),
        image_id = said["image_id"].as_str(),
        status = said["status"].as_str(),
        metric = "wake",
        "wake-up call"
    );
    ctx.after_response(events::wake);
    Ok(Answer::json(202, json!({"accepted": true})))
}
