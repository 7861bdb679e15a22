//! Uploads: one service for the three ways an original arrives.
//!
//! - [`form`]: `POST /images`, a `multipart/form-data` body streamed
//!   through the worker to S3;
//! - [`direct`]: `POST /uploads`, a declared file the client PUTs straight
//!   to S3 with a presigned URL;
//! - [`browser`]: the routes `@uppy/aws-s3` speaks (a presigned PUT, or a
//!   multipart upload signed part by part).
//!
//! Each is a method of [`Uploads`] and shares its steps: the declaration
//! checks ([`declare`]), the claim of an id (an `uploading` row, its
//! Idempotency-Key, the owner's quota counted with it: [`Uploads::claim`]),
//! duplicates (one holder per owner and checksum: [`Uploads::hold`]) and
//! one way back when a step fails ([`Uploads::withdraw`]): nothing stored
//! is left without its row, and no row claims an object that was not stored.

pub mod browser;
pub mod direct;
pub mod form;
pub(crate) mod framing;
pub(crate) mod testing;

use pixport_contract::{SourceFormat, Status, keys};

use crate::domain::delete;
use crate::domain::error::{Error, Result};
use crate::domain::grant::Grant;
use crate::domain::id;
use crate::domain::limits::UploadLimits;
use crate::domain::model::{Image, Metadata, NewImage};
use crate::domain::ports::{
    Declared, HOLD_STALE_SECS, Hold, ImageRows, Inserted, ObjectStore, UploadClaims,
};
use crate::domain::quota;
use crate::domain::sniff::Probe;

pub use crate::domain::sniff::declared_format;
pub use form::{FormUpload, HEAD_BYTES};

/// The upload service, over the ports.
pub struct Uploads<'a, O, R> {
    pub objects: &'a O,
    pub rows: &'a R,
    pub limits: &'a UploadLimits,
    /// The request this upload came with (`x-request-id`), stored with the
    /// original (`NewImage::request_id`).
    pub request_id: Option<&'a str>,
}

/// The result for the client: a new image (201), the first result of a
/// retried upload (200) or the owner's image with the same bytes (200).
#[derive(Debug)]
pub enum Uploaded {
    Created(Image),
    Replayed(Image),
    Duplicate(Image),
}

/// Outcome of claiming an id.
pub(crate) enum Claim {
    Claimed,
    /// The owner already used this Idempotency-Key for this finished image.
    Existing(Box<Image>),
}

/// What a failed upload had written, for [`Uploads::withdraw`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Written<'a> {
    /// Only the row: nothing reached S3.
    Row,
    /// An unfinished multipart upload (its id): parts, no object.
    Parts(&'a str),
    /// The original may exist (a write whose reply was lost can still have
    /// landed), and with it a resize's variants.
    Object,
}

/// Checks a declaration before anything is claimed: an accepted image
/// type, not empty, within the byte limit. The bytes themselves are checked
/// later (a browser's on completion, a direct upload's by the resizer).
pub fn declare(content_type: &str, bytes: u64, limits: &UploadLimits) -> Result<SourceFormat> {
    let format = declared_format(content_type)?;
    if bytes == 0 {
        return Err(Error::EmptyFile);
    }
    if bytes > limits.image.max_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "file over {} bytes",
            limits.image.max_bytes
        )));
    }
    Ok(format)
}

/// The row of a declared upload (direct or browser): its declared format,
/// no dimensions until the resizer reads them; with a grant, the grant's
/// id and, when the server fixed them, its fields (the uploader's give way).
pub(crate) fn declared_image(
    owner: String,
    format: SourceFormat,
    file_name: Option<String>,
    meta: Metadata,
    grant: Option<&Grant>,
) -> NewImage {
    let id = grant.map_or_else(id::new_id, |g| g.image_id.clone());
    NewImage {
        original_key: keys::original(&id),
        id,
        owner,
        idempotency_key: None,
        meta: grant.and_then(|g| g.meta.clone()).unwrap_or(meta),
        file_name,
        probe: Probe {
            format,
            width: 0,
            height: 0,
        },
        request_id: None,
        created: crate::domain::model::Moment::now(),
    }
}

