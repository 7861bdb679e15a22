//! Image format and header dimensions, read from the bytes themselves.
//!
//! The edge (on the head of an upload) and the resizer (on the whole file,
//! before any pixel buffer exists) must agree on what an image is and how
//! large it is, and both must agree with the decoder that later runs: a
//! header read one way by the size check and another way by the decoder lets
//! a 1 KB file claim 10x10 to the check and 65500x65500 to the decoder. So
//! the marker rules live here, once, written after the format specifications
//! and the decoders' own tolerances (see `jpeg`).
//!
//! No dependencies and no allocation: it builds for wasm32-unknown-unknown,
//! wasm32-wasip1 and native alike.

#![no_std]

#[cfg(test)]
extern crate std;

mod bytes;
mod gif;
pub mod jpeg;
mod png;
mod webp;

use core::fmt;

/// Image formats pixport accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
}

/// What a header says, as the decoder will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub format: Format,
    /// Stored (pre-orientation) size of the image that will be decoded.
    pub width: u32,
    pub height: u32,
    /// The EXIF (TIFF) blob, where the container carries one: JPEG APP1,
    /// PNG `eXIf`, WebP `EXIF`; it may start with `Exif\0\0`.
    pub exif: Option<&'a [u8]>,
}

/// Why bytes are not an acceptable image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not a JPEG, PNG, WebP or GIF by its magic bytes.
    Unsupported,
    /// One of those formats, using a feature no decoder here has.
    UnsupportedFeature(&'static str),
    /// The bytes end before the header does.
    Truncated,
    /// The header breaks its format's rules.
    Malformed(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Unsupported => f.write_str("not a JPEG, PNG, WebP or GIF image"),
            HeadError::UnsupportedFeature(what) => write!(f, "unsupported: {what}"),
            HeadError::Truncated => f.write_str("header cut short"),
            HeadError::Malformed(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for HeadError {}

/// Identifies the format by its magic bytes.
pub fn format_of(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(png::SIGNATURE) {
        Some(Format::Png)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else {
        None
    }
}

/// Reads format, dimensions and EXIF from `bytes`: the whole file, or its
/// head (then whatever lies past the head is not checked).
///
/// A zero width or height is `Malformed`; limits are the caller's.
pub fn probe(bytes: &[u8]) -> Result<Header<'_>, HeadError> {
    let format = format_of(bytes).ok_or(HeadError::Unsupported)?;
    let (width, height, exif) = match format {
        Format::Jpeg => {
            let w = jpeg::walk(bytes)?;
            (u32::from(w.frame.width), u32::from(w.frame.height), w.exif)
        }
        Format::Png => png::header(bytes)?,
        Format::WebP => webp::header(bytes)?,
        Format::Gif => {
            let (w, h) = gif::screen(bytes)?;
            (w, h, None)
        }
    };
    if width == 0 || height == 0 {
        return Err(HeadError::Malformed("zero width or height"));
    }
    Ok(Header {
        format,
        width,
        height,
        exif,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        v.extend_from_slice(&[0; 4]);
        v
    }

    fn png(w: u32, h: u32, after_ihdr: &[&[u8]]) -> Vec<u8> {
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut v = png::SIGNATURE.to_vec();
        v.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
        for c in after_ihdr {
            v.extend_from_slice(c);
        }
        v
    }

    #[test]
    fn png_size_and_exif_after_idat() {
        let b = png(
            7,
            5,
            &[
                &png_chunk(b"IDAT", &[1, 2, 3]),
                &png_chunk(b"eXIf", b"MM\0*"),
                &png_chunk(b"IEND", &[]),
            ],
        );
        let h = probe(&b).unwrap();
        assert_eq!(
            (h.format, h.width, h.height, h.exif),
            (Format::Png, 7, 5, Some(&b"MM\0*"[..]))
        );
        assert_eq!(
            probe(&png(0, 5, &[])),
            Err(HeadError::Malformed("zero width or height"))
        );
        assert_eq!(probe(&b[..20]), Err(HeadError::Truncated));
    }

    fn riff(chunks: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (kind, data) in chunks {
            body.extend_from_slice(kind);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(&body);
        v
    }

    fn vp8(w: u16, h: u16) -> Vec<u8> {
        let mut v = std::vec![0, 0, 0, 0x9D, 0x01, 0x2A];
        v.extend_from_slice(&w.to_le_bytes());
        v.extend_from_slice(&h.to_le_bytes());
        v
    }

    fn vp8x(flags: u8, w: u32, h: u32) -> Vec<u8> {
        let mut v = std::vec![flags, 0, 0, 0];
        v.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        v.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        v
    }

    #[test]
    fn webp_sizes_and_exif() {
        let b = riff(&[(b"VP8 ", &vp8(1920, 1080))]);
        assert_eq!(probe(&b).map(|h| (h.width, h.height)), Ok((1920, 1080)));
        let b = riff(&[
            (b"VP8X", &vp8x(0x08, 300, 200)),
            (b"VP8 ", &vp8(300, 200)),
            (b"EXIF", b"II*\0x"),
        ]);
        let h = probe(&b).unwrap();
        assert_eq!(
            (h.width, h.height, h.exif),
            (300, 200, Some(&b"II*\0x"[..]))
        );
        // A canvas that hides the bitstream's real size.
        let b = riff(&[(b"VP8X", &vp8x(0, 16, 16)), (b"VP8 ", &vp8(16383, 16383))]);
        assert!(matches!(probe(&b), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn gif_screen_and_unknown_bytes() {
        assert_eq!(
            probe(b"GIF89a\x40\x01\xf0\x00").map(|h| (h.width, h.height)),
            Ok((320, 240))
        );
        assert_eq!(probe(b"GIF89a\x40"), Err(HeadError::Truncated));
        assert_eq!(
            probe(b"hello, I am not a photo"),
            Err(HeadError::Unsupported)
        );
        assert_eq!(probe(b""), Err(HeadError::Unsupported));
    }
}
