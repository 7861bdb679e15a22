//! Direct uploads: the client declares its file (type, size, SHA-256) and
//! gets a presigned PUT to send the bytes straight to S3; the S3 event does
//! the rest. The worker never holds the bytes, so this is the way for
//! large files; the resizer checks what the worker could not see.

use pixport_contract::keys;

use super::{Claim, Uploads, Written, declare};
use crate::domain::error::{Error, Result};
use crate::domain::id;
use crate::domain::model::{Image, Metadata, NewImage};
use crate::domain::ports::{Declared, ImageRows, ObjectStore, Presigned, PutGrant, UploadClaims};
use crate::domain::sniff::Probe;

/// A client's declaration of the file it will PUT.
#[derive(Debug, Clone)]
pub struct DirectFile {
    pub owner: String,
    pub content_type: String,
    pub bytes: u64,
    /// Base64 of the file's SHA-256, signed into the PUT.
    pub sha256_b64: String,
    pub file_name: Option<String>,
    pub meta: Metadata,
    /// Keep a second copy of bytes the owner already has.
    pub allow_duplicates: bool,
}

/// What the client is given.
#[derive(Debug)]
pub enum Granted {
    /// The new `uploading` image and the PUT that stores its original.
    Put { image: Image, put: Presigned },
    /// The owner's image with these bytes: there is nothing to send.
    Duplicate(Image),
}

/// Whether `s` is base64 of a SHA-256 (44 characters).
fn is_sha256_b64(s: &str) -> bool {
    use base64::Engine;
    s.len() == 44
        && base64::engine::general_purpose::STANDARD
            .decode(s)
            .is_ok_and(|b| b.len() == 32)
}

impl<O: ObjectStore, R: ImageRows + UploadClaims> Uploads<'_, O, R> {
    /// Checks the declaration, returns the owner's image with the same
    /// bytes if there is one, else claims an id and signs the PUT.
    pub async fn direct(&self, file: DirectFile) -> Result<Granted> {
        let format = declare(&file.content_type, file.bytes, self.limits)?;
        if !is_sha256_b64(&file.sha256_b64) {
            return Err(Error::invalid_field(
                "sha256",
                "base64 of the file's SHA-256 (44 characters)",
            ));
        }
        // The client declared the hash: a duplicate is found before any row
        // or presigned URL exists, and the client sends nothing.
        if !file.allow_duplicates
            && let Some(img) = self
                .rows
                .duplicate_of(&file.owner, &file.sha256_b64)
                .await?
        {
            return Ok(Granted::Duplicate(img));
        }
        self.within_quota(&file.owner, file.bytes).await?;
        let id = id::new_id();
        let new = NewImage {
            original_key: keys::original(&id),
            id,
            owner: file.owner,
            idempotency_key: None,
            meta: file.meta,
            file_name: file.file_name,
            probe: Probe {
                format,
                width: 0,
                height: 0,
            },
        };
        let grant = PutGrant {
            format,
            bytes: file.bytes,
            sha256_b64: Some(&file.sha256_b64),
        };
        let put = self.objects.presign_put(&new.original_key, &grant)?;
        let declared = Declared {
            bytes: file.bytes,
            sha256_b64: Some(&file.sha256_b64),
            put_ttl_secs: Some(self.objects.presign_ttl_secs()),
        };
        if let Claim::Existing(_) = self.claim(&new, Some(declared)).await? {
            return Err(Error::IdempotencyInProgress);
        }
        // The same bytes declared twice at once both pass the lookup; the
        // hold lets one through. The other is not made to wait: the
        // holder's client may take minutes to send its bytes (its hold
        // lapses after `HOLD_STALE_SECS`).
        if !file.allow_duplicates {
            let held = self.hold_now(&new.owner, &file.sha256_b64, &new.id).await;
            if !matches!(held, Ok(None)) {
                self.withdraw_logged(&new.id, &new.original_key, Written::Row)
                    .await;
            }
            if let Some(img) = held? {
                return Ok(Granted::Duplicate(img));
            }
        }
        let image = self.reload(&new.id).await?;
        tracing::info!(id = %image.id, bytes = file.bytes, "direct upload granted");
        Ok(Granted::Put { image, put })
    }
}
