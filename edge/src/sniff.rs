//! What the uploaded bytes really are, from their own headers.
//!
//! The client's content type and file name are not trusted: a text file named
//! `photo.jpg` must be refused before anything is stored. Only the first bytes
//! are needed for the format and dimensions, so this runs on the head of the
//! stream; [`is_complete`] checks the tail once the last byte is in, which
//! catches truncated uploads without decoding pixels (that happens later, in
//! the resizer's sandbox).

/// Image formats pixport accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
            Format::Gif => "image/gif",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Gif => "gif",
        }
    }
}

/// Format and pixel size read from an image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
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

/// Identifies the format by magic bytes.
pub fn format_of(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else {
        None
    }
}

/// Reads format and dimensions from the first bytes of a file.
///
/// `head` should hold at least the first 256 KiB (or the whole file if
/// smaller): JPEG headers can sit behind large EXIF segments.
pub fn probe(head: &[u8]) -> Result<Probe, SniffError> {
    let format = format_of(head).ok_or(SniffError::Unsupported)?;
    let (width, height) = match format {
        Format::Jpeg => jpeg_size(head)?,
        Format::Png => png_size(head)?,
        Format::WebP => webp_size(head)?,
        Format::Gif => gif_size(head)?,
    };
    if width == 0 || height == 0 {
        return Err(SniffError::Corrupt("zero width or height"));
    }
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// Whether the file ends where its format says it must; `tail` is the last
/// bytes of the file (at least 12), `total` the whole length.
pub fn is_complete(format: Format, head: &[u8], tail: &[u8], total: u64) -> bool {
    match format {
        // EOI marker; some encoders pad with zeros after it.
        Format::Jpeg => {
            let trimmed = tail
                .iter()
                .rposition(|&b| b != 0)
                .map_or(&tail[..0], |i| &tail[..=i]);
            trimmed.ends_with(&[0xFF, 0xD9])
        }
        // IEND chunk: length 0, type, fixed CRC.
        Format::Png => {
            tail.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82])
        }
        // The RIFF header states the exact file length.
        Format::WebP => {
            head.len() >= 8
                && u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])) + 8 == total
        }
        // Trailer byte.
        Format::Gif => tail.last() == Some(&0x3B),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(
        u32::from(*b.get(at)?) | u32::from(*b.get(at + 1)?) << 8 | u32::from(*b.get(at + 2)?) << 16,
    )
}

const CUT: SniffError = SniffError::Corrupt("header cut short");

fn jpeg_size(b: &[u8]) -> Result<(u32, u32), SniffError> {
    let mut i = 2;
    loop {
        // Skip fill bytes before a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if *b.get(i).ok_or(CUT)? != 0xFF {
            return Err(SniffError::Corrupt("bad JPEG marker"));
        }
        let marker = *b.get(i + 1).ok_or(CUT)?;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            0xD9 | 0xDA => return Err(SniffError::Corrupt("no frame header before scan")),
            // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let h = be16(b, i + 5).ok_or(CUT)?;
                let w = be16(b, i + 7).ok_or(CUT)?;
                return Ok((w, h));
            }
            _ => {
                let len = be16(b, i + 2).ok_or(CUT)? as usize;
                if len < 2 {
                    return Err(SniffError::Corrupt("bad JPEG segment length"));
                }
                i += 2 + len;
            }
        }
    }
}

fn png_size(b: &[u8]) -> Result<(u32, u32), SniffError> {
    if b.get(12..16) != Some(b"IHDR") {
        return Err(if b.len() < 16 {
            CUT
        } else {
            SniffError::Corrupt("PNG without IHDR")
        });
    }
    Ok((be32(b, 16).ok_or(CUT)?, be32(b, 20).ok_or(CUT)?))
}

fn gif_size(b: &[u8]) -> Result<(u32, u32), SniffError> {
    Ok((le16(b, 6).ok_or(CUT)?, le16(b, 8).ok_or(CUT)?))
}

fn webp_size(b: &[u8]) -> Result<(u32, u32), SniffError> {
    match b.get(12..16).ok_or(CUT)? {
        b"VP8 " => {
            // Frame tag (3 bytes) + start code 9d 01 2a, then 14-bit sizes.
            if b.get(23..26) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err(SniffError::Corrupt("bad VP8 start code"));
            }
            Ok((
                le16(b, 26).ok_or(CUT)? & 0x3FFF,
                le16(b, 28).ok_or(CUT)? & 0x3FFF,
            ))
        }
        b"VP8L" => {
            if b.get(20) != Some(&0x2F) {
                return Err(SniffError::Corrupt("bad VP8L signature"));
            }
            let bits = u32::from_le_bytes(b.get(21..25).ok_or(CUT)?.try_into().map_err(|_| CUT)?);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Ok((le24(b, 24).ok_or(CUT)? + 1, le24(b, 27).ok_or(CUT)? + 1)),
        _ => Err(SniffError::Corrupt("unknown WebP chunk")),
    }
}

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
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn jpeg_dimensions_behind_exif() {
        let b = jpeg(4000, 3000, 60_000);
        assert_eq!(
            probe(&b),
            Ok(Probe {
                format: Format::Jpeg,
                width: 4000,
                height: 3000
            })
        );
        assert!(is_complete(
            Format::Jpeg,
            &b,
            &b[b.len() - 16..],
            b.len() as u64
        ));
        let cut = &b[..b.len() - 1];
        assert!(!is_complete(
            Format::Jpeg,
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
        assert!(is_complete(Format::WebP, &b, &b, b.len() as u64));
        assert!(!is_complete(Format::WebP, &b, &b, b.len() as u64 + 1));
    }
}
