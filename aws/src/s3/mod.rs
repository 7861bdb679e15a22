//! S3 requests (presigned and signed) and their response parsers.
//!
//! Callers use a [`Bucket`] (credentials, endpoint and bucket name, bundled
//! once) and the operations in `ops`, each of which builds a signed
//! `http::Request<Bytes>` and parses its own response; presigned URLs,
//! with the headers their sender must repeat, are `Bucket` methods. The
//! builders below are the operations' insides.

mod ops;
mod xml;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request};

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::config::BaseUrl;
use crate::encoding::{encode_key, encode_query_component};
use crate::sign::{Presign, presign_s3_url, sign_request};
use crate::{Credentials, Error, S3Config};

pub use ops::{
    AbortMultipartUpload, Bucket, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject,
    GetObject, GetObjectRange, HeadObject, ListMultipartUploads, ListParts, PutObject,
};
pub use xml::{
    CompleteMultipartUploadOutput, CreateMultipartUploadOutput, ListMultipartUploadsOutput,
    ListObjectsV2Output, ListPartsOutput, ListedPart, ObjectMeta, ObjectSummary, OpenUpload,
    PutObjectOutput, parse_abort_multipart_upload, parse_complete_multipart_upload,
    parse_create_multipart_upload, parse_delete_object, parse_error, parse_get_object,
    parse_head_object, parse_list_multipart_uploads, parse_list_objects_v2, parse_list_parts,
    parse_put_object, parse_upload_part,
};

/// SigV4 caps query-authenticated URLs at seven days.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Checks a bucket name enough that it cannot alter the URL's structure.
///
/// Virtual-hosted style puts the bucket in the host name, so it must be a
/// DNS name there; path style also accepts legacy names (capitals, `_`).
fn check_bucket(bucket: &str, path_style: bool) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::InvalidInput(format!("bucket {bucket:?}: {why}")));
    if bucket.is_empty() || bucket.len() > 255 {
        return bad("length must be 1..=255");
    }
    if path_style {
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return bad("only letters, digits, '.', '-' and '_' are allowed");
        }
    } else {
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        {
            return bad("virtual-hosted buckets must be lower-case DNS names");
        }
        if bucket.starts_with(['.', '-']) || bucket.ends_with(['.', '-']) || bucket.contains("..") {
            return bad("not a valid DNS name");
        }
    }
    Ok(())
}

/// The object's (or, with `key == None`, the bucket's) URL without a query.
fn resource_url(cfg: &S3Config, bucket: &str, key: Option<&str>) -> Result<String, Error> {
    let path_style = cfg.endpoint.path_style;
    check_bucket(bucket, path_style)?;
    let base = BaseUrl::parse(&cfg.endpoint.base_url)?;
    let key = key.map(encode_key).transpose()?;
    let BaseUrl {
        scheme,
        authority,
        prefix,
    } = base;
    Ok(match (path_style, key) {
        (true, Some(k)) => format!("{scheme}://{authority}{prefix}/{bucket}/{k}"),
        (true, None) => format!("{scheme}://{authority}{prefix}/{bucket}"),
        (false, Some(k)) => format!("{scheme}://{bucket}.{authority}{prefix}/{k}"),
        (false, None) => format!("{scheme}://{bucket}.{authority}{prefix}/"),
    })
}

fn with_query(url: String, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return url;
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                encode_query_component(k)
            } else {
                format!(
                    "{}={}",
                    encode_query_component(k),
                    encode_query_component(v)
                )
            }
        })
        .collect();
    format!("{url}?{}", query.join("&"))
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidInput(format!("{name} {value:?} is not a valid header value")))
}

/// A presigned request: whoever holds it can send it until it expires.
#[derive(Debug, Clone)]
pub struct PresignedRequest {
    pub method: Method,
    pub url: String,
    /// Signed headers (beyond `host`) the sender must send with exactly
    /// these values, or S3 answers `SignatureDoesNotMatch`.
    pub headers: HeaderMap,
}

