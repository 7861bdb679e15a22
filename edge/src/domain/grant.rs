//! Upload grants: a short-lived, single-use capability to upload one image.
//!
//! An owner's server (or its signed-in page) asks `POST /grants` for one
//! and hands it to a browser, which then uploads with
//! `Authorization: Bearer pxg_...` and no other credential, through any of
//! the three upload paths (form, direct, browser). A grant names:
//!
//! - the owner and the id its image will have: using it claims that id,
//!   so a second use finds the id taken (`grant_used`); an upload that
//!   fails and is withdrawn frees the id for a retry until the grant expires;
//! - when it expires (minutes; `grant_expired` after);
//! - the most bytes and the formats it takes (`grant_exceeded` past them);
//! - optionally the image's fields, fixed by the server: the uploader's
//!   own are ignored then.
//!
//! It is `pxg_` + base64url(JSON) + `.` + base64url(HMAC-SHA256), keyed by
//! the first of `GRANT_SECRETS`; every listed secret verifies, so a secret
//! is rotated by putting the new one first and removing the old once the
//! grants it signed have expired.

use base64::Engine;
use pixport_contract::SourceFormat;
use serde::{Deserialize, Serialize};

use crate::domain::error::{Error, Result};
use crate::domain::fields::Metadata;
use crate::domain::hmac::SigningKeys;
use crate::domain::limits::UploadLimits;
use crate::domain::sniff::declared_format;

const PREFIX: &str = "pxg_";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a grant lives unless asked otherwise, and at most.
pub const DEFAULT_TTL_SECS: u64 = 600;
pub const MAX_TTL_SECS: u64 = 3600;
/// The most a grant's JSON may hold: it travels in a header.
pub const MAX_GRANT_JSON_BYTES: usize = 4096;

/// What a grant allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "o")]
    pub owner: String,
    #[serde(rename = "i")]
    pub image_id: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: u64,
    #[serde(rename = "b")]
    pub max_bytes: u64,
    #[serde(rename = "f")]
    pub formats: Vec<SourceFormat>,
    /// The image's fields, fixed by the server that asked for the grant.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Metadata>,
}

