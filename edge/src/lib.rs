//! The pixport edge worker: multipart uploads to S3 and the image API.
//!
//! One module per concern: `api` routes and renders; `upload`, `delete`
//! and `sweep` are the image lifecycle, written against the traits in
//! `ports`; `store` (S3) and `db` (the Data API) are the adapters that
//! implement them through `pixport-aws`; `error` maps every failure to HTTP
//! in one place. No module depends on one that depends back on it
//! (`tests/module_graph.rs` checks).

mod api;
mod auth;
mod body;
mod budget;
mod clock;
mod companion;
mod config;
mod db;
mod delete;
mod error;
mod fields;
mod framing;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod id;
mod logging;
mod model;
mod negotiate;
mod page;
mod payload;
mod ports;
mod quota;
mod ratelimit;
mod sniff;
mod srcset;
mod store;
mod sweep;
mod transport;
mod upload;
mod wake;
mod webhook;

use pixport_contract::keys;
use pixport_contract::wake::Look;
use worker::{Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent, event};

use crate::api::{Answer, Ctx};
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::store::S3;

#[event(start)]
fn start() {
    logging::init();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let request_id = req
        .headers()
        .get("cf-ray")
        .ok()
        .flatten()
        .unwrap_or_else(|| id::ulid(clock::unix_ms(clock::now()), random_bytes()));
    let origin = req.headers().get("origin").ok().flatten();
    // Where this worker is reached (scheme, host, port): the base of the
    // delivery URLs it hands out.
    let base_url = req
        .url()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let method = req.inner().method();
    let path = req.path();
    let cfg = Config::from_source(&env);
    let cors = cfg
        .as_ref()
        .map(|c| c.cors_origins.clone())
        .unwrap_or_default();

    if page::is_document(&method, &path)
        && let Ok(cfg) = &cfg
    {
        return match page::serve(req, &env, cfg).await {
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
        match &cfg {
            Ok(cfg) => match ratelimit::Limiters::from_env(&env) {
                Ok(limiters) => {
                    api::route(
                        &Ctx {
                            cfg,
                            request_id: &request_id,
                            limiters: &limiters,
                            base_url: &base_url,
                        },
                        req,
                    )
                    .await
                }
                Err(e) => {
                    tracing::error!(request_id, error = %e, "configuration is invalid");
                    Err(e)
                }
            },
            Err(e) => {
                tracing::error!(request_id, error = %e, "configuration is invalid");
                Err(ApiError::Config(e.to_string()))
            }
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
        tracing::error!(request_id, method, path, status, code, error = %e, "request failed");
    } else {
        tracing::info!(request_id, method, path, status, code, "request refused");
    }
    let mut body = e.body(request_id);
    if path.starts_with("/s3/") {
        // Companion's clients (Uppy) show a 4xx's top-level `message`.
        let message = body["error"]["message"].as_str().unwrap_or_default();
        body["message"] = format!("{code}: {message}").into();
    }
    Answer {
        body: Some(body),
        headers: e.headers(),
        ..Answer::empty(status)
    }
}

/// The wrangler.toml cron that only delivers webhooks.
const WEBHOOK_CRON: &str = "* * * * *";

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cfg = match Config::from_source(&env) {
        Ok(cfg) => cfg,
        Err(e) => return tracing::error!(error = %e, "scheduled run without a config"),
    };
    let look = wake::look(&cfg, keys::OUTBOX_ENQUEUED, keys::OUTBOX_NEXT).await;
    if let Err(e) = &look {
        tracing::warn!(error = %e, "cannot read the outbox signal; asking the database");
    }
    if event.cron() == WEBHOOK_CRON {
        // The minute cron reads the database only when the outbox may hold
        // a due event, so an idle Aurora cluster is left to pause.
        if let Ok(l) = &look
            && !l.due(clock::unix_ms(clock::now()))
        {
            tracing::debug!("no webhook event can be due; the database is left alone");
            return;
        }
        return deliver_webhooks(&cfg, look.ok()).await;
    }
    let s = sweep::sweep(&S3 { cfg: &cfg }, &Db { cfg: &cfg }, &cfg.reconcile).await;
    tracing::info!(
        deleted = s.deleted,
        revived = s.revived,
        finished_deletes = s.finished_deletes,
        failed_pending = s.failed_pending,
        orphans = s.orphans,
        dry_run_orphans = s.dry_run_orphans,
        refused = ?s.refused,
        errors = s.errors,
        "sweep done"
    );
    // The database is awake now anyway. The redrive's next run looks at the
    // table (an S3 event lost, attempts that died: rows only it finishes),
    // and due webhooks go out, including events whose signal was lost.
    if let Err(e) = wake::signal(&cfg, keys::REDRIVE_SIGNAL, "sweep").await {
        tracing::warn!(error = %e, "cannot signal the redrive");
    }
    deliver_webhooks(&cfg, look.ok()).await;
}

/// Delivers due webhook events, then records when the next one is due and
/// which signal this run had read (`look`, read before the query; nothing
/// is recorded when it could not be read, so the next run asks again).
async fn deliver_webhooks(cfg: &Config, look: Option<Look>) {
    let hooks = webhook::Hooks { cfg };
    match hooks.deliver_due().await {
        Ok(d) => tracing::info!(
            sent = d.sent,
            retrying = d.retrying,
            gave_up = d.gave_up,
            "webhooks delivered"
        ),
        Err(e) => return tracing::error!(error = %e, "webhook delivery failed"),
    }
    let Some(look) = look else { return };
    let recorded = match hooks.next_due_ms().await {
        Ok(due) => {
            wake::put_text(cfg, keys::OUTBOX_NEXT, look.record(due), "application/json").await
        }
        Err(e) => return tracing::error!(error = %e, "cannot read when the next webhook is due"),
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot record the outbox signal");
    }
}

fn random_bytes() -> [u8; 10] {
    let mut b = [0u8; 10];
    let _ = getrandom::fill(&mut b);
    b
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

fn respond(a: Answer, request_id: &str, origin: Option<&str>, cors: &[String]) -> Result<Response> {
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
