//! S3 operations against a [`Bucket`]: each builds its signed request and
//! reads its own response. Presigned requests, which a third party sends,
//! are [`Bucket`] methods.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};

use super::{
    CompleteMultipartUploadOutput, CompletedPart, CreateMultipartUploadOutput,
    ListMultipartUploadsOutput, ListObjectsV2, ListObjectsV2Output, ListPartsOutput,
    MultipartOptions, ObjectMeta, PresignOptions, PresignedRequest, PutObjectOptions,
    PutObjectOutput,
};
use crate::{Credentials, Error, Operation, S3Config, Service};

/// A bucket with everything that addresses and signs requests to it.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub credentials: Credentials,
    pub config: S3Config,
    pub name: String,
}

impl Bucket {
    pub fn new(credentials: Credentials, config: S3Config, name: impl Into<String>) -> Self {
        Bucket {
            credentials,
            config,
            name: name.into(),
        }
    }

    /// A PUT URL for a browser or device to upload one object directly.
    pub fn presign_put(&self, key: &str, opts: &PresignOptions) -> Result<PresignedRequest, Error> {
        super::presign_put(&self.credentials, &self.config, &self.name, key, opts)
    }

    /// A GET URL handing out read access to one object for a limited time.
    pub fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, Error> {
        super::presign_get(
            &self.credentials,
            &self.config,
            &self.name,
            key,
            expires_in,
            now,
        )
    }

    /// A PUT URL for one part of a multipart upload started with
    /// [`CreateMultipartUpload`]; read the answer with [`super::parse_upload_part`].
    pub fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        opts: &PresignOptions,
    ) -> Result<PresignedRequest, Error> {
        super::presign_upload_part(
            &self.credentials,
            &self.config,
            &self.name,
            key,
            upload_id,
            part_number,
            opts,
        )
    }
}

/// Implements `Operation` for an S3 call: the request builder gets the
/// bucket's credentials, configuration and name; the parser the response.
macro_rules! s3_operation {
    ($op:ty, $output:ty, |$s:ident, $b:ident, $now:ident| $build:expr, $parse:path) => {
        impl Operation for $op {
            const SERVICE: Service = Service::S3;
            type Target = Bucket;
            type Output = $output;

            fn request(&self, $b: &Bucket, $now: SystemTime) -> Result<Request<Bytes>, Error> {
                let $s = self;
                $build
            }

            fn parse(
                status: StatusCode,
                headers: &HeaderMap,
                body: &[u8],
            ) -> Result<$output, Error> {
                $parse(status, headers, body)
            }
        }
    };
}

/// GET of one object: the output is its metadata; the body is the
/// response body as the host received it.
#[derive(Debug, Clone, Copy)]
pub struct GetObject<'a> {
    pub key: &'a str,
}

s3_operation!(
    GetObject<'_>,
    ObjectMeta,
    |op, b, now| super::bodiless(Method::GET, &b.credentials, &b.config, &b.name, op.key, now),
    super::parse_get_object
);

/// HEAD: existence and metadata without the body (a missing object is an
/// `S3Error` whose `is_not_found()` holds).
#[derive(Debug, Clone, Copy)]
pub struct HeadObject<'a> {
    pub key: &'a str,
}

s3_operation!(
    HeadObject<'_>,
    ObjectMeta,
    |op, b, now| super::bodiless(
        Method::HEAD,
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        now
    ),
    super::parse_head_object
);

/// DELETE; S3 answers 204 whether or not the key existed.
#[derive(Debug, Clone, Copy)]
pub struct DeleteObject<'a> {
    pub key: &'a str,
}

s3_operation!(
    DeleteObject<'_>,
    (),
    |op, b, now| super::bodiless(
        Method::DELETE,
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        now
    ),
    super::parse_delete_object
);

/// PUT of a whole object, its SHA-256 signed in.
#[derive(Debug, Clone)]
pub struct PutObject<'a> {
    pub key: &'a str,
    pub body: Bytes,
    pub options: PutObjectOptions,
}

