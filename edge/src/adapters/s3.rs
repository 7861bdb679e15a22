//! The `ObjectStore` port over S3: `pixport-aws` operations sent with
//! `fetch`. Uploads use presigned requests (the same presigner serves
//! clients' direct uploads); the worker sends them itself so credentials
//! never leave it.
//!
//! Every failure is a `pixport_aws::Error` naming S3, so `?` turns it into
//! the right `Storage` error.

use std::time::Duration;

use pixport_aws::s3::{
    self, AbortMultipartUpload, Bucket, CompleteMultipartUpload, CompletedPart,
    CreateMultipartUpload, DeleteObject, GetObject, GetObjectRange, HeadObject,
    ListMultipartUploads, ListObjectsV2, ListParts, MultipartOptions, PresignOptions,
    PresignedRequest,
};
use pixport_aws::{Checksum, Error as AwsError, Operation, Service};
use pixport_contract::keys;

use crate::adapters::transport;
use crate::domain::error::{Error, Result};
use crate::domain::ports::{HeldPart, Listed, ObjectStore, Presigned, PutGrant};
use crate::runtime::clock;
use crate::runtime::payload::Payload;

/// How long the worker's own presigned requests live: just long enough to send.
const SEND_WINDOW: Duration = Duration::from_secs(300);

/// The originals' and variants' bucket, with what clients are handed.
#[derive(Debug, Clone)]
pub struct S3 {
    pub bucket: Bucket,
    /// How long the presigned requests clients are given stay valid.
    pub presign_ttl: Duration,
    /// A CDN in front of `variants/` (`PUBLIC_BASE_URL`), if any.
    pub public_base_url: Option<String>,
    /// The bucket as clients' presigned uploads reach it, when that is
    /// not `bucket`: its S3 Transfer Acceleration endpoint (`S3_ACCELERATE`).
    pub upload_bucket: Option<Bucket>,
}

impl S3 {
    async fn run<O: Operation<Target = s3::Bucket>>(
        &self,
        op: &O,
    ) -> std::result::Result<O::Output, AwsError> {
        transport::run(&self.bucket, op).await
    }

    /// Where the presigned uploads clients are handed go.
    fn for_clients(&self) -> &Bucket {
        self.upload_bucket.as_ref().unwrap_or(&self.bucket)
    }

    /// Sends a presigned upload (PUT of an object or a part) with its body,
    /// which already lives in the JS heap.
    async fn send_presigned(
        &self,
        p: PresignedRequest,
        body: Payload,
    ) -> std::result::Result<transport::Reply, AwsError> {
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

    /// The origins a browser reaches for images beside the worker: the
    /// one its presigned PUTs go to (the bucket's, virtual-hosted or path
    /// style as the endpoint says, or its accelerate endpoint) and the
    /// public base's, if one is set. The upload
    /// page's Content-Security-Policy allows exactly these.
    pub fn browser_origins(&self) -> Result<(String, Option<String>)> {
        let origin = |u: &str| {
            url::Url::parse(u)
                .map(|u| u.origin().ascii_serialization())
                .map_err(|e| Error::Runtime(format!("an unusable storage URL: {e}")))
        };
        let probe =
            self.for_clients()
                .presign_get(&keys::original("0"), self.presign_ttl, clock::now())?;
        let bucket = origin(&probe.url)?;
        let public = match &self.public_base_url {
            Some(base) => Some(origin(base)?),
            None => None,
        };
        Ok((bucket, public))
    }
}

/// The object metadata an original keeps: the request that uploaded it
/// (`x-amz-meta-request-id`, read by the resize Lambda for its log).
fn request_metadata(request_id: Option<&str>) -> Vec<(String, String)> {
    request_id
        .map(|r| vec![("request-id".to_string(), r.to_string())])
        .unwrap_or_default()
}

/// A presigned request as the domain hands it out: the URL and the headers
/// the client must send.
fn presigned(p: PresignedRequest) -> Presigned {
    Presigned {
        url: p.url,
        headers: p
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
    }
}

impl ObjectStore for S3 {
    type Body = worker::ResponseBody;

    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        content_type: &str,
        sha: &str,
        request_id: Option<&str>,
    ) -> Result<()> {
        let len = body.len() as u64;
        let mut opts = self.opts(SEND_WINDOW, Some(content_type), Some(len), Some(sha));
        opts.metadata = request_metadata(request_id);
        let p = self.bucket.presign_put(key, &opts)?;
        let r = self.send_presigned(p, body).await?;
        s3::parse_put_object(r.status, &r.headers, &r.body)?;
        Ok(())
    }

