//! Reprocess: make a `ready` image's variants again with the resize
//! Lambda's current recipe (widths, quality, formats), without a new
//! upload.
//!
//! The edge only queues (`images.reprocess_at`); the Lambda's scheduled
//! run redoes queued images a batch at a time within its time limit, so a
//! reprocess of every image is bounded by that schedule, not by how fast
//! it was asked for, and survives any interruption: what is queued stays
//! queued until done. A whole deployment is queued a page at a time
//! (`queue_batch`'s cursor), so an operator's command can stop and resume
//! anywhere. Each row records the recipe that made it (`recipe`), so a run
//! can skip the images the current recipe already made.

use pixport_contract::Status;

use crate::domain::error::{Error, Result};
use crate::domain::id;
use crate::domain::ports::{QueueState, QueuedBatch, ReprocessQueue, Selection};

/// The most images one call queues: one UPDATE each way, well inside the
/// Data API's limits.
pub const MAX_BATCH: u32 = 1000;

pub struct Reprocess<'a, Q> {
    pub queue: &'a Q,
}

impl<Q: ReprocessQueue> Reprocess<'_, Q> {
    /// Queues one of the owner's images.
    pub async fn one(&self, owner: &str, image_id: &str) -> Result<()> {
        if !id::is_valid(image_id) {
            return Err(Error::NotFound);
        }
        match self.queue.queue_one(owner, image_id).await? {
            None | Some(Status::Deleting) => Err(Error::NotFound),
            Some(Status::Ready) => Ok(()),
            Some(status) => Err(Error::NotReady {
                status: status.as_str(),
            }),
        }
    }

    /// Queues the next page of images `sel` takes.
    pub async fn batch(
        &self,
        sel: &Selection,
        after: Option<&str>,
        limit: u32,
    ) -> Result<QueuedBatch> {
        if !(1..=MAX_BATCH).contains(&limit) {
            return Err(Error::invalid_field("limit", format!("1 to {MAX_BATCH}")));
        }
        if after.is_some_and(|a| !id::is_valid(a)) {
            return Err(Error::invalid_field("after", "an image id"));
        }
        self.queue.queue_batch(sel, after, limit).await
    }

    pub async fn state(&self) -> Result<QueueState> {
        self.queue.state().await
    }
}
