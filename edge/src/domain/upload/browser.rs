//! Browser uploads: what `@uppy/aws-s3` asks of a Companion-compatible
//! endpoint, so a browser sends the bytes straight to S3, in one presigned
//! PUT or in parts, and a reload resumes from the parts S3 already holds.
//!
//! The service allocates the image id and key; every later call names the
//! key it was given and is refused unless that key is an upload of the
//! caller still `uploading`. The declaration is checked like a direct
//! upload's; the completion checks the assembled size against it and the
//! bytes' head like a form's, and leaves the row `pending` for the S3 event.

use pixport_contract::{Status, keys};

use super::form::check_probe;
use super::{Claim, HEAD_BYTES, Uploads, Written, declare, declared_image};
use crate::domain::error::{Error, Result};
use crate::domain::grant::Grant;
use crate::domain::id;
use crate::domain::identity::Caller;
use crate::domain::model::{Image, Metadata, NewImage};
use crate::domain::ports::{
    Declared, HeldPart, ImageRows, ObjectStore, Presigned, PutGrant, UploadClaims,
};

/// S3's part numbers run from 1 to 10 000.
pub const MAX_PARTS: u32 = 10_000;

/// The part size of a browser's multipart upload unless the file needs
/// larger ones: S3's smallest part (5 MiB).
pub const PART_BYTES: u64 = 5 * 1024 * 1024;

/// How a declared file is cut into parts: every part but the last is
/// `part_size` bytes, the last the remainder. The part size is 5 MiB, or
/// what keeps the file within S3's 10 000 parts; the upload page cuts its
/// files the same way (`getChunkSize` in web/src/app.js, which Uppy's own
/// 5 MiB floor leaves as it is), and `POST /s3/multipart` answers it as
/// `partSize`. Each part URL is signed for its exact length, so S3 itself
/// refuses a part of any other size: an upload holds at most its declared
/// bytes, whoever sends them.
pub fn part_size(total: u64) -> u64 {
    PART_BYTES.max(total.div_ceil(u64::from(MAX_PARTS)))
}

/// How many parts a file of `total` bytes has.
pub fn part_count(total: u64) -> u32 {
    u32::try_from(total.div_ceil(part_size(total)).max(1)).unwrap_or(MAX_PARTS)
}

/// The exact length of part `n` of a file of `total` bytes; a part number
/// past the file's last part is refused.
pub fn part_length(total: u64, n: u32) -> Result<u64> {
    let count = part_count(total);
    if n == 0 || n > count {
        return Err(Error::invalid_field(
            "partNumber",
            format!("this upload has parts 1 to {count}"),
        ));
    }
    let size = part_size(total);
    Ok(if n < count {
        size
    } else {
        total - size * u64::from(count - 1)
    })
}

/// The image id behind a key the worker issued (`originals/<id>`); any
/// other key is no upload of this service.
pub fn issued_id(key: &str) -> Result<&str> {
    keys::original_id(key)
        .filter(|id| id::is_valid(id) && keys::original(id) == key)
        .ok_or(Error::NotFound)
}

/// A part number from the path.
pub fn part_number(s: &str) -> Result<u32> {
    s.parse()
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| Error::invalid_field("partNumber", "an integer from 1 to 10000"))
}

/// The parts to assemble: at least one, in ascending order without repeats
/// (S3 refuses anything else, with a less helpful message).
pub fn completion(parts: Vec<(u32, String)>) -> Result<Vec<(u32, String)>> {
    let bad = |why: &str| Error::invalid_field("parts", why);
    if parts.is_empty() {
        return Err(bad("at least one part"));
    }
    let mut last = 0;
    for (number, etag) in &parts {
        if *number <= last || *number > MAX_PARTS {
            return Err(bad("part numbers from 1 to 10000, ascending, each once"));
        }
        if etag.trim().is_empty() || etag.len() > 128 {
            return Err(bad("each part needs the ETag S3 gave it"));
        }
        last = *number;
    }
    Ok(parts)
}

