//! The ports: what the domain needs from object storage and from the
//! database, one trait per aggregate.
//!
//! - [`ObjectStore`]: originals and variants in S3, and the presigned
//!   requests clients send there themselves.
//! - [`ImageRows`]: an image's row once it exists (read, list, edit, delete).
//! - [`UploadClaims`]: what an upload claims before its image exists: its
//!   id (an `uploading` row), its Idempotency-Key, its checksum.
//! - [`SweepRows`]: what the cron sweep reads and settles.
//! - [`WebhookStore`]: endpoints and the outbox of their events.
//! - [`ReprocessQueue`]: the `ready` images waiting to be made again.
//! - `jwt::KeySet`: the identity provider's published keys (sign-in
//!   JWTs), beside the rules that use them.
//!
//! `adapters` implements them over S3 and the RDS Data API, and in memory
//! for the unit tests. Futures need not be `Send`: a Worker is one thread.

use pixport_contract::{SourceFormat, Status};

use crate::domain::error::Result;
use crate::domain::model::{Image, ImagePage, ListQuery, Metadata, Moment, NewImage, Usage};
use crate::runtime::payload::Payload;

/// Where originals go and variants are found.
#[allow(async_fn_in_trait)]
pub trait ObjectStore {
    /// An object's bytes as the runtime streams them to a client.
    type Body;

    /// Stores `body` whole; S3 checks it against `sha256_b64`. An original
    /// keeps the upload's `request_id` as object metadata
    /// (`x-amz-meta-request-id`), which the resize Lambda logs.
    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        content_type: &str,
        sha256_b64: &str,
        request_id: Option<&str>,
    ) -> Result<()>;
    /// Starts a multipart upload (its object keeps `request_id` as
    /// metadata); returns its upload id.
    async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        request_id: Option<&str>,
    ) -> Result<String>;
    /// Stores part `part` (from 1); returns its ETag.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Payload,
        sha256_b64: &str,
    ) -> Result<String>;
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<()>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()>;
    /// The ids of the unfinished multipart uploads of exactly `key`.
    async fn list_uploads(&self, key: &str) -> Result<Vec<String>>;
    /// Every part S3 holds for an unfinished multipart upload: number, ETag
    /// (as S3 quotes it) and size; `NotFound` for an upload S3 does not know.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<HeldPart>>;
    /// The first `len` bytes of an object (fewer when it is shorter).
    async fn read_head(&self, key: &str, len: u64) -> Result<Vec<u8>>;
    /// An object's bytes for a client's response. The row names the object,
    /// so S3 not having it is a storage fault, not the client's.
    async fn open(&self, key: &str) -> Result<Self::Body>;
    /// Succeeds whether or not the object existed.
    async fn delete_object(&self, key: &str) -> Result<()>;
    async fn exists(&self, key: &str) -> Result<bool>;
    /// Every key under `prefix`.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>>;
    /// One page (up to 1000 objects) of what is under `prefix`, in key
    /// order after the key `after`; with the key to continue after when
    /// there is more.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> Result<(Vec<Listed>, Option<String>)>;
    /// A presigned PUT a client sends the file with, create-only: what
    /// `grant` names is signed in, so S3 stores exactly the declared file.
    fn presign_put(&self, key: &str, grant: &PutGrant<'_>) -> Result<Presigned>;
    /// A presigned PUT of one part of a browser's multipart upload, its
    /// exact length signed in: S3 refuses a part of any other size.
    fn presign_part(&self, key: &str, upload_id: &str, part: u32, len: u64) -> Result<Presigned>;
    /// The variant's URL under the public base (a CDN in front of
    /// `variants/`), when one is configured.
    fn public_url(&self, key: &str) -> Result<Option<String>>;
    /// How long the presigned requests clients are given stay valid.
    fn presign_ttl_secs(&self) -> u64;
}

/// What a presigned PUT for a client signs in.
#[derive(Debug, Clone, Copy)]
pub struct PutGrant<'a> {
    pub format: SourceFormat,
    pub bytes: u64,
    /// The file's SHA-256 (base64), when the client declared it.
    pub sha256_b64: Option<&'a str>,
    /// The upload's request id, signed in as object metadata
    /// (`x-amz-meta-request-id`): the client sends it with the file.
    pub request_id: Option<&'a str>,
}

/// A presigned request: where to send it and the headers it must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// A part of an unfinished multipart upload, as S3 holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Minutes since it was last written (0 when S3 did not say).
    pub age_minutes: u32,
}

