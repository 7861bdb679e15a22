//! `POST /images/{id}/reprocess`: the owner asks for one image to be made
//! again; `POST /admin/reprocess`: operators queue a page of images (one
//! owner's or everyone's, those another recipe made); `GET /admin/reprocess`:
//! how the queue stands and which recipes made the `ready` images.
//! The Lambda's scheduled run does the work (`domain::reprocess`).

use serde::Deserialize;
use serde_json::json;
use worker::Request;

use crate::domain::ports::Selection;
use crate::domain::reprocess::MAX_BATCH;
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::ApiResult;
use crate::http::extract;

pub async fn one(ctx: &Ctx<'_>, id: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    ctx.app.reprocess().one(&owner, id).await?;
    ctx.app.wake_redrive("reprocess").await;
    tracing::info!(request_id = ctx.request_id, id, "reprocess queued");
    Ok(Answer::json(202, json!({ "id": id, "queued": true })))
}

/// `POST /admin/reprocess`'s body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    owner: Option<String>,
    except_recipe: Option<String>,
    after: Option<String>,
    #[serde(default, deserialize_with = "extract::whole_number_opt")]
    limit: Option<u64>,
}

pub async fn batch(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let body: BatchBody = extract::read_json(req, ctx.app.config.limits.json_limit()).await?;
    let limit = u32::try_from(body.limit.unwrap_or(u64::from(MAX_BATCH))).unwrap_or(u32::MAX);
    let sel = Selection {
        owner: body.owner,
        except_recipe: body.except_recipe,
    };
    let done = ctx
        .app
        .reprocess()
        .batch(&sel, body.after.as_deref(), limit)
        .await?;
    if done.queued > 0 {
        ctx.app.wake_redrive("reprocess").await;
    }
    tracing::info!(request_id = ctx.request_id, queued = done.queued, next = ?done.next, "reprocess batch queued");
    Ok(Answer::json(
        200,
        json!({ "queued": done.queued, "next": done.next }),
    ))
}

pub async fn state(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let s = ctx.app.reprocess().state().await?;
    let recipes: Vec<_> = s
        .recipes
        .into_iter()
        .map(|(recipe, images)| json!({ "recipe": recipe, "images": images }))
        .collect();
    Ok(Answer::json(
        200,
        json!({ "queued": s.queued, "recipes": recipes }),
    ))
}
