//! Per-token quotas: how many images, and how many bytes of originals, one
//! token may hold, counted from the rows.
//!
//! Two checks: `check` before anything is read or stored (a cheap early
//! refusal), and `check_held` after the upload's own row is inserted,
//! counting every committed row, its own included; a row over the quota is
//! withdrawn again. Of several uploads racing for the last slot, the one
//! that counts last sees every row inserted before its count, so the rows
//! that stay never exceed the quota (racing uploads may all be refused;
//! a retry then succeeds). `POST /images` learns its file's size only
//! after streaming (a chunked body declares none): its row records the
//! bytes actually read and counts again before it becomes `pending`, and
//! an upload over the byte quota then is undone (docs/security.md).

use crate::domain::error::{Error, Result};
use crate::domain::limits::UploadLimits;
use crate::domain::model::Usage;

/// Whether one more image of `incoming` bytes fits `usage` within `limits`.
pub fn check(limits: &UploadLimits, usage: Usage, incoming: u64) -> Result<()> {
    let images = u64::try_from(usage.images).unwrap_or(0);
    let bytes = u64::try_from(usage.bytes).unwrap_or(0);
    if images >= limits.max_images_per_owner {
        return Err(Error::ImageQuota {
            limit: limits.max_images_per_owner,
        });
    }
    if bytes.saturating_add(incoming) > limits.max_bytes_per_owner {
        return Err(Error::StorageQuota {
            limit: limits.max_bytes_per_owner,
        });
    }
    Ok(())
}

/// Whether what `owner` holds now, a new row included, is within `limits`.
pub fn check_held(limits: &UploadLimits, usage: Usage) -> Result<()> {
    let images = u64::try_from(usage.images).unwrap_or(0);
    let bytes = u64::try_from(usage.bytes).unwrap_or(0);
    if images > limits.max_images_per_owner {
        return Err(Error::ImageQuota {
            limit: limits.max_images_per_owner,
        });
    }
    if bytes > limits.max_bytes_per_owner {
        return Err(Error::StorageQuota {
            limit: limits.max_bytes_per_owner,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> UploadLimits {
        UploadLimits {
            image: pixport_contract::ImageLimits {
                max_bytes: 1000,
                max_pixels: 1,
                max_dimension: 1,
            },
            max_fields: 1,
            max_field_bytes: 1,
            multipart_threshold: 1,
            part_bytes: 1,
            memory_budget: 1,
            max_images_per_owner: 3,
            max_bytes_per_owner: 1000,
            private_unavailable: None,
        }
    }

    #[test]
    fn the_last_image_and_byte_fit_and_no_more() {
        let l = limits();
        let used = |images, bytes| Usage { images, bytes };
        assert!(check(&l, used(2, 400), 600).is_ok());
        assert!(matches!(
            check(&l, used(3, 0), 1),
            Err(Error::ImageQuota { limit: 3 })
        ));
        assert!(matches!(
            check(&l, used(2, 400), 601),
            Err(Error::StorageQuota { limit: 1000 })
        ));
        assert!(matches!(
            check(&l, used(0, 1000), 1),
            Err(Error::StorageQuota { .. })
        ));
    }

    #[test]
    fn held_rows_may_reach_the_quota_but_not_pass_it() {
        let l = limits();
        let used = |images, bytes| Usage { images, bytes };
        assert!(check_held(&l, used(3, 1000)).is_ok());
        assert!(matches!(
            check_held(&l, used(4, 0)),
            Err(Error::ImageQuota { limit: 3 })
        ));
        assert!(matches!(
            check_held(&l, used(1, 1001)),
            Err(Error::StorageQuota { limit: 1000 })
        ));
    }
}