s3_operation!(
    PutObject<'_>,
    PutObjectOutput,
    |op, b, now| super::put_object(
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        op.body.clone(),
        &op.options,
        now
    ),
    super::parse_put_object
);

s3_operation!(
    ListObjectsV2,
    ListObjectsV2Output,
    |op, b, now| super::list_objects_v2(&b.credentials, &b.config, &b.name, op, now),
    super::parse_list_objects_v2
);

/// Starts a multipart upload (`POST ?uploads`).
#[derive(Debug, Clone)]
pub struct CreateMultipartUpload<'a> {
    pub key: &'a str,
    pub options: MultipartOptions,
}

s3_operation!(
    CreateMultipartUpload<'_>,
    CreateMultipartUploadOutput,
    |op, b, now| super::create_multipart_upload(
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        &op.options,
        now
    ),
    super::parse_create_multipart_upload
);

/// Finishes a multipart upload. S3 can answer 200 and still fail; the
/// parser reads that as the error it is.
#[derive(Debug, Clone, Copy)]
pub struct CompleteMultipartUpload<'a> {
    pub key: &'a str,
    pub upload_id: &'a str,
    pub parts: &'a [CompletedPart],
}

s3_operation!(
    CompleteMultipartUpload<'_>,
    CompleteMultipartUploadOutput,
    |op, b, now| super::complete_multipart_upload(
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        op.upload_id,
        op.parts,
        now
    ),
    super::parse_complete_multipart_upload
);

/// Frees a multipart upload's stored parts, which S3 otherwise bills.
#[derive(Debug, Clone, Copy)]
pub struct AbortMultipartUpload<'a> {
    pub key: &'a str,
    pub upload_id: &'a str,
}

s3_operation!(
    AbortMultipartUpload<'_>,
    (),
    |op, b, now| super::abort_multipart_upload(
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        op.upload_id,
        now
    ),
    super::parse_abort_multipart_upload
);

/// GET of the bytes `first..=last` of one object (the whole object when it
/// is shorter); the body is the response body as the host received it.
#[derive(Debug, Clone, Copy)]
pub struct GetObjectRange<'a> {
    pub key: &'a str,
    pub first: u64,
    pub last: u64,
}

s3_operation!(
    GetObjectRange<'_>,
    ObjectMeta,
    |op, b, now| super::get_object_range(
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        op.first,
        op.last,
        now
    ),
    super::parse_get_object
);

/// The parts S3 already holds for an unfinished multipart upload, one page
/// (up to 1000) from `part_number_marker` on: what a resumed upload need not
/// send again.
#[derive(Debug, Clone, Copy)]
pub struct ListParts<'a> {
    pub key: &'a str,
    pub upload_id: &'a str,
    pub part_number_marker: u32,
}

s3_operation!(
    ListParts<'_>,
    ListPartsOutput,
    |op, b, now| super::list_parts(
        &b.credentials,
        &b.config,
        &b.name,
        op.key,
        op.upload_id,
        op.part_number_marker,
        now
    ),
    super::parse_list_parts
);

impl PresignedRequest {
    /// The request as its holder sends it, with `body` (empty for a GET).
    pub fn into_request<B>(self, body: B) -> Result<Request<B>, Error> {
        let mut req = Request::builder()
            .method(self.method)
            .uri(&self.url)
            .body(body)
            .map_err(|e| Error::InvalidInput(format!("presigned request: {e}")))?;
        *req.headers_mut() = self.headers;
        Ok(req)
    }
}

/// The unfinished multipart uploads of the keys under `prefix`, one page
/// (up to 1000) after `markers` (the key and upload id a truncated page
/// ends with): what an abandoned upload left behind, to abort.
#[derive(Debug, Clone, Copy)]
pub struct ListMultipartUploads<'a> {
    pub prefix: &'a str,
    pub markers: Option<(&'a str, &'a str)>,
}

s3_operation!(
    ListMultipartUploads<'_>,
    ListMultipartUploadsOutput,
    |op, b, now| super::list_multipart_uploads(
        &b.credentials,
        &b.config,
        &b.name,
        op.prefix,
        op.markers,
        now
    ),
    super::parse_list_multipart_uploads
);
