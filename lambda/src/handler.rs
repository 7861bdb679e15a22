//! One S3 event -> variants in S3 and the row `ready` (or `failed`).
//!
//! At-least-once delivery is handled by the row, not by memory: every step
//! before `mark_ready` is safe to repeat (variant keys and bytes are
//! deterministic), and the row only moves forward under a guard on its status
//! and the event's sequencer.

use aws_lambda_events::s3::S3Event;
use pixport_contract::{StoredVariant, keys};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::event::{ObjectEvent, objects};
use crate::ports::{CACHE_CONTROL, Claim, MetadataStore, ObjectStore, Ready, Resizer};

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
}

pub struct Handler<O, M, R> {
    pub objects: O,
    pub meta: M,
    pub resizer: R,
    pub bucket: String,
    pub max_attempts: u32,
    /// Originals larger than this fail as `over_limits` without being
    /// downloaded (the event carries the size; the module checks again).
    pub max_bytes: u64,
}

fn reason(e: &Error) -> String {
    let text = match e {
        Error::Resize { class, message } => format!("{class}: {message}"),
        other => other.to_string(),
    };
    text.chars().take(REASON_MAX_CHARS).collect()
}

impl<O: ObjectStore, M: MetadataStore, R: Resizer> Handler<O, M, R> {
    /// Processes every record, then fails the invocation if any record hit a
    /// retryable error, so Lambda's async retry runs the event again (records
    /// already done are skipped by their rows' state on that retry).
    pub async fn handle(&self, event: &S3Event) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        let mut first_error = None;
        for obj in objects(event) {
            match self.process(&obj).await {
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

    async fn process(&self, obj: &ObjectEvent) -> Result<Outcome> {
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
        let attempts = match self
            .meta
            .claim(id, &obj.sequencer, self.max_attempts)
            .await?
        {
            Claim::Claimed { attempts } => attempts,
            Claim::Missing => return skipped("no row for this id"),
            Claim::Skip { status } => return skipped(&format!("row is {status}")),
        };
        match self.resize_and_store(id, obj).await {
            Ok(Some((n, module_ms))) => Ok(Outcome::Ready {
                id: id.into(),
                variants: n,
                module_ms,
            }),
            Ok(None) => skipped("superseded by another delivery"),
            Err(e) => {
                let permanent = !e.is_transient() && !matches!(e, Error::Store(_));
                let reason = reason(&e);
                // A transient error leaves attempts for Lambda's retry; the
                // row says `failed` meanwhile so clients are not told "pending"
                // about something that did not work.
                let marked = self
                    .meta
                    .mark_failed(id, &obj.sequencer, &reason, permanent)
                    .await;
                if let Err(me) = &marked {
                    warn!(id, error = %me, "could not record the failure");
                }
                if permanent {
                    marked?;
                    Ok(Outcome::Failed {
                        id: id.into(),
                        reason,
                    })
                } else {
                    warn!(id, attempts, max = self.max_attempts, "retryable failure");
                    Err(e)
                }
            }
        }
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
                "not_found",
                format!("{} is not in the bucket", obj.key),
            ));
        };
        let out = self.resizer.resize(original).await?;
        let module_ms = u64::try_from(out.module_time.as_millis()).unwrap_or(u64::MAX);
        let mut variants = Vec::with_capacity(out.manifest.variants.len());
        for (v, body) in out.manifest.variants.iter().zip(out.payloads) {
            let key = keys::variant(id, v.width, v.format);
            self.objects
                .put(&key, body, &v.content_type, CACHE_CONTROL)
                .await?;
            variants.push(StoredVariant {
                width: v.width,
                height: v.height,
                key,
                bytes: v.bytes,
                format: v.format,
                content_type: v.content_type.clone(),
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
}
