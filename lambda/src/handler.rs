//! One S3 event -> variants in S3 and the row `ready` (or `failed`).
//!
//! At-least-once delivery is handled by the row, not by memory: every step
//! before `mark_ready` is safe to repeat (variant keys and bytes are
//! deterministic), and the row only moves forward under a guard on its status
//! and the event's sequencer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use aws_lambda_events::s3::S3Event;
use pixport_contract::wake::Look;
use pixport_contract::{Failure, StoredVariant, keys};
use tracing::{Instrument, info, info_span, warn};

use crate::error::{Error, Result};
use crate::event::{ObjectEvent, objects, pad_sequencer};
use crate::metrics::{self, Resized};
use crate::ports::{
    CACHE_CONTROL, Due, ImageRows, ObjectStore, Queued, Ready, ResizeClaim, ResizeClaimRules,
    Resizer,
};
use crate::retry::RetryPolicy;
use crate::wake::Waker;
use crate::wasi::ResizeOutput;

/// A reprocess's key tag: a digest of its variants' bytes (their SHA-256s
/// in manifest order), so the same output lands on the same keys and
/// different output on different ones.
fn output_tag(variants: &[pixport_contract::manifest::Variant]) -> String {
    let mut h = Sha256::new();
    for v in variants {
        h.update(v.sha256.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..6])
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `failure_reason` is VARCHAR(500).
const REASON_MAX_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Ready {
        id: String,
        variants: usize,
        module_ms: u64,
    },
    Failed {
        id: String,
        reason: String,
    },
    Skipped {
        key: String,
        why: String,
    },
    /// A passing failure; the row is `pending` and due again later.
    Retrying {
        id: String,
        attempts: u32,
        error: String,
    },
}

/// What one scheduled redrive did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Redriven {
    /// The table was not read: no row can be due (`wake`), so an idle
    /// Aurora cluster was left paused.
    pub skipped: bool,
    /// Rows whose attempts were used up by attempts that never finished.
    pub given_up: u64,
    /// Due rows left for the next run (the batch or the time ran out).
    pub deferred: usize,
    pub outcomes: Vec<Outcome>,
    /// Queued reprocesses this run did (or skipped).
    pub reprocessed: Vec<Outcome>,
}

pub struct Handler<O, M, R> {
    pub objects: O,
    pub rows: M,
    pub resizer: R,
    pub bucket: String,
    pub retry: RetryPolicy,
    /// Originals larger than this fail as `over_limits` without being
    /// downloaded (the event carries the size; the module checks again).
    pub max_bytes: u64,
    /// What this deployment's resizes make (`pixport_contract::Recipe`),
    /// recorded in every row it settles.
    pub recipe: String,
    /// An invocation in this process failed since the last redrive that
    /// read the table: the next redrive reads it even if S3 was down when
    /// the failure should have been signalled there.
    pub redrive_wanted: AtomicBool,
    /// The wake-up call to the edge worker once an image is settled, so its
    /// webhook event goes out in seconds; `None`: the worker's cron sends it.
    pub wake: Option<Waker>,
}

/// The upload's request id, read from its original's metadata once the
/// original is fetched: every log line of the image's span carries it.
#[derive(Default)]
struct Trace {
    request_id: Option<String>,
}

/// The public reason for a failure: its class as a stable code and a fixed
/// message (`pixport_contract::Failure`). The error's own text can carry S3
/// URLs, Data API messages and wasm backtraces, so it goes to the log only.
fn reason(e: &Error) -> String {
    let text = e.failure().reason();
    text.chars().take(REASON_MAX_CHARS).collect()
}

/// The reason recorded when the schedule gives up: the last error, cut so
/// the suffix still fits the column.
fn gave_up(reason: &str, attempts: u32) -> String {
    let suffix = format!(" (gave up after {attempts} attempts)");
    let keep = REASON_MAX_CHARS.saturating_sub(suffix.chars().count());
    reason.chars().take(keep).chain(suffix.chars()).collect()
}

