//! Delivery runs of webhook events, as the crons and the Lambda's wake-up
//! call start them (docs/webhooks.md, "Delivered after").
//!
//! Every run leases the rows it sends (`domain::webhook`), so runs that
//! overlap, in one isolate or many, never send one event twice at once.
//! A wake-up's run goes on after the response (`waitUntil`), which the
//! runtime keeps alive for 30 s: it starts no attempt that could outlast
//! that, and what it leaves is the cron's. Wake-ups that arrive while this
//! isolate's run is going only ask it to look once more, so a burst of
//! settled images costs one run at a time per isolate, not one each.

use std::cell::Cell;
use std::rc::Rc;

use pixport_contract::keys;
use pixport_contract::wake::Look;

use crate::adapters::wake;
use crate::app::App;
use crate::runtime::clock;

/// How long the runtime keeps a response's `waitUntil` work alive.
const WAIT_UNTIL_MS: u64 = 30_000;
/// Kept free at the end of that for the run's last statements (recording
/// the attempt, giving back untried rows, the outbox record).
const WAKE_RESERVE_MS: u64 = 5_000;
/// A wake-up run starts attempts for at least this long, whatever the
/// webhook timeout (at its 30 s ceiling a slow last attempt may then be
/// cut off; its lease runs out and the cron sends it again).
const WAKE_MIN_SENDING_MS: u64 = 5_000;

thread_local! {
    /// When this isolate's wake-up run started, while it goes on.
    static RUNNING_SINCE: Cell<Option<u64>> = const { Cell::new(None) };
    /// A wake-up came while the run was going: look once more.
    static AGAIN: Cell<bool> = const { Cell::new(false) };
}

/// Delivers due webhook events, then records when the next one is due and
/// which signal this run had read (`look`, read before the query; nothing
/// is recorded when it could not be read, so the next run asks again).
/// No attempt starts after `stop_at_ms` (unix ms).
pub async fn deliver(app: &App, look: Option<Look>, stop_at_ms: Option<u64>) {
    let hooks = app.webhooks();
    match hooks.deliver_due_until(stop_at_ms).await {
        Ok(d) => tracing::info!(
            metric = "webhook_run",
            sent = d.sent,
            retrying = d.retrying,
            gave_up = d.gave_up,
            deferred = d.deferred,
            errors = d.errors,
            "webhooks delivered"
        ),
        Err(e) => return tracing::error!(error = %e, "webhook delivery failed"),
    }
    let Some(look) = look else { return };
    let recorded = match hooks.next_due_ms().await {
        Ok(due) => {
            wake::put_text(
                &app.config.bucket,
                keys::OUTBOX_NEXT,
                look.record(due),
                "application/json",
            )
            .await
        }
        Err(e) => return tracing::error!(error = %e, "cannot read when the next webhook is due"),
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot record the outbox signal");
    }
}

/// The delivery a wake-up call (or a redelivery) starts, run after the
/// response. One at a time per isolate: a wake-up during a run makes that
/// run look once more instead of starting another. A run that the runtime
/// cut off is not waited for after `WAIT_UNTIL_MS`.
pub async fn wake(app: Rc<App>) {
    let started = clock::unix_ms(clock::now());
    if RUNNING_SINCE
        .get()
        .is_some_and(|since| started.saturating_sub(since) < WAIT_UNTIL_MS)
    {
        AGAIN.set(true);
        return;
    }
    RUNNING_SINCE.set(Some(started));
    let timeout = u64::try_from(app.config.webhook_timeout.as_millis()).unwrap_or(u64::MAX);
    let sending = WAIT_UNTIL_MS
        .saturating_sub(WAKE_RESERVE_MS)
        .saturating_sub(timeout)
        .max(WAKE_MIN_SENDING_MS);
    let stop_at = started + sending;
    loop {
        AGAIN.set(false);
        let look =
            match wake::look(&app.config.bucket, keys::OUTBOX_ENQUEUED, keys::OUTBOX_NEXT).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the outbox signal");
                    None
                }
            };
        deliver(&app, look, Some(stop_at)).await;
        if !AGAIN.get() || clock::unix_ms(clock::now()) >= stop_at {
            break;
        }
    }
    RUNNING_SINCE.set(None);
}
