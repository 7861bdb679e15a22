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

use pixport_contract::SourceFormat;

use super::{Claim, Uploaded, Uploads, Written};
use crate::domain::error::{Error, Result};
use crate::domain::fields::{Metadata, clean_file_name};
use crate::domain::grant::Grant;
use crate::domain::limits::UploadLimits;
use crate::domain::model::{Image, Moment, NewImage};
use crate::domain::ports::{Declared, ImageRows, ObjectStore, Stored, UploadClaims};
use crate::domain::quota;
use crate::domain::sniff::{self, Probe, SniffError};
use crate::domain::upload::framing;
use crate::runtime::budget;
use crate::runtime::payload::{self, Payload, PayloadBuffer, RunningSha256};

/// How many bytes of the file are read before deciding it is an image:
/// JPEG frame headers can sit behind up to a few 64 KiB APPn segments.
pub const HEAD_BYTES: usize = 256 * 1024;
/// Who is uploading a form and under which id.
pub struct FormUpload {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub content_length: Option<u64>,
    /// Keep a second copy of bytes the owner already has (`?duplicates=allow`).
    pub allow_duplicates: bool,
    /// The upload grant the uploader came with (its id is `id`).
    pub grant: Option<Grant>,
}

fn multer_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { limit } => {
            Error::PayloadTooLarge(format!("request body over {limit} bytes"))
        }
        multer::Error::FieldSizeExceeded { limit, field_name } => Error::PayloadTooLarge(format!(
            "field `{}` over {limit} bytes",
            field_name.unwrap_or_default()
        )),
        other => match (framing::framing_error(&other), budget::pace_error(&other)) {
            (Some(bound), _) => Error::MalformedMultipart(bound.to_string()),
            (None, Some(pace)) => pace.into(),
            (None, None) => Error::MalformedMultipart(other.to_string()),
        },
    }
}

impl<O: ObjectStore, R: ImageRows + UploadClaims> Uploads<'_, O, R> {
    /// Runs a form upload; see the module docs for the order of steps.
    pub async fn form<B, E>(&self, req: FormUpload, content_type: &str, body: B) -> Result<Uploaded>
    where
        B: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let limits = self.limits;
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            Error::UnsupportedMediaType("expected multipart/form-data with a boundary".into())
        })?;
        if req.content_length.is_some_and(|n| n > limits.body_limit()) {
            return Err(Error::PayloadTooLarge(format!(
                "request body over {} bytes",
                limits.body_limit()
            )));
        }
        let constraints = multer::Constraints::new()
            .size_limit(multer::SizeLimit::new().whole_stream(limits.body_limit()));
        let body = framing::Framed::new(Box::pin(body), &boundary);
        let mut form = multer::Multipart::with_constraints(body, boundary, constraints);

        let mut meta = Metadata::default();
        let mut fields = 0usize;
        let mut stored: Option<Kept> = None;

        loop {
            let next = form.next_field().await;
            let mut field = match next {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(self.abandon(stored.as_ref(), multer_error(e)).await),
            };
            if field.file_name().is_some() {
                if stored.is_some() {
                    let e = Error::invalid_field(
                        field.name().unwrap_or("file"),
                        "only one file per upload",
                    );
                    return Err(self.abandon(stored.as_ref(), e).await);
                }
                let file_name = field.file_name().and_then(clean_file_name);
                let mut file = FileReader {
                    field: &mut field,
                    carry: Bytes::new(),
                };
                match self.store_file(&req, &meta, file_name, &mut file).await? {
                    FileOutcome::Stored(done) => stored = Some(*done),
                    FileOutcome::Replayed(image) => return Ok(Uploaded::Replayed(*image)),
                    FileOutcome::Duplicate(image) => return Ok(Uploaded::Duplicate(*image)),
                }
            } else {
                fields += 1;
                let result = if fields > limits.max_fields {
                    Err(Error::TooManyFields(limits.max_fields))
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
                    return Err(self.abandon(stored.as_ref(), e).await);
                }
            }
        }

        let Some(kept) = stored else {
            return Err(Error::MissingFile);
        };
        // A grant's fields are the server's: the uploader's give way.
        if let Some(fixed) = req.grant.as_ref().and_then(|g| g.meta.clone()) {
            meta = fixed;
        }
        match self.finish(&kept, &meta).await {
            Ok(image) => Ok(Uploaded::Created(image)),
            Err(e) => Err(self.abandon(Some(&kept), e).await),
        }
    }

    /// Records the stored original and the form's fields. A file streamed
    /// to S3 counts its bytes again before its row becomes `pending`: a body
    /// without a length was admitted counting 0, and concurrent uploads
    /// each counted only the rows before theirs. A whole file's bytes were
    /// in its row when the claim counted. Over the quota, the upload is
    /// withdrawn by the caller (its original exists).
    async fn finish(&self, kept: &Kept, meta: &Metadata) -> Result<Image> {
        let Kept {
            new,
            stored,
            counted,
        } = kept;
        self.limits.check_visibility(meta)?;
        if !counted {
            self.rows.record_size(&new.id, stored.bytes).await?;
            quota::check_held(self.limits, self.rows.usage(&new.owner).await?)?;
        }
        let at = Moment::now();
        self.rows.finish(new, meta, stored, at).await?;
        Ok(new.stored(meta, stored.bytes, &stored.sha256_b64, at))
    }

    /// Withdraws a stored original and its row, then hands back the error
    /// that caused it.
    async fn abandon(&self, stored: Option<&Kept>, cause: Error) -> Error {
        if let Some(Kept { new, .. }) = stored {
            self.withdraw_logged(&new.id, &new.original_key, Written::Object)
                .await;
        }
        cause
    }
}