/// An image's row once the image exists.
#[allow(async_fn_in_trait)]
pub trait ImageRows {
    async fn get(&self, id: &str) -> Result<Option<Image>>;
    /// One page of the owner's list, newest first, and whether more follow.
    async fn list(&self, q: &ListQuery) -> Result<ImagePage>;
    /// What `owner` holds: its rows (but those being deleted, unless a
    /// presigned PUT may still store their original) and the bytes of
    /// their originals.
    async fn usage(&self, owner: &str) -> Result<Usage>;
    /// Replaces the owner's fields; `NotFound` when the row is gone or
    /// being deleted.
    async fn update_meta(&self, id: &str, meta: &Metadata) -> Result<()>;
    async fn delete_row(&self, id: &str) -> Result<()>;
    /// Marks the row `deleting` for a DELETE; `true` when a presigned PUT
    /// handed out for it may still create its original (its
    /// `upload_expires_at` is to come): the row then stays as a tombstone,
    /// counted in its owner's quota, until the sweep finishes it after the
    /// URL has expired (`migrations/0008_tombstones.sql`).
    async fn mark_deleting(&self, id: &str) -> Result<bool>;
    /// Moves a row from one status to another, only if it is still in the first.
    async fn set_status_if(&self, id: &str, from: Status, to: Status) -> Result<()>;
}

/// What inserting an upload's row found.
pub enum Inserted {
    Inserted,
    /// The owner already used this Idempotency-Key.
    KeyTaken,
    /// The id is taken: an upload grant's image was uploaded already.
    IdTaken,
}

/// What an upload's row records before its original is stored.
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    pub bytes: u64,
    pub sha256_b64: Option<&'a str>,
    /// The lifetime of a presigned PUT the client is given for the whole
    /// file, recorded as `upload_expires_at` (a DELETE leaves a tombstone
    /// until then).
    pub put_ttl_secs: Option<u64>,
}

/// What is known once the original is stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bytes: u64,
    pub sha256_b64: String,
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

/// What an upload claims before its image exists.
#[allow(async_fn_in_trait)]
pub trait UploadClaims {
    /// Inserts the row as `uploading`, claiming its id and Idempotency-Key.
    /// `declared`: the file's size and checksum when they are known before
    /// it is stored (what a direct or browser upload declared, a form's
    /// file read whole); the probe's dimensions are recorded unless they
    /// are unknown (0, a declared upload's).
    async fn insert(&self, new: &NewImage, declared: Option<Declared<'_>>) -> Result<Inserted>;
    /// The owner's row that claimed this Idempotency-Key.
    async fn by_idempotency_key(&self, owner: &str, key: &str) -> Result<Option<Image>>;
    /// Records the bytes actually stored, so the quota counts them.
    async fn record_size(&self, id: &str, bytes: u64) -> Result<()>;
    /// Records the stored original and the form's fields (`meta`, which
    /// replace those `new` was claimed with); `uploading` becomes `pending`
    /// (a resize that already finished keeps `ready`); `updated_at` is
    /// `at`. `NotFound` when the row is gone or being deleted.
    async fn finish(
        &self,
        new: &NewImage,
        meta: &Metadata,
        stored: &Stored,
        at: Moment,
    ) -> Result<()>;
    /// The owner's oldest `pending` or `ready` image whose original has this
    /// SHA-256 (base64): what a duplicate upload returns instead of storing
    /// a second copy.
    async fn duplicate_of(&self, owner: &str, sha256_b64: &str) -> Result<Option<Image>>;
    /// Records that upload `id` (a claimed row) stores the owner's copy of
    /// these bytes, unless another image already does. One holder per
    /// (owner, checksum), kept by a unique key, so of two identical uploads
    /// at once exactly one holds; the hold goes with its row.
    async fn hold_checksum(&self, owner: &str, sha256_b64: &str, id: &str) -> Result<Hold>;
    /// Gives up upload `id`'s hold, if it has one: its row may outlive the
    /// upload (left to the sweep), and must not make the client's retry of
    /// the same bytes wait for it.
    async fn release_hold(&self, id: &str) -> Result<()>;
}

/// A row as the sweep needs it: which image, and where its original is.
/// Only these two columns are read, so a batch stays far below the Data
/// API's 1 MiB result cap whatever the rows' text holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    pub id: String,
    pub original_key: String,
}

/// What the cron sweep reads and settles.
#[allow(async_fn_in_trait)]
pub trait SweepRows {
    /// Rows in `status` for more than `minutes`, oldest first: `uploading`
    /// counted from the claim, anything else from the row's last update; a
    /// `deleting` tombstone only once its presigned PUT expired `minutes` ago.
    async fn stale(&self, status: Status, minutes: u32, limit: u32) -> Result<Vec<RowRef>>;
    /// Which of `ids` have a row, whatever its status.
    async fn existing(&self, ids: &[&str]) -> Result<Vec<String>>;
    /// Marks `pending` rows untouched for `minutes` as failed; returns how many.
    async fn fail_stale_pending(&self, minutes: u32) -> Result<u64>;
    /// The key the reconciler last handled under `prefix`, if it stopped
    /// part way (`migrations/0006_sweep_cursor.sql`).
    async fn sweep_cursor(&self, prefix: &str) -> Result<Option<String>>;
    /// Stores where the reconciler stopped; `None` when it reached the end.
    async fn set_sweep_cursor(&self, prefix: &str, after: Option<&str>) -> Result<()>;
    /// The bucket the database belongs to: recorded as `bucket` by the
    /// first sweep that asks, and answered as recorded ever after.
    async fn recorded_bucket(&self, bucket: &str) -> Result<String>;
}

/// An owner's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub secret: String,
}

