//! Signing with shared secrets: HMAC-SHA256 (`pixport_contract::hmac`)
//! and the lists of keys a setting names.
//!
//! Webhook signatures, upload grants and private delivery URLs are
//! HMAC-SHA256. A grant's and a delivery URL's keys are rotated the same
//! way: the setting lists several, the first signs, every one verifies, so
//! a new key goes first and the old one is dropped once what it signed has
//! expired.

pub use pixport_contract::hmac::hmac_sha256;
use subtle::ConstantTimeEq;

/// Shortest secret accepted in a key list: 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// A setting's comma-separated secrets, in order: the first signs.
#[derive(Clone)]
pub struct SigningKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} configured)", self.0.len())
    }
}

impl SigningKeys {
    /// Reads `setting`'s list, each secret at least [`MIN_SECRET_BYTES`]
    /// long; `None` for an empty list.
    pub fn parse(setting: &str, list: &str) -> Result<Option<SigningKeys>, String> {
        let keys: Vec<Vec<u8>> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if keys.iter().any(|k| k.len() < MIN_SECRET_BYTES) {
            return Err(format!(
                "each {setting} entry needs at least {MIN_SECRET_BYTES} characters"
            ));
        }
        Ok((!keys.is_empty()).then_some(SigningKeys(keys)))
    }

    /// The HMAC of `msg` with the signing (first) key.
    pub fn sign(&self, msg: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0[0], msg)
    }

    /// Whether `mac` is the HMAC of `msg` with any of the keys; every key
    /// is tried, each compared in constant time.
    pub fn verify(&self, msg: &[u8], mac: &[u8]) -> bool {
        self.0.iter().fold(false, |found, key| {
            found | bool::from(hmac_sha256(key, msg).ct_eq(mac))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_key_signs_and_every_key_verifies() {
        let a = "a-signing-key-of-at-least-32-characters!";
        let b = "another-signing-key-32-characters-long!!";
        let old = SigningKeys::parse("K", a).unwrap().unwrap();
        let rotated = SigningKeys::parse("K", &format!("{b}, {a}"))
            .unwrap()
            .unwrap();
        let mac = old.sign(b"m");
        assert!(rotated.verify(b"m", &mac));
        assert!(!rotated.verify(b"n", &mac));
        assert_ne!(rotated.sign(b"m"), mac);
        assert!(
            !SigningKeys::parse("K", b)
                .unwrap()
                .unwrap()
                .verify(b"m", &mac)
        );
        assert!(
            SigningKeys::parse("K", "short")
                .unwrap_err()
                .contains("each K entry")
        );
        assert!(SigningKeys::parse("K", " , ").unwrap().is_none());
    }
}
