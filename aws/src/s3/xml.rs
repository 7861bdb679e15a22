//! S3 response parsing: XML documents and response headers.

use http::{HeaderMap, StatusCode};
use quick_xml::events::Event;
use serde::Deserialize;

use crate::encoding::decode_s3_url_value;
use crate::{Error, S3Error, Service};

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The name of the document's first element, to tell `<Error>` from a result.
fn root_element(body: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => buf.clear(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ErrorDoc {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    host_id: Option<String>,
}

/// Reads an S3 error response.
///
/// Bodies can be missing (HEAD) or not XML (a proxy's HTML page); the status
/// and `x-amz-request-id` still make a usable error, with the status number
/// as the code, as boto3 reports it.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> S3Error {
    let doc = std::str::from_utf8(body)
        .ok()
        .filter(|s| root_element(s.as_bytes()).as_deref() == Some("Error"))
        .and_then(|s| quick_xml::de::from_str::<ErrorDoc>(s).ok())
        .unwrap_or_default();
    S3Error {
        status,
        code: doc
            .code
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| status.as_u16().to_string()),
        message: doc.message.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unknown status")
                .to_owned()
        }),
        request_id: header(headers, "x-amz-request-id").or(doc.request_id),
        host_id: header(headers, "x-amz-id-2").or(doc.host_id),
    }
}

fn ensure_success(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    if status.is_success() {
        Ok(())
    } else {
        Err(parse_error(status, headers, body).into())
    }
}

fn parse_doc<'de, T: Deserialize<'de>>(
    what: &'static str,
    status: StatusCode,
    body: &'de [u8],
) -> Result<T, Error> {
    let text =
        std::str::from_utf8(body).map_err(|e| Error::decode(Service::S3, what, status, e))?;
    quick_xml::de::from_str(text).map_err(|e| Error::decode(Service::S3, what, status, e))
}

/// Object metadata from GET or HEAD response headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_length: Option<u64>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    /// As sent (RFC 7231 date); callers that need a time parse it.
    pub last_modified: Option<String>,
    pub cache_control: Option<String>,
    pub checksum_sha256: Option<String>,
    pub checksum_crc32c: Option<String>,
    pub version_id: Option<String>,
}

impl ObjectMeta {
    fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            content_length: header(headers, "content-length").and_then(|v| v.parse().ok()),
            content_type: header(headers, "content-type"),
            etag: header(headers, "etag"),
            last_modified: header(headers, "last-modified"),
            cache_control: header(headers, "cache-control"),
            checksum_sha256: header(headers, "x-amz-checksum-sha256"),
            checksum_crc32c: header(headers, "x-amz-checksum-crc32c"),
            version_id: header(headers, "x-amz-version-id"),
        }
    }
}

