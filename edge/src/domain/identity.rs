//! Who is calling, and what it may do.
//!
//! A request carries at most one credential, `Authorization: Bearer ...`:
//!
//! - a **server token** from `API_TOKENS`, each named with its owner
//!   (`alice=TOKEN`, `alice:read=TOKEN`, `ops:admin=TOKEN`), so a token is
//!   rotated by adding the new one under the same owner and removing the
//!   old: the owner, and with it every image, webhook and duplicate record,
//!   stays. A token listed without a name keeps the owner it always had
//!   (the first 12 bytes of its SHA-256, hex), which `GET /me` shows, so
//!   it can be named and rotated too;
//! - a **sign-in JWT** from the adopter's identity provider (`jwt`): the
//!   owner is its issuer and subject;
//! - an **upload grant** (`grant`): one image, for minutes.
//!
//! A presented token is hashed (SHA-256) and the digest compared in
//! constant time with each configured token's digest, so response timing
//! tells neither how much of a guess was right nor how long a token is.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::grant::Grant;

/// What a caller may do. Reads of public images need none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// List and read its own images (private fields, originals, hidden rows).
    pub const READ: Scopes = Scopes(1);
    /// Upload, edit, delete; set its webhook; mint upload grants.
    pub const WRITE: Scopes = Scopes(2);
    /// Operator routes, for every owner.
    pub const ADMIN: Scopes = Scopes(4);
    /// Upload the one image a grant names, nothing else.
    pub const UPLOAD: Scopes = Scopes(8);
    pub const NONE: Scopes = Scopes(0);

    pub const fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    pub fn contains(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names, as `GET /me` and the docs say them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::ADMIN, "admin"),
            (Self::UPLOAD, "upload"),
        ]
        .into_iter()
        .filter(|(s, _)| self.contains(*s))
        .map(|(_, n)| n)
        .collect()
    }

    /// A scope list as tokens and JWTs write it (`read`, `write`, `admin`,
    /// also as `pixport:read` ...); what is not pixport's is ignored. Each
    /// scope includes the ones before it: write reads, admin writes.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Scopes {
        let mut s = Scopes::NONE;
        for w in words {
            s = s.union(match w.strip_prefix("pixport:").unwrap_or(w) {
                "read" => Scopes::READ,
                "write" => Scopes::READ.union(Scopes::WRITE),
                "admin" => Scopes::READ.union(Scopes::WRITE).union(Scopes::ADMIN),
                _ => Scopes::NONE,
            });
        }
        s
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub owner: String,
    pub scopes: Scopes,
    /// The grant the caller presented, if that is how it came in.
    pub grant: Option<Grant>,
}

/// The longest owner id the `images.owner` column holds.
pub const MAX_OWNER_BYTES: usize = 64;

/// Whether `s` can be an owner id: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn is_owner_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_OWNER_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// One configured server token.
#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    owner: String,
    scopes: Scopes,
}

/// The configured server tokens, kept as their SHA-256 digests.
#[derive(Clone, Default)]
pub struct Tokens(Vec<Entry>);

