//! One S3 event -> variants in S3 and the row `ready` (or `failed`).
//!
//! At-least-once delivery is handled by the row, not by memory: every step
//! before `mark_ready` is safe to repeat (variant keys and bytes are
//! deterministic), and the row only moves forward under a guard on its status
//! and the event's sequencer.

use std::time::SystemTime;

use aws_lambda_events::s3::S3Event;
use pixport_contract::{Failure, StoredVariant, keys};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::event::{ObjectEvent, objects, pad_sequencer};
use crate::ports::{
    CACHE_CONTROL, Claim, ClaimRules, Due, MetadataStore, ObjectStore, Ready, Resizer,
};
use crate::retry::RetryPolicy;

/// The class of a failure whose original is not in the bucket.
const NOT_FOUND: &str = "not_found";

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
    /// Rows whose attempts were used up by attempts that never finished.
    pub given_up: u64,
    /// Due rows left for the next run (the batch or the time ran out).
    pub deferred: usize,
    pub outcomes: Vec<Outcome>,
}

pub struct Handler<O, M, R> {
    pub objects: O,
    pub meta: M,
    pub resizer: R,
    pub bucket: String,
    pub retry: RetryPolicy,
    /// Originals larger than this fail as `over_limits` without being
    /// downloaded (the event carries the size; the module checks again).
    pub max_bytes: u64,
}

/// The public reason for a failure: its class as a stable code and a fixed
/// message (`pixport_contract::Failure`). The error's own text can carry S3
/// URLs, Data API messages and wasm backtraces, so it goes to the log only.
fn reason(e: &Error) -> String {
    let text = Failure::from_class(e.class()).reason();
    text.chars().take(REASON_MAX_CHARS).collect()
}

/// The reason recorded when the schedule gives up: the last error, cut so
/// the suffix still fits the column.
fn gave_up(reason: &str, attempts: u32) -> String {
    let suffix = format!(" (gave up after {attempts} attempts)");
    let keep = REASON_MAX_CHARS.saturating_sub(suffix.chars().count());
    reason.chars().take(keep).chain(suffix.chars()).collect()
}

impl<O: ObjectStore, M: MetadataStore, R: Resizer> Handler<O, M, R> {
    /// Processes every record, then fails the invocation if any record hit a
    /// retryable error, so Lambda's async retry runs the event again (records
    /// already done are skipped by their rows' state on that retry).
    pub async fn handle(&self, event: &S3Event) -> Result<Vec<Outcome>> {
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
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }

    /// Re-processes `pending` rows whose next try is due, oldest first, up
    /// to the policy's batch, starting none after `stop_at`. Their failures
    /// are recorded in the rows (and scheduled again), not raised: one
    /// image still failing must not fail the run for the rest.
    pub async fn redrive(&self, stop_at: Option<SystemTime>) -> Result<Redriven> {
        let mut out = Redriven {
            given_up: self.meta.give_up_exhausted(self.retry.max_attempts).await?,
            ..Redriven::default()
        };
        let due = self.meta.due(self.retry.idle, self.retry.batch).await?;
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
        info!(
            given_up = out.given_up,
            processed = out.outcomes.len(),
            deferred = out.deferred,
            "redrive done"
        );
        Ok(out)
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

    async fn process(&self, obj: &ObjectEvent, due_only: bool) -> Result<Outcome> {
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
        let rules = ClaimRules {
            max_attempts: self.retry.max_attempts,
            lease: self.retry.lease,
            due_only,
            max_restarts: self.retry.max_restarts,
        };
        let (attempts, uploading) = match self.meta.claim(id, &obj.sequencer, &rules).await? {
            Claim::Claimed {
                attempts,
                uploading,
            } => (attempts, uploading),
            Claim::Missing => {
                let removed = self.remove_variants(id).await?;
                return skipped(&format!(
                    "no row for this id ({removed} stray variants removed)"
                ));
            }
            Claim::Skip { status } => return skipped(&format!("row is {status}")),
        };
        let e = match self.resize_and_store(id, obj).await {
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
            Err(Error::Resize { class, .. }) if class == NOT_FOUND => {
                let forgotten = self.meta.forget(id, &obj.sequencer).await?;
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
            self.meta.mark_failed(id, &obj.sequencer, &reason).await?;
            return Ok(Outcome::Failed {
                id: id.into(),
                reason,
            });
        };
        // If even this write fails, the claim's lease runs out and the
        // redrive picks the row up then.
        if let Err(me) = self
            .meta
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
    async fn resize_and_store(&self, id: &str, obj: &ObjectEvent) -> Result<Option<(usize, u64)>> {
        if let Some(size) = obj.size.filter(|&s| s > self.max_bytes) {
            return Err(Error::resize(
                "over_limits",
                format!("{size} bytes is over the {} byte limit", self.max_bytes),
            ));
        }
        let Some(original) = self.objects.get(&obj.key).await? else {
            return Err(Error::resize(
                NOT_FOUND,
                format!("{} is not in the bucket", obj.key),
            ));
        };
        let out = self.resizer.resize(original).await?;
        let module_ms = u64::try_from(out.module_time.as_millis()).unwrap_or(u64::MAX);
        let mut variants = Vec::with_capacity(out.manifest.variants.len());
        for (v, body) in out.manifest.variants.iter().zip(out.payloads) {
            let key = keys::variant(id, v.width, v.format);
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
        let n = variants.len();
        let src = &out.manifest.source;
        let ready = Ready {
            format: src.format,
            width: src.width,
            height: src.height,
            variants,
            placeholder: out.manifest.placeholder.clone(),
        };
        if self.meta.mark_ready(id, &obj.sequencer, &ready).await? {
            return Ok(Some((n, module_ms)));
        }
        // Another delivery won (it writes the same keys: leave them), or the
        // image was deleted or its upload abandoned while we worked: then
        // nothing will ever delete what we just wrote, so we do.
        if !self.meta.is_live(id).await? {
            for v in &ready.variants {
                self.objects.delete(&v.key).await?;
            }
            info!(id, "image gone while resizing; its variants were removed");
        }
        Ok(None)
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
                Error::resize("internal", "module trapped: wasm backtrace: 0: 0x1f2 - decode"),
                "internal: the image could not be processed",
            ),
            (
                Error::Transient("Data API: Communications link failure".into()),
                "transient: storage or the database stayed unavailable",
            ),
            (
                Error::resize("over_limits", "memory cap of 1024 MiB reached"),
                "over_limits: the image is over the byte, dimension or pixel limits",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(reason(&e), want);
        }
    }
}
