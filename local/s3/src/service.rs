//! The S3 implementation: s3s-fs does the storage, this layer adds what the
//! project relies on S3 for beyond storage — integrity checks before a write
//! lands and ObjectCreated notifications after it does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use s3s::dto::*;
use s3s::{Body, S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use time::OffsetDateTime;

use crate::access::{self, identity_of};
use crate::checksum::{self, Claimed};
use crate::deliver::{Deliverer, Delivery};
use crate::event::{self, CreatedKind, ObjectCreated, Sequencer};
use crate::listing;
use crate::notify::Rules;
use crate::uploads::Uploads;
use crate::versions::Versions;

/// Per-request facts the HTTP layer knows and S3 handlers need for events;
/// carried in request extensions.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub remote: SocketAddr,
    pub request_id: String,
    pub host_id: String,
}

pub struct Notifier {
    pub rules: Rules,
    pub deliverer: Deliverer,
    pub sequencer: Sequencer,
    pub region: String,
    pub owner_id: String,
}

pub struct LocalS3 {
    fs: FileSystem,
    root: PathBuf,
    notifier: Arc<Notifier>,
    uploads: Uploads,
    versions: Versions,
}

impl LocalS3 {
    pub fn new(fs: FileSystem, root: PathBuf, notifier: Arc<Notifier>) -> Self {
        let uploads = Uploads::new(root.clone());
        let versions = Versions::new(&root);
        Self {
            fs,
            root,
            notifier,
            uploads,
            versions,
        }
    }

    /// GetObject of a noncurrent version (only an identity with
    /// s3:GetObjectVersion gets here).
    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let found = self
            .versions
            .read(bucket, key, version)
            .await
            .map_err(|e| internal("reading a version failed", &e))?;
        let Some((bytes, modified)) = found else {
            return Err(s3s::s3_error!(
                NoSuchVersion,
                "The specified version does not exist."
            ));
        };
        Ok(S3Response::new(GetObjectOutput {
            content_length: Some(i64::try_from(bytes.len()).unwrap_or(i64::MAX)),
            last_modified: Some(Timestamp::from(modified)),
            version_id: Some(version.to_owned()),
            body: Some(blob(bytes)),
            ..Default::default()
        }))
    }

    fn bucket_exists(&self, bucket: &str) -> bool {
        s3s::path::check_bucket_name(bucket) && self.root.join(bucket).is_dir()
    }

    fn object_size(&self, bucket: &str, key: &str) -> u64 {
        std::fs::metadata(self.root.join(bucket).join(key))
            .map_or(0, |m| if m.is_file() { m.len() } else { 0 })
    }

    /// Queues one notification per matching rule; never fails the request,
    /// because S3 acknowledges the write regardless of delivery.
    fn emit(
        &self,
        who: &Caller,
        kind: CreatedKind,
        bucket: &str,
        key: &str,
        size: u64,
        etag: Option<&ETag>,
    ) {
        let n = &self.notifier;
        let rules: Vec<_> = n.rules.matching(bucket, kind.event_name(), key).collect();
        if rules.is_empty() {
            tracing::debug!(%bucket, %key, "no notification rule matches");
            return;
        }
        let meta = who.meta.as_ref();
        let now = OffsetDateTime::now_utc();
        let obj = ObjectCreated {
            kind,
            region: n.region.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            // An empty body's MD5: what S3 reports for zero-byte folder markers.
            etag: etag.map_or_else(
                || "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
                |e| e.value().to_owned(),
            ),
            version_id: None,
            principal_id: who.principal.clone(),
            owner_id: n.owner_id.clone(),
            source_ip: meta.map_or_else(|| "127.0.0.1".to_owned(), |m| m.remote.ip().to_string()),
            request_id: meta.map(|m| m.request_id.clone()).unwrap_or_default(),
            host_id: meta.map(|m| m.host_id.clone()).unwrap_or_default(),
            time: now,
            sequencer: n.sequencer.next(now),
        };
        for rule in rules {
            let body = match serde_json::to_vec(&event::build(&obj, &rule.id)) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    tracing::error!(error = %e, "event serialisation failed");
                    continue;
                }
            };
            tracing::info!(%bucket, %key, event = kind.event_name(), config = %rule.id, function = %rule.function_arn, "queueing event");
            n.deliverer.send(Delivery {
                url: rule.invoke_url.clone(),
                configuration_id: rule.id.clone(),
                key: key.to_owned(),
                body,
            });
        }
    }
}

