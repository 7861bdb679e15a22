//! `POST /images`: the multipart upload pipeline.
//!
//! The body is streamed through `multer`; only the file's head is looked at
//! before anything is stored. Order and compensation are what keep S3 and the
//! database consistent:
//!
//! 1. the file's head proves it is an image within limits (nothing stored yet);
//! 2. the row is inserted as `uploading` (this also claims the Idempotency-Key);
//! 3. the original goes to S3: one presigned PUT for small files, a multipart
//!    upload with presigned parts above the threshold (memory stays at one
//!    part whatever the file size);
//! 4. the row becomes `pending` with size, checksum and all fields.
//!
//! Duplicates: unless the request opts out, the same bytes uploaded again by
//! the same owner give back the owner's existing `pending` or `ready` image
//! and store nothing. A file that fits in one PUT is hashed whole before
//! step 2, so the lookup follows the claim (a retried Idempotency-Key
//! replays first) and a hit only withdraws the claimed row: no object is
//! ever written. A file
//! over the threshold is only hashed once it has streamed to S3 (holding it
//! back would cost its whole size in memory), so the lookup follows step 3
//! and a hit removes the new object and its row exactly like a failure
//! would (below); only then is the existing image returned. The lookup is
//! a hold on the (owner, checksum) key that one upload wins (`hold`), so of
//! identical uploads racing each other one stores and the others return it.
//!
//! A failure after step 2 removes what was written (aborts the multipart
//! upload or deletes the object, then deletes the row). If even that fails,
//! the row stays `uploading` and the cleanup sweep removes it later; a row
//! never claims an object that was not stored, and no stored object lacks a
//! row.

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use pixport_contract::keys;

use crate::budget;
use crate::config::Limits;
use crate::delete;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Metadata, clean_file_name};
use crate::framing;
use crate::model::Image;
use crate::payload::{self, Payload, PayloadBuffer, RunningSha256};
use crate::ports::{Claim, HOLD_STALE_SECS, Hold, MetadataStore, NewImage, ObjectStore, Stored};
use crate::sniff::{self, Probe, SniffError};
use pixport_contract::SourceFormat;

/// How many bytes of the file are read before deciding it is an image:
/// JPEG frame headers can sit behind up to a few 64 KiB APPn segments.
pub const HEAD_BYTES: usize = 256 * 1024;
/// Room for multipart boundaries and part headers on top of the limits.
const ENVELOPE_BYTES: u64 = 1024 * 1024;

/// Who is uploading and under which id.
pub struct UploadRequest {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub content_length: Option<u64>,
    /// Keep a second copy of bytes the owner already has (`?duplicates=allow`).
    pub allow_duplicates: bool,
}

/// The result for the client: a new image (201), the first result of a
/// retried upload (200) or the owner's image with the same bytes (200).
pub enum Uploaded {
    Created(Image),
    Replayed(Image),
    Duplicate(Image),
}

pub fn body_limit(limits: &Limits) -> u64 {
    limits.max_upload_bytes
        + (limits.max_fields as u64) * (limits.max_field_bytes as u64)
        + ENVELOPE_BYTES
}

fn multer_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { limit } => {
            ApiError::PayloadTooLarge(format!("request body over {limit} bytes"))
        }
        multer::Error::FieldSizeExceeded { limit, field_name } => {
            ApiError::PayloadTooLarge(format!(
                "field `{}` over {limit} bytes",
                field_name.unwrap_or_default()
            ))
        }
        other => match (framing::framing_error(&other), budget::pace_error(&other)) {
            (Some(bound), _) => ApiError::MalformedMultipart(bound.to_string()),
            (None, Some(pace)) => pace.into_api(),
            (None, None) => ApiError::MalformedMultipart(other.to_string()),
        },
    }
}

