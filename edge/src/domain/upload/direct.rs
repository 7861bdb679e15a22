//! Direct uploads: the client declares its file (type, size, SHA-256) and
//! gets a presigned PUT to send the bytes straight to S3; the S3 event does
//! the rest. The worker never holds the bytes, so this is the way for
//! large files; the resizer checks what the worker could not see.

use super::{Claim, Uploads, Written, declare, declared_image};
use crate::domain::error::{Error, Result};
use crate::domain::grant::Grant;
use crate::domain::model::{Image, Metadata};
use crate::domain::ports::{Declared, ImageRows, ObjectStore, Presigned, PutGrant, UploadClaims};

/// A client's declaration of the file it will PUT.
#[derive(Debug, Clone)]
pub struct DirectFile {
    pub owner: String,
    pub content_type: String,
    pub bytes: u64,
    /// Base64 of the file's SHA-256, signed into the PUT.
    pub sha256_b64: String,
    pub file_name: Option<String>,
    pub meta: Metadata,
    /// Keep a second copy of bytes the owner already has.
    pub allow_duplicates: bool,
    /// The upload grant the client came with.
    pub grant: Option<Grant>,
}

/// What the client is given.
#[derive(Debug)]
pub enum Granted {
    /// The new `uploading` image and the PUT that stores its original.
    Put { image: Image, put: Presigned },
    /// The owner's image with these bytes: there is nothing to send.
    Duplicate(Image),
}

/// Whether `s` is base64 of a SHA-256 (44 characters).
fn is_sha256_b64(s: &str) -> bool {
    use base64::Engine;
    s.len() == 44
        && base64::engine::general_purpose::STANDARD
            .decode(s)
            .is_ok_and(|b| b.len() == 32)
}

