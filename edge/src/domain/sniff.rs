//! What the uploaded bytes really are, from their own headers.
//!
//! The client's content type and file name are not trusted: a text file named
//! `photo.jpg` must be refused before anything is stored. Only the first bytes
//! are needed for the format and dimensions, so this runs on the head of the
//! stream; [`is_complete`] checks the tail once the last byte is in, which
//! catches truncated uploads without decoding pixels (that happens later, in
//! the resizer's sandbox).

use pixport_contract::SourceFormat;

use imagehead::HeadError;

use crate::domain::error::{Error, Result};

/// Format and pixel size read from an image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
}

/// Why a head of bytes is not an acceptable image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniffError {
    /// Not one of the accepted formats at all.
    Unsupported,
    /// The format's magic is there but its header is broken or cut short.
    Corrupt(&'static str),
}

/// Reads format and dimensions from the first bytes of a file.
///
/// `head` should hold at least the first 256 KiB (or the whole file if
/// smaller): JPEG headers can sit behind large EXIF segments. The parser is
/// `pixport-imagehead`, the resizer's too, so the size checked here is the
/// size the resizer checks and decodes (JPEG markers by the spec: stuffed
/// `FF 00` is no marker, one frame header, none after a scan, no DNL); a
/// JPEG's scans are walked as far as the head goes.
pub fn probe(head: &[u8]) -> Result<Probe, SniffError> {
    let h = imagehead::probe(head).map_err(|e| match e {
        HeadError::Unsupported => SniffError::Unsupported,
        HeadError::UnsupportedFeature(what) => SniffError::Corrupt(what),
        HeadError::Truncated => CUT,
        HeadError::Malformed(why) => SniffError::Corrupt(why),
    })?;
    Ok(Probe {
        format: h.format.into(),
        width: h.width,
        height: h.height,
    })
}

/// Whether the file ends where its format says it must; `tail` is the last
/// bytes of the file (at least 12), `total` the whole length.
pub fn is_complete(format: SourceFormat, head: &[u8], tail: &[u8], total: u64) -> bool {
    match format {
        // EOI marker; some encoders pad with zeros after it.
        SourceFormat::Jpeg => {
            let trimmed = tail
                .iter()
                .rposition(|&b| b != 0)
                .map_or(&tail[..0], |i| &tail[..=i]);
            trimmed.ends_with(&[0xFF, 0xD9])
        }
        // IEND chunk: length 0, type, fixed CRC.
        SourceFormat::Png => {
            tail.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82])
        }
        // The RIFF header states the exact file length.
        SourceFormat::Webp => {
            head.len() >= 8
                && u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])) + 8 == total
        }
        // Trailer byte.
        SourceFormat::Gif => tail.last() == Some(&0x3B),
    }
}

/// The format a client declares by content type, if it is one pixport takes.
pub fn declared_format(content_type: &str) -> Result<SourceFormat> {
    SourceFormat::ALL
        .into_iter()
        .find(|f| f.content_type() == content_type)
        .ok_or_else(|| {
            Error::UnsupportedMediaType(format!(
                "`{content_type}` is not an accepted image type (JPEG, PNG, WebP or GIF)"
            ))
        })
}

const CUT: SniffError = SniffError::Corrupt("header cut short");

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16, with_exif: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        if with_exif > 0 {
            v.extend_from_slice(&[0xFF, 0xE1]);
            v.extend_from_slice(&((with_exif + 2) as u16).to_be_bytes());
            v.extend(std::iter::repeat_n(0u8, with_exif));
        }
        v.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8]);
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        v.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
        v.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    /// The probe of issue 12: a stuffed `FF 00` read as a marker hid a
    /// 65500x65500 frame header from the size check. The resizer's decoder
    /// meets that header first; so does the sniff now, and the second frame
    /// header makes the file corrupt.
    #[test]
    fn stuffed_zero_does_not_hide_a_frame_header() {
        let big = jpeg(65500, 65500, 0);
        let hidden = &big[2..21];
        let mut b = vec![0xFF, 0xD8, 0xFF, 0x00, 0x00, 21];
        b.extend_from_slice(hidden);
        b.extend_from_slice(&jpeg(10, 10, 0)[2..]);
        assert!(
            matches!(probe(&b), Err(SniffError::Corrupt(_))),
            "{:?}",
            probe(&b)
        );
        let mut b = vec![0xFF, 0xD8, 0xFF, 0x00, 0x00, 21];
        b.extend_from_slice(&big[2..]);
        assert_eq!(probe(&b).map(|p| (p.width, p.height)), Ok((65500, 65500)));
    }

    #[test]
    fn frame_header_after_scan_is_corrupt() {
        let mut b = jpeg(10, 10, 0);
        b.truncate(b.len() - 2);
        b.extend_from_slice(&jpeg(60000, 60000, 0)[2..]);
        assert!(matches!(probe(&b), Err(SniffError::Corrupt(_))));
    }

    #[test]
    fn jpeg_dimensions_behind_exif() {
        let b = jpeg(4000, 3000, 60_000);
        assert_eq!(
            probe(&b),
            Ok(Probe {
                format: SourceFormat::Jpeg,
                width: 4000,
                height: 3000
            })
        );
        assert!(is_complete(
            SourceFormat::Jpeg,
            &b,
            &b[b.len() - 16..],
            b.len() as u64
        ));
        let cut = &b[..b.len() - 1];
        assert!(!is_complete(
            SourceFormat::Jpeg,
            cut,
            &cut[cut.len() - 16..],
            cut.len() as u64
        ));
    }

    #[test]
    fn jpeg_header_cut_before_frame_is_corrupt() {
        let b = jpeg(10, 10, 1000);
        assert_eq!(probe(&b[..500]), Err(CUT));
    }

    #[test]
    fn png_gif_webp_dimensions() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&50_000u32.to_be_bytes());
        png.extend_from_slice(&50_000u32.to_be_bytes());
        assert_eq!(
            probe(&png).map(|p| (p.width, p.height)),
            Ok((50_000, 50_000))
        );

        let gif = b"GIF89a\x40\x01\xf0\x00";
        assert_eq!(probe(gif).map(|p| (p.width, p.height)), Ok((320, 240)));

        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0x7F, 0x07, 0x00, 0x37, 0x04, 0x00]);
        assert_eq!(probe(&vp8x).map(|p| (p.width, p.height)), Ok((1920, 1080)));
    }

    #[test]
    fn text_renamed_jpg_is_unsupported() {
        assert_eq!(
            probe(b"hello, I am not a photo"),
            Err(SniffError::Unsupported)
        );
        assert_eq!(probe(b""), Err(SniffError::Unsupported));
    }

    #[test]
    fn zero_dimensions_are_corrupt() {
        assert!(matches!(
            probe(&jpeg(0, 10, 0)),
            Err(SniffError::Corrupt(_))
        ));
    }

    #[test]
    fn webp_completeness_uses_riff_length() {
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&12u32.to_le_bytes());
        b.extend_from_slice(b"WEBPVP8L\0\0\0\0");
        assert!(is_complete(SourceFormat::Webp, &b, &b, b.len() as u64));
        assert!(!is_complete(SourceFormat::Webp, &b, &b, b.len() as u64 + 1));
    }
}