/// Runs the whole upload; see the module docs for the order of steps.
pub async fn upload<S, C, B, E>(
    req: UploadRequest,
    limits: &Limits,
    content_type: &str,
    body: B,
    storage: &S,
    catalog: &C,
) -> ApiResult<Uploaded>
where
    S: ObjectStore,
    C: MetadataStore,
    B: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::UnsupportedMediaType("expected multipart/form-data with a boundary".into())
    })?;
    if req.content_length.is_some_and(|n| n > body_limit(limits)) {
        return Err(ApiError::PayloadTooLarge(format!(
            "request body over {} bytes",
            body_limit(limits)
        )));
    }
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(body_limit(limits)));
    let body = framing::Framed::new(Box::pin(body), &boundary);
    let mut form = multer::Multipart::with_constraints(body, boundary, constraints);

    let mut meta = Metadata::default();
    let mut fields = 0usize;
    let mut stored: Option<(NewImage, Stored)> = None;

    loop {
        let next = form.next_field().await;
        let mut field = match next {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(abandon(stored.as_ref(), storage, catalog, multer_error(e)).await),
        };
        if field.file_name().is_some() {
            if stored.is_some() {
                let e = ApiError::invalid_field(
                    field.name().unwrap_or("file"),
                    "only one file per upload",
                );
                return Err(abandon(stored.as_ref(), storage, catalog, e).await);
            }
            let file_name = field.file_name().and_then(clean_file_name);
            let mut file = FileReader {
                field: &mut field,
                carry: Bytes::new(),
            };
            match store_file(&req, limits, &meta, file_name, &mut file, storage, catalog).await? {
                FileOutcome::Stored(done) => stored = Some(*done),
                FileOutcome::Replayed(image) => return Ok(Uploaded::Replayed(*image)),
                FileOutcome::Duplicate(image) => return Ok(Uploaded::Duplicate(*image)),
            }
        } else {
            fields += 1;
            let result = if fields > limits.max_fields {
                Err(ApiError::TooManyFields(limits.max_fields))
            } else {
                read_text(&mut field, limits.max_field_bytes)
                    .await
                    .and_then(|value| {
                        meta.add_form_field(
                            field.name().unwrap_or_default(),
                            &value,
                            limits.max_field_bytes,
                        )
                    })
            };
            if let Err(e) = result {
                return Err(abandon(stored.as_ref(), storage, catalog, e).await);
            }
        }
    }

    let Some((new, s)) = stored else {
        return Err(ApiError::MissingFile);
    };
    match catalog.finish_upload(&new, &meta, &s).await {
        Ok(image) => Ok(Uploaded::Created(image)),
        Err(e) => Err(abandon(Some(&(new, s)), storage, catalog, e).await),
    }
}

/// Undoes a stored original and its row, then hands back the error that
/// caused it.
async fn abandon<S: ObjectStore, C: MetadataStore>(
    stored: Option<&(NewImage, Stored)>,
    storage: &S,
    catalog: &C,
    cause: ApiError,
) -> ApiError {
    if let Some((new, _)) = stored {
        undo(new, storage, catalog).await;
    }
    cause
}

/// Removes the original (which may exist: a write whose reply was lost can
/// still have landed), the claimed row, then any variants. The row goes
/// only once the original is known gone: if S3 cannot confirm that, the row
/// stays `uploading` (hidden from clients) and the sweep settles it by the
/// object later, so no original is ever left without a row. Failures are
/// logged.
///
/// Why variants: the original is stored when its file part ends, while
/// later form fields are still being read, and its S3 event may reach the
/// resize Lambda at once; the Lambda processes `uploading` rows (a direct
/// upload's row is `uploading` until its event), so it can write
/// `variants/<id>/` and mark the row `ready` before a later field fails.
/// Holding the original back until the form ends would not close this (the
/// final row write can fail too), and making the Lambda wait for `pending`
/// would delay every upload whose event beats that write. So the undo
/// removes variants too, and after the row: a resize that marked the row
/// before it went has written its variants before this listing; one that
/// finishes after it finds no row and removes its own (the Lambda's
/// `is_live` check). If this listing or a delete fails, the sweep's
/// reconciler removes the objects with no row after its grace period.
///
/// The checksum hold goes first, on its own: the row may stay, and a
/// client retrying the same bytes must not wait for a dead upload.
async fn undo<S: ObjectStore, C: MetadataStore>(new: &NewImage, storage: &S, catalog: &C) {
    if let Err(e) = catalog.release_hold(&new.id).await {
        tracing::warn!(id = %new.id, error = %e,
            "compensation: releasing the checksum hold failed; it lapses in {HOLD_STALE_SECS} s");
    }
    if let Err(e) = storage.delete_object(&new.original_key).await {
        tracing::error!(id = %new.id, error = %e,
            "compensation: deleting the original failed; the row is left to the sweep");
        return;
    }
    if let Err(e) = catalog.delete_row(&new.id).await {
        tracing::error!(id = %new.id, error = %e, "compensation: deleting the row failed");
        return;
    }
    if let Err(e) = delete::remove_variants(storage, &new.id).await {
        tracing::error!(id = %new.id, error = %e,
            "compensation: removing variants failed; the sweep's reconciler removes them");
    }
}

async fn read_text(field: &mut multer::Field<'_>, max: usize) -> ApiResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
        if buf.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "field `{}` is over {max} bytes",
                field.name().unwrap_or_default()
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| ApiError::invalid_field(field.name().unwrap_or_default(), "not UTF-8"))
}

struct FileReader<'a, 'r> {
    field: &'a mut multer::Field<'r>,
    /// The rest of a body chunk that did not fit where the last one went.
    carry: Bytes,
}

impl FileReader<'_, '_> {
    async fn next_chunk(&mut self) -> ApiResult<Option<Bytes>> {
        if !self.carry.is_empty() {
            return Ok(Some(std::mem::take(&mut self.carry)));
        }
        loop {
            match self.field.chunk().await.map_err(multer_error)? {
                Some(c) if c.is_empty() => continue,
                other => return Ok(other),
            }
        }
    }

