//! Per-token quotas: how many images, and how many bytes of originals, one
//! token may hold. Checked from the rows when an upload starts.
//!
//! The check and the insert are two statements, not one transaction: two
//! uploads of the same token that start at once can both pass and end one
//! image (and up to one upload's bytes) over the limit each. The burst
//! limit (`ratelimit`) bounds how many can start at once, so the overshoot
//! is bounded too; docs/security.md states this guarantee.

use serde::Deserialize;

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};

/// What one owner holds, as the rows say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    pub images: i64,
    pub bytes: i64,
}

/// Whether one more image of `incoming` bytes fits `usage` within `limits`.
pub fn check(limits: &Limits, usage: Usage, incoming: u64) -> ApiResult<()> {
    let images = u64::try_from(usage.images).unwrap_or(0);
    let bytes = u64::try_from(usage.bytes).unwrap_or(0);
    if images >= limits.max_images_per_owner {
        return Err(ApiError::ImageQuota {
            limit: limits.max_images_per_owner,
        });
    }
    if bytes.saturating_add(incoming) > limits.max_bytes_per_owner {
        return Err(ApiError::StorageQuota {
            limit: limits.max_bytes_per_owner,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_upload_bytes: 1000,
            max_pixels: 1,
            max_dimension: 1,
            max_fields: 1,
            max_field_bytes: 1,
            multipart_threshold: 1,
            part_bytes: 1,
            memory_budget: 1,
            max_images_per_owner: 3,
            max_bytes_per_owner: 1000,
        }
    }

    #[test]
    fn the_last_image_and_byte_fit_and_no_more() {
        let l = limits();
        let used = |images, bytes| Usage { images, bytes };
        assert!(check(&l, used(2, 400), 600).is_ok());
        assert!(matches!(
            check(&l, used(3, 0), 1),
            Err(ApiError::ImageQuota { limit: 3 })
        ));
        assert!(matches!(
            check(&l, used(2, 400), 601),
            Err(ApiError::StorageQuota { limit: 1000 })
        ));
        assert!(matches!(
            check(&l, used(0, 1000), 1),
            Err(ApiError::StorageQuota { .. })
        ));
    }
}
