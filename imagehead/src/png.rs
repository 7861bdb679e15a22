//! PNG: IHDR for the size, `eXIf` for orientation.

use crate::HeadError;
use crate::bytes::be32;

pub const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Size from IHDR (which must come first, 13 bytes long), and the first
/// `eXIf` chunk found before IEND or the end of the bytes (Pillow reads one
/// after IDAT too).
pub fn header(b: &[u8]) -> Result<(u32, u32, Option<&[u8]>), HeadError> {
    if b.len() < 24 {
        return Err(HeadError::Truncated);
    }
    if be32(b, 8) != Some(13) || &b[12..16] != b"IHDR" {
        return Err(HeadError::Malformed("PNG without IHDR first"));
    }
    let (w, h) = (
        be32(b, 16).ok_or(HeadError::Truncated)?,
        be32(b, 20).ok_or(HeadError::Truncated)?,
    );
    // Signature, then chunks: length, type, data, CRC.
    let mut i = SIGNATURE.len();
    let mut exif = None;
    while let (Some(len), Some(kind)) = (be32(b, i), b.get(i + 4..i + 8)) {
        let Some(data) = usize::try_from(len)
            .ok()
            .and_then(|len| b.get(i + 8..(i + 8).checked_add(len)?))
        else {
            break;
        };
        match kind {
            b"eXIf" => {
                exif = Some(data);
                break;
            }
            b"IEND" => break,
            _ => {}
        }
        i += 12 + data.len();
    }
    Ok((w, h, exif))
}