/// What a presigned upload pins down besides the URL.
#[derive(Debug, Clone)]
pub struct PresignOptions {
    pub expires_in: Duration,
    /// The signing time; validity runs from here for `expires_in`.
    pub now: SystemTime,
    /// Signed, so the stored object gets this type and no other.
    pub content_type: Option<String>,
    /// Signed when set, so the upload must be exactly this long.
    pub content_length: Option<u64>,
    /// Signed, so S3 rejects a body whose checksum differs.
    pub checksum: Option<Checksum>,
    /// Signs `If-None-Match: *` in (S3 conditional writes): the PUT only
    /// creates, and fails `412 PreconditionFailed` once the key exists, so
    /// replaying a presigned upload cannot overwrite what it stored.
    pub only_if_absent: bool,
    /// User metadata (`x-amz-meta-<name>`), signed, so the client must send
    /// it exactly and S3 stores it with the object.
    pub metadata: Vec<(String, String)>,
}

impl PresignOptions {
    pub fn new(expires_in: Duration, now: SystemTime) -> Self {
        Self {
            expires_in,
            now,
            content_type: None,
            content_length: None,
            checksum: None,
            only_if_absent: false,
            metadata: Vec::new(),
        }
    }
}

fn check_expiry(expires_in: Duration) -> Result<(), Error> {
    if expires_in.is_zero() || expires_in > MAX_PRESIGN_EXPIRY || expires_in.subsec_nanos() != 0 {
        return Err(Error::InvalidInput(format!(
            "presign expiry {expires_in:?} must be whole seconds in 1s..=7 days"
        )));
    }
    Ok(())
}

fn upload_headers(opts: &PresignOptions) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    if let Some(ct) = &opts.content_type {
        headers.insert(
            http::header::CONTENT_TYPE,
            header_value("content type", ct)?,
        );
    }
    if let Some(len) = opts.content_length {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Some(c) = &opts.checksum {
        headers.insert(c.header_name(), header_value("checksum", &c.value)?);
    }
    if opts.only_if_absent {
        headers.insert(http::header::IF_NONE_MATCH, HeaderValue::from_static("*"));
    }
    insert_metadata(&mut headers, &opts.metadata)?;
    Ok(headers)
}

/// `x-amz-meta-<name>: <value>` for each entry.
fn insert_metadata(headers: &mut HeaderMap, metadata: &[(String, String)]) -> Result<(), Error> {
    for (name, value) in metadata {
        let name = http::header::HeaderName::try_from(format!("x-amz-meta-{name}"))
            .map_err(|e| Error::InvalidInput(format!("metadata name {name:?}: {e}")))?;
        headers.insert(name, header_value("metadata", value)?);
    }
    Ok(())
}

fn presign(
    credentials: &Credentials,
    cfg: &S3Config,
    method: Method,
    url: &str,
    operation_params: &[(&str, &str)],
    headers: HeaderMap,
    opts: (Duration, SystemTime),
) -> Result<PresignedRequest, Error> {
    let (expires_in, time) = opts;
    check_expiry(expires_in)?;
    let url = presign_s3_url(
        &Presign {
            method: method.as_str(),
            url,
            operation_params,
            headers: &headers,
            expires_in,
            time,
        },
        credentials,
        &cfg.region,
    )?;
    Ok(PresignedRequest {
        method,
        url,
        headers,
    })
}

/// A PUT URL for a browser or device to upload one object directly.
pub(crate) fn presign_put(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    opts: &PresignOptions,
) -> Result<PresignedRequest, Error> {
    let url = resource_url(cfg, bucket, Some(key))?;
    let headers = upload_headers(opts)?;
    presign(
        credentials,
        cfg,
        Method::PUT,
        &url,
        &[],
        headers,
        (opts.expires_in, opts.now),
    )
}

/// A GET URL handing out read access to one object for a limited time.
pub(crate) fn presign_get(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    expires_in: Duration,
    now: SystemTime,
) -> Result<PresignedRequest, Error> {
    let url = resource_url(cfg, bucket, Some(key))?;
    presign(
        credentials,
        cfg,
        Method::GET,
        &url,
        &[],
        HeaderMap::new(),
        (expires_in, now),
    )
}

