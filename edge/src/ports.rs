//! The ports: what the upload pipeline, DELETE and the sweep need from
//! object storage and from the image rows, as traits.
//!
//! The adapters beside this module implement them over `pixport-aws`
//! (`store`: S3 through presigned requests, `db`: the RDS Data API);
//! `memory` implements them in memory for the native unit tests. The
//! names match the resize Lambda's ports (`lambda/src/ports.rs`):
//! `ObjectStore` holds objects, `MetadataStore` holds image rows. Futures
//! need not be `Send`: a Worker is one thread.

use pixport_contract::Status;

use crate::error::ApiResult;
use crate::fields::Metadata;
use crate::model::Image;
use crate::payload::Payload;
use crate::sniff::Probe;

#[cfg(any(test, feature = "fuzz"))]
pub mod memory;

/// Where originals go and variants are found.
#[allow(async_fn_in_trait)]
pub trait ObjectStore {
    /// Stores `body` whole; S3 checks it against `sha256_b64`.
    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        content_type: &str,
        sha256_b64: &str,
    ) -> ApiResult<()>;
    /// Starts a multipart upload; returns its upload id.
    async fn create_multipart(&self, key: &str, content_type: &str) -> ApiResult<String>;
    /// Stores part `part` (from 1); returns its ETag.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Payload,
        sha256_b64: &str,
    ) -> ApiResult<String>;
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> ApiResult<()>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> ApiResult<()>;
    /// The ids of the unfinished multipart uploads of exactly `key`.
    async fn list_uploads(&self, key: &str) -> ApiResult<Vec<String>>;
    /// Succeeds whether or not the object existed.
    async fn delete_object(&self, key: &str) -> ApiResult<()>;
    async fn exists(&self, key: &str) -> ApiResult<bool>;
    /// Every key under `prefix`.
    async fn list_keys(&self, prefix: &str) -> ApiResult<Vec<String>>;
    /// One page (up to 1000 objects) of what is under `prefix`, in key
    /// order after the key `after`; with the key to continue after when
    /// there is more.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> ApiResult<(Vec<Listed>, Option<String>)>;
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Minutes since it was last written (0 when S3 did not say).
    pub age_minutes: u32,
}

/// A row as the sweep needs it: which image, and where its original is.
/// Only these two columns are read, so a batch stays far below the Data
/// API's 1 MiB result cap whatever the rows' text holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    pub id: String,
    pub original_key: String,
}

/// A new row, before the original is stored.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub meta: Metadata,
    pub file_name: Option<String>,
    pub probe: Probe,
    pub original_key: String,
}

/// What is known once the original is stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bytes: u64,
    pub sha256_b64: String,
}

/// Outcome of claiming a row.
pub enum Claim {
    Claimed,
    /// The owner already used this Idempotency-Key.
    Existing(Box<Image>),
}

/// Outcome of holding a checksum for a new upload (see `hold_checksum`).
pub enum Hold {
    /// This upload is the owner's copy of these bytes.
    Held,
    /// The owner's `pending` or `ready` image with these bytes.
    Duplicate(Box<Image>),
    /// Another upload of these bytes holds them and is still `uploading`.
    InFlight,
}

/// How long a holder may stay `uploading` before the next upload of its
/// bytes takes the hold: it holds only once its file is read whole, so a
/// live one is a PUT or a row update from `pending`; past this its request
/// died and the sweep will remove its row, much later. A holder taken
/// over while alive costs a second copy, nothing more.
pub const HOLD_STALE_SECS: u32 = 30;

/// Where image rows go.
#[allow(async_fn_in_trait)]
pub trait MetadataStore {
    /// Inserts the row as `uploading`, claiming its Idempotency-Key.
    async fn claim(&self, new: &NewImage) -> ApiResult<Claim>;
    /// Records the stored original and the form's fields; `uploading`
    /// becomes `pending`.
    async fn finish_upload(
        &self,
        new: &NewImage,
        meta: &Metadata,
        stored: &Stored,
    ) -> ApiResult<Image>;
    /// The owner's oldest `pending` or `ready` image whose original has this
    /// SHA-256 (base64), other than `except_id`: what a duplicate upload
    /// returns instead of storing a second copy.
    async fn duplicate_of(
        &self,
        owner: &str,
        sha256_b64: &str,
        except_id: &str,
    ) -> ApiResult<Option<Image>>;
    /// Records that upload `id` (a claimed row) stores the owner's copy of
    /// these bytes, unless another image already does. One holder per
    /// (owner, checksum), kept by a unique key, so of two identical uploads
    /// at once exactly one holds; the hold goes with its row.
    async fn hold_checksum(&self, owner: &str, sha256_b64: &str, id: &str) -> ApiResult<Hold>;
    /// Gives up upload `id`'s hold, if it has one: its row may outlive the
    /// upload (left to the sweep), and must not make the client's retry of
    /// the same bytes wait for it.
    async fn release_hold(&self, id: &str) -> ApiResult<()>;
    async fn delete_row(&self, id: &str) -> ApiResult<()>;
    async fn set_status(&self, id: &str, status: Status) -> ApiResult<()>;
    /// Marks the row `deleting` for a DELETE; `true` when a presigned PUT
    /// handed out for it may still create its original (its
    /// `upload_expires_at` is to come): the row then stays as a tombstone,
    /// counted in its owner's quota, until the sweep finishes it after the
    /// URL has expired (`migrations/0008_tombstones.sql`).
    async fn mark_deleting(&self, id: &str) -> ApiResult<bool>;
    /// Moves a row from one status to another, only if it is still in the first.
    async fn set_status_if(&self, id: &str, from: Status, to: Status) -> ApiResult<()>;
    /// Rows in `status` for more than `minutes`, oldest first: `uploading`
    /// counted from the claim, anything else from the row's last update; a
    /// `deleting` tombstone only once its presigned PUT expired `minutes` ago.
    async fn stale(&self, status: Status, minutes: u32, limit: u32) -> ApiResult<Vec<RowRef>>;
    /// Which of `ids` have a row, whatever its status.
    async fn existing(&self, ids: &[&str]) -> ApiResult<Vec<String>>;
    /// Marks `pending` rows untouched for `minutes` as failed; returns how many.
    async fn fail_stale_pending(&self, minutes: u32) -> ApiResult<u64>;
    /// The key the reconciler last handled under `prefix`, if it stopped
    /// part way (`migrations/0006_sweep_cursor.sql`).
    async fn sweep_cursor(&self, prefix: &str) -> ApiResult<Option<String>>;
    /// Stores where the reconciler stopped; `None` when it reached the end.
    async fn set_sweep_cursor(&self, prefix: &str, after: Option<&str>) -> ApiResult<()>;
    /// The bucket the database belongs to: recorded as `bucket` by the
    /// first sweep that asks, and answered as recorded ever after.
    async fn recorded_bucket(&self, bucket: &str) -> ApiResult<String>;
}
