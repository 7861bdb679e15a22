//! S3 responses: every parser of `pixport_aws::s3`, error documents and
//! list pages (with `EncodingType=url` decoding). Byte 0 picks the status,
//! byte 1 whether the body's first line becomes an ETag header; the rest is
//! the body.
#![no_main]

use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use pixport_aws::s3;

const STATUSES: [u16; 8] = [200, 204, 206, 301, 403, 404, 500, 503];

fuzz_target!(|data: &[u8]| {
    let [s, h, body @ ..] = data else {
        return;
    };
    let status = StatusCode::from_u16(STATUSES[usize::from(*s) % STATUSES.len()]).unwrap();
    let mut headers = HeaderMap::new();
    if h & 1 == 1 {
        let line = body.split(|&b| b == b'\n').next().unwrap_or_default();
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.insert("etag", v.clone());
            headers.insert("x-amz-checksum-sha256", v);
        }
    }
    let _ = s3::parse_get_object(status, &headers, body);
    let _ = s3::parse_head_object(status, &headers, body);
    let _ = s3::parse_put_object(status, &headers, body);
    let _ = s3::parse_upload_part(status, &headers, body);
    let _ = s3::parse_delete_object(status, &headers, body);
    let _ = s3::parse_abort_multipart_upload(status, &headers, body);
    if let Ok(page) = s3::parse_list_objects_v2(status, &headers, body) {
        assert!(page.objects.len() <= body.len(), "more objects than bytes");
    }
    let _ = s3::parse_create_multipart_upload(status, &headers, body);
    let _ = s3::parse_complete_multipart_upload(status, &headers, body);
    let e = s3::parse_error(status, &headers, body);
    assert!(!e.code.is_empty(), "an S3 error without a code");
});
