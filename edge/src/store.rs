//! The `ObjectStore` port over S3: `pixport-aws` operations sent with
//! `fetch`. Uploads use presigned requests (the same presigner serves
//! clients' direct uploads); the worker sends them itself so credentials
//! never leave it.
//!
//! Every failure is a `pixport_aws::Error` naming S3, so `?` turns it into
//! the right `storage_*` error.

use std::time::Duration;

use pixport_aws::s3::{
    self, AbortMultipartUpload, CompleteMultipartUpload, CompletedPart, CreateMultipartUpload,
    DeleteObject, GetObject, GetObjectRange, HeadObject, ListMultipartUploads, ListObjectsV2,
    ListParts, MultipartOptions, PresignOptions, PresignedRequest,
};
use pixport_aws::{Checksum, Error as AwsError, Operation, Service};

use pixport_contract::keys;

use crate::clock;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::payload::Payload;
use crate::ports::{Listed, ObjectStore};
use crate::transport;

/// How long the worker's own presigned requests live: just long enough to send.
const SEND_WINDOW: Duration = Duration::from_secs(300);

pub struct S3<'a> {
    pub cfg: &'a Config,
}

impl S3<'_> {
    async fn run<O: Operation<Target = s3::Bucket>>(&self, op: &O) -> Result<O::Output, AwsError> {
        transport::run(&self.cfg.bucket, op).await
    }

    /// Sends a presigned upload (PUT of an object or a part) with its body,
    /// which already lives in the JS heap.
    async fn send_presigned(
        &self,
        p: PresignedRequest,
        body: Payload,
    ) -> Result<transport::Reply, AwsError> {
        transport::send_payload(Service::S3, p.into_request(body)?).await
    }

    fn opts(
        &self,
        ttl: Duration,
        content_type: Option<&str>,
        len: Option<u64>,
        sha: Option<&str>,
    ) -> PresignOptions {
        let mut o = PresignOptions::new(ttl, clock::now());
        o.content_type = content_type.map(str::to_string);
        o.content_length = len;
        o.checksum = sha.map(Checksum::sha256);
        o
    }

    /// A presigned PUT for a client's direct upload: type, length and
    /// checksum are signed in, so S3 stores exactly the declared file.
    pub fn presign_client_put(
        &self,
        key: &str,
        content_type: &str,
        len: u64,
        sha: &str,
    ) -> ApiResult<PresignedRequest> {
        let ttl = Duration::from_secs(self.cfg.presign_ttl_secs);
        let mut opts = self.opts(ttl, Some(content_type), Some(len), Some(sha));
        // The URL stays valid for its TTL: signed to create only, a replay
        // cannot overwrite the original (and so cannot start its resize
        // again); one after a DELETE is removed by the sweep's reconciler.
        opts.only_if_absent = true;
        Ok(self.cfg.bucket.presign_put(key, &opts)?)
    }

    /// A presigned PUT for a browser's single-request upload (Uppy's
    /// `/s3/params`): type and length are signed in; Uppy sends no checksum.
    pub fn presign_browser_put(
        &self,
        key: &str,
        content_type: &str,
        len: u64,
    ) -> ApiResult<PresignedRequest> {
        let ttl = Duration::from_secs(self.cfg.presign_ttl_secs);
        let mut opts = self.opts(ttl, Some(content_type), Some(len), None);
        // Create-only, as `presign_client_put`: Uppy sends the headers it
        // is given, and the bucket's CORS rule allows `If-None-Match`.
        opts.only_if_absent = true;
        Ok(self.cfg.bucket.presign_put(key, &opts)?)
    }

    /// A presigned PUT of one part of a browser's multipart upload, its
    /// exact length signed in (`companion::part_length`): S3 refuses a part
    /// of any other size, so an abandoned upload holds at most the declared
    /// bytes.
    pub fn presign_browser_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        len: u64,
    ) -> ApiResult<PresignedRequest> {
        let ttl = Duration::from_secs(self.cfg.presign_ttl_secs);
        let opts = self.opts(ttl, None, Some(len), None);
        Ok(self
            .cfg
            .bucket
            .presign_upload_part(key, upload_id, part, &opts)?)
    }

    /// Every part S3 holds for an unfinished multipart upload: number, ETag
    /// (as S3 quotes it) and size. An unknown upload is S3's `NoSuchUpload`.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<(u32, String, u64)>, AwsError> {
        let mut parts = Vec::new();
        let mut marker = 0;
        loop {
            let op = ListParts {
                key,
                upload_id,
                part_number_marker: marker,
            };
            let out = self.run(&op).await?;
            parts.extend(
                out.parts
                    .into_iter()
                    .map(|p| (p.part_number, p.etag, p.size)),
            );
            match out.next_part_number_marker {
                Some(next) if out.is_truncated && next > marker => marker = next,
                _ => return Ok(parts),
            }
        }
    }

    /// The first `len` bytes of an object (fewer when it is shorter).
    pub async fn head_bytes(&self, key: &str, len: u64) -> ApiResult<Vec<u8>> {
        let op = GetObjectRange {
            key,
            first: 0,
            last: len.saturating_sub(1),
        };
        let reply =
            transport::send(Service::S3, op.request(&self.cfg.bucket, clock::now())?).await?;
        GetObjectRange::parse(reply.status, &reply.headers, &reply.body)?;
        let mut body = reply.body;
        body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(body)
    }

    /// An object's bytes as a stream for the client's response. The row
    /// names the object, so S3 not having it is a storage fault (the 404
    /// arrives as `storage_error`), not the client's missing image.
    pub async fn open_object(&self, key: &str) -> ApiResult<worker::ResponseBody> {
        let (_, body) = transport::open(&self.cfg.bucket, &GetObject { key }).await?;
        Ok(body)
    }

    /// The variant's URL under the public base, when there is one.
    pub fn public_variant_url(&self, key: &str) -> ApiResult<Option<String>> {
        match &self.cfg.public_base_url {
            Some(base) if key.starts_with(keys::VARIANTS_PREFIX) => Ok(Some(format!(
                "{base}/{}",
                pixport_aws::encoding::encode_key(key)?
            ))),
            _ => Ok(None),
        }
    }

    /// The origins a browser reaches for images beside the worker: the
    /// bucket's (presigned PUTs and GETs; virtual-hosted or path style, as
    /// the endpoint says) and the public base's, if one is set. The upload
    /// page's Content-Security-Policy allows exactly these (`page`).
    pub fn browser_origins(&self) -> ApiResult<(String, Option<String>)> {
        let origin = |url: &str| {
            worker::Url::parse(url)
                .map(|u| u.origin().ascii_serialization())
                .map_err(|e| ApiError::Config(format!("an unusable storage URL: {e}")))
        };
        let bucket = origin(&self.presigned_get(&keys::original("0"))?)?;
        let public = match &self.cfg.public_base_url {
            Some(base) => Some(origin(base)?),
            None => None,
        };
        Ok((bucket, public))
    }

    fn presigned_get(&self, key: &str) -> ApiResult<String> {
        let c = self.cfg;
        let ttl = Duration::from_secs(c.presign_ttl_secs);
        Ok(c.bucket.presign_get(key, ttl, clock::now())?.url)
    }
}

