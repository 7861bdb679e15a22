//! The ports: the three things the handler talks to, as small traits.
//!
//! Keeping S3, the Data API and wasmtime behind traits lets the handler's
//! retry and idempotency rules be unit-tested with in-memory fakes; the real
//! implementations live in `aws.rs` and `wasi.rs`. A name means one thing
//! across the repository: `ObjectStore` is the bucket's objects and
//! `ImageRows` the `images` table's rows, here as in the edge worker's ports
//! (`edge/src/ports.rs`). A `ResizeClaim` is this function's claim of a row
//! for one resize attempt; the edge's `UploadClaims` are another thing.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use pixport_contract::{Placeholder, SourceFormat, Status, StoredVariant};

use crate::error::Result;
use crate::wasi::ResizeOutput;

/// Written on every variant: keys are content-addressed by image id and width
/// and never rewritten with different bytes, so caches may keep them forever.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The object metadata (`x-amz-meta-request-id`) the edge signs into every
/// upload of an original: the request that made it, so one upload's path
/// can be followed from the worker's log into this function's.
pub const REQUEST_ID_METADATA: &str = "x-amz-meta-request-id";

pub trait ObjectStore: Send + Sync {
    /// `Ok(None)` when the object does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>>> + Send;
    /// An original with the request id stored with it
    /// ([`REQUEST_ID_METADATA`]), if any.
    fn get_original(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Bytes, Option<String>)>>> + Send {
        async move { Ok(self.get(key).await?.map(|b| (b, None))) }
    }
    fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Succeeds whether or not the object existed.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
    /// Every key under `prefix`.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// Outcome of claiming an image's row for one resize attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeClaim {
    /// The row was in a processable state and is now ours; `attempts` counts this one.
    /// `uploading`: the upload that made the row has not finished, so it may
    /// still be undone (its original removed) under us.
    Claimed { attempts: u32, uploading: bool },
    /// Already done, being deleted, a newer event got there first, or out
    /// of attempts: the row's status and attempts as they are.
    Skip { status: Status, attempts: u32 },
    /// No row: the upload was abandoned before its row was written, or it was deleted.
    Missing,
}

/// What a resize claim may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeClaimRules {
    pub max_attempts: u32,
    /// The row is held from the redrive this long (`next_attempt_at`).
    pub lease: Duration,
    /// The redrive's claim: only a `pending` row whose next try is due.
    pub due_only: bool,
    /// Restarts of a `failed` row by a newer upload allowed in all.
    pub max_restarts: u32,
}

/// A `pending` row whose next try is due, as the redrive finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub id: String,
    pub original_key: String,
    /// The last event applied to the row; `None` when none ever claimed it.
    pub sequencer: Option<String>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
    pub variants: Vec<StoredVariant>,
    /// Stored in the row's placeholder columns; `None` clears them.
    pub placeholder: Option<Placeholder>,
    /// What made the variants (`pixport_contract::Recipe`), recorded in
    /// the row so a reprocess can find the images an older one made.
    pub recipe: String,
}

/// A `ready` image queued for a reprocess, as the scheduled run finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: String,
    pub original_key: String,
    /// When the reprocess was asked for, as the row holds it: the result is
    /// recorded only if no newer request came meanwhile.
    pub queued_at: String,
    /// The variants the reprocess replaces (their objects go once the row
    /// names the new ones).
    pub variants: Vec<StoredVariant>,
}

/// The `images` table's rows, as the resize sees them.
pub trait ImageRows: Send + Sync {
    /// Atomically moves a processable row to "ours for this sequencer",
    /// counting the attempt and taking the lease.
    fn claim_resize(
        &self,
        id: &str,
        sequencer: &str,
        rules: &ResizeClaimRules,
    ) -> impl Future<Output = Result<ResizeClaim>> + Send;
    /// `Ok(false)` when the guard no longer matches (another delivery won).
    fn mark_ready(
        &self,
        id: &str,
        sequencer: &str,
        ready: &Ready,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// `failed` for good: also uses up the remaining attempts, so only a
    /// newer upload (a later sequencer) may try again.
    fn mark_failed(
        &self,
        id: &str,
        sequencer: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// A passing failure: the row keeps its status (clients see `pending`),
    /// records `reason` as its last error and is due again in `retry_in`.
    fn mark_retry(
        &self,
        id: &str,
        sequencer: &str,
        reason: &str,
        retry_in: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Up to `limit` `pending` rows whose next try is due (or that no attempt
    /// claimed for `idle`), the longest waiting first.
    fn due(&self, idle: Duration, limit: u32) -> impl Future<Output = Result<Vec<Due>>> + Send;
    /// Marks `failed` the due `pending` rows with no attempts left: their
    /// last attempt died without a verdict (killed or timed out every time).
    fn give_up_exhausted(&self, max_attempts: u32) -> impl Future<Output = Result<u64>> + Send;
    /// When the earliest `pending` row is due for the redrive (unix ms):
    /// its `next_attempt_at`, or `idle` after its last change if no
    /// attempt claimed it; `None` when no row is `pending`.
    fn next_due(&self, idle: Duration) -> impl Future<Output = Result<Option<u64>>> + Send;
    /// Removes a processable row this delivery claimed whose original is
    /// gone: an upload the edge undid after its reply was lost (the client
    /// was told it failed), or an object removed behind the API. No image
    /// can be made from it, and a row must not outlive its original.
    fn forget(&self, id: &str, sequencer: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Whether the image still exists and is not being deleted: variants
    /// written for an image that is gone must be removed again.
    fn is_live(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Up to `limit` `ready` rows queued for a reprocess that no run holds,
    /// the longest waiting first.
    fn queued(&self, limit: u32) -> impl Future<Output = Result<Vec<Queued>>> + Send;
    /// Takes the lease on a queued row for `lease`; `false` when another
    /// run holds it, or it is no longer `ready` or queued at `queued_at`.
    fn claim_reprocess(
        &self,
        id: &str,
        queued_at: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Records a reprocess's variants and recipe and takes the row off the
    /// queue, if it is still `ready` and queued at `queued_at`.
    fn finish_reprocess(
        &self,
        id: &str,
        queued_at: &str,
        ready: &Ready,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Takes the row off the queue with its variants as they were (its
    /// original is gone, or the resizer refused it this time).
    fn drop_reprocess(
        &self,
        id: &str,
        queued_at: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}

pub trait Resizer: Send + Sync {
    fn resize(&self, input: Bytes) -> impl Future<Output = Result<ResizeOutput>> + Send;
}