    /// Reads the file's first `max` bytes into wasm memory, where the sniffer
    /// looks at them; returns them and whether the file ended within them.
    /// They are copied out of multer's buffer so that keeping them to the end
    /// keeps nothing else alive.
    async fn head(&mut self, max: usize) -> ApiResult<(Bytes, bool)> {
        let mut head = BytesMut::with_capacity(max);
        while head.len() < max {
            let Some(mut c) = self.next_chunk().await? else {
                return Ok((head.freeze(), true));
            };
            self.carry = c.split_off(c.len().min(max - head.len()));
            head.extend_from_slice(&c);
        }
        Ok((head.freeze(), false))
    }

    /// Fills `part` to its capacity; returns whether the file ended.
    async fn fill(&mut self, tally: &mut Tally, part: &mut Part) -> ApiResult<bool> {
        loop {
            let Some(mut c) = self.next_chunk().await? else {
                return Ok(true);
            };
            let room = part.buf.capacity() - part.buf.len();
            if room == 0 {
                self.carry = c;
                return Ok(false);
            }
            self.carry = c.split_off(c.len().min(room));
            part.push(tally, &c)?;
        }
    }
}

/// The object or multipart part being buffered. It is hashed once full, by
/// the runtime (`payload::sha256`), so no byte is hashed in wasm.
struct Part {
    buf: PayloadBuffer,
}

impl Part {
    fn new(cap: usize) -> Self {
        Part {
            buf: PayloadBuffer::with_capacity(cap),
        }
    }

    /// Counts `bytes` into the file's tally and stores them; `bytes` must fit.
    fn push(&mut self, tally: &mut Tally, bytes: &[u8]) -> ApiResult<()> {
        tally.add(bytes)?;
        let taken = self.buf.push(bytes);
        debug_assert_eq!(taken, bytes.len());
        Ok(())
    }

    fn finish(self) -> Payload {
        self.buf.freeze()
    }
}

/// The runtime could not hash: nothing a client can change, and the cause
/// (a JS exception) is for the log only.
fn digest_failed(why: String) -> ApiError {
    tracing::error!(error = %why, "SHA-256 digest failed");
    ApiError::Config("the runtime's SHA-256 digest failed".into())
}

enum FileOutcome {
    Stored(Box<(NewImage, Stored)>),
    Replayed(Box<Image>),
    Duplicate(Box<Image>),
}

/// Running totals over the file's bytes as they stream past.
struct Tally {
    bytes: u64,
    tail: [u8; 16],
    max: u64,
}

impl Tally {
    fn add(&mut self, chunk: &[u8]) -> ApiResult<()> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max {
            return Err(ApiError::PayloadTooLarge(format!(
                "file over {} bytes",
                self.max
            )));
        }
        let keep = chunk.len().min(16);
        self.tail.copy_within(keep.., 0);
        self.tail[16 - keep..].copy_from_slice(&chunk[chunk.len() - keep..]);
        Ok(())
    }

    fn tail(&self) -> &[u8] {
        let n = self.bytes.min(16) as usize;
        &self.tail[16 - n..]
    }
}

pub fn check_probe(head: &[u8], limits: &Limits) -> ApiResult<Probe> {
    let probe = sniff::probe(head).map_err(|e| match e {
        SniffError::Unsupported => {
            ApiError::UnsupportedMediaType("the file is not a JPEG, PNG, WebP or GIF image".into())
        }
        SniffError::Corrupt(why) => ApiError::CorruptImage(why.into()),
    })?;
    if probe.width > limits.max_dimension || probe.height > limits.max_dimension {
        return Err(ApiError::ImageTooLarge(format!(
            "{}x{} exceeds {} pixels per side",
            probe.width, probe.height, limits.max_dimension
        )));
    }
    if u64::from(probe.width) * u64::from(probe.height) > limits.max_pixels {
        return Err(ApiError::ImageTooLarge(format!(
            "{}x{} exceeds {} pixels",
            probe.width, probe.height, limits.max_pixels
        )));
    }
    Ok(probe)
}

fn check_complete(format: SourceFormat, head: &[u8], tally: &Tally) -> ApiResult<()> {
    if sniff::is_complete(format, head, tally.tail(), tally.bytes) {
        Ok(())
    } else {
        Err(ApiError::CorruptImage("the file is truncated".into()))
    }
}

