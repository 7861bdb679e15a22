//! The `ObjectStore` port over S3: `pixport-aws` requests sent with
//! `fetch`. Uploads use presigned requests (the same presigner serves
//! clients' direct uploads); the worker sends them itself so credentials
//! never leave it.
//!
//! Every failure is a `pixport_aws::Error` naming S3, so `?` turns it into
//! the right `storage_*` error.

use std::time::Duration;

use bytes::Bytes;
use pixport_aws::s3::{
    self, CompletedPart, CreateMultipartUpload, ListObjectsV2, PresignOptions, PresignedRequest,
};
use pixport_aws::{Checksum, Error as AwsError, Service};

use crate::clock;
use crate::config::Config;
use crate::error::ApiResult;
use crate::ports::ObjectStore;
use crate::transport::{self, Reply};

/// How long the worker's own presigned requests live: just long enough to send.
const SEND_WINDOW: Duration = Duration::from_secs(300);

pub struct S3<'a> {
    pub cfg: &'a Config,
}

fn presigned_to_request(
    p: PresignedRequest,
    body: Bytes,
) -> Result<http::Request<Bytes>, AwsError> {
    let mut req = http::Request::builder()
        .method(p.method)
        .uri(&p.url)
        .body(body)
        .map_err(|e| AwsError::InvalidInput(format!("presigned request: {e}")))?;
    *req.headers_mut() = p.headers;
    Ok(req)
}

impl S3<'_> {
    async fn call(&self, req: http::Request<Bytes>) -> Result<Reply, AwsError> {
        transport::send(Service::S3, req).await
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
        let c = self.cfg;
        let ttl = Duration::from_secs(c.presign_ttl_secs);
        Ok(s3::presign_put(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            &self.opts(ttl, Some(content_type), Some(len), Some(sha)),
        )?)
    }

    /// Where a client reads an object: the public base URL, or a presigned GET.
    pub fn read_url(&self, key: &str) -> ApiResult<String> {
        let c = self.cfg;
        if let Some(base) = &c.public_base_url {
            return Ok(format!(
                "{base}/{}",
                pixport_aws::encoding::encode_key(key)?
            ));
        }
        let p = s3::presign_get(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            Duration::from_secs(c.presign_ttl_secs),
            clock::now(),
        )?;
        Ok(p.url)
    }
}

impl ObjectStore for S3<'_> {
    async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        sha: &str,
    ) -> ApiResult<()> {
        let c = self.cfg;
        let len = body.len() as u64;
        let p = s3::presign_put(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            &self.opts(SEND_WINDOW, Some(content_type), Some(len), Some(sha)),
        )?;
        let r = self.call(presigned_to_request(p, body)?).await?;
        s3::parse_put_object(r.status, &r.headers, &r.body)?;
        Ok(())
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> ApiResult<String> {
        let c = self.cfg;
        let opts = CreateMultipartUpload {
            content_type: Some(content_type.into()),
            checksum_algorithm: None,
        };
        let req = s3::create_multipart_upload(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            &opts,
            clock::now(),
        )?;
        let r = self.call(req).await?;
        Ok(s3::parse_create_multipart_upload(r.status, &r.headers, &r.body)?.upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Bytes,
        sha: &str,
    ) -> ApiResult<String> {
        let c = self.cfg;
        let len = body.len() as u64;
        let p = s3::presign_upload_part(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            upload_id,
            part,
            &self.opts(SEND_WINDOW, None, Some(len), Some(sha)),
        )?;
        let r = self.call(presigned_to_request(p, body)?).await?;
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
        let c = self.cfg;
        let parts: Vec<CompletedPart> = parts
            .iter()
            .map(|(n, etag)| CompletedPart {
                part_number: *n,
                etag: etag.clone(),
                checksum: None,
            })
            .collect();
        let req = s3::complete_multipart_upload(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            upload_id,
            &parts,
            clock::now(),
        )?;
        let r = self.call(req).await?;
        s3::parse_complete_multipart_upload(r.status, &r.headers, &r.body)?;
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> ApiResult<()> {
        let c = self.cfg;
        let req = s3::abort_multipart_upload(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            upload_id,
            clock::now(),
        )?;
        let r = self.call(req).await?;
        Ok(s3::parse_abort_multipart_upload(
            r.status, &r.headers, &r.body,
        )?)
    }

    async fn delete_object(&self, key: &str) -> ApiResult<()> {
        let c = self.cfg;
        let req = s3::delete_object(&c.credentials, &c.s3, &c.bucket, key, clock::now())?;
        let r = self.call(req).await?;
        Ok(s3::parse_delete_object(r.status, &r.headers, &r.body)?)
    }

    async fn exists(&self, key: &str) -> ApiResult<bool> {
        let c = self.cfg;
        let req = s3::head_object(&c.credentials, &c.s3, &c.bucket, key, clock::now())?;
        let r = self.call(req).await?;
        match s3::parse_head_object(r.status, &r.headers, &r.body) {
            Ok(_) => Ok(true),
            Err(AwsError::S3(e)) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_keys(&self, prefix: &str) -> ApiResult<Vec<String>> {
        let c = self.cfg;
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let list = ListObjectsV2 {
                prefix: Some(prefix.to_string()),
                continuation_token: token,
                ..Default::default()
            };
            let req = s3::list_objects_v2(&c.credentials, &c.s3, &c.bucket, &list, clock::now())?;
            let r = self.call(req).await?;
            let out = s3::parse_list_objects_v2(r.status, &r.headers, &r.body)?;
            keys.extend(out.objects.into_iter().map(|o| o.key));
            token = out.next_continuation_token.filter(|_| out.is_truncated);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}
