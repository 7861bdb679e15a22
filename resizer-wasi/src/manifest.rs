//! The JSON manifest: what was produced, where its bytes are, and what was not.
//!
//! Hosts read the manifest rather than re-probing outputs, so every number a
//! consumer needs (size, checksum, offset into the framed stdout) is here.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::encode::OutFormat;
use crate::orientation::Orientation;
use crate::placeholder::Placeholder;
use crate::probe::SourceFormat;
use crate::resize::Skipped;

/// Bumped on any incompatible change to this structure or the stdout framing.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub format: SourceFormat,
    /// Display size (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// EXIF orientation that was applied (1 = none).
    pub orientation: Orientation,
    pub bytes: u64,
    /// Whether the outputs carry the source's ICC profile (one that could
    /// not be converted to sRGB; see `colour`).
    pub icc: bool,
    /// Whether the source's ICC profile was converted to sRGB.
    pub icc_to_srgb: bool,
    /// Size actually decoded (smaller than stored when JPEG shrink-on-load ran), stored orientation.
    pub decoded_width: u32,
    pub decoded_height: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub format: OutFormat,
    pub content_type: &'static str,
    pub bytes: u64,
    /// Offset of this variant's bytes in the payload after the manifest line.
    pub offset: u64,
    pub sha256: String,
    /// File name inside `--out-dir` (`<width>.<ext>`); present in that mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub version: u32,
    pub source: Source,
    pub variants: Vec<Variant>,
    pub skipped: Vec<Skipped>,
    /// Total bytes of all variants (the framed payload length).
    pub payload_bytes: u64,
    /// From the smallest variant; absent only when no variant was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<Placeholder>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

impl Manifest {
    /// One line of JSON (no newline inside), as framed on stdout.
    pub fn to_line(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Switches the manifest to `--out-dir` mode: each variant names its file.
    pub fn with_files(mut self) -> Self {
        for v in &mut self.variants {
            v.file = Some(format!("{}.{}", v.width, v.format.extension()));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn single_line() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            source: Source {
                format: SourceFormat::Png,
                width: 1,
                height: 1,
                orientation: 1,
                bytes: 1,
                icc: false,
                icc_to_srgb: false,
                decoded_width: 1,
                decoded_height: 1,
            },
            variants: vec![],
            skipped: vec![Skipped {
                width: 1920,
                reason: "would upscale",
            }],
            payload_bytes: 0,
            placeholder: None,
        };
        let line = m.to_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["skipped"][0]["reason"], "would upscale");
        assert_eq!(v["source"]["format"], "png");
    }
}