async fn store_file<S: ObjectStore, C: MetadataStore>(
    req: &UploadRequest,
    limits: &Limits,
    meta: &Metadata,
    file_name: Option<String>,
    file: &mut FileReader<'_, '_>,
    storage: &S,
    catalog: &C,
) -> ApiResult<FileOutcome> {
    let mut tally = Tally {
        bytes: 0,
        tail: [0; 16],
        max: limits.max_upload_bytes,
    };
    let (head, head_is_all) = file.head(bound(HEAD_BYTES, req.content_length, 0)).await?;
    if head.is_empty() {
        return Err(ApiError::EmptyFile);
    }
    let probe = check_probe(&head, limits)?;

    let new = NewImage {
        id: req.id.clone(),
        owner: req.owner.clone(),
        idempotency_key: req.idempotency_key.clone(),
        meta: meta.clone(),
        file_name,
        probe,
        original_key: keys::original(&req.id),
    };

    // Small files: read to the end before claiming anything, so a truncated
    // or oversize file leaves no trace at all. The buffer is sized once:
    // never above the declared body, nor above the threshold.
    let cap = if head_is_all {
        head.len()
    } else {
        bound(limits.multipart_threshold, req.content_length, 0).max(head.len())
    };
    let mut first = Part::new(cap);
    first.push(&mut tally, &head)?;
    let eof = head_is_all || file.fill(&mut tally, &mut first).await?;
    if eof {
        check_complete(probe.format, &head, &tally)?;
    }

    // A whole small file is hashed before the claim: its duplicate check
    // needs the checksum before anything is stored.
    let whole = if eof {
        let body = first.finish();
        let sha = payload::sha256(&body).await.map_err(digest_failed)?;
        Ok((body, sha))
    } else {
        Err(first)
    };

    if let Claim::Existing(image) = catalog.claim(&new).await? {
        let sha = whole.as_ref().ok().map(|(_, sha)| b64(sha));
        if !same_file(&image, &probe, sha.as_deref()) {
            return Err(ApiError::IdempotencyKeyReused);
        }
        return Ok(FileOutcome::Replayed(image));
    }
    // Held after the claim so a retried Idempotency-Key replays first;
    // nothing is stored yet, so the claimed row is all there is to remove
    // (the sweep takes it if even that fails: `uploading` with no object).
    if let Ok((_, sha)) = &whole
        && !req.allow_duplicates
    {
        let found = hold(catalog, &req.owner, &b64(sha), &req.id).await;
        if !matches!(found, Ok(None))
            && let Err(e) = catalog.delete_row(&new.id).await
        {
            tracing::error!(id = %new.id, error = %e, "withdrawing a duplicate's claim failed");
        }
        if let Some(image) = found? {
            return Ok(FileOutcome::Duplicate(Box::new(image)));
        }
    }

    let result = match whole {
        Ok((body, sha)) => put_whole(&new, body, &sha, storage).await.map(|()| sha),
        Err(first) => {
            let ctx = Multipart {
                new: &new,
                limits,
                head: &head,
                declared: req.content_length,
            };
            ctx.stream(first, &mut tally, file, storage).await
        }
    };
    let sha = match result {
        Ok(sha) => sha,
        Err(e) => {
            undo(&new, storage, catalog).await;
            return Err(e);
        }
    };
    let stored = Stored {
        bytes: tally.bytes,
        sha256_b64: b64(&sha),
    };
    if !eof && !req.allow_duplicates {
        match hold(catalog, &req.owner, &stored.sha256_b64, &req.id).await {
            Ok(None) => {}
            Ok(Some(image)) => {
                undo(&new, storage, catalog).await;
                return Ok(FileOutcome::Duplicate(Box::new(image)));
            }
            Err(e) => {
                undo(&new, storage, catalog).await;
                return Err(e);
            }
        }
    }
    Ok(FileOutcome::Stored(Box::new((new, stored))))
}

/// When an upload whose bytes another upload is storing looks again: after
/// 200 ms, doubling up to 2 s, about 11 s in all, which covers that upload's
/// last PUT and its row's update. Each look is a Data API call, and so a
/// subrequest of this request: backing off keeps a wait to 9 of them.
fn hold_waits() -> impl Iterator<Item = std::time::Duration> {
    std::iter::successors(Some(200u64), |ms| Some((ms * 2).min(2_000))).scan(0u64, |waited, ms| {
        (*waited < 10_000).then(|| {
            *waited += ms;
            std::time::Duration::from_millis(ms)
        })
    })
}

/// Holds the checksum for upload `id`: `None` when it is the owner's copy of
/// these bytes, else the image that already is. Two identical uploads at
/// once (a double click, a client's retry) meet here: the one that does
/// not hold waits for the other to be stored and returns it, and if that
/// one fails instead, takes the hold over.
async fn hold<M: MetadataStore>(
    catalog: &M,
    owner: &str,
    sha256_b64: &str,
    id: &str,
) -> ApiResult<Option<Image>> {
    let mut waits = hold_waits();
    loop {
        match catalog.hold_checksum(owner, sha256_b64, id).await? {
            Hold::Held => return Ok(None),
            Hold::Duplicate(image) => return Ok(Some(*image)),
            Hold::InFlight => match waits.next() {
                Some(wait) => crate::clock::sleep(wait).await,
                None => return Err(ApiError::DuplicateInProgress),
            },
        }
    }
}

/// Stores a file that fits one PUT, its SHA-256 signed into the PUT.
async fn put_whole<S: ObjectStore>(
    new: &NewImage,
    body: Payload,
    sha: &[u8; 32],
    storage: &S,
) -> ApiResult<()> {
    let content_type = new.probe.format.content_type();
    storage
        .put_object(&new.original_key, body, content_type, &b64(sha))
        .await
}