/// A PUT URL for one part of a multipart upload started with
/// [`create_multipart_upload`]; the client returns the part's `ETag`.
pub(crate) fn presign_upload_part(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    opts: &PresignOptions,
) -> Result<PresignedRequest, Error> {
    check_part_number(part_number)?;
    let url = resource_url(cfg, bucket, Some(key))?;
    let headers = upload_headers(opts)?;
    let part = part_number.to_string();
    // botocore's order, so URLs match boto3's byte for byte.
    let params = [("uploadId", upload_id), ("partNumber", part.as_str())];
    presign(
        credentials,
        cfg,
        Method::PUT,
        &url,
        &params,
        headers,
        (opts.expires_in, opts.now),
    )
}

fn check_part_number(part_number: u32) -> Result<(), Error> {
    if !(1..=10_000).contains(&part_number) {
        return Err(Error::InvalidInput(format!(
            "part number {part_number} outside 1..=10000"
        )));
    }
    Ok(())
}

fn signed(
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
    credentials: &Credentials,
    cfg: &S3Config,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let mut request = Request::builder()
        .method(method)
        .uri(&url)
        .body(body)
        .map_err(|e| Error::InvalidInput(format!("request for {url}: {e}")))?;
    *request.headers_mut() = headers;
    sign_request(&mut request, credentials, &cfg.region, "s3", now)?;
    Ok(request)
}

