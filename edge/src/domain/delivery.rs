//! Signed delivery URLs: how a private image's variants reach an `<img>`.
//!
//! A browser cannot send a bearer token with `<img src>`, so a private
//! image's variant URLs carry their own proof instead, as Cloudflare
//! Images' signed URLs and imgproxy's signatures do:
//! `/images/{id}/{width}?format=webp&expires=1767225600&signature=...`,
//! where the signature is HMAC-SHA256 over the image id, the width, the
//! format (`*` for a negotiated URL) and the expiry. Nothing else in the
//! URL is trusted, and nothing in it can be changed without the key.
//!
//! `DELIVERY_KEYS` lists the keys: the first signs, every one verifies, so
//! a key is rotated by putting a new one first and dropping the old one
//! once the URLs it signed have expired.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::error::{Error, Result};
use crate::domain::hmac::SigningKeys;

/// Default and ceiling of `DELIVERY_URL_TTL_SECONDS`.
pub const URL_TTL_DEFAULT_SECS: u64 = 3600;
pub const URL_TTL_MAX_SECS: u64 = 7 * 24 * 3600;

/// What one signed URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub id: &'a str,
    pub width: u32,
    /// The pinned format (`?format=`), or `None` for a negotiated URL.
    pub format: Option<&'a str>,
}

/// The keys delivery URLs are signed with (`DELIVERY_KEYS`).
#[derive(Clone, Debug)]
pub struct DeliveryKeys(SigningKeys);

impl DeliveryKeys {
    /// Reads `DELIVERY_KEYS`; `None` for an empty list.
    pub fn parse(list: &str) -> std::result::Result<Option<DeliveryKeys>, String> {
        Ok(SigningKeys::parse("DELIVERY_KEYS", list)?.map(DeliveryKeys))
    }

    /// The signature of `target` valid until `expires` (Unix seconds).
    pub fn sign(&self, target: Target<'_>, expires: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.0.sign(message(target, expires).as_bytes()))
    }

    /// Checks a URL's `signature` first, then its `expires` against `now`:
    /// a forged URL is refused as forged whatever its expiry says.
    pub fn verify(
        &self,
        target: Target<'_>,
        expires: u64,
        signature: &str,
        now: u64,
    ) -> Result<()> {
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Error::BadSignature)?;
        if !self.0.verify(message(target, expires).as_bytes(), &given) {
            return Err(Error::BadSignature);
        }
        if now >= expires {
            return Err(Error::LinkExpired);
        }
        Ok(())
    }
}

fn message(t: Target<'_>, expires: u64) -> String {
    format!(
        "pixport-delivery-v1\n{}\n{}\n{}\n{expires}",
        t.id,
        t.width,
        t.format.unwrap_or("*")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a-delivery-key-of-at-least-32-characters";
    const B: &str = "another-delivery-key-32-characters-long!";
    const ID: &str = "01JABCDEFGHJKMNPQRSTVWXYZ0";

    fn t(width: u32, format: Option<&str>) -> Target<'_> {
        Target {
            id: ID,
            width,
            format,
        }
    }

    #[test]
    fn a_signed_url_works_until_it_expires() {
        let keys = DeliveryKeys::parse(A).unwrap().unwrap();
        let sig = keys.sign(t(640, Some("webp")), 1000);
        assert!(keys.verify(t(640, Some("webp")), 1000, &sig, 999).is_ok());
        assert!(matches!(
            keys.verify(t(640, Some("webp")), 1000, &sig, 1000),
            Err(Error::LinkExpired)
        ));
    }

    #[test]
    fn nothing_signed_can_be_changed() {
        let keys = DeliveryKeys::parse(A).unwrap().unwrap();
        let sig = keys.sign(t(640, Some("webp")), 1000);
        for (target, expires) in [
            (t(1920, Some("webp")), 1000),
            (t(640, Some("jpeg")), 1000),
            (t(640, None), 1000),
            (t(640, Some("webp")), 2000),
            (
                Target {
                    id: "01JABCDEFGHJKMNPQRSTVWXYZ1",
                    width: 640,
                    format: Some("webp"),
                },
                1000,
            ),
        ] {
            assert!(
                matches!(
                    keys.verify(target, expires, &sig, 0),
                    Err(Error::BadSignature)
                ),
                "{target:?} {expires}"
            );
        }
        for bad in ["", "!!", "AAAA", &sig[1..]] {
            assert!(matches!(
                keys.verify(t(640, Some("webp")), 1000, bad, 0),
                Err(Error::BadSignature)
            ));
        }
    }

    #[test]
    fn rotation_keeps_old_urls_until_the_old_key_goes() {
        let old = DeliveryKeys::parse(A).unwrap().unwrap();
        let sig = old.sign(t(320, None), 1000);
        let rotated = DeliveryKeys::parse(&format!("{B},{A}")).unwrap().unwrap();
        assert!(rotated.verify(t(320, None), 1000, &sig, 0).is_ok());
        assert_ne!(rotated.sign(t(320, None), 1000), sig, "the new key signs");
        let dropped = DeliveryKeys::parse(B).unwrap().unwrap();
        assert!(dropped.verify(t(320, None), 1000, &sig, 0).is_err());
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(DeliveryKeys::parse("short").is_err());
        assert!(DeliveryKeys::parse(" , ").unwrap().is_none());
    }
}
