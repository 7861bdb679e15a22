//! Format sniffing and header dimensions, without decoding pixels.
//!
//! The magic bytes decide the format (never a file name), and the header's
//! dimensions go to `limits` before any decoder allocates a pixel buffer.

use std::io::Cursor;

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl SourceFormat {
    pub fn image_format(self) -> image::ImageFormat {
        match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Webp => image::ImageFormat::WebP,
            SourceFormat::Gif => image::ImageFormat::Gif,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
}

/// Identifies the format from magic bytes; anything else is `unsupported_format`.
pub fn sniff(bytes: &[u8]) -> Result<SourceFormat> {
    if bytes.is_empty() {
        return Err(Error::UnsupportedFormat("empty input".into()));
    }
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => Ok(SourceFormat::Jpeg),
        Ok(image::ImageFormat::Png) => Ok(SourceFormat::Png),
        Ok(image::ImageFormat::WebP) => Ok(SourceFormat::Webp),
        Ok(image::ImageFormat::Gif) => Ok(SourceFormat::Gif),
        Ok(other) => Err(Error::UnsupportedFormat(format!(
            "{other:?} is not accepted (JPEG, PNG, WebP, GIF are)"
        ))),
        Err(_) => Err(Error::UnsupportedFormat(
            "not a JPEG, PNG, WebP or GIF image (unknown magic bytes)".into(),
        )),
    }
}

/// Reads only the header to get the stored dimensions.
///
/// JPEG, PNG and GIF headers are parsed here directly: their size fields sit
/// at fixed places, and a header-only bomb (a valid IHDR claiming
/// 50,000 x 50,000 and nothing after it) must read as "over limits", not as
/// the "truncated" a full decoder's header pass would report.
pub fn probe(bytes: &[u8]) -> Result<Probe> {
    let format = sniff(bytes)?;
    let dims = match format {
        SourceFormat::Jpeg => jpeg_dimensions(bytes),
        SourceFormat::Png => png_dimensions(bytes),
        SourceFormat::Gif => gif_dimensions(bytes),
        SourceFormat::Webp => {
            let reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format());
            Some(reader.into_dimensions().map_err(|e| match Error::from(e) {
                Error::UnsupportedFormat(m) => Error::UnsupportedFormat(m),
                other => Error::Corrupt(format!("header: {other}")),
            })?)
        }
    };
    let (width, height) =
        dims.ok_or_else(|| Error::Corrupt(format!("{format:?} header is truncated or malformed")))?;
    Ok(Probe {
        format,
        width,
        height,
    })
}

fn be16(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])))
}

fn png_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4).
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

fn gif_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    // Logical screen size; frames may not exceed it in a valid file, and
    // `image` enforces the decode limits on frames too.
    let w = u32::from(u16::from_le_bytes([*b.get(6)?, *b.get(7)?]));
    let h = u32::from(u16::from_le_bytes([*b.get(8)?, *b.get(9)?]));
    Some((w, h))
}

/// Walks the marker segments up to the first SOFn.
fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        // Skip fill bytes before a marker.
        while *b.get(i)? == 0xFF && *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i + 1)?;
        if matches!(marker, 0xD0..=0xD7 | 0x01) {
            i += 2;
            continue;
        }
        let len = usize::try_from(be16(b, i + 2)?).ok()?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let h = be16(b, i + 5)?;
                let w = be16(b, i + 7)?;
                return Some((w, h));
            }
            0xDA | 0xD9 => return None,
            _ => {}
        }
        if len < 2 {
            return None;
        }
        i = i.checked_add(2 + len)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
