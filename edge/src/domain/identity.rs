//! Bearer tokens for writes.
//!
//! A presented token is hashed (SHA-256) and the digest compared in
//! constant time with each configured token's digest, so response timing
//! tells neither how much of a guess was right nor how long a token is
//! (comparing the tokens themselves stops at a length mismatch). Each token
//! has an owner id derived from the same digest (its first 12 bytes, hex),
//! stored on rows so one client cannot change another's images, and without
//! storing the token itself.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured write tokens, kept as their SHA-256 digests.
#[derive(Clone)]
pub struct Tokens(Vec<[u8; 32]>);

impl Tokens {
    pub fn parse(list: &str) -> Self {
        Tokens(
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(digest)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The owner id for an `Authorization` header value, if it carries a valid token.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<String> {
        let presented = digest(authorization?.strip_prefix("Bearer ")?.trim());
        // Check every token, not stopping at the first match.
        let mut found = None;
        for t in &self.0 {
            if bool::from(t.ct_eq(&presented)) {
                found = Some(owner_of_digest(t));
            }
        }
        found
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn owner_of_digest(d: &[u8; 32]) -> String {
    hex::encode(&d[..12])
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

/// The owner id of a token, as `authenticate` derives it.
#[cfg(test)]
fn owner_of(token: &str) -> String {
    owner_of_digest(&digest(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_bearer_tokens() {
        let t = Tokens::parse(" alpha , beta,,");
        assert_eq!(
            t.authenticate(Some("Bearer alpha")),
            Some(owner_of("alpha"))
        );
        assert_eq!(t.authenticate(Some("Bearer beta")), Some(owner_of("beta")));
        assert_eq!(t.authenticate(Some("Bearer alph")), None);
        assert_eq!(t.authenticate(Some("Bearer ")), None);
        assert_eq!(t.authenticate(Some("alpha")), None);
        assert_eq!(t.authenticate(Some("Basic alpha")), None);
        assert_eq!(t.authenticate(None), None);
        assert_eq!(t.authenticate(Some("Bearer alphaalpha")), None);
    }

    /// The digests compared are 32 bytes whatever the tokens' lengths, so
    /// a comparison cannot end early on a length mismatch.
    #[test]
    fn compares_fixed_length_digests_not_the_tokens() {
        let t = Tokens::parse("a,a-much-longer-token-than-the-other-one");
        assert!(t.0.iter().all(|d| d.len() == 32));
        assert_eq!(t.authenticate(Some("Bearer a")), Some(owner_of("a")));
        assert_eq!(t.0[0], digest("a"));
    }

    #[test]
    fn owners_differ_per_token_and_hide_it() {
        assert_ne!(owner_of("alpha"), owner_of("beta"));
        assert_eq!(owner_of("alpha").len(), 24);
        assert!(!owner_of("alpha").contains("alpha"));
    }
}