impl<O: ObjectStore, M: ImageRows, R: Resizer> Handler<O, M, R> {
    /// Processes every record, then fails the invocation if any record hit a
    /// retryable error, so Lambda's async retry runs the event again (records
    /// already done are skipped by their rows' state on that retry).
    ///
    /// The redrive is signalled first: should this attempt die (killed,
    /// timed out), the redrive must look at the table to finish it.
    pub async fn handle(&self, event: &S3Event) -> Result<Vec<Outcome>> {
        self.signal(keys::REDRIVE_SIGNAL, "event").await;
        let mut outcomes = Vec::new();
        let mut first_error = None;
        for obj in objects(event) {
            match self.process(&obj, false).await {
                Ok(o) => {
                    info!(key = %obj.key, outcome = ?o, "record done");
                    outcomes.push(o);
                }
                Err(e) => {
                    warn!(key = %obj.key, error = %e, "record failed; the invocation will be retried");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => {
                // Its rows wait for a retry (or a redrive, once Lambda's
                // own retries are spent): the redrive must look, at their
                // new due time.
                self.redrive_wanted.store(true, Ordering::SeqCst);
                self.signal(keys::REDRIVE_SIGNAL, "failed-invocation").await;
                Err(e)
            }
            None => Ok(outcomes),
        }
    }

    /// Re-processes `pending` rows whose next try is due, oldest first, up
    /// to the policy's batch, starting none after `stop_at`. Their failures
    /// are recorded in the rows (and scheduled again), not raised: one
    /// image still failing must not fail the run for the rest.
    ///
    /// It reads the table only when a row may be due (`pixport_contract::wake`):
    /// the redrive's signal changed since its last record (an S3 event
    /// arrived, an invocation failed, the edge's sweep ran), the recorded
    /// next due time came, or an invocation in this process failed; so the
    /// schedule does not wake an idle Aurora cluster every few minutes.
    pub async fn redrive(&self, stop_at: Option<SystemTime>) -> Result<Redriven> {
        let look = self.look_redrive().await;
        let wanted = self.redrive_wanted.swap(false, Ordering::SeqCst);
        if let Some(l) = &look
            && !wanted
            && !l.due(unix_ms(SystemTime::now()))
        {
            info!("no row can be due; the table is left alone");
            return Ok(Redriven {
                skipped: true,
                ..Redriven::default()
            });
        }
        let out = match self.redrive_due(stop_at).await {
            Ok(out) => out,
            Err(e) => {
                self.redrive_wanted.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        if let Some(l) = look {
            match self.rows.next_due(self.retry.idle).await {
                Ok(due) => {
                    let record = Bytes::from(l.record(due));
                    if let Err(e) = self
                        .objects
                        .put(keys::REDRIVE_NEXT, record, "application/json", "no-store")
                        .await
                    {
                        warn!(error = %e, "cannot record the redrive's next due time");
                    }
                }
                Err(e) => warn!(error = %e, "cannot read when the next row is due"),
            }
        }
        Ok(out)
    }

    /// The redrive's signal and record, read before the table. `None` (read
    /// the table, record nothing) when the record cannot be read. A signal
    /// that cannot be read is written anew and counts as read: without
    /// `s3:ListBucket` S3 answers 403 for a missing object, so the first
    /// run creates it.
    async fn look_redrive(&self) -> Option<Look> {
        let text = |b: Bytes| String::from_utf8_lossy(&b).into_owned();
        let signal = match self.objects.get(keys::REDRIVE_SIGNAL).await {
            Ok(s) => s.map(text),
            Err(e) => {
                warn!(error = %e, "cannot read the redrive's signal; writing one");
                let token = self.signal(keys::REDRIVE_SIGNAL, "redrive").await?;
                Some(token)
            }
        };
        let recorded = match self.objects.get(keys::REDRIVE_NEXT).await {
            Ok(r) => r.map(text),
            Err(e) => {
                warn!(error = %e, "cannot read the redrive's record");
                None
            }
        };
        Some(Look::from_text(signal, recorded.as_deref()))
    }

    async fn redrive_due(&self, stop_at: Option<SystemTime>) -> Result<Redriven> {
        let mut out = Redriven {
            given_up: self.rows.give_up_exhausted(self.retry.max_attempts).await?,
            ..Redriven::default()
        };
        if out.given_up > 0 {
            self.signal(keys::OUTBOX_ENQUEUED, &format!("gave-up:{}", out.given_up))
                .await;
            if let Some(w) = &self.wake {
                w.settled(None, "failed", None).await;
            }
        }
        let due = self.rows.due(self.retry.idle, self.retry.batch).await?;
        let total = due.len();
        for (n, row) in due.into_iter().enumerate() {
            if stop_at.is_some_and(|t| SystemTime::now() >= t) {
                out.deferred = total - n;
                break;
            }
            let obj = self.due_event(row);
            match self.process(&obj, true).await {
                Ok(o) => out.outcomes.push(o),
                Err(e) => warn!(key = %obj.key, error = %e, "redrive attempt failed"),
            }
        }
        out.reprocessed = self.reprocess_queued(stop_at).await?;
        info!(
            given_up = out.given_up,
            processed = out.outcomes.len(),
            deferred = out.deferred,
            reprocessed = out.reprocessed.len(),
            "redrive done"
        );
        Ok(out)
    }

    /// Redoes the `ready` images queued for a reprocess (`reprocess_at`,
    /// set by the edge), a batch at a time, until none is left or
    /// `stop_at`. What is left (time ran out) makes the next run read the
    /// table; an image whose attempt failed keeps its lease until it runs
    /// out, and is tried by a later run. At most one run works on an image
    /// (the lease), and its variants change only if no newer request came.
    async fn reprocess_queued(&self, stop_at: Option<SystemTime>) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        loop {
            let queued = self.rows.queued(self.retry.batch).await?;
            let mut claimed = false;
            for q in queued {
                if stop_at.is_some_and(|t| SystemTime::now() >= t) {
                    self.redrive_wanted.store(true, Ordering::SeqCst);
                    return Ok(outcomes);
                }
                if !self
                    .rows
                    .claim_reprocess(&q.id, &q.queued_at, self.retry.lease)
                    .await?
                {
                    continue;
                }
                claimed = true;
                match self.reprocess(&q).await {
                    Ok(o) => {
                        info!(id = %q.id, outcome = ?o, "reprocess done");
                        outcomes.push(o);
                    }
                    Err(e) => {
                        warn!(id = %q.id, error = %e, "reprocess failed; a later run tries again")
                    }
                }
            }
            if !claimed {
                return Ok(outcomes);
            }
        }
    }

    /// One reprocess: the original through the current recipe, the new
    /// variants under keys of their own (`keys::reprocessed_variant`), the
    /// row switched to them, then the old objects removed. The original is
    /// only read.
    async fn reprocess(&self, q: &Queued) -> Result<Outcome> {
        let id = q.id.as_str();
        let skipped = |why: String| Outcome::Skipped {
            key: q.original_key.clone(),
            why,
        };
        let Some(original) = self.objects.get(&q.original_key).await? else {
            self.rows.drop_reprocess(id, &q.queued_at).await?;
            return Ok(skipped("original gone; nothing to reprocess".into()));
        };
        let out = match self.resizer.resize(original).await {
            Ok(out) => out,
            Err(e @ Error::Resize { .. }) => {
                warn!(id, error = %e, "the resizer refused the original this time; its variants stay");
                self.rows.drop_reprocess(id, &q.queued_at).await?;
                return Ok(skipped(format!("refused: {}", reason(&e))));
            }
            Err(e) => return Err(e),
        };
        let module_ms = u64::try_from(out.module_time.as_millis()).unwrap_or(u64::MAX);
        let tag = output_tag(&out.manifest.variants);
        let ready = self
            .store_variants(out, |v| {
                keys::reprocessed_variant(id, &tag, v.width, v.format)
            })
            .await?;
        let kept = |key: &str| ready.variants.iter().any(|v| v.key == key);
        if self.rows.finish_reprocess(id, &q.queued_at, &ready).await? {
            for old in q.variants.iter().filter(|v| !kept(&v.key)) {
                self.objects.delete(&old.key).await?;
            }
            return Ok(Outcome::Ready {
                id: id.into(),
                variants: ready.variants.len(),
                module_ms,
            });
        }
        // Asked again meanwhile (the next run redoes it, writing the same
        // keys), or deleted: then nothing else will remove what was written.
        if !self.rows.is_live(id).await? {
            for v in ready
                .variants
                .iter()
                .filter(|v| !q.variants.iter().any(|o| o.key == v.key))
            {
                self.objects.delete(&v.key).await?;
            }
        }
        Ok(skipped("superseded while it ran".into()))
    }

    /// The event a due row stands for: its original, under the sequencer
    /// last applied to it, so the row's guards treat the redrive as a
    /// repeat of that delivery.
    fn due_event(&self, row: Due) -> ObjectEvent {
        ObjectEvent {
            bucket: self.bucket.clone(),
            key: row.original_key,
            sequencer: row.sequencer.unwrap_or_else(|| pad_sequencer(None)),
            event_name: "pixport:Redrive".into(),
            size: row.bytes,
        }
    }

    /// One record, in a span naming the image and (once the original is
    /// read) the upload's request id, so every line about it carries both.
    async fn process(&self, obj: &ObjectEvent, due_only: bool) -> Result<Outcome> {
        let span = info_span!(
            "image",
            id = obj.original_id().unwrap_or(""),
            request_id = tracing::field::Empty
        );
        let mut trace = Trace::default();
        let outcome = self
            .process_in_span(obj, due_only, &mut trace)
            .instrument(span)
            .await;
        let id = obj.original_id().unwrap_or("");
        let rid = trace.request_id.as_deref();
        match &outcome {
            Ok(Outcome::Failed { .. }) => {
                metrics::emit(&metrics::line("failed", None, id, rid, SystemTime::now()));
            }
            Ok(Outcome::Retrying { .. }) | Err(_) if !id.is_empty() => {
                metrics::emit(&metrics::line("retrying", None, id, rid, SystemTime::now()));
            }
            _ => {}
        }
        outcome
    }

    async fn process_in_span(
        &self,
        obj: &ObjectEvent,
        due_only: bool,
        trace: &mut Trace,
    ) -> Result<Outcome> {
        let skipped = |why: &str| {
            Ok(Outcome::Skipped {
                key: obj.key.clone(),
                why: why.into(),
            })
        };
        let Some(id) = obj.original_id() else {
            return skipped("not under originals/");
        };
        if obj.bucket != self.bucket {
            return skipped("another bucket");
        }
        let rules = ResizeClaimRules {
            max_attempts: self.retry.max_attempts,
            lease: self.retry.lease,
            due_only,
            max_restarts: self.retry.max_restarts,
        };
        let claim = self.rows.claim_resize(id, &obj.sequencer, &rules).await?;
        let (attempts, uploading) = match claim {
            ResizeClaim::Claimed {
                attempts,
                uploading,
            } => (attempts, uploading),
            ResizeClaim::Missing => {
                let removed = self.remove_variants(id).await?;
                return skipped(&format!(
                    "no row for this id ({removed} stray variants removed)"
                ));
            }
            ResizeClaim::Skip { status, attempts } => {
                return skipped(&format!("row is {status} (attempts {attempts})"));
            }
        };
        let e = match self.resize_and_store(id, obj, trace).await {
            Ok(Some((n, module_ms))) => {
                return Ok(Outcome::Ready {
                    id: id.into(),
                    variants: n,
                    module_ms,
                });
            }
            Ok(None) => return skipped("superseded by another delivery"),
            // The original is gone: the edge undid the upload (and could not
            // remove the row, or its reply saying the row was finished was
            // lost, so the row may even be `pending`), or the object was
            // removed behind the API. Not this image's failure: a `failed`
            // row would outlive an upload the client was told failed, and
            // no row may outlive its original. Its variants go with it.
            Err(Error::Resize {
                failure: Failure::NotFound,
                ..
            }) => {
                let forgotten = self.rows.forget(id, &obj.sequencer).await?;
                let removed = self.remove_variants(id).await?;
                return skipped(&format!(
                    "original gone ({} row{}, {removed} variants removed)",
                    if forgotten { "its" } else { "no" },
                    if uploading { " still uploading" } else { "" }
                ));
            }
            Err(e) => e,
        };
        let reason = reason(&e);
        // Poison (the resizer refused these bytes) fails for good; anything
        // else (S3, the Data API, a timeout on the way) is tried again on the
        // row's schedule until the attempts run out.
        let retry_in = match &e {
            Error::Resize { .. } => None,
            _ => self.retry.after_failure(attempts),
        };
        let Some(wait) = retry_in else {
            let reason = match &e {
                Error::Resize { .. } => reason,
                _ => gave_up(&reason, attempts),
            };
            warn!(id, attempts, error = %e, "resize failed for good");
            if self.rows.mark_failed(id, &obj.sequencer, &reason).await? {
                self.settled(id, "failed", trace).await;
            }
            return Ok(Outcome::Failed {
                id: id.into(),
                reason,
            });
        };
        // If even this write fails, the claim's lease runs out and the
        // redrive picks the row up then.
        if let Err(me) = self
            .rows
            .mark_retry(id, &obj.sequencer, &reason, wait)
            .await
        {
            warn!(id, error = %me, "could not schedule the retry; the lease will");
        }
        warn!(id, attempts, max = self.retry.max_attempts, retry_in_ms = wait.as_millis() as u64, error = %e, "retryable failure");
        if due_only {
            // The redrive records it and moves on to the next row.
            return Ok(Outcome::Retrying {
                id: id.into(),
                attempts,
                error: reason,
            });
        }
        // An event delivery fails, so Lambda's async retries run it again
        // soon; the row's schedule covers what they do not.
        Err(e)
    }

    /// `Ok(None)` when the row moved on while we worked (a duplicate delivery
    /// finished first, or the image is being deleted).
    async fn resize_and_store(
        &self,
        id: &str,
        obj: &ObjectEvent,
        trace: &mut Trace,
    ) -> Result<Option<(usize, u64)>> {
        if let Some(size) = obj.size.filter(|&s| s > self.max_bytes) {
            return Err(Error::resize(
                Failure::OverLimits,
                format!("{size} bytes is over the {} byte limit", self.max_bytes),
            ));
        }
        let Some((original, request_id)) = self.objects.get_original(&obj.key).await? else {
            return Err(Error::resize(
                Failure::NotFound,
                format!("{} is not in the bucket", obj.key),
            ));
        };
        if let Some(rid) = &request_id {
            tracing::Span::current().record("request_id", rid.as_str());
        }
        trace.request_id = request_id;
        let input_bytes = original.len() as u64;
        let out = self.resizer.resize(original).await?;
        let module_ms = u64::try_from(out.module_time.as_millis()).unwrap_or(u64::MAX);
        let ready = self
            .store_variants(out, |v| keys::variant(id, v.width, v.format))
            .await?;
        let n = ready.variants.len();
        if self.rows.mark_ready(id, &obj.sequencer, &ready).await? {
            let resized = Resized {
                format: ready.format.as_str().to_string(),
                width: ready.width,
                height: ready.height,
                input_bytes,
                output_bytes: ready.variants.iter().map(|v| v.bytes).sum(),
                module_ms,
            };
            metrics::emit(&metrics::line(
                "ready",
                Some(&resized),
                id,
                trace.request_id.as_deref(),
                SystemTime::now(),
            ));
            self.settled(id, "ready", trace).await;
            return Ok(Some((n, module_ms)));
        }
        // Another delivery won (it writes the same keys: leave them), or the
        // image was deleted or its upload abandoned while we worked: then
        // nothing will ever delete what we just wrote, so we do.
        if !self.rows.is_live(id).await? {
            for v in &ready.variants {
                self.objects.delete(&v.key).await?;
            }
            info!(id, "image gone while resizing; its variants were removed");
        }
        Ok(None)
    }

    /// After a row was settled (its UPDATE may have queued a webhook event):
    /// the cron's signal, then the wake-up call, best effort both.
    async fn settled(&self, id: &str, status: &str, trace: &Trace) {
        self.signal(keys::OUTBOX_ENQUEUED, id).await;
        if let Some(w) = &self.wake {
            w.settled(Some(id), status, trace.request_id.as_deref())
                .await;
        }
    }

    /// Stores each variant of `out` under `key(variant)` and returns what
    /// the row records of them.
    async fn store_variants(
        &self,
        out: ResizeOutput,
        key: impl Fn(&pixport_contract::manifest::Variant) -> String,
    ) -> Result<Ready> {
        let mut variants = Vec::with_capacity(out.manifest.variants.len());
        for (v, body) in out.manifest.variants.iter().zip(out.payloads) {
            let key = key(v);
            // The type follows from the format the bytes were checked
            // against (`wasi::parse_output`), not from the manifest's text.
            self.objects
                .put(&key, body, v.format.content_type(), CACHE_CONTROL)
                .await?;
            variants.push(StoredVariant {
                width: v.width,
                height: v.height,
                key,
                bytes: v.bytes,
                format: v.format,
                sha256: v.sha256.clone(),
            });
        }
        let src = &out.manifest.source;
        Ok(Ready {
            format: src.format,
            width: src.width,
            height: src.height,
            variants,
            placeholder: out.manifest.placeholder.clone(),
            recipe: self.recipe.clone(),
        })
    }

    /// Rewrites a `pixport_contract::wake` signal with a new token, after
    /// the write it stands for has committed: `keys::OUTBOX_ENQUEUED` once
    /// an image is settled (the trigger on `images` may have queued a
    /// webhook event in that UPDATE), `keys::REDRIVE_SIGNAL` when rows wait
    /// for a retry. The scheduled work reads the database only when a
    /// signal changed or something recorded is due, which lets an idle
    /// cluster pause. A failed write is logged, not raised (`None`): the
    /// edge's half-hourly sweep covers what a lost signal would have
    /// triggered.
    async fn signal(&self, key: &str, what: &str) -> Option<String> {
        let token = format!("{what}@{}", unix_ms(SystemTime::now()));
        match self
            .objects
            .put(key, Bytes::from(token.clone()), "text/plain", "no-store")
            .await
        {
            Ok(()) => Some(token),
            Err(e) => {
                warn!(key, error = %e, "could not signal scheduled work; the sweep covers it");
                None
            }
        }
    }

    /// Removes whatever is under `variants/<id>/` of an image that has no
    /// row. Every write path inserts the row before any object, so these
    /// belong to nothing: an earlier attempt wrote them and then could not
    /// record them (the Data API went down before `mark_ready`), and the
    /// upload was undone or swept meanwhile. Its retry finds no row and
    /// takes them away rather than leave them to the sweep's reconciler.
    async fn remove_variants(&self, id: &str) -> Result<usize> {
        let keys = self.objects.list(&keys::variants_prefix(id)).await?;
        for key in &keys {
            self.objects.delete(key).await?;
        }
        if !keys.is_empty() {
            info!(
                id,
                removed = keys.len(),
                "no row for this image; stray variants removed"
            );
        }
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_carry_a_code_and_never_the_error_text() {
        let cases = [
            (
                Error::Store(
                    "S3 403 AccessDenied https://pixport-images-123456789012-eu-west-1.s3.amazonaws.com/x"
                        .into(),
                ),
                "internal: the image could not be processed",
            ),
            (
                Error::resize(Failure::Internal, "module trapped: wasm backtrace: 0: 0x1f2 - decode"),
                "internal: the image could not be processed",
            ),
            (
                Error::Transient("Data API: Communications link failure".into()),
                "transient: storage or the database stayed unavailable",
            ),
            (
                Error::resize(Failure::OverLimits, "memory cap of 1024 MiB reached"),
                "over_limits: the image is over the byte, dimension or pixel limits",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(reason(&e), want);
        }
    }
}
