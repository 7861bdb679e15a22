//! `POST /grants`: an upload grant for the caller's next image
//! (`domain::grant`).

use serde::Deserialize;
use serde_json::json;
use worker::Request;

use crate::domain::error::Error;
use crate::domain::fields::{Metadata, Patch, Visibility};
use crate::domain::grant::Request as GrantRequest;
use crate::domain::id;
use crate::http::Ctx;
use crate::http::answer::Answer;
use crate::http::error::ApiResult;
use crate::http::extract;
use crate::runtime::clock;

/// The body: every member optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    #[serde(default, deserialize_with = "extract::whole_number_opt")]
    ttl_seconds: Option<u64>,
    #[serde(default, deserialize_with = "extract::whole_number_opt")]
    max_bytes: Option<u64>,
    content_types: Option<Vec<String>>,
    title: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    extra: Option<std::collections::BTreeMap<String, String>>,
    visibility: Option<Visibility>,
}

pub async fn mint(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult<Answer> {
    let owner = ctx.owner()?.to_string();
    let keys = ctx.app.config.grant_keys.as_ref().ok_or_else(|| {
        Error::Forbidden("mint upload grants here: GRANT_SECRETS is not set".into())
    })?;
    let limits = &ctx.app.config.limits;
    let body: GrantBody = extract::read_json(req, limits.json_limit()).await?;
    let fixed = body.title.is_some()
        || body.description.is_some()
        || body.tags.is_some()
        || body.extra.is_some()
        || body.visibility.is_some();
    let meta = if fixed {
        let mut m = Metadata::default();
        Patch {
            title: body.title.map(Some),
            description: body.description.map(Some),
            tags: body.tags,
            extra: body.extra,
            visibility: body.visibility,
        }
        .apply(&mut m, limits.max_field_bytes)?;
        limits.check_visibility(&m)?;
        Some(m)
    } else {
        None
    };
    let request = GrantRequest {
        ttl_secs: body.ttl_seconds,
        max_bytes: body.max_bytes,
        content_types: body.content_types,
        meta,
    };
    let now = clock::unix_ms(clock::now()) / 1000;
    let (token, grant) = keys.mint(&owner, &id::new_id(), request, limits, now)?;
    tracing::info!(request_id = ctx.request_id, image_id = %grant.image_id, "upload grant minted");
    let types: Vec<&str> = grant.formats.iter().map(|f| f.content_type()).collect();
    Ok(Answer::json(
        201,
        json!({
            "grant": token,
            "image_id": grant.image_id,
            "expires_at": grant.expires_at,
            "expires_in": grant.expires_at.saturating_sub(now),
            "max_bytes": grant.max_bytes,
            "content_types": types,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON has one number type: `513.0` is the integer the schema allows.
    #[test]
    fn numbers_take_whole_floats_and_nothing_else() {
        let b: GrantBody =
            serde_json::from_str(r#"{"ttl_seconds": 513.0, "max_bytes": 462}"#).unwrap();
        assert_eq!((b.ttl_seconds, b.max_bytes), (Some(513), Some(462)));
        assert!(serde_json::from_str::<GrantBody>(r#"{"ttl_seconds": 1.5}"#).is_err());
        assert!(serde_json::from_str::<GrantBody>(r#"{"max_bytes": -1}"#).is_err());
        assert!(
            serde_json::from_str::<GrantBody>("{}")
                .unwrap()
                .ttl_seconds
                .is_none()
        );
    }
}
