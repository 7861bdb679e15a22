//! Originals and variants in S3, through `pixport-aws` requests sent with
//! `fetch`. Uploads use presigned requests (the same presigner serves
//! clients' direct uploads); the worker sends them itself so credentials
//! never leave it.

use std::time::Duration;

use bytes::Bytes;
use pixport_aws::s3::{
    self, CompletedPart, CreateMultipartUpload, ListObjectsV2, PresignOptions, PresignedRequest,
};
use pixport_aws::{Checksum, Error as AwsError};

use crate::clock;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::payload::Payload;
use crate::transport::{Reply, send, send_payload};
use crate::upload::Storage;

/// How long the worker's own presigned requests live: just long enough to send.
const SEND_WINDOW: Duration = Duration::from_secs(300);

pub struct S3<'a> {
    pub cfg: &'a Config,
}

fn unavailable(e: String) -> ApiError {
    ApiError::StorageUnavailable(e)
}

fn s3_error(e: AwsError) -> ApiError {
    if e.is_retryable() {
        ApiError::StorageUnavailable(e.to_string())
    } else {
        ApiError::Storage(e.to_string())
    }
}

fn presigned_to_request<B>(p: PresignedRequest, body: B) -> ApiResult<http::Request<B>> {
    let mut req = http::Request::builder()
        .method(p.method)
        .uri(&p.url)
        .body(body)
        .map_err(|e| ApiError::Storage(e.to_string()))?;
    *req.headers_mut() = p.headers;
    Ok(req)
}

impl S3<'_> {
    async fn call(&self, req: ApiResult<http::Request<Bytes>>) -> ApiResult<Reply> {
        send(req?).await.map_err(unavailable)
    }

    async fn call_with(&self, req: ApiResult<http::Request<Payload>>) -> ApiResult<Reply> {
        send_payload(req?).await.map_err(unavailable)
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
        s3::presign_put(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            &self.opts(ttl, Some(content_type), Some(len), Some(sha)),
        )
        .map_err(s3_error)
    }

    /// Where a client reads an object: the public base URL, or a presigned GET.
    pub fn read_url(&self, key: &str) -> ApiResult<String> {
        let c = self.cfg;
        if let Some(base) = &c.public_base_url {
            return Ok(format!(
                "{base}/{}",
                pixport_aws::encoding::encode_key(key).map_err(s3_error)?
            ));
        }
        s3::presign_get(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            Duration::from_secs(c.presign_ttl_secs),
            clock::now(),
        )
        .map(|p| p.url)
        .map_err(s3_error)
    }

    /// Whether an object exists (HEAD).
    pub async fn exists(&self, key: &str) -> ApiResult<bool> {
        let c = self.cfg;
        let r = self
            .call(
                s3::head_object(&c.credentials, &c.s3, &c.bucket, key, clock::now())
                    .map_err(s3_error),
            )
            .await?;
        match s3::parse_head_object(r.status, &r.headers, &r.body) {
            Ok(_) => Ok(true),
            Err(AwsError::S3(e)) if e.is_not_found() => Ok(false),
            Err(e) => Err(s3_error(e)),
        }
    }

    pub async fn list_keys(&self, prefix: &str) -> ApiResult<Vec<String>> {
        let c = self.cfg;
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let list = ListObjectsV2 {
                prefix: Some(prefix.to_string()),
                continuation_token: token,
                ..Default::default()
            };
            let r = self
                .call(
                    s3::list_objects_v2(&c.credentials, &c.s3, &c.bucket, &list, clock::now())
                        .map_err(s3_error),
                )
                .await?;
            let out = s3::parse_list_objects_v2(r.status, &r.headers, &r.body).map_err(s3_error)?;
            keys.extend(out.objects.into_iter().map(|o| o.key));
            if !out.is_truncated {
                return Ok(keys);
            }
            token = out.next_continuation_token;
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

impl Storage for S3<'_> {
    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        content_type: &str,
        sha: &str,
    ) -> ApiResult<()> {
        let c = self.cfg;
        let p = s3::presign_put(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            &self.opts(
                SEND_WINDOW,
                Some(content_type),
                Some(body.len() as u64),
                Some(sha),
            ),
        )
        .map_err(s3_error)?;
        let r = self.call_with(presigned_to_request(p, body)).await?;
        s3::parse_put_object(r.status, &r.headers, &r.body).map_err(s3_error)?;
        Ok(())
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> ApiResult<String> {
        let c = self.cfg;
        let opts = CreateMultipartUpload {
            content_type: Some(content_type.into()),
            checksum_algorithm: None,
        };
        let r = self
            .call(
                s3::create_multipart_upload(
                    &c.credentials,
                    &c.s3,
                    &c.bucket,
                    key,
                    &opts,
                    clock::now(),
                )
                .map_err(s3_error),
            )
            .await?;
        Ok(
            s3::parse_create_multipart_upload(r.status, &r.headers, &r.body)
                .map_err(s3_error)?
                .upload_id,
        )
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Payload,
        sha: &str,
    ) -> ApiResult<String> {
        let c = self.cfg;
        let p = s3::presign_upload_part(
            &c.credentials,
            &c.s3,
            &c.bucket,
            key,
            upload_id,
            part,
            &self.opts(SEND_WINDOW, None, Some(body.len() as u64), Some(sha)),
        )
        .map_err(s3_error)?;
        let r = self.call_with(presigned_to_request(p, body)).await?;
        s3::parse_upload_part(r.status, &r.headers, &r.body)
            .map_err(s3_error)?
            .etag
            .ok_or_else(|| ApiError::Storage("UploadPart returned no ETag".into()))
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
        let r = self
            .call(
                s3::complete_multipart_upload(
                    &c.credentials,
                    &c.s3,
                    &c.bucket,
                    key,
                    upload_id,
                    &parts,
                    clock::now(),
                )
                .map_err(s3_error),
            )
            .await?;
        s3::parse_complete_multipart_upload(r.status, &r.headers, &r.body).map_err(s3_error)?;
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> ApiResult<()> {
        let c = self.cfg;
        let r = self
            .call(
                s3::abort_multipart_upload(
                    &c.credentials,
                    &c.s3,
                    &c.bucket,
                    key,
                    upload_id,
                    clock::now(),
                )
                .map_err(s3_error),
            )
            .await?;
        s3::parse_abort_multipart_upload(r.status, &r.headers, &r.body).map_err(s3_error)
    }

    async fn delete_object(&self, key: &str) -> ApiResult<()> {
        let c = self.cfg;
        let r = self
            .call(
                s3::delete_object(&c.credentials, &c.s3, &c.bucket, key, clock::now())
                    .map_err(s3_error),
            )
            .await?;
        s3::parse_delete_object(r.status, &r.headers, &r.body).map_err(s3_error)
    }
}
