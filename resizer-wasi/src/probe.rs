//! Format sniffing and header dimensions, without decoding pixels.
//!
//! The magic bytes decide the format (never a file name), and the header's
//! dimensions go to `limits` before any decoder allocates a pixel buffer.

use imagehead::HeadError;

use crate::error::{Error, Result};
use crate::orientation::{self, Orientation};

pub use pixport_contract::SourceFormat;

/// The `image` crate's name for a source format (its decoders' selector).
pub fn image_format(f: SourceFormat) -> image::ImageFormat {
    match f {
        SourceFormat::Jpeg => image::ImageFormat::Jpeg,
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Webp => image::ImageFormat::WebP,
        SourceFormat::Gif => image::ImageFormat::Gif,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
    /// From the container's EXIF (JPEG APP1, PNG `eXIf`, WebP `EXIF`), for
    /// every decoder alike; 1 when there is none.
    pub orientation: Orientation,
}

fn head_error(e: HeadError) -> Error {
    match e {
        HeadError::Unsupported => Error::UnsupportedFormat(
            "not a JPEG, PNG, WebP or GIF image (unknown magic bytes)".into(),
        ),
        HeadError::UnsupportedFeature(what) => Error::UnsupportedFormat(what.into()),
        HeadError::Truncated => Error::Corrupt("header is truncated".into()),
        HeadError::Malformed(why) => Error::Corrupt(format!("header: {why}")),
    }
}

/// Identifies the format from magic bytes; anything else is `unsupported_format`.
pub fn sniff(bytes: &[u8]) -> Result<SourceFormat> {
    if bytes.is_empty() {
        return Err(Error::UnsupportedFormat("empty input".into()));
    }
    imagehead::format_of(bytes)
        .map(SourceFormat::from)
        .ok_or_else(|| head_error(HeadError::Unsupported))
}

/// Reads the header (with the whole file: a JPEG's segments are walked to
/// EOI, so a frame header hidden after the first scan is refused here) to get
/// the stored dimensions and the EXIF orientation.
///
/// The parser is `pixport-imagehead`, shared with the edge and written to
/// find the frame the decoders find; `decode` still checks that the decoder's
/// frame is this one before it allocates. A header-only bomb (a valid IHDR
/// claiming 50,000 x 50,000 and nothing after it) reads as "over limits",
/// not as the "truncated" a full decoder's header pass would report.
pub fn probe(bytes: &[u8]) -> Result<Probe> {
    sniff(bytes)?;
    let h = imagehead::probe(bytes).map_err(head_error)?;
    Ok(Probe {
        format: SourceFormat::from(h.format),
        width: h.width,
        height: h.height,
        orientation: h.exif.map(orientation::from_exif).unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn text_is_unsupported() {
        assert_eq!(
            sniff(b"hello, I am not a jpeg").unwrap_err().class(),
            "unsupported_format"
        );
        assert_eq!(sniff(b"").unwrap_err().class(), "unsupported_format");
    }

    #[test]
    fn bmp_is_unsupported() {
        assert_eq!(
            sniff(b"BM\0\0\0\0\0\0\0\0").unwrap_err().class(),
            "unsupported_format"
        );
    }

    #[test]
    fn png_header_dimensions() {
        let mut buf = Vec::new();
        image::RgbImage::new(7, 5)
            .write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        let p = probe(&buf).unwrap();
        assert_eq!((p.format, p.width, p.height), (SourceFormat::Png, 7, 5));
    }

    #[test]
    fn jpeg_sof_dimensions() {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&[0u8; 30 * 20 * 3], 30, 20, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let p = probe(&out).unwrap();
        assert_eq!((p.format, p.width, p.height), (SourceFormat::Jpeg, 30, 20));
    }

    #[test]
    fn truncated_header_is_corrupt() {
        let e = probe(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]).unwrap_err();
        assert_eq!(e.class(), "corrupt");
    }
}
