//! Admission control: the isolate's memory budget for upload buffers.
//!
//! Cloudflare gives one isolate 128 MB for all the requests it serves at
//! once, and an isolate over it is killed with every request in it. An
//! upload must buffer what S3 needs a length for (a whole file up to the
//! multipart threshold, else one part), so concurrent uploads are admitted
//! only while what they may hold fits the budget; past it the client gets a
//! 503 with `Retry-After` before any byte of its body is read, and nothing is
//! stored. A Worker isolate runs one thread, so the tally is a thread-local.

use std::cell::Cell;

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};

/// How long a refused client is told to wait: uploads that hold the budget
/// take about a second each on a healthy path.
pub const RETRY_AFTER_SECS: u32 = 2;

thread_local! {
    static HELD: Cell<u64> = const { Cell::new(0) };
}

/// Bytes reserved by uploads in progress in this isolate.
pub fn held() -> u64 {
    HELD.with(Cell::get)
}

/// A reservation against the budget, returned when dropped (whichever way
/// the upload ends).
#[derive(Debug)]
pub struct Permit {
    bytes: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get().saturating_sub(self.bytes)));
    }
}

/// Reserves what an upload may hold, or refuses it with `over_capacity`.
pub fn admit(limits: &Limits, declared: Option<u64>) -> ApiResult<Permit> {
    let bytes = limits.upload_reservation(declared);
    HELD.with(|h| {
        let now = h.get();
        if now + bytes > limits.memory_budget {
            tracing::warn!(
                held = now,
                wanted = bytes,
                budget = limits.memory_budget,
                "upload refused: memory budget reached"
            );
            return Err(ApiError::OverCapacity {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        h.set(now + bytes);
        Ok(Permit { bytes })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UPLOAD_OVERHEAD;

    fn limits(budget: u64) -> Limits {
        Limits {
            max_upload_bytes: 100_000_000,
            max_pixels: 100_000_000,
            max_dimension: 20_000,
            max_fields: 4,
            max_field_bytes: 1024,
            multipart_threshold: 5 << 20,
            part_bytes: 5 << 20,
            memory_budget: budget,
            max_images_per_owner: u64::MAX,
            max_bytes_per_owner: u64::MAX,
        }
    }

    #[test]
    fn a_reservation_is_the_body_or_one_part_whichever_is_smaller() {
        let l = limits(64 << 20);
        assert_eq!(l.upload_reservation(Some(20_000)), UPLOAD_OVERHEAD + 20_000);
        assert_eq!(
            l.upload_reservation(Some(90_000_000)),
            UPLOAD_OVERHEAD + (5 << 20)
        );
        assert_eq!(l.upload_reservation(None), UPLOAD_OVERHEAD + (5 << 20));
    }

    #[test]
    fn uploads_past_the_budget_are_refused_until_one_ends() {
        let l = limits(3 * limits(0).upload_reservation(None));
        let held_before = held();
        let a = admit(&l, None).unwrap();
        let b = admit(&l, None).unwrap();
        let c = admit(&l, None).unwrap();
        let refused = admit(&l, None).unwrap_err();
        assert_eq!(refused.status_and_code(), (503, "over_capacity"));
        assert!(
            refused
                .headers()
                .contains(&("retry-after", "2".to_string()))
        );
        assert!(admit(&l, Some(1)).is_err());
        drop(b);
        let d = admit(&l, Some(3_400_000)).unwrap();
        drop((a, c, d));
        assert_eq!(held(), held_before);
    }
}
