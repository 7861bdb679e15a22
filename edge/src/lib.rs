//! The pixport edge worker: multipart uploads to S3 and the image API.
//!
//! The layers, outside in (each depends only on the ones after it;
//! `tests/module_graph.rs` checks):
//!
//! - `lib.rs`: the `#[event]` entry points, nothing else;
//! - [`http`]: routes, handlers per resource, extractors, views, and the
//!   one mapping of errors to HTTP (`http::error::ApiError`);
//! - [`app`]: the composition root: the typed configuration, the adapters
//!   and the rate limiters, built once per isolate (`app::App`);
//! - [`domain`]: the image lifecycle (the upload service, images, the
//!   sweep, webhooks) written against the ports in `domain::ports`, with
//!   its own error type; it never names `worker` or `http`;
//! - [`adapters`]: the ports over S3 and the RDS Data API (and in memory,
//!   for the unit tests and fuzzing);
//! - [`runtime`]: glue to the Workers runtime (body streams, JS-heap
//!   buffers, the upload memory budget, time, rate limiters, logs).
//!
//! What the edge shares with the resize Lambda (statuses, formats, the
//! variants JSON, the key layout) comes from `pixport-contract`.

pub mod adapters;
pub mod app;
pub mod domain;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod http;
pub mod runtime;

use pixport_contract::keys;
use worker::{Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent, event};

use crate::adapters::wake;
use crate::app::{App, events};
use crate::domain::sweep;
use crate::runtime::clock;

#[event(start)]
fn start() {
    runtime::logging::init();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    http::handle(req, &env, &ctx).await
}

/// The wrangler.toml cron that only delivers webhooks.
const WEBHOOK_CRON: &str = "* * * * *";

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let app = match App::get(&env) {
        Ok(app) => app,
        Err(e) => return tracing::error!(error = %e, "scheduled run without a config"),
    };
    let bucket = &app.config.bucket;
    let look = wake::look(bucket, keys::OUTBOX_ENQUEUED, keys::OUTBOX_NEXT).await;
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
        return events::deliver(&app, look.ok(), None).await;
    }
    let s = sweep::sweep(&app.objects, &app.rows, &app.config.reconcile).await;
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
    if let Err(e) = wake::signal(bucket, keys::REDRIVE_SIGNAL, "sweep").await {
        tracing::warn!(error = %e, "cannot signal the redrive");
    }
    events::deliver(&app, look.ok(), None).await;
}