/// An outbox event a delivery run has leased, with its owner's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEvent {
    pub outbox_id: i64,
    pub owner: String,
    /// The event's `webhook-id` once given (migration 0009).
    pub event_id: Option<String>,
    pub image_id: String,
    pub event_type: String,
    pub attempts: u32,
    pub endpoint: Endpoint,
    pub created_at: String,
}

/// How one attempt at an event ended, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Due again after `after_secs`.
    Retry {
        why: String,
        after_secs: u64,
    },
    GaveUp {
        why: String,
    },
}

/// Which images a reprocess takes (`domain::reprocess`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// One owner's images only.
    pub owner: Option<String>,
    /// Skip images this recipe made (`images.recipe`): those are current.
    pub except_recipe: Option<String>,
}

/// What one call queued: how many, and the last id it looked at (the next
/// call starts after it), `None` once no image is left to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedBatch {
    pub queued: u64,
    pub next: Option<String>,
}

/// How a queue stands: images waiting, and `ready` images per recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub queued: u64,
    pub recipes: Vec<(Option<String>, u64)>,
}

/// The `ready` images waiting to be made again (`images.reprocess_at`).
#[allow(async_fn_in_trait)]
pub trait ReprocessQueue {
    /// Queues the owner's image if it is `ready`; its status otherwise,
    /// `None` when the owner has no such image.
    async fn queue_one(&self, owner: &str, id: &str) -> Result<Option<Status>>;
    /// Queues up to `limit` `ready` images after `after` (in id order)
    /// that `sel` takes and are not queued already.
    async fn queue_batch(
        &self,
        sel: &Selection,
        after: Option<&str>,
        limit: u32,
    ) -> Result<QueuedBatch>;
    async fn state(&self) -> Result<QueueState>;
}

/// Where an event stands, as its owner's delivery log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Due, not tried yet (or given back untried by a run).
    Queued,
    /// A run holds it and is sending it now.
    Sending,
    /// Tried and failed; due again at `next_attempt_at`.
    Retrying,
    Delivered,
    /// Its retry schedule is used up.
    GaveUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::GaveUp => "gave_up",
        }
    }
}

/// One event of an owner's delivery log (`GET /webhooks/deliveries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The outbox row: the log's keyset cursor (the owner's own rows only).
    pub outbox_id: i64,
    /// The event's ULID (`webhook-id` without `msg_`), given at its first
    /// attempt: `None` while it was never tried.
    pub event_id: Option<String>,
    pub event_type: String,
    pub image_id: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// RFC 3339 times (UTC, milliseconds).
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub gave_up_at: Option<String>,
}

/// What asking for an event to be sent again found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// Due now, as it stands after the change.
    Requeued(Box<Delivery>),
    /// A run is sending it right now; its outcome comes first.
    Sending,
    /// No event of this owner has that id (or the owner has no endpoint,
    /// whose events are removed with it).
    NotFound,
}

/// Endpoints and the outbox of their events.
#[allow(async_fn_in_trait)]
pub trait WebhookStore {
    async fn endpoint(&self, owner: &str) -> Result<Option<Endpoint>>;
    /// Sets the owner's endpoint; `secret` is used only when the owner has
    /// none yet (a changed URL keeps its secret).
    async fn set_endpoint(&self, owner: &str, url: &str, secret: &str) -> Result<()>;
    /// Removes the endpoint and the events still waiting for it; whether
    /// there was one.
    async fn remove_endpoint(&self, owner: &str) -> Result<bool>;
    /// When the earliest undelivered event is due (unix ms), if any.
    async fn next_due_ms(&self) -> Result<Option<u64>>;
    /// Leases up to `limit` due events to `token` for `lease_secs`, taken
    /// round-robin across owners (at most `per_owner` each, oldest first),
    /// and returns what `token` holds, oldest first. A row another run
    /// holds is not taken.
    async fn lease_due(
        &self,
        token: &str,
        limit: u32,
        per_owner: u32,
        lease_secs: u64,
    ) -> Result<Vec<DueEvent>>;
    /// Gives the event its `webhook-id` if it has none; returns the one it
    /// keeps (a racing run's, if that stored one first).
    async fn give_event_id(&self, outbox_id: i64, candidate: &str) -> Result<Option<String>>;
    /// Records an attempt, only while `token` still holds the event.
    async fn record(&self, outbox_id: i64, token: &str, attempt: &Attempt) -> Result<()>;
    /// Gives back every event `token` still holds, with no attempt counted.
    async fn release(&self, token: &str) -> Result<()>;
    /// Up to `limit` of the owner's events, newest first, older than the
    /// outbox row `before` when given.
    async fn deliveries(
        &self,
        owner: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Delivery>>;
    /// Makes one of the owner's events (by its event id) due now, whatever
    /// its state: a delivered or given-up event is sent once more (same
    /// id, its attempts counted on), unless a run holds it.
    async fn requeue(&self, owner: &str, event_id: &str) -> Result<Requeue>;
}

/// Where webhook events are sent.
#[allow(async_fn_in_trait)]
pub trait Receiver {
    /// One POST; `Ok` only for a 2xx answer, else why not (for the outbox).
    /// Redirects are not followed.
    async fn post(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Result<(), String>;
}
