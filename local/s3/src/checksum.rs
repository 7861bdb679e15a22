//! Verifies client-supplied integrity values before anything touches disk.
//!
//! s3s-fs compares checksums only after it has renamed the new file into
//! place, so a corrupt upload would replace the old object and still fire an
//! event. S3 never stores a body whose digest does not match, so the body is
//! buffered and checked here first.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3Result, TrailingHeaders, s3_error};

/// The integrity fields that PutObject and UploadPart share.
#[derive(Debug, Default, Clone)]
pub struct Claimed {
    pub content_md5: Option<String>,
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub crc64nvme: Option<String>,
}

pub async fn read_body(body: StreamingBlob) -> S3Result<Bytes> {
    let mut buf = BytesMut::new();
    let mut body = body;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => buf.extend_from_slice(&b),
            Err(e) => {
                // aws-chunked signature failures surface here; keep their code.
                return Err(match e.downcast::<S3Error>() {
                    Ok(s3) => *s3,
                    Err(other) => {
                        s3_error!(IncompleteBody, "request body could not be read: {other}")
                    }
                });
            }
        }
    }
    Ok(buf.freeze())
}

/// Folds values sent as aws-chunked trailers into `claimed`; they are only
/// readable once the body has been consumed.
pub fn take_trailers(trailers: Option<TrailingHeaders>, claimed: &mut Claimed) -> S3Result<()> {
    let Some(map) = trailers.and_then(|t| t.take()) else {
        return Ok(());
    };
    let pairs: [(&str, &mut Option<String>); 5] = [
        ("x-amz-checksum-crc32", &mut claimed.crc32),
        ("x-amz-checksum-crc32c", &mut claimed.crc32c),
        ("x-amz-checksum-sha1", &mut claimed.sha1),
        ("x-amz-checksum-sha256", &mut claimed.sha256),
        ("x-amz-checksum-crc64nvme", &mut claimed.crc64nvme),
    ];
    for (name, slot) in pairs {
        if let Some(v) = map.get(name) {
            let v = v.to_str().map_err(|_| {
                s3_error!(
                    InvalidRequest,
                    "Value for {name} trailing header is invalid."
                )
            })?;
            *slot = Some(v.to_owned());
        }
    }
    Ok(())
}

fn decode_b64(v: &str) -> Option<Vec<u8>> {
    base64_decode(v.trim())
}

/// Small standard-alphabet base64 decoder (with padding), enough for digests.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(c)? };
            n = (n << 6) | v;
        }
        let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&full[..3 - pad]);
    }
    Some(out)
}

/// Refuses the body the way S3 does: a malformed value is `InvalidRequest`
/// (`InvalidDigest` for Content-MD5), a well-formed one that differs is `BadDigest`.
pub fn verify(body: &[u8], claimed: &Claimed) -> S3Result<()> {
    if let Some(md5) = &claimed.content_md5 {
        let want = decode_b64(md5).filter(|d| d.len() == 16).ok_or_else(|| {
            s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid.")
        })?;
        if Md5::checksum(body).as_slice() != want.as_slice() {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
    }
    let mut hasher = s3s::checksum::ChecksumHasher::default();
    let checks: [(&Option<String>, &str, usize); 5] = [
        (&claimed.crc32, "crc32", 4),
        (&claimed.crc32c, "crc32c", 4),
        (&claimed.sha1, "sha1", 20),
        (&claimed.sha256, "sha256", 32),
        (&claimed.crc64nvme, "crc64nvme", 8),
    ];
    for (value, alg, len) in checks {
        let Some(value) = value else { continue };
        if decode_b64(value).is_none_or(|d| d.len() != len) {
            return Err(s3_error!(
                InvalidRequest,
                "Value for x-amz-checksum-{alg} header is invalid."
            ));
        }
        match alg {
            "crc32" => hasher.crc32 = Some(Default::default()),
            "crc32c" => hasher.crc32c = Some(Default::default()),
            "sha1" => hasher.sha1 = Some(Default::default()),
            "sha256" => hasher.sha256 = Some(Default::default()),
            _ => hasher.crc64nvme = Some(Default::default()),
        }
    }
    hasher.update(body);
    let got = hasher.finalize();
    let pairs = [
        (&claimed.crc32, &got.checksum_crc32, "CRC32"),
        (&claimed.crc32c, &got.checksum_crc32c, "CRC32C"),
        (&claimed.sha1, &got.checksum_sha1, "SHA1"),
        (&claimed.sha256, &got.checksum_sha256, "SHA256"),
        (&claimed.crc64nvme, &got.checksum_crc64nvme, "CRC64NVME"),
    ];
    for (want, got, name) in pairs {
        if let (Some(want), Some(got)) = (want, got)
            && want.trim() != got
        {
            return Err(s3_error!(
                BadDigest,
                "The {name} you specified did not match the calculated checksum."
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip_samples() {
        assert_eq!(
            base64_decode("AAAAAA==").as_deref(),
            Some(&[0u8, 0, 0, 0][..])
        );
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("aGk"), None);
        assert_eq!(base64_decode("a*k="), None);
    }

    #[test]
    fn sha256_and_md5_checked() {
        let body = b"hello";
        // sha256("hello") and md5("hello"), base64.
        let good = Claimed {
            sha256: Some("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=".into()),
            content_md5: Some("XUFAKrxLKna5cZ2REBfFkg==".into()),
            ..Claimed::default()
        };
        assert!(verify(body, &good).is_ok());
        let err = verify(b"hellO", &good).expect_err("mismatch");
        assert_eq!(err.code().as_str(), "BadDigest");
        let bad_sha = Claimed {
            sha256: Some("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=".into()),
            ..Claimed::default()
        };
        assert_eq!(
            verify(b"x", &bad_sha)
                .expect_err("mismatch")
                .code()
                .as_str(),
            "BadDigest"
        );
        let malformed = Claimed {
            crc32c: Some("nope".into()),
            ..Claimed::default()
        };
        assert_eq!(
            verify(body, &malformed).expect_err("bad").code().as_str(),
            "InvalidRequest"
        );
    }

    #[test]
    fn crc32c_checked() {
        // crc32c("hello") = 0x9a71bb4c
        let c = Claimed {
            crc32c: Some("mnG7TA==".into()),
            ..Claimed::default()
        };
        assert!(verify(b"hello", &c).is_ok());
        assert!(verify(b"hellp", &c).is_err());
    }
}
