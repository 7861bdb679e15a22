//! `GET /images`, `GET|PATCH|DELETE /images/{id}`.

use serde_json::json;
use worker::{Request, Url};

use pixport_contract::Status;

use crate::domain::fields::{Patch, Visibility};
use crate::domain::id;
use crate::domain::model::{ImagePage, ListQuery};
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::cache;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract;
use crate::http::views;

/// The most images one page lists.
const MAX_PAGE: u32 = 100;

pub async fn show(ctx: &Ctx<'_>, id: &str) -> ApiResult<Answer> {
    let owner = ctx.owner_if_any().map(str::to_string);
    let img = ctx.app.images().visible(id, owner.as_deref()).await?;
    Ok(Answer::json(
        200,
        views::image(ctx, &img, owner.as_deref())?,
    ))
}

/// A list is the caller's own images: listing everyone's would hand out
/// every public id with its metadata (docs/security.md).
pub async fn list(ctx: &Ctx<'_>, url: &Url) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let q = list_query(url, Some(owner), None)?;
    render_page(ctx, ctx.app.images().list(&q).await?, false)
}

/// `GET /admin/images`: every owner's images, `failed` unless another
/// status is asked for, each with its owner: what operators look at first.
pub async fn list_all(ctx: &Ctx<'_>, url: &Url) -> ApiResult<Answer> {
    let q = list_query(url, None, Some(Status::Failed))?;
    render_page(ctx, ctx.app.images().list(&q).await?, true)
}

/// A page as `{items, next_cursor}`, each image in its owner's view (and
/// naming its owner, for operators).
fn render_page(ctx: &Ctx<'_>, page: ImagePage, with_owner: bool) -> ApiResult<Answer> {
    let next = if page.more {
        page.images.last().map(|r| r.id.clone())
    } else {
        None
    };
    let items = page
        .images
        .iter()
        .map(|r| {
            let mut v = views::own_image(ctx, r)?;
            if with_owner {
                v["owner"] = r.owner.clone().into();
            }
            Ok(v)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Answer::json(
        200,
        json!({"items": items, "next_cursor": next}),
    ))
}

fn list_query(url: &Url, owner: Option<String>, status: Option<Status>) -> ApiResult<ListQuery> {
    let mut q = ListQuery {
        limit: 20,
        after: None,
        tag: None,
        status,
        owner,
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
    Ok(q)
}

pub async fn edit(ctx: &Ctx<'_>, req: &mut Request, id: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    // The image is looked up before the body is read: another owner's id
    // is a 404 whatever the body says.
    let images = ctx.app.images();
    let img = images.owned(&owner, id).await?;
    let patch: Patch = extract::read_json(req, ctx.app.config.limits.json_limit()).await?;
    let was = img.meta.visibility;
    let img = images.edit(img, patch).await?;
    if was == Visibility::Public && img.meta.visibility == Visibility::Private {
        cache::forget(ctx, &img).await;
    }
    Ok(Answer::json(200, views::own_image(ctx, &img)?))
}

pub async fn delete(ctx: &Ctx<'_>, id: &str) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let img = ctx.app.images().delete(&owner, id).await?;
    tracing::info!(request_id = ctx.request_id, id, "image deleted");
    cache::forget(ctx, &img).await;
    Ok(Answer::empty(204))
}