impl Grant {
    /// Refuses a file the grant does not cover.
    pub fn covers(&self, format: SourceFormat, bytes: Option<u64>) -> Result<()> {
        if !self.formats.contains(&format) {
            let allowed: Vec<&str> = self.formats.iter().map(|f| f.as_str()).collect();
            return Err(Error::GrantExceeded(format!(
                "the grant takes {} files, not {}",
                allowed.join(", "),
                format.as_str()
            )));
        }
        if bytes.is_some_and(|b| b > self.max_bytes) {
            return Err(Error::GrantExceeded(format!(
                "the grant takes files up to {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }
}

/// What an owner asks a grant for; anything left out is the widest the
/// limits allow.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub ttl_secs: Option<u64>,
    pub max_bytes: Option<u64>,
    pub content_types: Option<Vec<String>>,
    pub meta: Option<Metadata>,
}

/// The secrets grants are signed with (`GRANT_SECRETS`): the first signs,
/// all verify.
#[derive(Clone, Debug)]
pub struct GrantKeys(SigningKeys);

impl GrantKeys {
    /// Reads `GRANT_SECRETS`; `None` for an empty list.
    pub fn parse(list: &str) -> std::result::Result<Option<GrantKeys>, String> {
        Ok(SigningKeys::parse("GRANT_SECRETS", list)?.map(GrantKeys))
    }

    /// A grant for `owner`'s next image, id `image_id`, from `now_secs`.
    pub fn mint(
        &self,
        owner: &str,
        image_id: &str,
        req: Request,
        limits: &UploadLimits,
        now_secs: u64,
    ) -> Result<(String, Grant)> {
        let ttl = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if ttl == 0 || ttl > MAX_TTL_SECS {
            return Err(Error::invalid_field(
                "ttl_seconds",
                format!("1 to {MAX_TTL_SECS} seconds"),
            ));
        }
        // Never more than any upload may be; asking for more is asking
        // for the most.
        let most = limits.image.max_bytes;
        let max_bytes = req.max_bytes.unwrap_or(most).min(most);
        if max_bytes == 0 {
            return Err(Error::invalid_field("max_bytes", "at least 1 byte"));
        }
        let formats = match req.content_types {
            None => SourceFormat::ALL.to_vec(),
            Some(types) if types.is_empty() => {
                return Err(Error::invalid_field("content_types", "at least one"));
            }
            Some(types) => types
                .iter()
                .map(|t| declared_format(t))
                .collect::<Result<Vec<_>>>()?,
        };
        let grant = Grant {
            owner: owner.to_string(),
            image_id: image_id.to_string(),
            expires_at: now_secs + ttl,
            max_bytes,
            formats,
            meta: req.meta,
        };
        let json = serde_json::to_vec(&grant).map_err(|e| Error::Runtime(e.to_string()))?;
        if json.len() > MAX_GRANT_JSON_BYTES {
            return Err(Error::PayloadTooLarge(format!(
                "a grant's fields fit in {MAX_GRANT_JSON_BYTES} bytes"
            )));
        }
        let body = B64URL.encode(json);
        let mac = self.0.sign(format!("{PREFIX}{body}").as_bytes());
        Ok((format!("{PREFIX}{body}.{}", B64URL.encode(mac)), grant))
    }

    /// The grant a bearer credential is, if it is one this service signed
    /// and it has not expired.
    pub fn open(&self, token: &str, now_secs: u64) -> Result<Grant> {
        let invalid = || Error::Unauthenticated("the upload grant is not valid".into());
        let rest = token.strip_prefix(PREFIX).ok_or_else(invalid)?;
        let (body, mac) = rest.split_once('.').ok_or_else(invalid)?;
        let mac = B64URL.decode(mac).map_err(|_| invalid())?;
        let signed = format!("{PREFIX}{body}");
        if !self.0.verify(signed.as_bytes(), &mac) {
            return Err(invalid());
        }
        let json = B64URL.decode(body).map_err(|_| invalid())?;
        let grant: Grant = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if grant.expires_at <= now_secs {
            return Err(Error::GrantExpired);
        }
        Ok(grant)
    }
}

/// Whether a bearer credential is a grant (rather than a token or a JWT).
pub fn looks_like_grant(token: &str) -> bool {
    token.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::upload::testing::{code, limits};

    const NOW: u64 = 1_800_000_000;
    const ID: &str = "01JABCDEFGHJKMNPQRSTVWXYZ0";

    fn keys(list: &str) -> GrantKeys {
        GrantKeys::parse(list).unwrap().unwrap()
    }

    const A: &str = "a-secret-of-thirty-two-characters-or-more";
    const B: &str = "another-secret-of-thirty-two-characters!!";

    #[test]
    fn a_grant_opens_with_any_listed_secret_until_it_expires() {
        let (token, grant) = keys(A)
            .mint("alice", ID, Request::default(), &limits(), NOW)
            .unwrap();
        assert!(looks_like_grant(&token));
        assert_eq!(grant.expires_at, NOW + DEFAULT_TTL_SECS);
        assert_eq!(grant.formats, SourceFormat::ALL.to_vec());
        assert_eq!(keys(A).open(&token, NOW).unwrap(), grant);
        // Rotation: a new secret first, the old one still verifies.
        assert_eq!(keys(&format!("{B},{A}")).open(&token, NOW).unwrap(), grant);
        let e = keys(B).open(&token, NOW).unwrap_err();
        assert_eq!(code(&e), "unauthorized");
        let e = keys(A).open(&token, NOW + DEFAULT_TTL_SECS).unwrap_err();
        assert_eq!(code(&e), "grant_expired");
    }

    #[test]
    fn a_changed_grant_is_not_one() {
        let (token, _) = keys(A)
            .mint("alice", ID, Request::default(), &limits(), NOW)
            .unwrap();
        let (body, mac) = token.strip_prefix(PREFIX).unwrap().split_once('.').unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(body).unwrap()).unwrap();
        json["o"] = "mallory".into();
        json["e"] = (NOW + 100_000).into();
        let forged = format!("{PREFIX}{}.{mac}", B64URL.encode(json.to_string()));
        for bad in [
            forged.as_str(),
            "pxg_",
            "pxg_abc",
            "pxg_e30.",
            &token[..token.len() - 2],
        ] {
            assert_eq!(
                code(&keys(A).open(bad, NOW).unwrap_err()),
                "unauthorized",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_grant_covers_only_what_it_names() {
        let req = Request {
            max_bytes: Some(1000),
            content_types: Some(vec!["image/jpeg".into()]),
            ttl_secs: Some(60),
            meta: None,
        };
        let (_, g) = keys(A).mint("alice", ID, req, &limits(), NOW).unwrap();
        assert!(g.covers(SourceFormat::Jpeg, Some(1000)).is_ok());
        assert_eq!(
            code(&g.covers(SourceFormat::Png, Some(10)).unwrap_err()),
            "grant_exceeded"
        );
        assert_eq!(
            code(&g.covers(SourceFormat::Jpeg, Some(1001)).unwrap_err()),
            "grant_exceeded"
        );
        for bad in [
            Request {
                ttl_secs: Some(MAX_TTL_SECS + 1),
                ..Request::default()
            },
            Request {
                max_bytes: Some(0),
                ..Request::default()
            },
            Request {
                content_types: Some(vec!["text/plain".into()]),
                ..Request::default()
            },
            Request {
                content_types: Some(vec![]),
                ..Request::default()
            },
        ] {
            assert!(keys(A).mint("alice", ID, bad, &limits(), NOW).is_err());
        }
        let (_, capped) = keys(A)
            .mint(
                "alice",
                ID,
                Request {
                    max_bytes: Some(u64::MAX),
                    ..Request::default()
                },
                &limits(),
                NOW,
            )
            .unwrap();
        assert_eq!(capped.max_bytes, limits().image.max_bytes);
        assert!(GrantKeys::parse("short").is_err());
        assert!(GrantKeys::parse(" , ").unwrap().is_none());
    }
}