impl<O: ObjectStore, R: ImageRows + UploadClaims> Uploads<'_, O, R> {
    /// Refuses an upload that would take `owner` over its image or byte
    /// quota: the cheap early check, before anything is read or stored.
    pub async fn within_quota(&self, owner: &str, incoming: u64) -> Result<()> {
        quota::check(self.limits, self.rows.usage(owner).await?, incoming)
    }

    /// Inserts the upload's row as `uploading` and counts the owner's
    /// quota with it in (`quota`): a row over the quota is withdrawn again.
    /// A used Idempotency-Key replays its image, or is still in progress.
    pub(crate) async fn claim(
        &self,
        new: &NewImage,
        declared: Option<Declared<'_>>,
    ) -> Result<Claim> {
        self.limits.check_visibility(&new.meta)?;
        match self.rows.insert(new, declared).await? {
            Inserted::Inserted => {}
            // Ids are random but a grant's, which is claimed once.
            Inserted::IdTaken => return Err(Error::GrantUsed),
            Inserted::KeyTaken => {
                let key = new.idempotency_key.as_deref().unwrap_or_default();
                return match self.rows.by_idempotency_key(&new.owner, key).await? {
                    Some(img) if img.status != Status::Uploading => {
                        Ok(Claim::Existing(Box::new(img)))
                    }
                    _ => Err(Error::IdempotencyInProgress),
                };
            }
        }
        // Counted with the row in: of uploads racing for the last place, the
        // one that counts last sees every row before it. A count that fails
        // withdraws the row too: nothing is stored yet.
        let counted = match self.rows.usage(&new.owner).await {
            Ok(held) => quota::check_held(self.limits, held),
            Err(e) => Err(e),
        };
        if let Err(e) = counted {
            self.withdraw_logged(&new.id, &new.original_key, Written::Row)
                .await;
            return Err(e);
        }
        Ok(Claim::Claimed)
    }

    /// Holds the checksum for upload `id` without waiting: `None` when it
    /// is the owner's copy of these bytes, else the image that already is.
    /// Another upload of the same bytes still in flight is
    /// `DuplicateInProgress` (the client retries and gets the image).
    pub(crate) async fn hold_now(
        &self,
        owner: &str,
        sha256_b64: &str,
        id: &str,
    ) -> Result<Option<Image>> {
        match self.rows.hold_checksum(owner, sha256_b64, id).await? {
            Hold::Held => Ok(None),
            Hold::Duplicate(image) => Ok(Some(*image)),
            Hold::InFlight => Err(Error::DuplicateInProgress),
        }
    }

    /// Holds the checksum for upload `id`: `None` when it is the owner's
    /// copy of these bytes, else the image that already is. Two identical
    /// uploads at once (a double click, a client's retry) meet here: the
    /// one that does not hold waits for the other to be stored and returns
    /// it, and if that one fails instead, takes the hold over.
    pub(crate) async fn hold(
        &self,
        owner: &str,
        sha256_b64: &str,
        id: &str,
    ) -> Result<Option<Image>> {
        let mut waits = hold_waits();
        loop {
            match self.rows.hold_checksum(owner, sha256_b64, id).await? {
                Hold::Held => return Ok(None),
                Hold::Duplicate(image) => return Ok(Some(*image)),
                Hold::InFlight => match waits.next() {
                    Some(wait) => crate::runtime::clock::sleep(wait).await,
                    None => return Err(Error::DuplicateInProgress),
                },
            }
        }
    }

    /// Takes back what a failed (or duplicate) upload wrote, in the one
    /// order that never leaves an object without its row: the checksum
    /// hold first, on its own (the row may stay, and a client retrying the
    /// same bytes must not wait for a dead upload); then the parts or the
    /// original; the row only once they are known gone; then any variants.
    ///
    /// If S3 cannot confirm the original is gone, the row stays `uploading`
    /// (hidden from clients) and the sweep settles it by the object later.
    ///
    /// Why variants: an original's S3 event may reach the resize Lambda at
    /// once, and the Lambda processes `uploading` rows (a direct upload's
    /// row is `uploading` until its event), so it can write
    /// `variants/<id>/` and mark the row `ready` before a later step fails.
    /// So variants go too, and after the row: a resize that marked the row
    /// before it went has written its variants before this listing; one
    /// that finishes after it finds no row and removes its own (the
    /// Lambda's `is_live` check). If this listing or a delete fails, the
    /// sweep's reconciler removes the objects with no row after its grace
    /// period.
    pub(crate) async fn withdraw(
        &self,
        id: &str,
        original_key: &str,
        written: Written<'_>,
    ) -> Result<()> {
        if let Err(e) = self.rows.release_hold(id).await {
            tracing::warn!(id, error = %e,
                "withdraw: releasing the checksum hold failed; it lapses in {HOLD_STALE_SECS} s");
        }
        match written {
            Written::Row => {}
            Written::Parts(upload_id) => {
                self.objects
                    .abort_multipart(original_key, upload_id)
                    .await?
            }
            Written::Object => self.objects.delete_object(original_key).await?,
        }
        self.rows.delete_row(id).await?;
        if matches!(written, Written::Object) {
            delete::remove_variants(self.objects, id).await?;
        }
        Ok(())
    }

    /// [`withdraw`](Self::withdraw) on a path that already failed: what is
    /// left is logged and left to the sweep.
    pub(crate) async fn withdraw_logged(&self, id: &str, original_key: &str, written: Written<'_>) {
        if let Err(e) = self.withdraw(id, original_key, written).await {
            tracing::error!(id, error = %e,
                "withdraw stopped part way; the sweep settles the rest");
        }
    }

    /// The row of `id`, as stored now.
    pub(crate) async fn reload(&self, id: &str) -> Result<Image> {
        self.rows.get(id).await?.ok_or(Error::NotFound)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_checksum_is_looked_at_nine_times_in_about_eleven_seconds() {
        let waits: Vec<u64> = hold_waits().map(|d| d.as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
        assert_eq!(waits.iter().sum::<u64>(), 11_000);
    }
}