/// The parts named in a completion must be parts S3 holds (with the ETag
/// it gave) and must add up to exactly the declared size: the declaration
/// was what the limits were checked against. Linear in the parts: S3's
/// parts are indexed by number once (up to 10 000 of each list).
pub fn check_assembly(
    chosen: &[(u32, String)],
    held: &[HeldPart],
    declared_bytes: u64,
) -> Result<()> {
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    let by_number: std::collections::HashMap<u32, (String, u64)> = held
        .iter()
        .map(|p| (p.number, (unquote(&p.etag), p.size)))
        .collect();
    let mut total = 0u64;
    for (n, etag) in chosen {
        let Some((_, size)) = by_number.get(n).filter(|(e, _)| *e == unquote(etag)) else {
            return Err(Error::invalid_field(
                "parts",
                format!("part {n} was not uploaded (or has another ETag)"),
            ));
        };
        total = total.saturating_add(*size);
    }
    if total != declared_bytes {
        return Err(Error::invalid_field(
            "parts",
            format!("the parts hold {total} bytes; the file was declared as {declared_bytes}"),
        ));
    }
    Ok(())
}

/// A browser's declaration: who, what file, and the fields its page sent.
#[derive(Debug, Clone)]
pub struct BrowserFile {
    pub owner: String,
    pub content_type: String,
    pub bytes: u64,
    pub file_name: Option<String>,
    pub meta: Metadata,
    /// The upload grant the browser came with.
    pub grant: Option<Grant>,
}

/// With an upload grant, the browser may work on the one upload it names.
pub fn within_grant(caller: &Caller, key: &str) -> Result<()> {
    match &caller.grant {
        Some(g) if issued_id(key)? != g.image_id => Err(Error::NotFound),
        _ => Ok(()),
    }
}

/// How the browser sends its file.
#[derive(Debug)]
pub enum Started {
    /// One presigned PUT of the whole file (Uppy's `/s3/params`).
    Put { key: String, put: Presigned },
    /// An S3 multipart upload, signed part by part.
    Multipart {
        key: String,
        upload_id: String,
        part_size: u64,
    },
}

