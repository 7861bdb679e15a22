//! Image formats by their lower-case names, as rows, manifests and keys
//! spell them.

use serde::{Deserialize, Serialize};

/// A format pixport accepts as an upload and the resizer decodes (what an
/// original is): the edge's sniffing, the rows, the manifest and the
/// resizer all speak this one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
}

/// `imagehead` stays free of dependencies; its format becomes this one
/// here, once, for every crate that reads headers.
impl From<imagehead::Format> for SourceFormat {
    fn from(f: imagehead::Format) -> Self {
        match f {
            imagehead::Format::Jpeg => SourceFormat::Jpeg,
            imagehead::Format::Png => SourceFormat::Png,
            imagehead::Format::WebP => SourceFormat::Webp,
            imagehead::Format::Gif => SourceFormat::Gif,
        }
    }
}

impl SourceFormat {
    /// Every accepted format, in the order error messages list them.
    pub const ALL: [SourceFormat; 4] = [
        SourceFormat::Jpeg,
        SourceFormat::Png,
        SourceFormat::Webp,
        SourceFormat::Gif,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
            SourceFormat::Gif => "gif",
        }
    }

    /// What the row records as the original's type: the one its bytes
    /// proved, whatever the uploader declared.
    pub fn content_type(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "image/jpeg",
            SourceFormat::Png => "image/png",
            SourceFormat::Webp => "image/webp",
            SourceFormat::Gif => "image/gif",
        }
    }
}

/// A format the resizer writes variants in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    /// The file extension in variant keys (`jpg`, not `jpeg`).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    /// The media type a variant is stored and served as: derived from the
    /// format, never taken from what the resizer says (the sandbox is not
    /// trusted about types; docs/security.md).
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
        }
    }

    /// Whether `bytes` begin as a file of this format does (its magic
    /// number): JPEG's SOI marker, PNG's signature, a RIFF `WEBP`
    /// container, an ISO-BMFF `ftyp` box naming an AVIF brand. The Lambda
    /// checks every variant with it before storing, so bytes that would be
    /// served as an image are one.
    pub fn has_signature(self, bytes: &[u8]) -> bool {
        match self {
            OutputFormat::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            OutputFormat::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            OutputFormat::Webp => {
                bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
            }
            OutputFormat::Avif => avif_brand(bytes),
        }
    }
}

/// An `ftyp` box first, whose major brand or one of whose compatible
/// brands is `avif` (still image) or `avis` (sequence).
fn avif_brand(bytes: &[u8]) -> bool {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return false;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = size.min(bytes.len());
    if size < 16 {
        return false;
    }
    let is_avif = |b: &[u8]| b == b"avif" || b == b"avis";
    // Major brand at 8..12, minor version at 12..16, then compatible brands.
    is_avif(&bytes[8..12]) || bytes[16..end].chunks_exact(4).any(is_avif)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_match_serde() {
        for f in OutputFormat::ALL {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            assert_eq!(serde_json::from_str::<OutputFormat>(&json).unwrap(), f);
            assert!(f.content_type().starts_with("image/"));
        }
        assert_eq!(OutputFormat::Avif.extension(), "avif");
        assert_eq!(OutputFormat::Avif.content_type(), "image/avif");
        assert_eq!(OutputFormat::Jpeg.extension(), "jpg");
    }

    #[test]
    fn each_format_knows_its_magic_number() {
        let jpeg: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let webp: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";
        let avif: &[u8] = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
        let avif_compat: &[u8] = b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif";
        let html: &[u8] = b"<!doctype html><script>alert(1)</script>";
        let cases = [
            (OutputFormat::Jpeg, jpeg),
            (OutputFormat::Png, png),
            (OutputFormat::Webp, webp),
            (OutputFormat::Avif, avif),
        ];
        for (f, good) in cases {
            assert!(f.has_signature(good), "{f:?}");
            assert!(!f.has_signature(html), "{f:?} took HTML");
            assert!(!f.has_signature(&[]), "{f:?} took nothing");
            for (other, bytes) in cases {
                assert_eq!(f.has_signature(bytes), f == other, "{f:?} vs {other:?}");
            }
        }
        assert!(OutputFormat::Avif.has_signature(avif_compat));
        // An ftyp box of another brand (MP4) is no AVIF.
        assert!(!OutputFormat::Avif.has_signature(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2"));
        assert!(!OutputFormat::Webp.has_signature(b"RIFF\x24\0\0\0WAVEfmt "));
    }
}
