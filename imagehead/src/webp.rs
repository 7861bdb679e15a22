//! WebP (RIFF): size from the VP8, VP8L or VP8X chunk, EXIF from its chunk.

use crate::HeadError;
use crate::bytes::{le16, le24, le32};

const CUT: HeadError = HeadError::Truncated;

/// The size a VP8 (lossy) or VP8L (lossless) bitstream declares; `at` is its
/// chunk's payload.
fn bitstream_size(kind: &[u8], b: &[u8], at: usize) -> Result<(u32, u32), HeadError> {
    match kind {
        b"VP8 " => {
            // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit sizes
            // (the top two bits are an upscale hint, not decoded size).
            if b.get(at + 3..at + 6).ok_or(CUT)? != [0x9D, 0x01, 0x2A] {
                return Err(HeadError::Malformed("bad VP8 start code"));
            }
            Ok((
                u32::from(le16(b, at + 6).ok_or(CUT)? & 0x3FFF),
                u32::from(le16(b, at + 8).ok_or(CUT)? & 0x3FFF),
            ))
        }
        b"VP8L" => {
            if *b.get(at).ok_or(CUT)? != 0x2F {
                return Err(HeadError::Malformed("bad VP8L signature"));
            }
            let bits = le32(b, at + 1).ok_or(CUT)?;
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => Err(HeadError::Malformed("unknown WebP chunk")),
    }
}

/// Chunks after the RIFF header: (fourcc, payload offset, payload length).
fn chunks(b: &[u8]) -> impl Iterator<Item = (&[u8], usize, usize)> {
    let mut i = 12usize;
    core::iter::from_fn(move || {
        let kind = b.get(i..i + 4)?;
        let len = usize::try_from(le32(b, i + 4)?).ok()?;
        let at = i + 8;
        // Payloads are padded to an even length.
        i = at.checked_add(len)?.checked_add(len & 1)?;
        Some((kind, at, len))
    })
}

pub fn header(b: &[u8]) -> Result<(u32, u32, Option<&[u8]>), HeadError> {
    let kind = b.get(12..16).ok_or(CUT)?;
    if kind != b"VP8X" {
        let (w, h) = bitstream_size(kind, b, 20)?;
        return Ok((w, h, None));
    }
    let flags = *b.get(20).ok_or(CUT)?;
    let w = le24(b, 24).ok_or(CUT)? + 1;
    let h = le24(b, 27).ok_or(CUT)? + 1;
    let animated = flags & 0x02 != 0;
    let mut exif = None;
    for (kind, at, len) in chunks(b) {
        match kind {
            // A still image's bitstream must be the canvas' size: the decoder
            // allocates the bitstream's, and the limits saw the canvas.
            b"VP8 " | b"VP8L" if !animated && bitstream_size(kind, b, at)? != (w, h) => {
                return Err(HeadError::Malformed(
                    "WebP bitstream size differs from its canvas",
                ));
            }
            b"EXIF" if exif.is_none() => exif = b.get(at..at + len),
            _ => {}
        }
    }
    Ok((w, h, exif))
}
