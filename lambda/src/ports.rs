//! The ports: the three things the handler talks to, as small traits.
//!
//! Keeping S3, the Data API and wasmtime behind traits lets the handler's
//! retry and idempotency rules be unit-tested with in-memory fakes; the real
//! implementations live in `aws.rs` and `wasi.rs`. The edge worker's ports
//! (`edge/src/ports.rs`) use the same names: `ObjectStore` for objects,
//! `MetadataStore` for image rows.

use std::future::Future;

use bytes::Bytes;
use pixport_contract::{SourceFormat, StoredVariant};

use crate::error::Result;
use crate::wasi::ResizeOutput;

/// Written on every variant: keys are content-addressed by image id and width
/// and never rewritten with different bytes, so caches may keep them forever.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

pub trait ObjectStore: Send + Sync {
    /// `Ok(None)` when the object does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>>> + Send;
    fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Succeeds whether or not the object existed.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Outcome of trying to take an image for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The row was in a processable state and is now ours; `attempts` counts this one.
    Claimed { attempts: u32 },
    /// Already done, being deleted, a newer event got there first, or out of attempts.
    Skip { status: String },
    /// No row: the upload was abandoned before its row was written, or it was deleted.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
    pub variants: Vec<StoredVariant>,
}

pub trait MetadataStore: Send + Sync {
    /// Atomically moves a processable row to "ours for this sequencer".
    fn claim(
        &self,
        id: &str,
        sequencer: &str,
        max_attempts: u32,
    ) -> impl Future<Output = Result<Claim>> + Send;
    /// `Ok(false)` when the guard no longer matches (another delivery won).
    fn mark_ready(
        &self,
        id: &str,
        sequencer: &str,
        ready: &Ready,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// `permanent` also uses up the remaining attempts: the same bytes would
    /// fail the same way, so only a newer upload (a later sequencer) may retry.
    fn mark_failed(
        &self,
        id: &str,
        sequencer: &str,
        reason: &str,
        permanent: bool,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Whether the image still exists and is not being deleted: variants
    /// written for an image that is gone must be removed again.
    fn is_live(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;
}

pub trait Resizer: Send + Sync {
    fn resize(&self, input: Bytes) -> impl Future<Output = Result<ResizeOutput>> + Send;
}