async fn read_text(field: &mut multer::Field<'_>, max: usize) -> Result<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
        if buf.len() + chunk.len() > max {
            return Err(Error::PayloadTooLarge(format!(
                "field `{}` is over {max} bytes",
                field.name().unwrap_or_default()
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| Error::invalid_field(field.name().unwrap_or_default(), "not UTF-8"))
}

struct FileReader<'a, 'r> {
    field: &'a mut multer::Field<'r>,
    /// The rest of a body chunk that did not fit where the last one went.
    carry: Bytes,
}

impl FileReader<'_, '_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
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
    async fn head(&mut self, max: usize) -> Result<(Bytes, bool)> {
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
    async fn fill(&mut self, tally: &mut Tally, part: &mut Part) -> Result<bool> {
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
    fn push(&mut self, tally: &mut Tally, bytes: &[u8]) -> Result<()> {
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
fn digest_failed(why: String) -> Error {
    tracing::error!(error = %why, "SHA-256 digest failed");
    Error::Runtime(format!("the runtime's SHA-256 digest failed: {why}"))
}

/// An original stored in S3 whose row is still `uploading`.
struct Kept {
    new: NewImage,
    stored: Stored,
    /// Its bytes were in its row when the claim counted the owner's quota
    /// (a file read whole before the claim).
    counted: bool,
}

enum FileOutcome {
    Stored(Box<Kept>),
    Replayed(Box<Image>),
    Duplicate(Box<Image>),
}

/// Running totals over the file's bytes as they stream past.
struct Tally {
    bytes: u64,
    tail: [u8; 16],
    max: u64,
    /// The most is a grant's, not the service's.
    by_grant: bool,
}

impl Tally {
    fn add(&mut self, chunk: &[u8]) -> Result<()> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max && self.by_grant {
            return Err(Error::GrantExceeded(format!(
                "the grant takes files up to {} bytes",
                self.max
            )));
        }
        if self.bytes > self.max {
            return Err(Error::PayloadTooLarge(format!(
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

pub fn check_probe(head: &[u8], limits: &UploadLimits) -> Result<Probe> {
    let probe = sniff::probe(head).map_err(|e| match e {
        SniffError::Unsupported => {
            Error::UnsupportedMediaType("the file is not a JPEG, PNG, WebP or GIF image".into())
        }
        SniffError::Corrupt(why) => Error::CorruptImage(why.into()),
    })?;
    // The resizer checks the same limits on the same header (one type,
    // `pixport_contract::ImageLimits`).
    limits
        .image
        .check_dimensions(probe.width, probe.height)
        .map_err(|e| {
            if e.is_over_limits() {
                Error::ImageTooLarge(e.to_string())
            } else {
                Error::CorruptImage(e.to_string())
            }
        })?;
    Ok(probe)
}

fn check_complete(format: SourceFormat, head: &[u8], tally: &Tally) -> Result<()> {
    if sniff::is_complete(format, head, tally.tail(), tally.bytes) {
        Ok(())
    } else {
        Err(Error::CorruptImage("the file is truncated".into()))
    }
}

impl<O: ObjectStore, R: ImageRows + UploadClaims> Uploads<'_, O, R> {
    async fn store_file(
        &self,
        req: &FormUpload,
        meta: &Metadata,
        file_name: Option<String>,
        file: &mut FileReader<'_, '_>,
    ) -> Result<FileOutcome> {
        let (limits, storage) = (self.limits, self.objects);
        let grant = req.grant.as_ref();
        let mut tally = Tally {
            bytes: 0,
            tail: [0; 16],
            max: grant.map_or(limits.image.max_bytes, |g| {
                g.max_bytes.min(limits.image.max_bytes)
            }),
            by_grant: grant.is_some_and(|g| g.max_bytes < limits.image.max_bytes),
        };
        let (head, head_is_all) = file.head(bound(HEAD_BYTES, req.content_length, 0)).await?;
        if head.is_empty() {
            return Err(Error::EmptyFile);
        }
        let probe = check_probe(&head, limits)?;
        if let Some(g) = grant {
            g.covers(probe.format, None)?;
        }

        let new = NewImage {
            id: req.id.clone(),
            owner: req.owner.clone(),
            idempotency_key: req.idempotency_key.clone(),
            meta: meta.clone(),
            file_name,
            probe,
            original_key: keys::original(&req.id),
            request_id: self.request_id.map(str::to_string),
            created: Moment::now(),
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

        // A whole file's row is inserted with its size and checksum, so the
        // quota counted at the claim is final and the finish need not count
        // again.
        let whole_sha = whole.as_ref().ok().map(|(_, sha)| b64(sha));
        let known = whole.as_ref().ok().map(|(body, _)| Declared {
            bytes: body.len() as u64,
            sha256_b64: whole_sha.as_deref(),
            put_ttl_secs: None,
        });
        if let Claim::Existing(image) = self.claim(&new, known).await? {
            if !same_file(&image, &probe, whole_sha.as_deref()) {
                return Err(Error::IdempotencyKeyReused);
            }
            return Ok(FileOutcome::Replayed(image));
        }
        // Held after the claim so a retried Idempotency-Key replays first;
        // nothing is stored yet, so the claimed row is all there is to remove
        // (the sweep takes it if even that fails: `uploading` with no object).
        if let Ok((_, sha)) = &whole
            && !req.allow_duplicates
        {
            let found = self.hold(&req.owner, &b64(sha), &req.id).await;
            if !matches!(found, Ok(None)) {
                self.withdraw_logged(&new.id, &new.original_key, Written::Row)
                    .await;
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
                self.withdraw_logged(&new.id, &new.original_key, Written::Object)
                    .await;
                return Err(e);
            }
        };
        let stored = Stored {
            bytes: tally.bytes,
            sha256_b64: b64(&sha),
        };
        if !eof && !req.allow_duplicates {
            match self.hold(&req.owner, &stored.sha256_b64, &req.id).await {
                Ok(None) => {}
                Ok(Some(image)) => {
                    self.withdraw_logged(&new.id, &new.original_key, Written::Object)
                        .await;
                    return Ok(FileOutcome::Duplicate(Box::new(image)));
                }
                Err(e) => {
                    self.withdraw_logged(&new.id, &new.original_key, Written::Object)
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(FileOutcome::Stored(Box::new(Kept {
            new,
            stored,
            counted: eof,
        })))
    }
}

/// Stores a file that fits one PUT, its SHA-256 signed into the PUT.
async fn put_whole<S: ObjectStore>(
    new: &NewImage,
    body: Payload,
    sha: &[u8; 32],
    storage: &S,
) -> Result<()> {
    let content_type = new.probe.format.content_type();
    storage
        .put_object(
            &new.original_key,
            body,
            content_type,
            &b64(sha),
            new.request_id.as_deref(),
        )
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
    limits: &'a UploadLimits,
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
    ) -> Result<[u8; 32]> {
        let key = &self.new.original_key;
        let upload_id = storage
            .create_multipart(
                key,
                self.new.probe.format.content_type(),
                self.new.request_id.as_deref(),
            )
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
    ) -> Result<[u8; 32]> {
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
    use crate::adapters::memory::Memory;
    use crate::domain::upload::testing::{code, form, jpeg, limits, status_and_code};

    fn run(m: &Memory, body: Vec<u8>, key: Option<&str>) -> Result<Uploaded> {
        let declared = Some(body.len() as u64);
        run_chunked(m, body, key, declared, 64 * 1024)
    }

    fn run_allowing(m: &Memory, body: Vec<u8>, allow: bool) -> Result<Uploaded> {
        let len = body.len();
        let id_offset = 100;
        run_form(
            m,
            body,
            None,
            Some(len as u64),
            len.max(1),
            allow,
            id_offset,
        )
    }

    fn run_chunked(
        m: &Memory,
        body: Vec<u8>,
        key: Option<&str>,
        content_length: Option<u64>,
        chunk: usize,
    ) -> Result<Uploaded> {
        run_form(m, body, key, content_length, chunk, false, 0)
    }

    /// The form upload of `body`, arriving in `chunk`-byte pieces, under an
    /// id no earlier row or object of `m` has (offset by `id_offset`).
    fn run_form(
        m: &Memory,
        body: Vec<u8>,
        key: Option<&str>,
        content_length: Option<u64>,
        chunk: usize,
        allow_duplicates: bool,
        id_offset: usize,
    ) -> Result<Uploaded> {
        let chunks: Vec<std::result::Result<Bytes, Infallible>> = body
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let n = m.rows.borrow().len() + m.objects.borrow().len() + id_offset;
        let req = FormUpload {
            id: format!("ID{n}"),
            owner: "owner".into(),
            idempotency_key: key.map(str::to_string),
            content_length,
            allow_duplicates,
            grant: None,
        };
        let limits = limits();
        let uploads = Uploads {
            objects: m,
            rows: m,
            limits: &limits,
            request_id: None,
        };
        futures_executor::block_on(uploads.form(
            req,
            "multipart/form-data; boundary=XyZ",
            stream::iter(chunks),
        ))
    }

    fn created(r: Result<Uploaded>) -> Image {
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
        for (body, want) in cases {
            let m = Memory::default();
            let err = run(&m, body, None)
                .err()
                .unwrap_or_else(|| panic!("{want} accepted"));
            assert_eq!(code(&err), want);
            assert!(
                m.objects.borrow().is_empty() && m.rows.borrow().is_empty(),
                "{want} left data"
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
        assert_eq!(code(&err), "corrupt_image");
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
        let limits = limits();
        let uploads = Uploads {
            objects: &m,
            rows: &m,
            limits: &limits,
            request_id: None,
        };
        futures_executor::block_on(uploads.withdraw(&new.id, &new.original_key, Written::Object))
            .unwrap();
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
                Err(Error::IdempotencyKeyReused) => {}
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
                Err(e @ Error::DuplicateInProgress) => {
                    assert_eq!(status_and_code(&e), (409, "duplicate_in_progress"));
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
        let err = run(&m, body, None).expect_err("the lookup failed");
        assert_eq!(status_and_code(&err).0, 503);
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
}
