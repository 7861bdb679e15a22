//! What the upload services' unit tests share: limits, files and forms.

#![cfg(test)]

use pixport_contract::ImageLimits;

use crate::domain::error::Error;
use crate::domain::limits::UploadLimits;
use crate::http::error::ApiError;

/// The stable code a client would be told for `e`.
pub fn code(e: &Error) -> &'static str {
    status_and_code(e).1
}

pub fn status_and_code(e: &Error) -> (u16, &'static str) {
    ApiError::status_and_code_of(e)
}

pub fn limits() -> UploadLimits {
    UploadLimits {
        image: ImageLimits {
            max_bytes: 40 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_dimension: 20_000,
        },
        max_fields: 4,
        max_field_bytes: 1024,
        multipart_threshold: 5 * 1024 * 1024,
        part_bytes: 5 * 1024 * 1024,
        memory_budget: 64 * 1024 * 1024,
        max_images_per_owner: u64::MAX,
        max_bytes_per_owner: u64::MAX,
        private_unavailable: None,
    }
}

/// A minimal JPEG of `size` bytes: SOI, SOF0 (w x h), filler, EOI.
pub fn jpeg(w: u16, h: u16, size: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8];
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    // A scan header, then stand-in entropy-coded data up to `size`.
    v.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
    v.resize(size - 2, 0x55);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

pub fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, file, data) in parts {
        b.extend_from_slice(b"--XyZ\r\n");
        match file {
            Some(f) => b.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
            ),
            None => b.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--XyZ--\r\n");
    b
}