/// The most the next buffer needs: `max`, but no more than what is left of
/// the declared body once `read` file bytes are taken (at least one byte).
fn bound(max: usize, declared: Option<u64>, read: u64) -> usize {
    declared.map_or(max, |n| {
        usize::try_from(n.saturating_sub(read))
            .unwrap_or(usize::MAX)
            .clamp(1, max)
    })
}

/// A file over the threshold, sent as an S3 multipart upload.
struct Multipart<'a> {
    new: &'a NewImage,
    limits: &'a Limits,
    head: &'a [u8],
    declared: Option<u64>,
}

impl Multipart<'_> {
    /// Streams the file to S3 one part at a time and returns its SHA-256;
    /// aborts the upload on any error so S3 keeps no parts.
    async fn stream<S: ObjectStore>(
        &self,
        first: Part,
        tally: &mut Tally,
        file: &mut FileReader<'_, '_>,
        storage: &S,
    ) -> ApiResult<[u8; 32]> {
        let key = &self.new.original_key;
        let upload_id = storage
            .create_multipart(key, self.new.probe.format.content_type())
            .await?;
        let result = self.parts(first, tally, file, storage, &upload_id).await;
        if result.is_err()
            && let Err(e) = storage.abort_multipart(key, &upload_id).await
        {
            tracing::error!(id = %self.new.id, error = %e, "compensation: aborting the multipart upload failed");
        }
        result
    }

    async fn parts<S: ObjectStore>(
        &self,
        mut part: Part,
        tally: &mut Tally,
        file: &mut FileReader<'_, '_>,
        storage: &S,
        upload_id: &str,
    ) -> ApiResult<[u8; 32]> {
        let (key, part_bytes) = (&self.new.original_key, self.limits.part_bytes);
        let mut file_sha = RunningSha256::new().map_err(digest_failed)?;
        let mut eof = false;
        // The first buffer filled up to the threshold; it grows into part 1.
        if part.buf.capacity() < part_bytes {
            let cap = bound(part_bytes, self.declared, 0).max(part.buf.capacity());
            part.buf.grow(cap);
            eof = file.fill(tally, &mut part).await?;
        }
        let mut done = Vec::new();
        loop {
            let body = part.finish();
            if body.is_empty() {
                break;
            }
            let sha = payload::sha256(&body).await.map_err(digest_failed)?;
            file_sha.update(&body).await.map_err(digest_failed)?;
            let n = done.len() as u32 + 1;
            let etag = storage
                .upload_part(key, upload_id, n, body, &b64(&sha))
                .await?;
            done.push((n, etag));
            if eof {
                break;
            }
            // Allocated only now, once the last one is sent and dropped.
            part = Part::new(bound(part_bytes, self.declared, tally.bytes));
            eof = file.fill(tally, &mut part).await?;
        }
        check_complete(self.new.probe.format, self.head, tally)?;
        storage.complete_multipart(key, upload_id, &done).await?;
        file_sha.finish().await.map_err(digest_failed)
    }
}

