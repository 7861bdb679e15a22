//! Identifiers in the formats Lambda uses, so runtimes that parse them (the
//! X-Ray trace header, UUID request ids) behave as in AWS.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn random_u64() -> u64 {
    let nanos = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    mix(nanos ^ mix(n) ^ u64::from(std::process::id()))
}

/// A version-4 UUID string, like Lambda's request ids.
pub fn request_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    let time_hi = ((a & 0x0FFF) | 0x4000) as u16;
    let clock = ((b >> 48) as u16 & 0x3FFF) | 0x8000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        time_hi,
        clock,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// `Root=1-<epoch hex>-<96 bit hex>;Parent=<64 bit hex>;Sampled=0`.
pub fn trace_id(epoch_secs: i64) -> String {
    let (a, b, c) = (random_u64(), random_u64(), random_u64());
    format!(
        "Root=1-{:08x}-{:08x}{:016x};Parent={:016x};Sampled=0",
        epoch_secs as u32, a as u32, b, c
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let id = request_id();
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert_ne!(request_id(), id);
    }

    #[test]
    fn trace_shape() {
        let t = trace_id(0x5f00_0000);
        assert!(t.starts_with("Root=1-5f000000-"), "{t}");
        assert!(t.ends_with(";Sampled=0"));
    }
}