/// A token entry that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("API_TOKENS entry {0}: {1}")]
pub struct TokenListError(pub usize, pub &'static str);

impl Tokens {
    /// Reads `API_TOKENS`: comma-separated entries `owner[:scope]=token`,
    /// or a bare `token` (its owner is derived from it, as before owners
    /// were named). `scope` is `read`, `write` (the default) or `admin`.
    pub fn parse(list: &str) -> Result<Self, TokenListError> {
        let mut out = Vec::new();
        for (n, entry) in list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            let named = entry
                .split_once('=')
                .filter(|(name, token)| !token.is_empty() && is_name(name));
            let (owner, scopes, token) = match named {
                Some((name, token)) => {
                    let (owner, scope) = name.split_once(':').unwrap_or((name, "write"));
                    let scopes = Scopes::parse([scope]);
                    if scopes == Scopes::NONE {
                        return Err(TokenListError(n + 1, "the scope is read, write or admin"));
                    }
                    (owner.to_string(), scopes, token)
                }
                None => (
                    owner_of_digest(&digest(entry)),
                    Scopes::parse(["write"]),
                    entry,
                ),
            };
            out.push(Entry {
                digest: digest(token),
                owner,
                scopes,
            });
        }
        Ok(Tokens(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The caller a presented token stands for, if it is one of these.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let presented = digest(token.trim());
        // Check every token, not stopping at the first match.
        let mut found = None;
        for t in &self.0 {
            if bool::from(t.digest.ct_eq(&presented)) {
                found = Some(Caller {
                    owner: t.owner.clone(),
                    scopes: t.scopes,
                    grant: None,
                });
            }
        }
        found
    }
}

/// `owner` or `owner:scope`, as the name of a token entry.
fn is_name(s: &str) -> bool {
    let owner = s.split_once(':').map_or(s, |(o, _)| o);
    is_owner_id(owner)
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

/// The bearer credential of an `Authorization` header value, if any.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let v = authorization?.strip_prefix("Bearer ")?.trim();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_of(token: &str) -> String {
        owner_of_digest(&digest(token))
    }

    fn who(t: &Tokens, token: &str) -> Option<(String, Vec<&'static str>)> {
        t.authenticate(token).map(|c| (c.owner, c.scopes.names()))
    }

    #[test]
    fn bare_tokens_keep_the_owner_they_always_had() {
        let t = Tokens::parse(" alpha , beta,,").unwrap();
        assert_eq!(
            who(&t, "alpha"),
            Some((owner_of("alpha"), vec!["read", "write"]))
        );
        assert_eq!(who(&t, "beta").map(|w| w.0), Some(owner_of("beta")));
        for wrong in ["alph", "", "alphaalpha", "Bearer alpha"] {
            assert_eq!(who(&t, wrong), None, "{wrong}");
        }
        assert_eq!(owner_of("alpha").len(), 24);
        assert!(!owner_of("alpha").contains("alpha"));
    }

    #[test]
    fn named_tokens_rotate_without_changing_their_owner() {
        let t =
            Tokens::parse("alice=old-token, alice=new-token, ro:read=r0, ops:admin=a1").unwrap();
        assert_eq!(who(&t, "old-token").map(|w| w.0), Some("alice".into()));
        assert_eq!(who(&t, "new-token").map(|w| w.0), Some("alice".into()));
        assert_eq!(who(&t, "r0"), Some(("ro".into(), vec!["read"])));
        assert_eq!(
            who(&t, "a1"),
            Some(("ops".into(), vec!["read", "write", "admin"]))
        );
        // A token with `=` in it, and nothing that names an owner, is bare.
        let t = Tokens::parse("abc=, a b=c").unwrap();
        assert!(t.authenticate("abc=").is_some());
        assert!(t.authenticate("a b=c").is_some());
        assert_eq!(
            Tokens::parse("x:root=t").err(),
            Some(TokenListError(1, "the scope is read, write or admin"))
        );
    }

    /// The digests compared are 32 bytes whatever the tokens' lengths, so
    /// a comparison cannot end early on a length mismatch.
    #[test]
    fn compares_fixed_length_digests_not_the_tokens() {
        let t = Tokens::parse("a,a-much-longer-token-than-the-other-one").unwrap();
        assert!(t.0.iter().all(|e| e.digest.len() == 32));
        assert_eq!(t.0[0].digest, digest("a"));
        assert_eq!(who(&t, "a").map(|w| w.0), Some(owner_of("a")));
    }

    #[test]
    fn only_bearer_credentials_are_read() {
        assert_eq!(bearer(Some("Bearer abc ")), Some("abc"));
        for none in [None, Some("Bearer "), Some("Basic abc"), Some("abc")] {
            assert_eq!(bearer(none), None);
        }
    }

    #[test]
    fn scopes_include_the_lesser_ones_and_ignore_others() {
        assert_eq!(Scopes::parse(["openid", "pixport:read"]).names(), ["read"]);
        assert_eq!(Scopes::parse(["write"]).names(), ["read", "write"]);
        assert_eq!(Scopes::parse(["email"]), Scopes::NONE);
        assert!(Scopes::parse(["admin"]).contains(Scopes::WRITE));
        assert!(!Scopes::UPLOAD.contains(Scopes::READ));
    }
}