/// Who made a request, captured before the request is handed to s3s-fs.
struct Caller {
    meta: Option<RequestMeta>,
    principal: String,
}

impl Caller {
    fn of<T>(req: &S3Request<T>) -> Self {
        Self {
            meta: req.extensions.get::<RequestMeta>().cloned(),
            principal: req.credentials.as_ref().map_or_else(
                || "anonymous".to_owned(),
                |c| format!("AWS:{}", c.access_key),
            ),
        }
    }
}

fn blob(bytes: Bytes) -> StreamingBlob {
    StreamingBlob::from(Body::from(bytes))
}

/// Reads, verifies and re-wraps a body so s3s-fs only ever sees valid data.
async fn checked_body(
    body: Option<StreamingBlob>,
    trailers: Option<s3s::TrailingHeaders>,
    mut claimed: Claimed,
) -> S3Result<(Bytes, Claimed)> {
    let body = body.ok_or_else(|| s3s::s3_error!(IncompleteBody))?;
    let bytes = checksum::read_body(body).await?;
    checksum::take_trailers(trailers, &mut claimed)?;
    checksum::verify(&bytes, &claimed)?;
    Ok((bytes, claimed))
}

/// S3 refuses an `encoding-type` other than `url`; s3s passes any through.
fn check_encoding(encoding: Option<&EncodingType>) -> S3Result<()> {
    if listing::is_known(encoding) {
        Ok(())
    } else {
        Err(s3s::s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        ))
    }
}

/// A missing key is `NoSuchKey` (404) only to a caller allowed to list the
/// bucket; to anyone else S3 answers 403, so that existence does not leak.
fn missing_key<U>(
    identity: Option<&access::Identity>,
    bucket: &str,
    result: S3Result<U>,
) -> S3Result<U> {
    match result {
        Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchKey => {
            let identity = identity.ok_or_else(|| s3s::s3_error!(AccessDenied, "Access Denied"))?;
            identity.authorize("s3:ListBucket", &access::bucket_arn(bucket), &[])?;
            Err(e)
        }
        other => other,
    }
}