    async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        request_id: Option<&str>,
    ) -> Result<String> {
        let options = MultipartOptions {
            content_type: Some(content_type.into()),
            checksum_algorithm: None,
            metadata: request_metadata(request_id),
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
    ) -> Result<String> {
        let len = body.len() as u64;
        let opts = self.opts(SEND_WINDOW, None, Some(len), Some(sha));
        let p = self
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
    ) -> Result<()> {
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

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        Ok(self.run(&AbortMultipartUpload { key, upload_id }).await?)
    }

    async fn list_uploads(&self, key: &str) -> Result<Vec<String>> {
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

    async fn delete_object(&self, key: &str) -> Result<()> {
        Ok(self.run(&DeleteObject { key }).await?)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self.run(&HeadObject { key }).await {
            Ok(_) => Ok(true),
            Err(AwsError::S3(e)) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
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
    ) -> Result<(Vec<Listed>, Option<String>)> {
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

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<HeldPart>> {
        let mut parts = Vec::new();
        let mut marker = 0;
        loop {
            let op = ListParts {
                key,
                upload_id,
                part_number_marker: marker,
            };
            let out = match self.run(&op).await {
                Ok(out) => out,
                // An upload id that is not this key's.
                Err(AwsError::S3(e)) if e.code == "NoSuchUpload" || e.is_not_found() => {
                    return Err(Error::NotFound);
                }
                Err(e) => return Err(e.into()),
            };
            parts.extend(out.parts.into_iter().map(|p| HeldPart {
                number: p.part_number,
                etag: p.etag,
                size: p.size,
            }));
            match out.next_part_number_marker {
                Some(next) if out.is_truncated && next > marker => marker = next,
                _ => return Ok(parts),
            }
        }
    }

    async fn read_head(&self, key: &str, len: u64) -> Result<Vec<u8>> {
        let op = GetObjectRange {
            key,
            first: 0,
            last: len.saturating_sub(1),
        };
        let reply = transport::send(Service::S3, op.request(&self.bucket, clock::now())?).await?;
        GetObjectRange::parse(reply.status, &reply.headers, &reply.body)?;
        let mut body = reply.body;
        body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(body)
    }

    async fn open(&self, key: &str) -> Result<worker::ResponseBody> {
        let (_, body) = transport::open(&self.bucket, &GetObject { key }).await?;
        Ok(body)
    }

    fn presign_put(&self, key: &str, grant: &PutGrant<'_>) -> Result<Presigned> {
        let mut opts = self.opts(
            self.presign_ttl,
            Some(grant.format.content_type()),
            Some(grant.bytes),
            grant.sha256_b64,
        );
        // Create-only: the URL stays valid for its TTL, and a replay must
        // not overwrite the original (and so start its resize again); one
        // after a DELETE is removed by the sweep's reconciler. Browsers
        // send the headers they are given (the bucket's CORS rule allows
        // `If-None-Match`).
        opts.only_if_absent = true;
        opts.metadata = request_metadata(grant.request_id);
        Ok(presigned(self.for_clients().presign_put(key, &opts)?))
    }

    fn presign_part(&self, key: &str, upload_id: &str, part: u32, len: u64) -> Result<Presigned> {
        let opts = self.opts(self.presign_ttl, None, Some(len), None);
        Ok(presigned(
            self.for_clients()
                .presign_upload_part(key, upload_id, part, &opts)?,
        ))
    }

    fn public_url(&self, key: &str) -> Result<Option<String>> {
        match &self.public_base_url {
            Some(base) if key.starts_with(keys::VARIANTS_PREFIX) => Ok(Some(format!(
                "{base}/{}",
                pixport_aws::encoding::encode_key(key)?
            ))),
            _ => Ok(None),
        }
    }

    fn presign_ttl_secs(&self) -> u64 {
        self.presign_ttl.as_secs()
    }
}