/// A signed request on one object without a body: GET (read it with
/// [`parse_get_object`]), HEAD (metadata only) or DELETE (S3 answers 204
/// whether or not the key existed).
pub(crate) fn bodiless(
    method: Method,
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = resource_url(cfg, bucket, Some(key))?;
    signed(
        method,
        url,
        HeaderMap::new(),
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

/// Options for a signed PUT.
#[derive(Debug, Clone, Default)]
pub struct PutObjectOptions {
    pub content_type: Option<String>,
    /// Computed over the body and sent, so S3 verifies what it stores.
    pub checksum: Option<ChecksumAlgorithm>,
    pub cache_control: Option<String>,
}

/// Signed PUT of a whole object. The body's SHA-256 is part of the
/// signature, so S3 also rejects a body altered after signing.
pub(crate) fn put_object(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    body: Bytes,
    opts: &PutObjectOptions,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = resource_url(cfg, bucket, Some(key))?;
    let mut headers = HeaderMap::new();
    if let Some(ct) = &opts.content_type {
        headers.insert(
            http::header::CONTENT_TYPE,
            header_value("content type", ct)?,
        );
    }
    if let Some(cc) = &opts.cache_control {
        headers.insert(
            http::header::CACHE_CONTROL,
            header_value("cache control", cc)?,
        );
    }
    if let Some(algorithm) = opts.checksum {
        let c = Checksum::of(algorithm, &body);
        headers.insert(c.header_name(), header_value("checksum", &c.value)?);
    }
    signed(Method::PUT, url, headers, body, credentials, cfg, now)
}

/// One page request of ListObjectsV2.
#[derive(Debug, Clone, Default)]
pub struct ListObjectsV2 {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    /// `next_continuation_token` of the previous page.
    pub continuation_token: Option<String>,
    pub start_after: Option<String>,
    pub max_keys: Option<u32>,
}

/// Signed ListObjectsV2. Asks for `encoding-type=url` because XML 1.0
/// cannot carry every byte a key may hold; [`parse_list_objects_v2`] decodes.
pub(crate) fn list_objects_v2(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    list: &ListObjectsV2,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = resource_url(cfg, bucket, None)?;
    let max_keys = list.max_keys.map(|m| m.to_string());
    let mut params: Vec<(&str, &str)> = vec![("list-type", "2"), ("encoding-type", "url")];
    let optional = [
        ("continuation-token", list.continuation_token.as_deref()),
        ("delimiter", list.delimiter.as_deref()),
        ("max-keys", max_keys.as_deref()),
        ("prefix", list.prefix.as_deref()),
        ("start-after", list.start_after.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            params.push((name, v));
        }
    }
    let url = with_query_all(url, &params);
    signed(
        Method::GET,
        url,
        HeaderMap::new(),
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

/// Like [`with_query`] but keeps `name=` for empty values (a prefix may be "").
fn with_query_all(url: String, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                encode_query_component(k),
                encode_query_component(v)
            )
        })
        .collect();
    format!("{url}?{}", query.join("&"))
}

/// Options for starting a multipart upload.
#[derive(Debug, Clone, Default)]
pub struct MultipartOptions {
    pub content_type: Option<String>,
    /// Makes S3 require this checksum on every part and combine them.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// User metadata (`x-amz-meta-<name>`) the completed object keeps.
    pub metadata: Vec<(String, String)>,
}

/// Signed CreateMultipartUpload (`POST ?uploads`).
pub(crate) fn create_multipart_upload(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    opts: &MultipartOptions,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = with_query(resource_url(cfg, bucket, Some(key))?, &[("uploads", "")]);
    let mut headers = HeaderMap::new();
    if let Some(ct) = &opts.content_type {
        headers.insert(
            http::header::CONTENT_TYPE,
            header_value("content type", ct)?,
        );
    }
    if let Some(a) = opts.checksum_algorithm {
        headers.insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(a.as_str()),
        );
    }
    insert_metadata(&mut headers, &opts.metadata)?;
    signed(
        Method::POST,
        url,
        headers,
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

/// A finished part, as the uploader reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// As S3 returned it, quotes included.
    pub etag: String,
    /// Required when the upload was created with a checksum algorithm.
    pub checksum: Option<Checksum>,
}

/// Minimal XML text escaping; ETags contain quotes, which text may hold as is.
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The CompleteMultipartUpload document, parts in ascending order as S3 requires.
pub fn complete_multipart_upload_body(parts: &[CompletedPart]) -> Result<String, Error> {
    if parts.is_empty() {
        return Err(Error::InvalidInput("no parts to complete".into()));
    }
    let mut sorted: Vec<&CompletedPart> = parts.iter().collect();
    sorted.sort_by_key(|p| p.part_number);
    let mut xml = String::from(
        r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
    );
    for part in sorted {
        check_part_number(part.part_number)?;
        xml.push_str("<Part><ETag>");
        xml.push_str(&xml_text(&part.etag));
        xml.push_str("</ETag><PartNumber>");
        xml.push_str(&part.part_number.to_string());
        xml.push_str("</PartNumber>");
        if let Some(c) = &part.checksum {
            let el = c.algorithm.xml_element();
            xml.push_str(&format!("<{el}>{}</{el}>", xml_text(&c.value)));
        }
        xml.push_str("</Part>");
    }
    xml.push_str("</CompleteMultipartUpload>");
    Ok(xml)
}

/// Signed CompleteMultipartUpload. S3 can answer 200 and still fail;
/// [`parse_complete_multipart_upload`] handles that.
pub(crate) fn complete_multipart_upload(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = with_query(
        resource_url(cfg, bucket, Some(key))?,
        &[("uploadId", upload_id)],
    );
    let body = Bytes::from(complete_multipart_upload_body(parts)?);
    // No content type, like boto3: S3 does not need one, and leaving it out
    // keeps the signature identical to boto3's for the same call.
    signed(
        Method::POST,
        url,
        HeaderMap::new(),
        body,
        credentials,
        cfg,
        now,
    )
}

/// Signed AbortMultipartUpload: frees the stored parts, which S3 otherwise bills.
pub(crate) fn abort_multipart_upload(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    upload_id: &str,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = with_query(
        resource_url(cfg, bucket, Some(key))?,
        &[("uploadId", upload_id)],
    );
    signed(
        Method::DELETE,
        url,
        HeaderMap::new(),
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

/// Signed GET of bytes `first..=last` of an object (a `Range` header, signed
/// in); S3 answers 206 with at most those bytes.
pub(crate) fn get_object_range(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    first: u64,
    last: u64,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    if last < first {
        return Err(Error::InvalidInput(format!(
            "range {first}-{last} ends before it starts"
        )));
    }
    let url = resource_url(cfg, bucket, Some(key))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::RANGE,
        header_value("range", &format!("bytes={first}-{last}"))?,
    );
    signed(
        Method::GET,
        url,
        headers,
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

/// Signed ListParts (`GET ?uploadId`): the parts S3 holds for an unfinished
/// multipart upload, from `part_number_marker` on (at most 1000 per page).
pub(crate) fn list_parts(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number_marker: u32,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let marker = part_number_marker.to_string();
    let mut query = vec![("uploadId", upload_id)];
    if part_number_marker > 0 {
        query.push(("part-number-marker", marker.as_str()));
    }
    let url = with_query(resource_url(cfg, bucket, Some(key))?, &query);
    signed(
        Method::GET,
        url,
        HeaderMap::new(),
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

/// ListMultipartUploads: the unfinished multipart uploads of keys under
/// `prefix`, one page (up to 1000) after `key_marker`/`upload_id_marker`.
pub(crate) fn list_multipart_uploads(
    credentials: &Credentials,
    cfg: &S3Config,
    bucket: &str,
    prefix: &str,
    markers: Option<(&str, &str)>,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let url = resource_url(cfg, bucket, None)?;
    let mut params: Vec<(&str, &str)> = vec![("prefix", prefix), ("uploads", "")];
    if let Some((key, upload_id)) = markers {
        params.push(("key-marker", key));
        params.push(("upload-id-marker", upload_id));
    }
    signed(
        Method::GET,
        with_query(url, &params),
        HeaderMap::new(),
        Bytes::new(),
        credentials,
        cfg,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Region, S3Endpoint};

    fn cfg(path_style: bool) -> S3Config {
        S3Config {
            region: Region::new("eu-west-1"),
            endpoint: S3Endpoint {
                base_url: "https://s3.eu-west-1.amazonaws.com".into(),
                path_style,
            },
        }
    }

    fn creds() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        )
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800) // 2024-05-01T12:00:00Z
    }

    #[test]
    fn urls_path_and_virtual() {
        assert_eq!(
            resource_url(&cfg(true), "b", Some("a b/c")).unwrap(),
            "https://s3.eu-west-1.amazonaws.com/b/a%20b/c"
        );
        assert_eq!(
            resource_url(&cfg(false), "b", Some("a b/c")).unwrap(),
            "https://b.s3.eu-west-1.amazonaws.com/a%20b/c"
        );
        assert_eq!(
            resource_url(&cfg(false), "b", None).unwrap(),
            "https://b.s3.eu-west-1.amazonaws.com/"
        );
        let local = S3Config {
            region: Region::new("us-east-1"),
            endpoint: S3Endpoint::custom("http://127.0.0.1:9000/s3/", true).unwrap(),
        };
        assert_eq!(
            resource_url(&local, "b", Some("k")).unwrap(),
            "http://127.0.0.1:9000/s3/b/k"
        );
    }

    #[test]
    fn bucket_names_cannot_escape_the_url() {
        for bad in ["", "a/b", "a?b", "a b", "a#b", "ü"] {
            assert!(resource_url(&cfg(true), bad, Some("k")).is_err(), "{bad:?}");
        }
        for bad in ["Upper", "under_score", ".a", "a-", "a..b"] {
            assert!(
                resource_url(&cfg(false), bad, Some("k")).is_err(),
                "{bad:?}"
            );
        }
        assert!(resource_url(&cfg(true), "Legacy_Bucket", Some("k")).is_ok());
    }

    #[test]
    fn presign_put_signs_checksum_and_type() {
        let mut opts = PresignOptions::new(Duration::from_secs(900), t0());
        opts.content_type = Some("image/jpeg".into());
        opts.checksum = Some(Checksum::sha256(crate::sha256_base64(b"hi")));
        let p = presign_put(&creds(), &cfg(false), "b", "k", &opts).unwrap();
        assert_eq!(p.method, Method::PUT);
        assert!(p.url.contains(
            "X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256&X-Amz-Signature="
        ));
        assert_eq!(p.headers["content-type"], "image/jpeg");
        assert_eq!(
            p.headers["x-amz-checksum-sha256"],
            crate::sha256_base64(b"hi").as_str()
        );
    }

    #[test]
    fn presign_put_can_sign_create_only() {
        let mut opts = PresignOptions::new(Duration::from_secs(900), t0());
        opts.only_if_absent = true;
        let p = presign_put(&creds(), &cfg(false), "b", "k", &opts).unwrap();
        assert!(p.url.contains("X-Amz-SignedHeaders=host%3Bif-none-match&"));
        assert_eq!(p.headers["if-none-match"], "*");
    }

    #[test]
    fn presign_rejects_bad_expiry_and_part_number() {
        let c = creds();
        for e in [0, 7 * 24 * 3600 + 1] {
            let r = presign_get(&c, &cfg(true), "b", "k", Duration::from_secs(e), t0());
            assert!(matches!(r, Err(Error::InvalidInput(_))));
        }
        assert!(presign_get(&c, &cfg(true), "b", "k", MAX_PRESIGN_EXPIRY, t0()).is_ok());
        let opts = PresignOptions::new(Duration::from_secs(60), t0());
        for n in [0, 10_001] {
            assert!(presign_upload_part(&c, &cfg(true), "b", "k", "u", n, &opts).is_err());
        }
    }

    #[test]
    fn signed_requests_have_expected_shape() {
        let c = creds();
        let r = list_objects_v2(
            &c,
            &cfg(true),
            "b",
            &ListObjectsV2 {
                prefix: Some("a b/".into()),
                max_keys: Some(10),
                ..Default::default()
            },
            t0(),
        )
        .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "https://s3.eu-west-1.amazonaws.com/b?list-type=2&encoding-type=url&max-keys=10&prefix=a%20b%2F"
        );
        assert!(r.headers().contains_key("authorization"));

        let r =
            create_multipart_upload(&c, &cfg(false), "b", "k", &Default::default(), t0()).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(
            r.uri().to_string(),
            "https://b.s3.eu-west-1.amazonaws.com/k?uploads"
        );

        let r = abort_multipart_upload(&c, &cfg(false), "b", "k", "id+/=", t0()).unwrap();
        assert_eq!(
            r.uri().to_string(),
            "https://b.s3.eu-west-1.amazonaws.com/k?uploadId=id%2B%2F%3D"
        );

        let body = Bytes::from_static(b"hello");
        let opts = PutObjectOptions {
            checksum: Some(ChecksumAlgorithm::Crc32c),
            ..Default::default()
        };
        let r = put_object(&c, &cfg(true), "b", "k", body.clone(), &opts, t0()).unwrap();
        assert_eq!(
            r.headers()["x-amz-checksum-crc32c"],
            crate::crc32c_base64(&body).as_str()
        );
        assert_eq!(
            r.headers()["x-amz-content-sha256"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn complete_body_sorts_and_escapes() {
        let parts = [
            CompletedPart {
                part_number: 2,
                etag: "\"b\"".into(),
                checksum: Some(Checksum::crc32c("AAAAAA==")),
            },
            CompletedPart {
                part_number: 1,
                etag: "\"a&<\"".into(),
                checksum: None,
            },
        ];
        assert_eq!(
            complete_multipart_upload_body(&parts).unwrap(),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Part><ETag>\"a&amp;&lt;\"</ETag><PartNumber>1</PartNumber></Part>\
             <Part><ETag>\"b\"</ETag><PartNumber>2</PartNumber><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C></Part>\
             </CompleteMultipartUpload>"
        );
        assert!(complete_multipart_upload_body(&[]).is_err());
    }

    #[test]
    fn list_parts_names_the_upload_and_the_marker() {
        let creds = Credentials::new("AKID", "secret", None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let req = list_parts(&creds, &cfg(true), "b", "originals/x", "u+1", 0, now).unwrap();
        assert_eq!(req.method(), Method::GET);
        let uri = req.uri().to_string();
        assert!(uri.ends_with("/b/originals/x?uploadId=u%2B1"), "{uri}");
        let req = list_parts(&creds, &cfg(true), "b", "originals/x", "u", 1000, now).unwrap();
        assert!(req.uri().to_string().contains("part-number-marker=1000"));
        assert!(req.headers().contains_key("authorization"));
    }

    #[test]
    fn range_get_signs_its_range_and_refuses_an_empty_one() {
        let creds = Credentials::new("AKID", "secret", None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let req = get_object_range(&creds, &cfg(true), "b", "k", 0, 262_143, now).unwrap();
        assert_eq!(req.headers()["range"], "bytes=0-262143");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains("range"), "{auth}");
        assert!(get_object_range(&creds, &cfg(true), "b", "k", 5, 4, now).is_err());
    }
}