/// The objects of a bucket folder under `prefix`: (key, size, modified).
/// Dot files are s3s-fs's and this server's own bookkeeping, never objects.
fn current_objects(
    bucket_dir: &std::path::Path,
    prefix: &str,
) -> std::io::Result<Vec<(String, u64, std::time::SystemTime)>> {
    let mut out = Vec::new();
    let mut stack = vec![bucket_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let Some(key) = entry
                .path()
                .strip_prefix(bucket_dir)
                .ok()
                .and_then(|p| p.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            if key.starts_with(prefix) {
                out.push((key, meta.len(), meta.modified()?));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn internal(what: &str, e: &std::io::Error) -> s3s::S3Error {
    tracing::error!(error = %e, "{what}");
    s3s::s3_error!(InternalError)
}

/// Emits the `S3` impl with the hand-written methods plus plain delegations to
/// s3s-fs; expanded before `async_trait` rewrites the methods.
macro_rules! local_s3_impl {
    ({ $($custom:tt)* } $($name:ident($input:ty) -> $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for LocalS3 {
            $($custom)*
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$name(req).await
                }
            )*
        }
    };
}

local_s3_impl! {
{
    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let i = &mut req.input;
        let claimed = Claimed {
            content_md5: i.content_md5.clone(),
            crc32: i.checksum_crc32.take(),
            crc32c: i.checksum_crc32c.take(),
            sha1: i.checksum_sha1.take(),
            sha256: i.checksum_sha256.take(),
            crc64nvme: i.checksum_crc64nvme.take(),
        };
        let (bytes, claimed) = checked_body(i.body.take(), req.trailing_headers.take(), claimed).await?;
        let i = &mut req.input;
        i.checksum_crc32 = claimed.crc32;
        i.checksum_crc32c = claimed.crc32c;
        i.checksum_sha1 = claimed.sha1;
        i.checksum_sha256 = claimed.sha256;
        i.checksum_crc64nvme = claimed.crc64nvme;
        let size = bytes.len() as u64;
        i.body = Some(blob(bytes));
        let (bucket, key) = (i.bucket.clone(), i.key.clone());
        let who = Caller::of(&req);
        let resp = self.fs.put_object(req).await?;
        self.emit(&who, CreatedKind::Put, &bucket, &key, size, resp.output.e_tag.as_ref());
        Ok(resp)
    }

    /// s3s-fs answers a part of an unknown (aborted, completed) upload with
    /// `AccessDenied`; S3 says `NoSuchUpload` (404).
    async fn upload_part(&self, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        if !self.root.join(format!(".upload-{}.json", req.input.upload_id)).is_file() {
            return Err(s3s::s3_error!(NoSuchUpload));
        }
        let i = &mut req.input;
        let claimed = Claimed {
            content_md5: i.content_md5.clone(),
            crc32: i.checksum_crc32.take(),
            crc32c: i.checksum_crc32c.take(),
            sha1: i.checksum_sha1.take(),
            sha256: i.checksum_sha256.take(),
            crc64nvme: i.checksum_crc64nvme.take(),
        };
        let (bytes, claimed) = checked_body(i.body.take(), req.trailing_headers.take(), claimed).await?;
        let i = &mut req.input;
        i.body = Some(blob(bytes));
        let mut resp = self.fs.upload_part(req).await?;
        // S3 echoes the verified part checksums; clients compare them.
        let o = &mut resp.output;
        o.checksum_crc32 = claimed.crc32;
        o.checksum_crc32c = claimed.crc32c;
        o.checksum_sha1 = claimed.sha1;
        o.checksum_sha256 = claimed.sha256;
        o.checksum_crc64nvme = claimed.crc64nvme;
        Ok(resp)
    }

    /// s3s-fs lists parts unsorted, without ETags, and for any upload id;
    /// S3 lists them by number with the ETag each upload gave (what a
    /// resumed browser upload completes with) and refuses an unknown id.
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        if !self.root.join(format!(".upload-{upload_id}.json")).is_file() {
            return Err(s3s::s3_error!(NoSuchUpload));
        }
        let mut resp = self.fs.list_parts(req).await?;
        if let Some(parts) = resp.output.parts.as_mut() {
            parts.sort_by_key(|p| p.part_number);
            for p in parts.iter_mut() {
                let n = p.part_number.unwrap_or_default();
                let path = self.root.join(format!(".upload_id-{upload_id}.part-{n}"));
                let bytes = std::fs::read(&path).map_err(|e| s3s::s3_error!(InternalError, "{e}"))?;
                let md5 = <s3s::crypto::Md5 as s3s::crypto::Checksum>::checksum(&bytes);
                let hex: String = md5.as_slice().iter().map(|b| format!("{b:02x}")).collect();
                p.e_tag = Some(ETag::Strong(hex));
            }
        }
        resp.output.is_truncated = Some(false);
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let upload_id = req.input.upload_id.clone();
        let who = Caller::of(&req);
        let mut resp = self.fs.complete_multipart_upload(req).await?;
        // s3s-fs defers the result into a future for keep-alive streaming; the
        // event needs the final ETag, so resolve it here.
        if let Some(fut) = resp.output.future.take() {
            resp.output = fut.await?;
        }
        if let Err(e) = self.uploads.forget(&upload_id).await {
            tracing::warn!(error = %e, %upload_id, "completed upload stays in the multipart index");
        }
        let size = self.object_size(&bucket, &key);
        self.emit(&who, CreatedKind::CompleteMultipartUpload, &bucket, &key, size, resp.output.e_tag.as_ref());
        Ok(resp)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let who = Caller::of(&req);
        let resp = self.fs.copy_object(req).await?;
        let size = self.object_size(&bucket, &key);
        let etag = resp.output.copy_object_result.as_ref().and_then(|r| r.e_tag.as_ref());
        self.emit(&who, CreatedKind::Copy, &bucket, &key, size, etag);
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        if !self.bucket_exists(&bucket) {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let resp = self.fs.create_multipart_upload(req).await?;
        if let Some(id) = resp.output.upload_id.as_deref() {
            self.uploads.record(&bucket, &key, id).await.map_err(|e| internal("multipart index write failed", &e))?;
        }
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        let resp = self.fs.abort_multipart_upload(req).await?;
        self.uploads.forget(&upload_id).await.map_err(|e| internal("multipart index delete failed", &e))?;
        Ok(resp)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        check_encoding(req.input.encoding_type.as_ref())?;
        if !self.bucket_exists(&req.input.bucket) {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let mut out = self.uploads.list(&req.input).await.map_err(|e| internal("multipart index read failed", &e))?;
        if listing::wants_url(req.input.encoding_type.as_ref()) {
            listing::encode_uploads(&mut out);
        }
        Ok(S3Response::new(out))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        if let Some(version) = req.input.version_id.as_deref().filter(|v| !v.is_empty() && *v != "null") {
            return self.get_version(&req.input.bucket, &req.input.key, version).await;
        }
        let identity = identity_of(&req).ok().cloned();
        let bucket = req.input.bucket.clone();
        let result = self.fs.get_object(req).await;
        missing_key(identity.as_ref(), &bucket, result)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let identity = identity_of(&req).ok().cloned();
        let bucket = req.input.bucket.clone();
        let result = self.fs.head_object(req).await;
        missing_key(identity.as_ref(), &bucket, result)
    }

    /// s3:DeleteObject is decided per key, as S3 does: refused keys are
    /// reported in the result as `AccessDenied` errors, the others deleted.
    async fn delete_objects(&self, mut req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let identity = identity_of(&req)?.clone();
        let bucket = req.input.bucket.clone();
        let objects = std::mem::take(&mut req.input.delete.objects);
        let mut errors = Vec::new();
        let mut markers = Vec::new();
        for o in objects {
            // A key with a version id deletes that version: s3:DeleteObjectVersion.
            let action = if o.version_id.as_deref().is_some_and(|v| !v.is_empty()) {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            };
            match identity.authorize(action, &access::object_arn(&bucket, &o.key), &[]) {
                Ok(()) if o.version_id.as_deref().is_some_and(|v| !v.is_empty()) => errors.push(s3s::dto::Error {
                    code: Some("NotImplemented".to_owned()),
                    message: Some("The local S3 does not delete versions".to_owned()),
                    key: Some(o.key),
                    version_id: o.version_id,
                }),
                Ok(()) => {
                    let marker = self.versions.keep(&self.root.join(&bucket).join(&o.key), &bucket, &o.key).await
                        .map_err(|e| internal("keeping a noncurrent version failed", &e))?;
                    markers.push((o.key.clone(), marker));
                    req.input.delete.objects.push(o);
                }
                Err(e) => errors.push(s3s::dto::Error {
                    code: Some("AccessDenied".to_owned()),
                    message: e.message().map(str::to_owned),
                    key: Some(o.key),
                    version_id: o.version_id,
                }),
            }
        }
        let mut resp = if req.input.delete.objects.is_empty() {
            S3Response::new(DeleteObjectsOutput::default())
        } else {
            self.fs.delete_objects(req).await?
        };
        for d in resp.output.deleted.iter_mut().flatten() {
            if let Some((_, Some(marker))) = markers.iter().find(|(k, _)| Some(k) == d.key.as_ref()) {
                d.delete_marker = Some(true);
                d.delete_marker_version_id = Some(marker.clone());
            }
        }
        if !errors.is_empty() {
            resp.output.errors.get_or_insert_with(Vec::new).extend(errors);
        }
        Ok(resp)
    }

    /// The bucket is versioned: the object becomes a noncurrent version
    /// behind a delete marker (crate::versions). Deleting a version itself
    /// (only an identity with s3:DeleteObjectVersion gets here) is not
    /// served.
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        if req.input.version_id.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(s3s::s3_error!(NotImplemented, "The local S3 does not delete versions"));
        }
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let marker = self
            .versions
            .keep(&self.root.join(&bucket).join(&key), &bucket, &key)
            .await
            .map_err(|e| internal("keeping a noncurrent version failed", &e))?;
        let mut resp = self.fs.delete_object(req).await?;
        if let Some(marker) = marker {
            resp.output.delete_marker = Some(true);
            resp.output.version_id = Some(marker);
        }
        Ok(resp)
    }

    /// Current objects (version id `null`) and the noncurrent versions and
    /// delete markers kept under `prefix`; one page (no markers).
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let bucket = req.input.bucket.clone();
        if !self.bucket_exists(&bucket) {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let kept = self.versions.list(&bucket, &prefix).await.map_err(|e| internal("listing versions failed", &e))?;
        let current = current_objects(&self.root.join(&bucket), &prefix).map_err(|e| internal("listing objects failed", &e))?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for (key, size, modified) in &current {
            versions.push(ObjectVersion {
                key: Some(key.clone()),
                version_id: Some("null".to_owned()),
                is_latest: Some(true),
                last_modified: Some(Timestamp::from(*modified)),
                size: Some(i64::try_from(*size).unwrap_or(i64::MAX)),
                ..Default::default()
            });
        }
        let mut latest_seen: Option<&str> = None;
        for e in &kept {
            let is_latest = latest_seen != Some(e.key.as_str()) && !current.iter().any(|(k, _, _)| *k == e.key);
            latest_seen = Some(e.key.as_str());
            if e.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(e.key.clone()),
                    version_id: Some(e.version_id.clone()),
                    is_latest: Some(is_latest),
                    last_modified: Some(Timestamp::from(e.modified)),
                    ..Default::default()
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(e.key.clone()),
                    version_id: Some(e.version_id.clone()),
                    is_latest: Some(is_latest),
                    last_modified: Some(Timestamp::from(e.modified)),
                    size: Some(i64::try_from(e.size).unwrap_or(i64::MAX)),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(bucket),
            prefix: Some(prefix),
            is_truncated: Some(false),
            versions: Some(versions),
            delete_markers: Some(markers),
            ..Default::default()
        }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        check_encoding(req.input.encoding_type.as_ref())?;
        let url = listing::wants_url(req.input.encoding_type.as_ref());
        let marker = req.input.marker.clone();
        let mut resp = self.fs.list_objects(req).await?;
        // s3s-fs drops the marker S3 echoes back.
        resp.output.marker = marker;
        if url {
            listing::encode_v1(&mut resp.output);
        }
        Ok(resp)
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        check_encoding(req.input.encoding_type.as_ref())?;
        let url = listing::wants_url(req.input.encoding_type.as_ref());
        let mut resp = self.fs.list_objects_v2(req).await?;
        if url {
            listing::encode_v2(&mut resp.output);
        }
        Ok(resp)
    }
}
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
}