/// Checks a GetObject response; the body is the object and stays with the caller.
pub fn parse_get_object(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ObjectMeta, Error> {
    ensure_success(status, headers, body)?;
    Ok(ObjectMeta::from_headers(headers))
}

/// Reads a HeadObject response. A missing object is an [`S3Error`] with
/// code `"404"` (HEAD has no body to name it); see [`S3Error::is_not_found`].
pub fn parse_head_object(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ObjectMeta, Error> {
    parse_get_object(status, headers, body)
}

/// What PutObject and UploadPart report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutObjectOutput {
    pub etag: Option<String>,
    pub checksum_sha256: Option<String>,
    pub checksum_crc32c: Option<String>,
    pub version_id: Option<String>,
}

pub fn parse_put_object(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PutObjectOutput, Error> {
    ensure_success(status, headers, body)?;
    Ok(PutObjectOutput {
        etag: header(headers, "etag"),
        checksum_sha256: header(headers, "x-amz-checksum-sha256"),
        checksum_crc32c: header(headers, "x-amz-checksum-crc32c"),
        version_id: header(headers, "x-amz-version-id"),
    })
}

/// An UploadPart response (sent to a presigned URL) has PutObject's shape.
pub fn parse_upload_part(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PutObjectOutput, Error> {
    parse_put_object(status, headers, body)
}

pub fn parse_delete_object(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Error> {
    ensure_success(status, headers, body)
}

pub fn parse_abort_multipart_upload(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Error> {
    ensure_success(status, headers, body)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListDoc {
    #[serde(default)]
    contents: Vec<ContentsDoc>,
    #[serde(default)]
    common_prefixes: Vec<PrefixDoc>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
    key_count: Option<u64>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContentsDoc {
    key: String,
    last_modified: Option<String>,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(default)]
    size: u64,
    storage_class: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrefixDoc {
    #[serde(default)]
    prefix: String,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub storage_class: Option<String>,
}

/// One page of ListObjectsV2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListObjectsV2Output {
    pub objects: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Pass back as `continuation_token` for the next page.
    pub next_continuation_token: Option<String>,
    pub key_count: Option<u64>,
}

/// Reads a ListObjectsV2 page, url-decoding keys when S3 encoded them.
pub fn parse_list_objects_v2(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListObjectsV2Output, Error> {
    ensure_success(status, headers, body)?;
    let doc: ListDoc = parse_doc("ListObjectsV2", status, body)?;
    let url_encoded = doc.encoding_type.as_deref() == Some("url");
    let decode = |s: String| -> Result<String, Error> {
        if url_encoded {
            decode_s3_url_value(&s)
        } else {
            Ok(s)
        }
    };
    let objects = doc
        .contents
        .into_iter()
        .map(|c| {
            Ok(ObjectSummary {
                key: decode(c.key)?,
                size: c.size,
                etag: c.etag,
                last_modified: c.last_modified,
                storage_class: c.storage_class,
            })
        })
        .collect::<Result<_, Error>>()?;
    let common_prefixes = doc
        .common_prefixes
        .into_iter()
        .map(|p| decode(p.prefix))
        .collect::<Result<_, Error>>()?;
    Ok(ListObjectsV2Output {
        objects,
        common_prefixes,
        is_truncated: doc.is_truncated,
        next_continuation_token: doc.next_continuation_token,
        key_count: doc.key_count,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateDoc {
    bucket: Option<String>,
    key: Option<String>,
    upload_id: String,
}

/// The id every later part and the completion must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateMultipartUploadOutput {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub upload_id: String,
}

pub fn parse_create_multipart_upload(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CreateMultipartUploadOutput, Error> {
    ensure_success(status, headers, body)?;
    let doc: InitiateDoc = parse_doc("CreateMultipartUpload", status, body)?;
    if doc.upload_id.is_empty() {
        return Err(Error::decode(
            Service::S3,
            "CreateMultipartUpload",
            status,
            "empty UploadId",
        ));
    }
    Ok(CreateMultipartUploadOutput {
        bucket: doc.bucket,
        key: doc.key,
        upload_id: doc.upload_id,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteDoc {
    location: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    checksum_sha256: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    checksum_crc32c: Option<String>,
}

/// The assembled object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteMultipartUploadOutput {
    pub location: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub etag: Option<String>,
    pub checksum_sha256: Option<String>,
    pub checksum_crc32c: Option<String>,
    pub version_id: Option<String>,
}

/// Reads CompleteMultipartUpload's answer.
///
/// S3 sends 200 as soon as it starts assembling and reports a later failure
/// in the body, so a 200 whose document is `<Error>` is an error (usually a
/// retryable `InternalError`).
pub fn parse_complete_multipart_upload(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CompleteMultipartUploadOutput, Error> {
    ensure_success(status, headers, body)?;
    match root_element(body).as_deref() {
        Some("Error") => return Err(parse_error(status, headers, body).into()),
        Some(_) => {}
        None => {
            return Err(Error::decode(
                Service::S3,
                "CompleteMultipartUpload",
                status,
                "empty or malformed body",
            ));
        }
    }
    let doc: CompleteDoc = parse_doc("CompleteMultipartUpload", status, body)?;
    Ok(CompleteMultipartUploadOutput {
        location: doc.location,
        bucket: doc.bucket,
        key: doc.key,
        etag: doc.etag,
        checksum_sha256: doc.checksum_sha256,
        checksum_crc32c: doc.checksum_crc32c,
        version_id: header(headers, "x-amz-version-id"),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsDoc {
    #[serde(default, rename = "Part")]
    parts: Vec<PartDoc>,
    #[serde(default)]
    is_truncated: bool,
    next_part_number_marker: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartDoc {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(default)]
    size: u64,
}

/// One part S3 holds for an unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub part_number: u32,
    /// As S3 sends it, quotes included; CompleteMultipartUpload takes it back as is.
    pub etag: String,
    pub size: u64,
}

/// One page of ListParts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPartsOutput {
    pub parts: Vec<ListedPart>,
    pub is_truncated: bool,
    /// Pass back as the marker for the next page.
    pub next_part_number_marker: Option<u32>,
}

/// Reads a ListParts page; an unknown upload id is S3's `NoSuchUpload` error.
pub fn parse_list_parts(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListPartsOutput, Error> {
    ensure_success(status, headers, body)?;
    let doc: ListPartsDoc = parse_doc("ListParts", status, body)?;
    Ok(ListPartsOutput {
        parts: doc
            .parts
            .into_iter()
            .map(|p| ListedPart {
                part_number: p.part_number,
                etag: p.etag,
                size: p.size,
            })
            .collect(),
        is_truncated: doc.is_truncated,
        next_part_number_marker: doc.next_part_number_marker,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsDoc {
    #[serde(default, rename = "Upload")]
    uploads: Vec<UploadDoc>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadDoc {
    key: String,
    upload_id: String,
}

/// One unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

/// One page of ListMultipartUploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMultipartUploadsOutput {
    pub uploads: Vec<OpenUpload>,
    /// The key and upload id to continue after, when the page is truncated.
    pub next: Option<(String, String)>,
}

/// Reads a ListMultipartUploads page.
pub fn parse_list_multipart_uploads(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListMultipartUploadsOutput, Error> {
    ensure_success(status, headers, body)?;
    let doc: ListMultipartUploadsDoc = parse_doc("ListMultipartUploads", status, body)?;
    let next = match (
        doc.is_truncated,
        doc.next_key_marker,
        doc.next_upload_id_marker,
    ) {
        (true, Some(k), Some(u)) if !k.is_empty() => Some((k, u)),
        _ => None,
    };
    Ok(ListMultipartUploadsOutput {
        uploads: doc
            .uploads
            .into_iter()
            .map(|u| OpenUpload {
                key: u.key,
                upload_id: u.upload_id,
            })
            .collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn hdrs(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const NO_SUCH_KEY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a b</Key><RequestId>4442587FB7D0A2F9</RequestId><HostId>host/id=</HostId></Error>"#;

    #[test]
    fn list_parts_reads_every_part_and_the_marker() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>originals/x</Key><UploadId>u1</UploadId><PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated><Part><PartNumber>1</PartNumber><LastModified>2026-11-30T10:00:00.000Z</LastModified><ETag>"aa"</ETag><Size>5242880</Size></Part><Part><PartNumber>2</PartNumber><ETag>"bb"</ETag><Size>17</Size></Part></ListPartsResult>"#;
        let out = parse_list_parts(StatusCode::OK, &HeaderMap::new(), body.as_bytes()).unwrap();
        assert_eq!(out.parts.len(), 2);
        assert_eq!(out.parts[0].part_number, 1);
        assert_eq!(out.parts[0].etag, "\"aa\"");
        assert_eq!(out.parts[0].size, 5_242_880);
        assert_eq!(out.parts[1].size, 17);
        assert!(out.is_truncated);
        assert_eq!(out.next_part_number_marker, Some(2));
    }

    #[test]
    fn list_parts_of_an_upload_without_parts_is_empty() {
        let body = r#"<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId><IsTruncated>false</IsTruncated></ListPartsResult>"#;
        let out = parse_list_parts(StatusCode::OK, &HeaderMap::new(), body.as_bytes()).unwrap();
        assert!(out.parts.is_empty() && !out.is_truncated);
    }

    #[test]
    fn list_parts_of_an_unknown_upload_is_its_error() {
        let body = r#"<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>"#;
        let err = parse_list_parts(StatusCode::NOT_FOUND, &HeaderMap::new(), body.as_bytes())
            .unwrap_err();
        let Error::S3(e) = err else { panic!() };
        assert_eq!(e.code, "NoSuchUpload");
    }

    #[test]
    fn error_document_is_parsed() {
        let e = parse_error(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            NO_SUCH_KEY.as_bytes(),
        );
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.message, "The specified key does not exist.");
        assert_eq!(e.request_id.as_deref(), Some("4442587FB7D0A2F9"));
        assert_eq!(e.host_id.as_deref(), Some("host/id="));
        assert!(e.is_not_found());
        assert!(!e.is_retryable());
    }

    #[test]
    fn head_404_without_body() {
        let h = hdrs(&[("x-amz-request-id", "RID")]);
        let err = parse_head_object(StatusCode::NOT_FOUND, &h, b"").unwrap_err();
        let Error::S3(e) = err else { panic!() };
        assert_eq!(e.code, "404");
        assert_eq!(e.message, "Not Found");
        assert_eq!(e.request_id.as_deref(), Some("RID"));
        assert!(e.is_not_found());
    }

    #[test]
    fn non_xml_error_body_keeps_status() {
        let e = parse_error(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>oops</html>",
        );
        assert_eq!(e.code, "502");
        assert!(e.is_retryable());
    }

    #[test]
    fn retryable_s3_codes() {
        for (status, code, retry) in [
            (503, "SlowDown", true),
            (500, "InternalError", true),
            (400, "RequestTimeout", true),
            (403, "SignatureDoesNotMatch", false),
            (403, "AccessDenied", false),
            (400, "BadDigest", false),
            (400, "InvalidRequest", false),
            (429, "TooManyRequests", true),
        ] {
            let body = format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
            let e = parse_error(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body.as_bytes(),
            );
            assert_eq!(e.code, code);
            assert_eq!(e.is_retryable(), retry, "{code}");
            assert_eq!(Error::S3(e).is_retryable(), retry);
        }
    }

    #[test]
    fn head_reads_metadata() {
        let h = hdrs(&[
            ("content-length", "123"),
            ("content-type", "image/webp"),
            ("etag", "\"abc\""),
            ("x-amz-checksum-crc32c", "AAAAAA=="),
        ]);
        let m = parse_head_object(StatusCode::OK, &h, b"").unwrap();
        assert_eq!(m.content_length, Some(123));
        assert_eq!(m.content_type.as_deref(), Some("image/webp"));
        assert_eq!(m.etag.as_deref(), Some("\"abc\""));
        assert_eq!(m.checksum_crc32c.as_deref(), Some("AAAAAA=="));
    }

    #[test]
    fn list_decodes_url_encoded_keys() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>a+b%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextContinuationToken>tok==</NextContinuationToken>
<Contents><Key>a+b%2Fc%2B%25%C3%BC</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified><ETag>&quot;e1&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>a+b%2Fd</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified><ETag>"e2"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
<CommonPrefixes><Prefix>a+b%2Fsub%2F</Prefix></CommonPrefixes></ListBucketResult>"#;
        let out =
            parse_list_objects_v2(StatusCode::OK, &HeaderMap::new(), body.as_bytes()).unwrap();
        assert_eq!(out.objects.len(), 2);
        assert_eq!(out.objects[0].key, "a b/c+%ü");
        assert_eq!(out.objects[0].etag.as_deref(), Some("\"e1\""));
        assert_eq!(out.objects[0].size, 5);
        assert_eq!(out.objects[1].key, "a b/d");
        assert_eq!(out.common_prefixes, vec!["a b/sub/".to_string()]);
        assert!(out.is_truncated);
        assert_eq!(out.next_continuation_token.as_deref(), Some("tok=="));
        assert_eq!(out.key_count, Some(2));
    }

    #[test]
    fn list_empty_bucket() {
        let body = r#"<ListBucketResult><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        let out =
            parse_list_objects_v2(StatusCode::OK, &HeaderMap::new(), body.as_bytes()).unwrap();
        assert!(out.objects.is_empty());
        assert!(!out.is_truncated);
    }

    #[test]
    fn list_error_and_garbage() {
        let e = parse_list_objects_v2(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            b"<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>",
        )
        .unwrap_err();
        assert!(matches!(e, Error::S3(ref s) if s.code == "NoSuchBucket"));
        let e = parse_list_objects_v2(StatusCode::OK, &HeaderMap::new(), b"not xml").unwrap_err();
        assert!(matches!(e, Error::Decode { .. }));
    }

    #[test]
    fn create_multipart_reads_upload_id() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"#;
        let out = parse_create_multipart_upload(StatusCode::OK, &HeaderMap::new(), body.as_bytes())
            .unwrap();
        assert_eq!(out.upload_id, "VXBsb2FkIElE");
        assert_eq!(out.key.as_deref(), Some("k"));
    }

    #[test]
    fn complete_multipart_success_and_200_error() {
        let ok = r#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>https://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>"#;
        let out = parse_complete_multipart_upload(StatusCode::OK, &HeaderMap::new(), ok.as_bytes())
            .unwrap();
        assert_eq!(
            out.etag.as_deref(),
            Some("\"3858f62230ac3c915f300c664312c11f-9\"")
        );
        assert_eq!(
            out.location.as_deref(),
            Some("https://b.s3.amazonaws.com/k")
        );

        let err200 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>R</RequestId><HostId>H</HostId></Error>";
        let e =
            parse_complete_multipart_upload(StatusCode::OK, &HeaderMap::new(), err200.as_bytes())
                .unwrap_err();
        assert!(e.is_retryable());
        let Error::S3(s) = e else { panic!() };
        assert_eq!(s.code, "InternalError");
        assert_eq!(s.status, StatusCode::OK);

        let bad_part = "<Error><Code>InvalidPart</Code><Message>One or more of the specified parts could not be found.</Message></Error>";
        let e = parse_complete_multipart_upload(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            bad_part.as_bytes(),
        )
        .unwrap_err();
        assert!(!e.is_retryable());

        let e =
            parse_complete_multipart_upload(StatusCode::OK, &HeaderMap::new(), b"").unwrap_err();
        assert!(matches!(e, Error::Decode { .. }));
    }

    #[test]
    fn put_and_abort_and_delete() {
        let h = hdrs(&[("etag", "\"e\""), ("x-amz-checksum-sha256", "x=")]);
        let out = parse_put_object(StatusCode::OK, &h, b"").unwrap();
        assert_eq!(out.etag.as_deref(), Some("\"e\""));
        assert_eq!(out.checksum_sha256.as_deref(), Some("x="));
        let bad_digest = "<Error><Code>BadDigest</Code><Message>The SHA256 you specified did not match the calculated checksum.</Message></Error>";
        let e = parse_upload_part(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            bad_digest.as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::S3(ref s) if s.code == "BadDigest"));
        parse_abort_multipart_upload(StatusCode::NO_CONTENT, &HeaderMap::new(), b"").unwrap();
        parse_delete_object(StatusCode::NO_CONTENT, &HeaderMap::new(), b"").unwrap();
        let e = parse_abort_multipart_upload(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            b"<Error><Code>NoSuchUpload</Code><Message>m</Message></Error>",
        )
        .unwrap_err();
        assert!(matches!(e, Error::S3(ref s) if s.code == "NoSuchUpload"));
    }

    #[test]
    fn list_multipart_uploads_reads_uploads_and_markers() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker>originals/y</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker><Prefix>originals/</Prefix><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated><Upload><Key>originals/x</Key><UploadId>u1</UploadId><Initiated>2026-11-30T10:00:00.000Z</Initiated></Upload><Upload><Key>originals/y</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>"#;
        let out = parse_list_multipart_uploads(StatusCode::OK, &HeaderMap::new(), body.as_bytes())
            .unwrap();
        assert_eq!(out.uploads.len(), 2);
        assert_eq!(out.uploads[1].upload_id, "u2");
        assert_eq!(out.next, Some(("originals/y".into(), "u2".into())));
        let empty = r#"<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#;
        let out = parse_list_multipart_uploads(StatusCode::OK, &HeaderMap::new(), empty.as_bytes())
            .unwrap();
        assert_eq!(out, ListMultipartUploadsOutput::default());
    }
}