/// Whether a retry with the same Idempotency-Key sends the file the first
/// request stored: the same checksum when the retry's file was read whole
/// (small files), else the same format and size in pixels (all a large
/// file's head tells before it is streamed). A different file under a used
/// key is the client's bug, refused as the IETF draft asks (422), not
/// answered with the first file's image.
fn same_file(first: &Image, probe: &Probe, sha: Option<&str>) -> bool {
    let looks_same = first.format.as_deref() == Some(probe.format.as_str())
        && first.width == Some(probe.width)
        && first.height == Some(probe.height);
    match (sha, first.checksum_sha256.as_deref()) {
        (Some(now), Some(then)) => now == then,
        _ => looks_same,
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::stream;
    use pixport_contract::Status;

    use super::*;
    use crate::ports::memory::Memory;

    fn limits() -> Limits {
        Limits {
            max_upload_bytes: 40 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_dimension: 20_000,
            max_fields: 4,
            max_field_bytes: 1024,
            multipart_threshold: 5 * 1024 * 1024,
            part_bytes: 5 * 1024 * 1024,
            memory_budget: 64 * 1024 * 1024,
            max_images_per_owner: u64::MAX,
            max_bytes_per_owner: u64::MAX,
        }
    }

    /// A minimal JPEG of `size` bytes: SOI, SOF0 (w x h), filler, EOI.
    fn jpeg(w: u16, h: u16, size: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8];
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        // A scan header, then stand-in entropy-coded data up to `size`.
        v.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
        v.resize(size - 2, 0x55);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, file, data) in parts {
            b.extend_from_slice(b"--XyZ\r\n");
            match file {
                Some(f) => b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
                ),
                None => b.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    fn run(m: &Memory, body: Vec<u8>, key: Option<&str>) -> ApiResult<Uploaded> {
        let declared = Some(body.len() as u64);
        run_chunked(m, body, key, declared, 64 * 1024)
    }

    fn run_allowing(m: &Memory, body: Vec<u8>, allow: bool) -> ApiResult<Uploaded> {
        let req = UploadRequest {
            id: format!(
                "ID{}",
                m.rows.borrow().len() + m.objects.borrow().len() + 100
            ),
            owner: "owner".into(),
            idempotency_key: None,
            content_length: Some(body.len() as u64),
            allow_duplicates: allow,
        };
        futures_executor::block_on(upload(
            req,
            &limits(),
            "multipart/form-data; boundary=XyZ",
            stream::iter([Ok::<_, Infallible>(Bytes::from(body))]),
            m,
            m,
        ))
    }

    fn run_chunked(
        m: &Memory,
        body: Vec<u8>,
        key: Option<&str>,
        content_length: Option<u64>,
        chunk: usize,
    ) -> ApiResult<Uploaded> {
        let chunks: Vec<Result<Bytes, Infallible>> = body
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let req = UploadRequest {
            id: format!("ID{}", m.rows.borrow().len() + m.objects.borrow().len()),
            owner: "owner".into(),
            idempotency_key: key.map(str::to_string),
            content_length,
            allow_duplicates: false,
        };
        futures_executor::block_on(upload(
            req,
            &limits(),
            "multipart/form-data; boundary=XyZ",
            stream::iter(chunks),
            m,
            m,
        ))
    }

    fn created(r: ApiResult<Uploaded>) -> Image {
        match r {
            Ok(Uploaded::Created(i)) => i,
            Ok(Uploaded::Replayed(_)) => panic!("replayed"),
            Ok(Uploaded::Duplicate(_)) => panic!("duplicate"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn small_upload_stores_object_and_row_with_fields_after_the_file() {
        let m = Memory::default();
        let data = jpeg(4000, 3000, 100_000);
        let img = created(run(
            &m,
            form(&[
                ("title", None, b"Sea"),
                ("file", Some("a/b/ünï.jpg"), &data),
                ("tags", None, b"x,y"),
            ]),
            None,
        ));
        assert_eq!(img.status, Status::Pending);
        assert_eq!(img.meta.tags, ["x", "y"]);
        assert_eq!(img.file_name.as_deref(), Some("ünï.jpg"));
        assert_eq!(m.objects.borrow()[&img.original_key], data);
        assert_eq!(img.bytes, Some(100_000));
    }

    #[test]
    fn large_upload_streams_in_parts_of_the_configured_size() {
        let m = Memory::default();
        let data = jpeg(4000, 3000, 17 * 1024 * 1024 + 5);
        let img = created(run(&m, form(&[("file", Some("big.jpg"), &data)]), None));
        assert_eq!(m.objects.borrow()[&img.original_key], data);
        let parts = m.parts_seen.borrow().clone();
        assert_eq!(parts[..3], [5 * 1024 * 1024; 3]);
        assert_eq!(parts.iter().sum::<usize>(), data.len());
    }

    #[test]
    fn bad_inputs_store_nothing() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (form(&[("title", None, b"no file")]), "missing_file"),
            (form(&[("file", Some("e.jpg"), b"")]), "empty_file"),
            (form(&[("file", Some("t.jpg"), b"just some text")]), "unsupported_media_type"),
            (form(&[("file", Some("t.jpg"), &jpeg(10, 10, 5000)[..4000])]), "corrupt_image"),
            (form(&[("file", Some("h.jpg"), &jpeg(50_000, 50_000, 5000))]), "image_too_large"),
            (form(&[("a", None, b"1"), ("b", None, b"2"), ("c", None, b"3"), ("d", None, b"4"), ("e", None, b"5")]), "too_many_fields"),
            (b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n\xff\xd8".to_vec(), "malformed_multipart"),
        ];
        for (body, code) in cases {
            let m = Memory::default();
            let err = run(&m, body, None)
                .err()
                .unwrap_or_else(|| panic!("{code} accepted"));
            assert_eq!(err.status_and_code().1, code);
            assert!(
                m.objects.borrow().is_empty() && m.rows.borrow().is_empty(),
                "{code} left data"
            );
        }
    }

    #[test]
    fn truncated_large_upload_is_aborted_and_leaves_nothing() {
        let m = Memory::default();
        let mut data = jpeg(4000, 3000, 12 * 1024 * 1024);
        data.truncate(data.len() - 2);
        let err = run(&m, form(&[("file", Some("big.jpg"), &data)]), None)
            .err()
            .unwrap();
        assert_eq!(err.status_and_code().1, "corrupt_image");
        assert!(
            m.objects.borrow().is_empty()
                && m.rows.borrow().is_empty()
                && m.uploads.borrow().is_empty()
        );
    }

    #[test]
    fn failure_at_any_step_leaves_neither_row_nor_object() {
        for (step, size) in [
            ("claim", 1000),
            ("put", 1000),
            ("put-reply", 1000),
            ("finish", 1000),
            ("create", 12 << 20),
            ("part", 12 << 20),
            ("complete", 12 << 20),
        ] {
            let m = Memory::failing(&[step]);
            let r = run(
                &m,
                form(&[("file", Some("x.jpg"), &jpeg(100, 100, size))]),
                None,
            );
            assert!(r.is_err(), "{step}");
            assert!(m.objects.borrow().is_empty(), "{step} left an object");
            assert!(m.rows.borrow().is_empty(), "{step} left a row");
            assert!(m.uploads.borrow().is_empty(), "{step} left parts");
        }
    }

    #[test]
    fn unconfirmed_delete_leaves_the_row_for_the_sweep() {
        // The original may exist and S3 cannot say it is gone: the row must
        // stay (`uploading`, hidden from lists) so the sweep can settle it;
        // dropping it could strand an object with no row.
        for steps in [
            ["finish", "delete"],
            ["put-reply", "delete"],
            ["put", "delete"],
        ] {
            let m = Memory::failing(&steps);
            let r = run(
                &m,
                form(&[("file", Some("x.jpg"), &jpeg(100, 100, 1000))]),
                None,
            );
            assert!(r.is_err(), "{steps:?}");
            let rows = m.rows.borrow();
            assert_eq!(rows.len(), 1, "{steps:?}: the row was dropped");
            assert!(
                rows.values().all(|r| r.status == Status::Uploading),
                "{steps:?}"
            );
        }
    }

    #[test]
    fn undo_removes_variants_a_resize_already_wrote() {
        let m = Memory::default();
        let img = m.insert_row("RESIZED", Status::Ready, 0);
        for key in [
            img.original_key.clone(),
            keys::variant("RESIZED", 320, pixport_contract::OutputFormat::Jpeg),
            keys::variant("RESIZED", 640, pixport_contract::OutputFormat::Jpeg),
            keys::variant("OTHER", 320, pixport_contract::OutputFormat::Jpeg),
        ] {
            m.objects.borrow_mut().insert(key, b"x".to_vec());
        }
        let new = Memory::new_image(&img.id);
        futures_executor::block_on(undo(&new, &m, &m));
        assert_eq!(m.status("RESIZED"), None);
        let left: Vec<String> = m.objects.borrow().keys().cloned().collect();
        assert_eq!(left, ["variants/OTHER/320.jpg"]);
    }

    #[test]
    fn idempotency_key_replays_the_first_result() {
        let m = Memory::default();
        let body = form(&[("file", Some("x.jpg"), &jpeg(100, 100, 1000))]);
        let first = created(run(&m, body.clone(), Some("k1")));
        match run(&m, body, Some("k1")) {
            Ok(Uploaded::Replayed(again)) => assert_eq!(again.id, first.id),
            _ => panic!("expected a replay"),
        }
        assert_eq!(m.rows.borrow().len(), 1);
        assert_eq!(m.objects.borrow().len(), 1);
    }

    #[test]
    fn a_used_idempotency_key_with_another_file_is_refused() {
        // Same size, other bytes (small: compared by checksum); other size
        // (large: compared by what the head says).
        for (first, second) in [
            (jpeg(100, 100, 1000), jpeg(100, 100, 1001)),
            (jpeg(3000, 2000, 12 << 20), jpeg(3000, 2001, 12 << 20)),
        ] {
            let m = Memory::default();
            created(run(
                &m,
                form(&[("file", Some("x.jpg"), &first)]),
                Some("k1"),
            ));
            match run(&m, form(&[("file", Some("x.jpg"), &second)]), Some("k1")) {
                Err(ApiError::IdempotencyKeyReused) => {}
                other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
            }
            assert_eq!(m.rows.borrow().len(), 1);
            assert_eq!(m.objects.borrow().len(), 1);
        }
    }

    #[test]
    fn same_bytes_again_return_the_existing_image_and_store_no_second_copy() {
        // One PUT (checked before anything is stored) and multipart (checked
        // after streaming, the new object and row removed).
        for size in [1000, 12 << 20] {
            let m = Memory::default();
            let body = form(&[("file", Some("x.jpg"), &jpeg(100, 100, size))]);
            let first = created(run(&m, body.clone(), None));
            match run(&m, body.clone(), None) {
                Ok(Uploaded::Duplicate(again)) => assert_eq!(again.id, first.id, "{size}"),
                _ => panic!("{size}: expected a duplicate"),
            }
            assert_eq!(m.rows.borrow().len(), 1, "{size}");
            assert_eq!(m.objects.borrow().len(), 1, "{size}");
            assert!(m.uploads.borrow().is_empty(), "{size}");
            // Opting out keeps a second copy; other bytes are no duplicate.
            let copy = created(run_allowing(&m, body, true));
            assert_ne!(copy.id, first.id);
            let other = form(&[("file", Some("y.jpg"), &jpeg(100, 100, size + 1))]);
            created(run(&m, other, None));
            assert_eq!(m.rows.borrow().len(), 3, "{size}");
            assert_eq!(m.objects.borrow().len(), 3, "{size}");
        }
    }

    #[test]
    fn bytes_another_upload_is_storing_wait_for_it_unless_it_died_or_failed() {
        for size in [1000, 12 << 20] {
            let m = Memory::default();
            let body = form(&[("file", Some("x.jpg"), &jpeg(100, 100, size))]);
            let first = created(run(&m, body.clone(), None));
            let set = |status| {
                if let Some(row) = m.rows.borrow_mut().get_mut(&first.id) {
                    row.status = status;
                }
            };
            // As if the first were still storing its original when the
            // second arrives: the second waits its turns, then is told to
            // come back, leaving nothing.
            set(Status::Uploading);
            match run(&m, body.clone(), None) {
                Err(e @ ApiError::DuplicateInProgress) => {
                    assert_eq!(e.status_and_code(), (409, "duplicate_in_progress"));
                    assert_eq!(e.headers(), vec![("retry-after", "2".to_string())]);
                }
                other => panic!("{size}: expected a 409, got {:?}", other.map(|_| ())),
            }
            assert_eq!(m.rows.borrow().len(), 1, "{size}");
            assert_eq!(m.objects.borrow().len(), 1, "{size}");
            assert!(m.uploads.borrow().is_empty(), "{size}");
            let holders = || -> Vec<String> { m.checksums.borrow().values().cloned().collect() };
            // Still `uploading` a minute on, its request died: the next
            // upload takes the hold and is stored.
            m.ages.borrow_mut().insert(first.id.clone(), 1);
            let second = created(run(&m, body.clone(), None));
            assert_eq!(holders(), vec![second.id.clone()], "{size}");
            match run(&m, body.clone(), None) {
                Ok(Uploaded::Duplicate(again)) => assert_eq!(again.id, second.id, "{size}"),
                _ => panic!("{size}: expected a duplicate of the second"),
            }
            // A holder that failed hands the hold over at once.
            if let Some(row) = m.rows.borrow_mut().get_mut(&second.id) {
                row.status = Status::Failed;
            }
            let third = created(run(&m, body, None));
            assert_eq!(holders(), vec![third.id.clone()], "{size}");
        }
    }

    #[test]
    fn a_failed_upload_whose_row_stays_gives_its_hold_up() {
        // The upload fails after its hold (a small file's PUT, a large
        // file's final row update) and S3 does not confirm the delete: the
        // row stays `uploading` for the sweep, but the client's retry must
        // not wait for it.
        for (size, fails) in [(1000, "put"), (12 << 20, "finish")] {
            let m = Memory::failing(&[fails, "delete"]);
            let body = form(&[("file", Some("x.jpg"), &jpeg(100, 100, size))]);
            assert!(run(&m, body.clone(), None).is_err(), "{size}");
            assert_eq!(
                m.rows.borrow().len(),
                1,
                "{size}: the row is left to the sweep"
            );
            assert!(
                m.checksums.borrow().is_empty(),
                "{size}: the hold is released"
            );
            m.fail.borrow_mut().clear();
            created(run(&m, body, None));
        }
    }

    #[test]
    fn a_failed_duplicate_lookup_after_streaming_leaves_nothing() {
        let m = Memory::default();
        let body = form(&[("file", Some("x.jpg"), &jpeg(100, 100, 12 << 20))]);
        m.fail.borrow_mut().push("hold");
        let err = run(&m, body, None).err().expect("the lookup failed");
        assert_eq!(err.status_and_code().0, 503);
        assert!(m.objects.borrow().is_empty() && m.rows.borrow().is_empty());
    }

    #[test]
    fn files_at_every_buffer_edge_arrive_whole_with_or_without_a_declared_length() {
        const MIB: usize = 1024 * 1024;
        for size in [
            HEAD_BYTES - 1,
            HEAD_BYTES,
            HEAD_BYTES + 1,
            5 * MIB - 1,
            5 * MIB,
            5 * MIB + 1,
            10 * MIB,
            10 * MIB + 1,
        ] {
            for (declared, chunk) in [(true, 64 * 1024), (false, 1_000_003)] {
                let m = Memory::default();
                let data = jpeg(4000, 3000, size);
                let body = form(&[("file", Some("x.jpg"), &data), ("title", None, b"t")]);
                let len = declared.then_some(body.len() as u64);
                let img = created(run_chunked(&m, body, None, len, chunk));
                assert_eq!(m.objects.borrow()[&img.original_key], data, "{size}");
                let parts = m.parts_seen.borrow().clone();
                if size <= 5 * MIB {
                    assert!(parts.is_empty(), "{size}: one PUT expected");
                } else {
                    let (last, full) = parts.split_last().unwrap();
                    assert!(full.iter().all(|&p| p == 5 * MIB), "{size}: {parts:?}");
                    assert!(*last > 0 && *last <= 5 * MIB, "{size}: {parts:?}");
                }
            }
        }
    }

    #[test]
    fn a_held_checksum_is_looked_at_nine_times_in_about_eleven_seconds() {
        let waits: Vec<u64> = hold_waits().map(|d| d.as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
        assert_eq!(waits.iter().sum::<u64>(), 11_000);
    }
}
