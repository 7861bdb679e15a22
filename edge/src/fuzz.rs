//! Entry points for the fuzz targets in `fuzz/` (feature `fuzz`, never in
//! the worker build): the upload pipeline over the in-memory ports, the
//! fields rules and the sniff, each with the invariants a request must keep
//! whatever its bytes. A broken invariant panics, which libFuzzer reports.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream;
use pixport_contract::Status;

use pixport_contract::ImageLimits;

use crate::adapters::memory::Memory;
use crate::domain::fields::{self, Metadata, Patch, clean_file_name};
use crate::domain::limits::UploadLimits;
use crate::domain::sniff;
use crate::domain::upload::{FormUpload, Uploaded, Uploads};
use crate::http::error::ApiError;

/// The boundary the seeds and [`upload_body`] use.
pub const BOUNDARY: &str = "XyZ";

/// Small limits, so the fuzzer reaches each of them (and the multipart
/// path) with inputs of a few KiB.
fn limits() -> UploadLimits {
    UploadLimits {
        image: ImageLimits {
            max_bytes: 64 * 1024,
            max_pixels: 1_000_000,
            max_dimension: 2_000,
        },
        max_fields: 6,
        max_field_bytes: 512,
        multipart_threshold: 8 * 1024,
        part_bytes: 4 * 1024,
        memory_budget: 64 * 1024 * 1024,
        max_images_per_owner: 1_000,
        max_bytes_per_owner: 1 << 30,
        private_unavailable: None,
    }
}

/// Steps of the fakes that can be told to fail (`Memory::failing`).
const FAULTS: [&str; 7] = [
    "put", "create", "part", "complete", "delete", "claim", "finish",
];

/// Runs `POST /images` on `data`: byte 0 picks the chunk size the body
/// arrives in, byte 1 a step of the fakes that fails (most values: none),
/// the rest is the multipart body (boundary [`BOUNDARY`]).
///
/// Invariants: a refusal stores nothing (no object, no row, no open
/// multipart upload) and is a 4xx unless a fake failed; an acceptance has
/// one `pending` row whose original holds exactly the bytes it counts; a
/// failure of a fake never leaves an object without a row.
pub fn upload_body(data: &[u8]) {
    let (chunk, fault, body) = match data {
        [c, f, rest @ ..] => (usize::from(*c) % 64 * 16 + 1, *f, rest),
        _ => return,
    };
    let fault = FAULTS.get(usize::from(fault)).copied();
    let m = Memory::failing(fault.as_slice());
    let chunks: Vec<std::result::Result<Bytes, Infallible>> = body
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = FormUpload {
        id: "01FUZZ".into(),
        owner: "owner".into(),
        idempotency_key: None,
        content_length: Some(body.len() as u64),
        allow_duplicates: false,
        grant: None,
    };
    let limits = limits();
    let uploads = Uploads {
        objects: &m,
        rows: &m,
        limits: &limits,
        request_id: None,
    };
    let result = futures_executor::block_on(uploads.form(
        req,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        stream::iter(chunks),
    ));
    let rows = m.rows.borrow();
    let objects = m.objects.borrow();
    match result {
        Ok(Uploaded::Created(img)) => {
            assert_eq!(rows.len(), 1, "one row per accepted upload");
            assert_eq!(img.status, Status::Pending);
            let stored = objects
                .get(&img.original_key)
                .expect("an accepted upload has its original");
            assert_eq!(
                Some(stored.len() as u64),
                img.bytes,
                "the row counts the stored bytes"
            );
            assert!(
                m.uploads.borrow().is_empty(),
                "no multipart upload left open"
            );
        }
        Ok(Uploaded::Replayed(_)) => panic!("a replay without an Idempotency-Key"),
        Ok(Uploaded::Duplicate(_)) => panic!("a duplicate of bytes no earlier upload stored"),
        Err(e) => {
            let e = ApiError::from(e);
            let (status, code) = e.status_and_code();
            let body = e.body("req");
            assert_eq!(body["error"]["code"], code);
            if fault.is_none() {
                assert!(status < 500, "{status} {code} for a client's bytes: {e}");
                assert!(rows.is_empty(), "a refused upload left a row");
                assert!(objects.is_empty(), "a refused upload left an object");
                assert!(
                    m.uploads.borrow().is_empty(),
                    "a refused upload left a multipart upload"
                );
            }
            for key in objects.keys() {
                assert!(
                    rows.values().any(|r| &r.original_key == key),
                    "object {key} without a row after {code}"
                );
            }
        }
    }
}

/// Runs the form-field and `PATCH` rules on `data`: the first line is a
/// field name, the rest its value, then the whole input as a `PATCH` JSON
/// body. Whatever is accepted stays within the limits the API documents.
pub fn fields(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (name, value) = text.split_once('\n').unwrap_or((&text, ""));
    let max = limits().max_field_bytes;
    let mut meta = Metadata::default();
    if meta.add_form_field(name, value, max).is_ok() {
        check_metadata(&meta);
    }
    if let Ok(patch) = serde_json::from_slice::<Patch>(data) {
        let mut meta = Metadata::default();
        if patch.apply(&mut meta, max).is_ok() {
            check_metadata(&meta);
        }
    }
    if let Some(clean) = clean_file_name(&text) {
        assert!(!clean.is_empty() && clean.len() <= fields::MAX_FILE_NAME_BYTES);
        assert!(
            !clean.contains(['/', '\\', '\0']),
            "file name kept a path: {clean:?}"
        );
    }
}

fn check_metadata(m: &Metadata) {
    use crate::domain::fields::{
        MAX_DESCRIPTION_CHARS, MAX_EXTRA_JSON_BYTES, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS,
    };
    let chars = |s: &str| s.chars().count();
    assert!(
        m.title
            .as_deref()
            .is_none_or(|t| chars(t) <= MAX_TITLE_CHARS)
    );
    assert!(
        m.description
            .as_deref()
            .is_none_or(|d| chars(d) <= MAX_DESCRIPTION_CHARS)
    );
    assert!(m.tags.len() <= MAX_TAGS);
    assert!(
        m.tags
            .iter()
            .all(|t| !t.is_empty() && chars(t) <= MAX_TAG_CHARS)
    );
    let extra = serde_json::to_vec(&m.extra).map_or(usize::MAX, |v| v.len());
    assert!(extra <= MAX_EXTRA_JSON_BYTES);
}

/// The edge's sniff on a head of bytes: never panics, and what it accepts
/// has a size; `is_complete` runs on any tail.
pub fn sniff(data: &[u8]) {
    if let Ok(p) = sniff::probe(data) {
        assert!(p.width > 0 && p.height > 0);
        let tail = &data[data.len().saturating_sub(16)..];
        let _ = sniff::is_complete(p.format, data, tail, data.len() as u64);
    }
}

/// A Data API `ExecuteStatement` response as the edge reads image rows:
/// any body is an output or an error, never a panic.
pub fn image_rows(data: &[u8]) {
    use pixport_aws::Operation;
    use pixport_aws::dataapi::ExecuteStatement;
    let parsed = ExecuteStatement::parse(http::StatusCode::OK, &http::HeaderMap::new(), data);
    if let Ok(out) = parsed {
        let _ = crate::adapters::dataapi::images(&out);
    }
}
