//! The upload limits: the image's own (bytes, pixels, pixels per side: the
//! contract's `ImageLimits`, which the resizer checks again), how a form
//! may be shaped, how originals travel to S3, and what one owner may hold.

use pixport_contract::ImageLimits;

use crate::domain::error::{Error, Result};
use crate::domain::fields::{Metadata, Visibility};
use crate::runtime::budget::Sizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Bytes, pixels and pixels per side of one original.
    pub image: ImageLimits,
    /// Text fields a form may carry besides its file.
    pub max_fields: usize,
    pub max_field_bytes: usize,
    /// Files above this go to S3 as a multipart upload, so memory stays flat.
    pub multipart_threshold: usize,
    pub part_bytes: usize,
    /// What all uploads in one isolate may hold at once (`runtime::budget`).
    pub memory_budget: u64,
    /// Images one owner may hold (every row but those being deleted).
    pub max_images_per_owner: u64,
    /// Bytes of originals one owner may hold.
    pub max_bytes_per_owner: u64,
    /// Why this deployment cannot keep an image private, if it cannot
    /// (no `DELIVERY_KEYS` to sign its URLs, or a public base in front of
    /// `variants/` that would serve them to anyone).
    pub private_unavailable: Option<&'static str>,
}

/// Room for multipart boundaries and part headers on top of the limits.
const ENVELOPE_BYTES: u64 = 1024 * 1024;

impl UploadLimits {
    /// Refuses a private image where its variants could not stay private.
    pub fn check_visibility(&self, meta: &Metadata) -> Result<()> {
        match (meta.visibility, self.private_unavailable) {
            (Visibility::Private, Some(why)) => Err(Error::PrivateUnavailable(why)),
            _ => Ok(()),
        }
    }

    /// The memory budget's settings for these limits.
    pub fn sizing(&self) -> Sizing {
        Sizing {
            budget: self.memory_budget,
            largest_buffer: self.multipart_threshold.max(self.part_bytes) as u64,
        }
    }

    /// The most a form's body may hold: the file, every field and the
    /// multipart envelope.
    pub fn body_limit(&self) -> u64 {
        self.image.max_bytes
            + (self.max_fields as u64) * (self.max_field_bytes as u64)
            + ENVELOPE_BYTES
    }

    /// The most a JSON body (a declaration, a patch) may hold: every field
    /// at its limit and room for the names around them.
    pub fn json_limit(&self) -> usize {
        self.max_field_bytes * (self.max_fields + 4)
    }
}
