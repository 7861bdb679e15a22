//! The resizer's manifest: the first line `resizer.wasm` writes to stdout,
//! followed by the variants' bytes back to back.
//!
//! The resizer writes it and the Lambda host reads it to slice the payload
//! and to fill the row. Fields only the resizer's own CLI needs default when
//! absent, so a host-side test can write the short form.

use serde::{Deserialize, Serialize};

use crate::format::{OutputFormat, SourceFormat};

/// Bumped on any incompatible change to this structure or the stdout framing.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub source: Source,
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Total bytes of all variants (the framed payload's length).
    #[serde(default)]
    pub payload_bytes: u64,
    /// What a page shows before the image loads; absent when no variant was
    /// made (and from resizers older than placeholders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<Placeholder>,
}

/// Placeholders computed from the smallest variant. The Lambda stores them
/// in the row's `thumbhash`, `blurhash` and `dominant_color` columns
/// (`migrations/0004_placeholders.sql`) and the edge returns them as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placeholder {
    /// ThumbHash bytes in standard base64 (at most 25 bytes, so 36 characters).
    pub thumbhash: String,
    /// BlurHash, 4 x 3 components (3 x 4 for portrait): 28 characters.
    pub blurhash: String,
    /// `#rrggbb`.
    pub dominant_color: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub format: SourceFormat,
    /// Display size (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// EXIF orientation that was applied (1 = none).
    #[serde(default = "no_rotation")]
    pub orientation: u8,
    #[serde(default)]
    pub bytes: u64,
    /// Whether the outputs carry the source's ICC profile (one the
    /// resizer could not convert to sRGB).
    #[serde(default)]
    pub icc: bool,
    /// Whether the source's ICC profile was converted to sRGB (the outputs
    /// then carry none).
    #[serde(default)]
    pub icc_to_srgb: bool,
    /// Size actually decoded (smaller when JPEG shrink-on-load ran), in
    /// stored orientation.
    #[serde(default)]
    pub decoded_width: u32,
    #[serde(default)]
    pub decoded_height: u32,
}

fn no_rotation() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    /// What the bytes are. The media type follows from it
    /// (`OutputFormat::content_type`); a `content_type` the resizer writes
    /// beside it is not read, so the sandbox cannot choose how its output
    /// is served.
    pub format: OutputFormat,
    pub bytes: u64,
    /// Where this variant's bytes start in the payload after the manifest line.
    pub offset: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// File name inside `--out-dir` (`<width>.<ext>`); that mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A requested width that produced no variant, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub width: u32,
    pub reason: String,
}
