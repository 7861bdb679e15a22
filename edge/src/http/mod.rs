//! The HTTP layer: one request in, one response out.
//!
//! [`handle`] finds the isolate's `App`, answers the page's document and
//! CORS preflights, routes everything else (`router`: method and path to a
//! handler, 405 with `Allow` for a known path), turns an error into its
//! one JSON shape (`error`) and adds the headers every answer carries.
//! Handlers (`handlers/`) parse the request (`extract`), call a domain
//! service and render its result (`views`, `negotiate`).

pub mod answer;
mod cache;
pub mod error;
mod extract;
mod handlers;
mod negotiate;
pub mod page;
mod router;
mod srcset;
mod views;

use std::future::Future;
use std::rc::Rc;

use worker::{Env, Request, Response};

use crate::app::App;
use crate::domain::id;
use crate::domain::identity::{self, Caller};
use crate::runtime::clock;
use answer::Answer;
use error::ApiError;

/// Everything a handler needs besides the request.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub request_id: &'a str,
    /// The worker's own origin as the client reached it: delivery URLs
    /// (`/images/{id}/{width}?format=`, the original) are built on it.
    pub base_url: &'a str,
    /// Who is calling (`domain::auth`), if anyone.
    pub caller: Option<Caller>,
    /// Where work that outlives the response runs (`after_response`).
    background: Background<'a>,
}

/// The isolate's app and the request's `waitUntil`.
struct Background<'a> {
    app: Rc<App>,
    ctx: &'a worker::Context,
}

impl Ctx<'_> {
    /// The caller, where the route needs one (the router has checked).
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// The caller's owner id, where the route needs one.
    pub fn owner(&self) -> Result<&str, ApiError> {
        Ok(&self.caller()?.owner)
    }

    /// Runs `work` after the response is sent (the runtime's `waitUntil`,
    /// which keeps it alive for 30 s), with its own handle on the app.
    pub fn after_response<F, Fut>(&self, work: F)
    where
        F: FnOnce(Rc<App>) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        self.background
            .ctx
            .wait_until(work(self.background.app.clone()));
    }

    /// The caller's owner id, where a caller is optional; a grant sees
    /// nothing more than anyone.
    pub fn owner_if_any(&self) -> Option<&str> {
        self.caller
            .as_ref()
            .filter(|c| c.grant.is_none())
            .map(|c| c.owner.as_str())
    }
}

/// Answers one request.
pub async fn handle(req: Request, env: &Env, wctx: &worker::Context) -> worker::Result<Response> {
    let request_id = extract::header(&req, "cf-ray").unwrap_or_else(id::new_id);
    let origin = extract::header(&req, "origin");
    let base_url = req
        .url()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    // The raw method: worker's `Method` reads every method it does not know
    // (QUERY, TRACE spelled oddly, ...) as GET, which would answer them as GETs.
    let method = req.inner().method();
    let path = req.path();
    let app = App::get(env);
    let cors = app
        .as_ref()
        .map(|a| a.config.cors_origins.clone())
        .unwrap_or_default();

    if page::is_document(&method, &path)
        && let Ok(app) = &app
    {
        return match page::serve(req, env, app).await {
            Ok(page) => Ok(page),
            Err(e) => respond(
                error_answer(e, &request_id, &method, &path),
                &request_id,
                origin.as_deref(),
                &cors,
            ),
        };
    }
    let result = if method == "OPTIONS" {
        Ok(Answer {
            headers: preflight_headers(),
            ..Answer::empty(204)
        })
    } else {
        match &app {
            Ok(app) => {
                let bearer = extract::header(&req, "authorization");
                let now = clock::unix_ms(clock::now()) / 1000;
                match app
                    .authenticator()
                    .caller(identity::bearer(bearer.as_deref()), now)
                    .await
                {
                    Ok(caller) => {
                        let ctx = Ctx {
                            app,
                            request_id: &request_id,
                            base_url: &base_url,
                            caller,
                            background: Background {
                                app: app.clone(),
                                ctx: wctx,
                            },
                        };
                        router::route(&ctx, req).await
                    }
                    Err(e) => Err(ApiError::Domain(e)),
                }
            }
            Err(e) => Err(ApiError::Misconfigured(e.clone())),
        }
    };
    let answer = match result {
        Ok(a) => a,
        Err(e) => error_answer(e, &request_id, &method, &path),
    };
    respond(answer, &request_id, origin.as_deref(), &cors)
}

/// The error's status, headers and JSON body, logged with the request id.
fn error_answer(e: ApiError, request_id: &str, method: &str, path: &str) -> Answer {
    let (status, code) = e.status_and_code();
    if status >= 500 {
        tracing::error!(metric = "error", request_id, method, path, status, code, error = %e, "request failed");
    } else {
        tracing::info!(
            metric = "refusal",
            request_id,
            method,
            path,
            status,
            code,
            "request refused"
        );
    }
    Answer {
        body: Some(e.body(request_id)),
        headers: e.headers(),
        ..Answer::empty(status)
    }
}

fn preflight_headers() -> Vec<(&'static str, String)> {
    vec![
        (
            "access-control-allow-methods",
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".into(),
        ),
        (
            "access-control-allow-headers",
            "authorization, content-type, idempotency-key".into(),
        ),
        ("access-control-max-age", "86400".into()),
    ]
}

fn respond(
    a: Answer,
    request_id: &str,
    origin: Option<&str>,
    cors: &[String],
) -> worker::Result<Response> {
    let mut resp = match (a.body, a.object) {
        (Some(body), _) => Response::from_json(&body)?,
        (None, Some(object)) => Response::from_body(object)?,
        (None, None) => Response::empty()?,
    }
    .with_status(a.status);
    let h = resp.headers_mut();
    h.set("x-request-id", request_id)?;
    // Every body is what its content-type says: variants (streamed or
    // redirected to), JSON, errors. Browsers must not guess otherwise.
    h.set("x-content-type-options", "nosniff")?;
    for (k, v) in &a.headers {
        h.set(k, v)?;
    }
    if let Some(o) = origin {
        let allowed = cors.iter().any(|c| c == "*" || c == o);
        if allowed {
            h.set(
                "access-control-allow-origin",
                if cors.iter().any(|c| c == "*") {
                    "*"
                } else {
                    o
                },
            )?;
            h.set(
                "access-control-expose-headers",
                "location, x-request-id, retry-after, pixport-duplicate, etag",
            )?;
            // Appended: a variant's answer also varies by `Accept`.
            h.append("vary", "origin")?;
        }
    }
    Ok(resp)
}