impl ObjectStore for S3<'_> {
    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        content_type: &str,
        sha: &str,
    ) -> ApiResult<()> {
        let len = body.len() as u64;
        let opts = self.opts(SEND_WINDOW, Some(content_type), Some(len), Some(sha));
        let p = self.cfg.bucket.presign_put(key, &opts)?;
        let r = self.send_presigned(p, body).await?;
        s3::parse_put_object(r.status, &r.headers, &r.body)?;
        Ok(())
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> ApiResult<String> {
        let options = MultipartOptions {
            content_type: Some(content_type.into()),
            checksum_algorithm: None,
        };
        let out = self.run(&CreateMultipartUpload { key, options }).await?;
        Ok(out.upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Payload,
        sha: &str,
    ) -> ApiResult<String> {
        let len = body.len() as u64;
        let opts = self.opts(SEND_WINDOW, None, Some(len), Some(sha));
        let p = self
            .cfg
            .bucket
            .presign_upload_part(key, upload_id, part, &opts)?;
        let r = self.send_presigned(p, body).await?;
        let etag = s3::parse_upload_part(r.status, &r.headers, &r.body)?.etag;
        Ok(etag.ok_or(AwsError::Decode {
            service: Service::S3,
            what: "UploadPart",
            status: r.status,
            detail: "no ETag".into(),
        })?)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> ApiResult<()> {
        let parts: Vec<CompletedPart> = parts
            .iter()
            .map(|(n, etag)| CompletedPart {
                part_number: *n,
                etag: etag.clone(),
                checksum: None,
            })
            .collect();
        let op = CompleteMultipartUpload {
            key,
            upload_id,
            parts: &parts,
        };
        self.run(&op).await?;
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> ApiResult<()> {
        Ok(self.run(&AbortMultipartUpload { key, upload_id }).await?)
    }

    async fn list_uploads(&self, key: &str) -> ApiResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut next: Option<(String, String)> = None;
        loop {
            let op = ListMultipartUploads {
                prefix: key,
                markers: next.as_ref().map(|(k, u)| (k.as_str(), u.as_str())),
            };
            let out = self.run(&op).await?;
            ids.extend(
                out.uploads
                    .into_iter()
                    .filter(|u| u.key == key)
                    .map(|u| u.upload_id),
            );
            match out.next {
                Some(n) if next.as_ref() != Some(&n) => next = Some(n),
                _ => return Ok(ids),
            }
        }
    }

    async fn delete_object(&self, key: &str) -> ApiResult<()> {
        Ok(self.run(&DeleteObject { key }).await?)
    }

    async fn exists(&self, key: &str) -> ApiResult<bool> {
        match self.run(&HeadObject { key }).await {
            Ok(_) => Ok(true),
            Err(AwsError::S3(e)) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_keys(&self, prefix: &str) -> ApiResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let list = ListObjectsV2 {
                prefix: Some(prefix.to_string()),
                continuation_token: token,
                ..Default::default()
            };
            let out = self.run(&list).await?;
            keys.extend(out.objects.into_iter().map(|o| o.key));
            token = out.next_continuation_token.filter(|_| out.is_truncated);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> ApiResult<(Vec<Listed>, Option<String>)> {
        // `StartAfter`, not a continuation token: a key stays meaningful
        // across runs (the sweep stores it), a token need not.
        let list = ListObjectsV2 {
            prefix: Some(prefix.to_string()),
            start_after: after,
            ..Default::default()
        };
        let out = self.run(&list).await?;
        let now = clock::now();
        let page: Vec<Listed> = out
            .objects
            .into_iter()
            .map(|o| Listed {
                age_minutes: o
                    .last_modified
                    .as_deref()
                    .and_then(clock::parse_rfc3339)
                    .and_then(|t| now.duration_since(t).ok())
                    .map_or(0, |d| u32::try_from(d.as_secs() / 60).unwrap_or(u32::MAX)),
                key: o.key,
            })
            .collect();
        let next = out
            .is_truncated
            .then(|| page.last().map(|l| l.key.clone()))
            .flatten();
        Ok((page, next))
    }
}
