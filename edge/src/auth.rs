//! Bearer tokens for writes.
//!
//! Tokens are compared in constant time so response timing does not leak how
//! much of a guess was right. Each token has an owner id derived from it (a
//! truncated SHA-256), stored on rows so one client cannot change another's
//! images, and without storing the token itself.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured write tokens.
#[derive(Clone)]
pub struct Tokens(Vec<String>);

impl Tokens {
    pub fn parse(list: &str) -> Self {
        Tokens(
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The owner id for an `Authorization` header value, if it carries a valid token.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<String> {
        let presented = authorization?.strip_prefix("Bearer ")?.trim();
        // Check every token, not stopping at the first match.
        let mut found = None;
        for t in &self.0 {
            if bool::from(t.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(owner_of(t));
            }
        }
        found
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

pub fn owner_of(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(&digest[..12])
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
    }

    #[test]
    fn owners_differ_per_token_and_hide_it() {
        assert_ne!(owner_of("alpha"), owner_of("beta"));
        assert_eq!(owner_of("alpha").len(), 24);
        assert!(!owner_of("alpha").contains("alpha"));
    }
}