impl<O: ObjectStore, R: ImageRows + UploadClaims> Uploads<'_, O, R> {
    /// Claims an id for a browser's file and starts its upload: a presigned
    /// PUT of the whole file (`single_put`), or S3's multipart upload.
    pub async fn browser_start(&self, file: BrowserFile, single_put: bool) -> Result<Started> {
        let format = declare(&file.content_type, file.bytes, self.limits)?;
        if let Some(g) = &file.grant {
            g.covers(format, Some(file.bytes))?;
        }
        let mut new = declared_image(
            file.owner,
            format,
            file.file_name,
            file.meta,
            file.grant.as_ref(),
        );
        new.request_id = self.request_id.map(str::to_string);
        let key = new.original_key.clone();
        if single_put {
            let grant = PutGrant {
                format,
                bytes: file.bytes,
                sha256_b64: None,
                request_id: self.request_id,
            };
            let put = self.objects.presign_put(&key, &grant)?;
            let declared = Declared {
                bytes: file.bytes,
                sha256_b64: None,
                put_ttl_secs: Some(self.objects.presign_ttl_secs()),
            };
            self.claim_declared(&new, declared).await?;
            return Ok(Started::Put { key, put });
        }
        let declared = Declared {
            bytes: file.bytes,
            sha256_b64: None,
            put_ttl_secs: None,
        };
        self.claim_declared(&new, declared).await?;
        let upload_id = match self
            .objects
            .create_multipart(&key, format.content_type(), self.request_id)
            .await
        {
            Ok(u) => u,
            Err(e) => {
                self.withdraw_logged(&new.id, &new.original_key, Written::Row)
                    .await;
                return Err(e);
            }
        };
        tracing::info!(id = %new.id, bytes = file.bytes, "browser upload started");
        Ok(Started::Multipart {
            key,
            upload_id,
            part_size: part_size(file.bytes),
        })
    }

    /// A declared upload has no Idempotency-Key: its claim is always new.
    async fn claim_declared(&self, new: &NewImage, declared: Declared<'_>) -> Result<()> {
        match self.claim(new, Some(declared)).await? {
            Claim::Claimed => Ok(()),
            Claim::Existing(_) => Err(Error::IdempotencyInProgress),
        }
    }

    /// The row behind `key`, if it is `owner`'s and still being uploaded;
    /// anything else is `NotFound`, so others' ids are not confirmed.
    pub async fn browser_upload(&self, owner: &str, key: &str) -> Result<Image> {
        let id = issued_id(key)?;
        let img = self.rows.get(id).await?.ok_or(Error::NotFound)?;
        if img.owner != owner || img.status != Status::Uploading || img.original_key != key {
            return Err(Error::NotFound);
        }
        Ok(img)
    }

    /// A presigned PUT of part `part`, for exactly its length.
    pub async fn browser_sign_part(
        &self,
        owner: &str,
        key: &str,
        upload_id: &str,
        part: u32,
    ) -> Result<Presigned> {
        let img = self.browser_upload(owner, key).await?;
        let len = part_length(img.bytes.unwrap_or(0), part)?;
        self.objects
            .presign_part(&img.original_key, upload_id, part, len)
    }

    /// The parts S3 holds, so a resumed upload sends only the rest.
    pub async fn browser_parts(
        &self,
        owner: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<HeldPart>> {
        let img = self.browser_upload(owner, key).await?;
        self.objects.list_parts(&img.original_key, upload_id).await
    }

    /// Assembles the parts if they are the declared file, checks its head
    /// is an accepted image within limits and of the declared format, and
    /// leaves the row `pending` for the S3 event. A refused file is
    /// withdrawn with its row. `img` is the upload as
    /// [`browser_upload`](Self::browser_upload) returned it (the caller
    /// reads the part list only once the upload is known to be the caller's).
    pub async fn browser_complete(
        &self,
        img: Image,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> Result<Image> {
        let key = img.original_key.as_str();
        let chosen = completion(parts)?;
        let held = self.objects.list_parts(key, upload_id).await?;
        check_assembly(&chosen, &held, img.bytes.unwrap_or(0))?;
        self.objects
            .complete_multipart(key, upload_id, &chosen)
            .await?;
        let checked = match self.objects.read_head(key, HEAD_BYTES as u64).await {
            Ok(head) => check_probe(&head, self.limits).and_then(|p| {
                if p.format.content_type() == img.content_type {
                    Ok(())
                } else {
                    Err(Error::UnsupportedMediaType(format!(
                        "the file is a {} image but was declared as {}",
                        p.format.as_str(),
                        img.content_type
                    )))
                }
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            self.withdraw_logged(&img.id, key, Written::Object).await;
            return Err(e);
        }
        self.rows
            .set_status_if(&img.id, Status::Uploading, Status::Pending)
            .await?;
        tracing::info!(metric = "upload", route = "browser", id = %img.id, "browser upload stored");
        self.reload(&img.id).await
    }

    /// Frees the parts and the row. An upload that is already gone (a
    /// refused completion withdrew it; Uppy aborts when such a file is
    /// removed) is aborted already.
    pub async fn browser_abort(&self, owner: &str, key: &str, upload_id: &str) -> Result<()> {
        let img = match self.browser_upload(owner, key).await {
            Ok(img) => img,
            Err(Error::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.withdraw(&img.id, &img.original_key, Written::Parts(upload_id))
            .await?;
        tracing::info!(id = %img.id, "browser upload aborted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use futures_executor::block_on;

    use crate::adapters::memory::{Memory, UPLOAD_ID};
    use crate::domain::upload::testing::{jpeg, limits};

    fn uploads<'a>(
        m: &'a Memory,
        l: &'a crate::domain::limits::UploadLimits,
    ) -> Uploads<'a, Memory, Memory> {
        Uploads {
            objects: m,
            rows: m,
            limits: l,
            request_id: None,
        }
    }

    fn browser_file(owner: &str, content_type: &str, bytes: u64) -> BrowserFile {
        BrowserFile {
            owner: owner.into(),
            content_type: content_type.into(),
            bytes,
            file_name: Some("p.jpg".into()),
            meta: Metadata::default(),
            grant: None,
        }
    }

    /// Starts a multipart browser upload of `data` and sends its parts as
    /// the browser would (straight to S3), cut as `part_length` says.
    fn started_with_parts(m: &Memory, owner: &str, data: &[u8]) -> String {
        let l = limits();
        let up = uploads(m, &l);
        let started =
            block_on(up.browser_start(browser_file(owner, "image/jpeg", data.len() as u64), false))
                .unwrap();
        let Started::Multipart {
            key,
            upload_id,
            part_size,
        } = started
        else {
            panic!("a multipart upload was asked for")
        };
        assert_eq!(upload_id, UPLOAD_ID);
        for (i, chunk) in data.chunks(part_size as usize).enumerate() {
            let n = i as u32 + 1;
            let url = block_on(up.browser_sign_part(owner, &key, &upload_id, n)).unwrap();
            assert!(
                url.headers
                    .contains(&("content-length".into(), chunk.len().to_string()))
            );
            m.uploads
                .borrow_mut()
                .get_mut(&key)
                .expect("the upload exists")
                .insert(n, chunk.to_vec());
        }
        key
    }

    fn all_parts(m: &Memory, key: &str) -> Vec<(u32, String)> {
        m.uploads.borrow()[key]
            .keys()
            .map(|n| (*n, format!("etag{n}")))
            .collect()
    }

    fn complete(m: &Memory, owner: &str, key: &str) -> Result<Image> {
        let l = limits();
        let up = uploads(m, &l);
        let img = block_on(up.browser_upload(owner, key))?;
        block_on(up.browser_complete(img, UPLOAD_ID, all_parts(m, key)))
    }

    #[test]
    fn a_multipart_browser_upload_completes_to_a_pending_image() {
        let m = Memory::default();
        let data = jpeg(3000, 2000, 12 << 20);
        let key = started_with_parts(&m, "owner", &data);
        let l = limits();
        let held = block_on(uploads(&m, &l).browser_parts("owner", &key, UPLOAD_ID)).unwrap();
        assert_eq!(held.iter().map(|p| p.size).sum::<u64>(), data.len() as u64);
        let img = complete(&m, "owner", &key).unwrap();
        assert_eq!(img.status, Status::Pending);
        assert_eq!(m.objects.borrow()[&key], data);
        assert!(m.uploads.borrow().is_empty());
    }

    #[test]
    fn a_single_put_browser_upload_is_claimed_until_its_put_expires() {
        let m = Memory::default();
        let l = limits();
        let started =
            block_on(uploads(&m, &l).browser_start(browser_file("owner", "image/png", 500), true))
                .unwrap();
        let Started::Put { key, put } = started else {
            panic!("a single PUT was asked for")
        };
        assert!(put.url.ends_with(&key));
        assert!(put.headers.contains(&("if-none-match".into(), "*".into())));
        let id = issued_id(&key).unwrap();
        assert_eq!(m.status(id), Some(Status::Uploading));
        assert!(
            m.put_expires.borrow().contains_key(id),
            "a DELETE leaves a tombstone"
        );
    }

    #[test]
    fn declarations_are_checked_before_anything_is_claimed() {
        let l = limits();
        for (f, want) in [
            (
                browser_file("owner", "text/plain", 10),
                "unsupported_media_type",
            ),
            (browser_file("owner", "image/jpeg", 0), "empty_file"),
            (
                browser_file("owner", "image/jpeg", l.image.max_bytes + 1),
                "payload_too_large",
            ),
        ] {
            for single_put in [true, false] {
                let m = Memory::default();
                let e =
                    block_on(uploads(&m, &l).browser_start(f.clone(), single_put)).expect_err(want);
                assert_eq!(code_of(e), want);
                assert!(m.rows.borrow().is_empty() && m.uploads.borrow().is_empty());
            }
        }
    }

    #[test]
    fn a_completed_file_that_is_not_what_was_declared_is_withdrawn() {
        // Not an image at all, a PNG declared as a JPEG, a JPEG over the
        // pixel limit, and parts that do not add up to the declared size.
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
        png.extend_from_slice(b"IHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0");
        png.resize(6 << 20, 0);
        for (data, want) in [
            (vec![b'x'; 6 << 20], "unsupported_media_type"),
            (png, "unsupported_media_type"),
            (jpeg(30_000, 30_000, 6 << 20), "image_too_large"),
        ] {
            let m = Memory::default();
            let key = started_with_parts(&m, "owner", &data);
            let e = complete(&m, "owner", &key).expect_err(want);
            assert_eq!(code_of(e), want);
            assert!(m.rows.borrow().is_empty(), "{want} left a row");
            assert!(m.objects.borrow().is_empty(), "{want} left an object");
        }
        let m = Memory::default();
        let key = started_with_parts(&m, "owner", &jpeg(100, 100, 6 << 20));
        m.uploads.borrow_mut().get_mut(&key).unwrap().remove(&2);
        let e = complete(&m, "owner", &key).expect_err("short");
        assert_eq!(code_of(e), "invalid_field");
        assert_eq!(
            m.rows.borrow().len(),
            1,
            "a short completion may be sent again"
        );
    }

    #[test]
    fn another_owner_cannot_see_sign_complete_or_abort_an_upload() {
        let m = Memory::default();
        let l = limits();
        let key = started_with_parts(&m, "owner", &jpeg(100, 100, 6 << 20));
        let up = uploads(&m, &l);
        let nf = |r: Result<()>| matches!(r, Err(Error::NotFound));
        assert!(nf(block_on(
            up.browser_sign_part("other", &key, UPLOAD_ID, 1)
        )
        .map(drop)));
        assert!(nf(
            block_on(up.browser_parts("other", &key, UPLOAD_ID)).map(drop)
        ));
        assert!(nf(block_on(up.browser_upload("other", &key)).map(drop)));
        // Aborting what is not yours is a no-op, as for a gone upload.
        block_on(up.browser_abort("other", &key, UPLOAD_ID)).unwrap();
        assert_eq!(m.rows.borrow().len(), 1);
        assert!(!m.uploads.borrow().is_empty());
        assert!(nf(
            block_on(up.browser_upload("owner", "originals/../x")).map(drop)
        ));
    }

    #[test]
    fn an_abort_frees_the_parts_and_the_row_and_may_be_repeated() {
        let m = Memory::default();
        let l = limits();
        let key = started_with_parts(&m, "owner", &jpeg(100, 100, 6 << 20));
        let up = uploads(&m, &l);
        block_on(up.browser_abort("owner", &key, UPLOAD_ID)).unwrap();
        assert!(m.rows.borrow().is_empty() && m.uploads.borrow().is_empty());
        block_on(up.browser_abort("owner", &key, UPLOAD_ID)).unwrap();
    }

    #[test]
    fn a_failure_at_any_step_leaves_nothing_the_client_cannot_finish_or_the_sweep_settle() {
        // Starting: nothing is left when the claim or S3 fails.
        for step in ["claim", "usage", "create", "presign"] {
            for single_put in [true, false] {
                let m = Memory::failing(&[step]);
                let l = limits();
                let r = block_on(
                    uploads(&m, &l)
                        .browser_start(browser_file("owner", "image/jpeg", 10), single_put),
                );
                // A single PUT creates no multipart upload, and a multipart
                // upload presigns nothing yet.
                if (single_put && step == "create") || (!single_put && step == "presign") {
                    assert!(r.is_ok(), "{step} {single_put}");
                    continue;
                }
                assert!(r.is_err(), "{step} {single_put}");
                assert!(m.rows.borrow().is_empty(), "{step} {single_put} left a row");
                assert!(
                    m.uploads.borrow().is_empty(),
                    "{step} {single_put} left parts"
                );
            }
        }
        // Completing: S3 refusing the assembly leaves the upload as it was,
        // to be completed again; a failed read of the head withdraws it.
        let m = Memory::default();
        let data = jpeg(100, 100, 6 << 20);
        let key = started_with_parts(&m, "owner", &data);
        m.fail.borrow_mut().push("complete");
        assert!(complete(&m, "owner", &key).is_err());
        assert_eq!(m.rows.borrow().len(), 1);
        m.fail.borrow_mut().clear();
        assert_eq!(complete(&m, "owner", &key).unwrap().status, Status::Pending);
        let m = Memory::default();
        let key = started_with_parts(&m, "owner", &data);
        m.fail.borrow_mut().push("head");
        assert!(complete(&m, "owner", &key).is_err());
        assert!(m.rows.borrow().is_empty() && m.objects.borrow().is_empty());
        // Aborting: S3 failing keeps the row, so the abort can be sent again.
        let m = Memory::default();
        let key = started_with_parts(&m, "owner", &data);
        m.fail.borrow_mut().push("abort");
        let l = limits();
        assert!(block_on(uploads(&m, &l).browser_abort("owner", &key, UPLOAD_ID)).is_err());
        assert_eq!(m.rows.borrow().len(), 1);
    }

    fn code_of(e: Error) -> &'static str {
        crate::domain::upload::testing::code(&e)
    }

    #[test]
    fn only_keys_the_worker_issues_name_an_upload() {
        let id = "01JDQ4Z8XK3M5N7P9Q1R3S5T7V";
        assert_eq!(issued_id(&keys::original(id)).unwrap(), id);
        for bad in [
            "originals/../secret",
            "originals/short",
            "variants/01JDQ4Z8XK3M5N7P9Q1R3S5T7V/320.jpg",
            "01JDQ4Z8XK3M5N7P9Q1R3S5T7V",
            "originals/01JDQ4Z8XK3M5N7P9Q1R3S5T7V/x",
            "",
        ] {
            assert!(issued_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_is_cut_into_5_mib_parts_and_a_remainder() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!((part_count(1), part_length(1, 1).unwrap()), (1, 1));
        assert_eq!(part_length(5 * MIB, 1).unwrap(), 5 * MIB);
        assert_eq!(part_count(5 * MIB), 1);
        assert_eq!(part_count(5 * MIB + 1), 2);
        assert_eq!(part_length(5 * MIB + 1, 1).unwrap(), 5 * MIB);
        assert_eq!(part_length(5 * MIB + 1, 2).unwrap(), 1);
        assert_eq!(part_length(12 * MIB, 3).unwrap(), 2 * MIB);
        for (total, n) in [(1, 2), (5 * MIB + 1, 3), (1, 0)] {
            assert_eq!(
                code_of(part_length(total, n).unwrap_err()),
                "invalid_field",
                "{total} {n}"
            );
        }
        // Past 10 000 parts of 5 MiB the parts grow; never more than 10 000.
        let huge = 60_000 * MIB + 7;
        assert_eq!(part_size(huge), huge.div_ceil(10_000));
        assert!(part_count(huge) <= MAX_PARTS);
        let sum: u64 = (1..=part_count(huge))
            .map(|n| part_length(huge, n).unwrap())
            .sum();
        assert_eq!(sum, huge);
    }

    #[test]
    fn part_numbers_are_s3s() {
        assert_eq!(part_number("1").unwrap(), 1);
        assert_eq!(part_number("10000").unwrap(), 10_000);
        for bad in ["0", "10001", "-1", "x", ""] {
            assert!(part_number(bad).is_err(), "{bad}");
        }
    }

    fn body(parts: &[(u32, &str)]) -> Vec<(u32, String)> {
        parts.iter().map(|(n, e)| (*n, e.to_string())).collect()
    }

    #[test]
    fn a_completion_lists_parts_ascending_once() {
        assert_eq!(completion(body(&[(1, "a"), (2, "b")])).unwrap().len(), 2);
        assert!(completion(body(&[])).is_err());
        assert!(completion(body(&[(2, "a"), (1, "b")])).is_err());
        assert!(completion(body(&[(1, "a"), (1, "a")])).is_err());
        assert!(completion(body(&[(0, "a")])).is_err());
        assert!(completion(body(&[(1, " ")])).is_err());
    }

    #[test]
    fn the_assembly_must_be_what_was_declared() {
        let part = |number, etag: &str, size| HeldPart {
            number,
            etag: etag.into(),
            size,
        };
        let held = vec![part(1, "\"e1\"", 5), part(2, "\"e2\"", 3)];
        let chosen = vec![(1, "e1".to_string()), (2, "\"e2\"".to_string())];
        check_assembly(&chosen, &held, 8).unwrap();
        assert!(check_assembly(&chosen, &held, 9).is_err());
        assert!(check_assembly(&[(1, "e1".into())], &held, 8).is_err());
        assert!(check_assembly(&[(1, "other".into()), (2, "e2".into())], &held, 8).is_err());
        assert!(check_assembly(&[(3, "e3".into())], &held, 8).is_err());
    }

    /// 10 000 parts (S3's most) checked against 10 000 held: a quadratic
    /// search would compare 10^8 pairs (seconds of a Worker's CPU time);
    /// linear is 10^4 lookups. Counted, not timed: the lookups happen
    /// through the index, so the held list is walked once.
    #[test]
    fn the_assembly_check_is_linear_in_the_parts() {
        let n = MAX_PARTS;
        let held: Vec<HeldPart> = (1..=n)
            .map(|i| HeldPart {
                number: i,
                etag: format!("\"e{i}\""),
                size: 5,
            })
            .collect();
        let chosen: Vec<(u32, String)> = (1..=n).map(|i| (i, format!("e{i}"))).collect();
        let t = std::time::Instant::now();
        for _ in 0..20 {
            check_assembly(&chosen, &held, 5 * u64::from(n)).unwrap();
        }
        // 20 x 10^8 comparisons of strings takes minutes; 20 x 10^4 lookups
        // take milliseconds even unoptimised on a loaded machine.
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
    }
}