impl<O: ObjectStore, R: ImageRows + UploadClaims> Uploads<'_, O, R> {
    /// Checks the declaration, returns the owner's image with the same
    /// bytes if there is one, else claims an id and signs the PUT.
    pub async fn direct(&self, file: DirectFile) -> Result<Granted> {
        let format = declare(&file.content_type, file.bytes, self.limits)?;
        if let Some(g) = &file.grant {
            g.covers(format, Some(file.bytes))?;
        }
        if !is_sha256_b64(&file.sha256_b64) {
            return Err(Error::invalid_field(
                "sha256",
                "base64 of the file's SHA-256 (44 characters)",
            ));
        }
        // The client declared the hash: a duplicate is found before any row
        // or presigned URL exists, and the client sends nothing.
        if !file.allow_duplicates
            && let Some(img) = self
                .rows
                .duplicate_of(&file.owner, &file.sha256_b64)
                .await?
        {
            return Ok(Granted::Duplicate(img));
        }
        self.within_quota(&file.owner, file.bytes).await?;
        let mut new = declared_image(
            file.owner,
            format,
            file.file_name,
            file.meta,
            file.grant.as_ref(),
        );
        new.request_id = self.request_id.map(str::to_string);
        let grant = PutGrant {
            format,
            bytes: file.bytes,
            sha256_b64: Some(&file.sha256_b64),
            request_id: self.request_id,
        };
        let put = self.objects.presign_put(&new.original_key, &grant)?;
        let declared = Declared {
            bytes: file.bytes,
            sha256_b64: Some(&file.sha256_b64),
            put_ttl_secs: Some(self.objects.presign_ttl_secs()),
        };
        if let Claim::Existing(_) = self.claim(&new, Some(declared)).await? {
            return Err(Error::IdempotencyInProgress);
        }
        // The same bytes declared twice at once both pass the lookup; the
        // hold lets one through. The other is not made to wait: the
        // holder's client may take minutes to send its bytes (its hold
        // lapses after `HOLD_STALE_SECS`). Whatever fails from here, or
        // finds a duplicate, withdraws the claim: the client never got the
        // URL, and a row left behind would hold its bytes for nothing.
        let held = if file.allow_duplicates {
            Ok(None)
        } else {
            self.hold_now(&new.owner, &file.sha256_b64, &new.id).await
        };
        let granted = match held {
            Ok(None) => self
                .reload(&new.id)
                .await
                .map(|image| Granted::Put { image, put }),
            Ok(Some(img)) => Ok(Granted::Duplicate(img)),
            Err(e) => Err(e),
        };
        let image = match granted {
            Ok(Granted::Put { image, put }) => (image, put),
            other => {
                self.withdraw_logged(&new.id, &new.original_key, Written::Row)
                    .await;
                return other;
            }
        };
        let (image, put) = image;
        tracing::info!(metric = "upload", route = "direct", id = %image.id, bytes = file.bytes, "direct upload granted");
        Ok(Granted::Put { image, put })
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;
    use pixport_contract::Status;

    use super::*;
    use crate::adapters::memory::Memory;
    use crate::domain::upload::testing::{code, limits};

    const SHA: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    const OTHER_SHA: &str = "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=";

    fn file(content_type: &str, bytes: u64, sha: &str) -> DirectFile {
        DirectFile {
            owner: "owner".into(),
            content_type: content_type.into(),
            bytes,
            sha256_b64: sha.into(),
            file_name: Some("a.jpg".into()),
            meta: Metadata::default(),
            allow_duplicates: false,
            grant: None,
        }
    }

    fn direct(m: &Memory, f: DirectFile) -> Result<Granted> {
        direct_with(m, f, limits())
    }

    fn direct_with(
        m: &Memory,
        f: DirectFile,
        limits: crate::domain::limits::UploadLimits,
    ) -> Result<Granted> {
        let uploads = Uploads {
            objects: m,
            rows: m,
            limits: &limits,
            request_id: None,
        };
        block_on(uploads.direct(f))
    }

    fn put(g: Result<Granted>) -> (Image, Presigned) {
        match g {
            Ok(Granted::Put { image, put }) => (image, put),
            Ok(Granted::Duplicate(i)) => panic!("a duplicate of {}", i.id),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_declared_file_gets_a_create_only_put_and_an_uploading_row() {
        let m = Memory::default();
        let (image, put) = put(direct(&m, file("image/png", 1234, SHA)));
        assert_eq!(image.status, Status::Uploading);
        assert_eq!(image.bytes, Some(1234));
        assert_eq!(image.checksum_sha256.as_deref(), Some(SHA));
        assert_eq!(image.content_type, "image/png");
        assert!(put.url.ends_with(&image.original_key), "{}", put.url);
        let header = |k: &str| {
            put.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("if-none-match"), Some("*"));
        assert_eq!(header("x-amz-checksum-sha256"), Some(SHA));
        assert_eq!(header("content-length"), Some("1234"));
        // The PUT may create the original until it expires: a DELETE
        // before then leaves a tombstone.
        assert!(m.put_expires.borrow().contains_key(&image.id));
        assert!(m.objects.borrow().is_empty(), "the client sends the bytes");
    }

    #[test]
    fn bad_declarations_claim_nothing() {
        let too_big = limits().image.max_bytes + 1;
        for (f, want) in [
            (file("text/plain", 10, SHA), "unsupported_media_type"),
            (file("image/heic", 10, SHA), "unsupported_media_type"),
            (file("image/png", 0, SHA), "empty_file"),
            (file("image/png", too_big, SHA), "payload_too_large"),
            (file("image/png", 10, "abc"), "invalid_field"),
            (
                file("image/png", 10, &SHA.replace('=', "A")),
                "invalid_field",
            ),
        ] {
            let m = Memory::default();
            let e = direct(&m, f).expect_err(want);
            assert_eq!(code(&e), want);
            assert!(m.rows.borrow().is_empty(), "{want} left a row");
        }
    }

    #[test]
    fn declared_bytes_the_owner_has_return_the_image_and_claim_nothing() {
        let m = Memory::default();
        let first = m.insert_row("01JABCDEFGHJKMNPQRSTVWXYZ0", Status::Ready, 0);
        m.rows
            .borrow_mut()
            .get_mut(&first.id)
            .unwrap()
            .checksum_sha256 = Some(SHA.into());
        match direct(&m, file("image/jpeg", 10, SHA)) {
            Ok(Granted::Duplicate(img)) => assert_eq!(img.id, first.id),
            _ => panic!("expected the duplicate"),
        }
        assert_eq!(m.rows.borrow().len(), 1);
        // Other bytes, or opting out, claim a new id.
        put(direct(&m, file("image/jpeg", 10, OTHER_SHA)));
        let mut again = file("image/jpeg", 10, SHA);
        again.allow_duplicates = true;
        put(direct(&m, again));
        assert_eq!(m.rows.borrow().len(), 3);
    }

    #[test]
    fn the_same_bytes_declared_twice_at_once_let_one_through() {
        let m = Memory::default();
        let (first, _) = put(direct(&m, file("image/jpeg", 10, SHA)));
        // The first is still `uploading` (its client is sending): the
        // second is told to come back, and its row is withdrawn.
        let e = direct(&m, file("image/jpeg", 10, SHA)).expect_err("in flight");
        assert_eq!(code(&e), "duplicate_in_progress");
        let ids: Vec<String> = m.rows.borrow().keys().cloned().collect();
        assert_eq!(ids, [first.id]);
    }

    #[test]
    fn an_owner_at_its_quota_is_refused_before_and_after_the_claim() {
        let mut l = limits();
        l.max_images_per_owner = 1;
        let m = Memory::default();
        put(direct_with(&m, file("image/jpeg", 10, SHA), l));
        let e = direct_with(&m, file("image/jpeg", 10, OTHER_SHA), l).expect_err("over");
        assert_eq!(code(&e), "image_quota_exceeded");
        assert_eq!(m.rows.borrow().len(), 1);
        let mut l = limits();
        l.max_bytes_per_owner = 15;
        let m = Memory::default();
        put(direct_with(&m, file("image/jpeg", 10, SHA), l));
        let e = direct_with(&m, file("image/jpeg", 10, OTHER_SHA), l).expect_err("over");
        assert_eq!(code(&e), "storage_quota_exceeded");
        assert_eq!(m.rows.borrow().len(), 1);
    }

    #[test]
    fn a_failure_at_any_step_leaves_no_row_and_no_hold() {
        for step in ["duplicate", "usage", "presign", "claim", "hold", "get"] {
            let m = Memory::failing(&[step]);
            let e = direct(&m, file("image/jpeg", 10, SHA)).expect_err(step);
            assert!(code(&e).ends_with("_unavailable"), "{step}: {e}");
            assert!(m.rows.borrow().is_empty(), "{step} left a row");
            assert!(m.checksums.borrow().is_empty(), "{step} left a hold");
            // Once the fault is gone, the same declaration goes through.
            m.fail.borrow_mut().clear();
            put(direct(&m, file("image/jpeg", 10, SHA)));
        }
    }
}
