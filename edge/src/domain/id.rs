//! Image ids: ULIDs, so ids sort by creation time and keyset pagination on the
//! primary key lists images in upload order.

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID from a millisecond timestamp and 10 random bytes.
pub fn ulid(unix_ms: u64, random: [u8; 10]) -> String {
    let mut value: u128 = u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (72 - 8 * i);
    }
    (0..26)
        .map(|i| CROCKFORD[((value >> (125 - 5 * i)) & 0x1F) as usize] as char)
        .collect()
}

/// A new id: now, and 80 random bits. The Workers runtime always provides
/// `crypto.getRandomValues`; should it fail, the millisecond timestamp
/// still keeps ids unique per request.
pub fn new_id() -> String {
    let mut random = [0u8; 10];
    let _ = getrandom::fill(&mut random);
    ulid(
        crate::runtime::clock::unix_ms(crate::runtime::clock::now()),
        random,
    )
}

/// Whether `s` looks like an id this service issued; anything else is a
/// plain 404 without a database round trip.
pub fn is_valid(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| CROCKFORD.contains(&b)) && s.as_bytes()[0] <= b'7'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value() {
        // Reference from the ULID spec's encoding: time 1469918176385, zero randomness.
        assert_eq!(
            ulid(1_469_918_176_385, [0; 10]),
            "01ARYZ6S410000000000000000"
        );
        assert_eq!(ulid(u64::MAX, [0xFF; 10]), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn sorts_by_time() {
        assert!(ulid(1000, [0xFF; 10]) < ulid(1001, [0; 10]));
    }

    #[test]
    fn validity() {
        assert!(is_valid(&ulid(1_700_000_000_000, [7; 10])));
        assert!(!is_valid("../../etc/passwd"));
        assert!(!is_valid("01arYZ6S410000000000000000"));
        assert!(!is_valid("81ARYZ6S410000000000000000"));
    }
}
