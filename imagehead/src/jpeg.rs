//! JPEG marker segments, walked by ITU T.81 Annex B and as libjpeg (and the
//! resizer's jpeg-decoder) tolerate them.
//!
//! The rules, in the order a decoder meets them:
//! - A marker is `FF` then a code that is neither `00` nor `FF`. Any number
//!   of `FF` fill bytes may precede the code (B.1.1.2); `FF 00` is a stuffed
//!   zero, never a marker.
//! - Bytes between segments that are not a marker are skipped, as libjpeg
//!   ("extraneous bytes before marker") and jpeg-decoder do: a segment whose
//!   length field is shorter than its content (Pillow's `truncated_app14.jpg`)
//!   leaves its tail to be skipped so. Every parser here therefore finds the
//!   same next marker the decoder finds.
//! - Segments with a length (APPn, COM, DQT, DHT, DRI, DAC, SOFn, SOS) are
//!   skipped by it; a length under 2 is malformed.
//! - One frame header (SOFn) per image, before the first scan: a second SOF,
//!   or one after a scan, is malformed (libjpeg: "two SOF markers"), so no
//!   decoder can meet a frame other than the one whose size was checked.
//!   Differential SOFs and DHP/EXP (hierarchical mode) are unsupported.
//! - A height of 0 leaves the height to a DNL marker after the first scan,
//!   unknown when the limits are checked: malformed, as is any DNL.
//! - RSTn (and stuffed zeros) belong inside entropy-coded data only.
//! - TEM, RES, JPGn and a second SOI are not allowed in an image (the decoder
//!   refuses them too).
//!
//! With the whole file, the walk goes on through the scans to EOI, so a frame
//! header hidden after the first scan is found before any decoder runs. Bytes
//! ending after a scan has begun are accepted here (the edge passes a head,
//! and a file missing only its EOI is decodable); whether the scans
//! themselves are complete is the decoder's to say. Bytes after EOI (an MPO
//! or Ultra HDR second picture) are not looked at, as decoders do not.

use crate::HeadError;
use crate::bytes::be16;

/// A frame header (SOFn), the one the decoder will decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The SOF marker's code (`0xC0` baseline, `0xC2` progressive, ...).
    pub marker: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: u8,
}

/// What a walk over a JPEG's segments found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk<'a> {
    pub frame: Frame,
    /// The first APP1 `Exif\0\0` segment's payload (prefix included), as
    /// Pillow and libexif take the first one.
    pub exif: Option<&'a [u8]>,
    /// EOI was reached; false when the bytes ended inside the scans.
    pub complete: bool,
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DNL: u8 = 0xDC;
const APP1: u8 = 0xE1;

/// A frame header's code: SOF0..SOF15 but DHT (C4), JPG (C8), DAC (CC).
fn is_sof(code: u8) -> bool {
    matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

/// Hierarchical coding: differential SOFs (5-7, 13-15), DHP, EXP.
fn is_hierarchical(code: u8) -> bool {
    matches!(code, 0xC5..=0xC7 | 0xCD..=0xCF | 0xDE | 0xDF)
}

fn is_rst(code: u8) -> bool {
    matches!(code, 0xD0..=0xD7)
}

/// Segments with a length that carry tables or data, not structure.
fn is_skippable(code: u8) -> bool {
    matches!(code, 0xC4 | 0xCC | 0xDB | 0xDD | 0xE0..=0xEF | 0xFE)
}

/// Index of the first `FF` at or after `i`, eight bytes at a time (the scans
/// are most of a file and hold few `FF`s).
fn find_ff(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i.checked_add(8)?) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        // A zero byte in !word is an FF in word.
        let inv = !u64::from_le_bytes(word);
        if inv.wrapping_sub(ONES) & !inv & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&x| x == 0xFF).map(|p| i + p)
}

/// The next marker at or after `i`: its code and the index after it. Skips
/// non-marker bytes, fill `FF`s and stuffed `FF 00`; inside a scan
/// (`in_scan`) also RSTn. `None` when the bytes end first.
fn next_marker(b: &[u8], mut i: usize, in_scan: bool) -> Option<(u8, usize)> {
    loop {
        i = find_ff(b, i)?;
        // Fill bytes: any run of FF, the last one starts the marker.
        while *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        let code = *b.get(i + 1)?;
        i += 2;
        if code == 0x00 || (in_scan && is_rst(code)) {
            continue;
        }
        return Some((code, i));
    }
}

/// The payload of the segment whose length field starts at `i`, and the index
/// after it; `None` when the bytes end inside it.
fn segment(b: &[u8], i: usize) -> Result<Option<(&[u8], usize)>, HeadError> {
    let Some(len) = be16(b, i) else {
        return Ok(None);
    };
    let len = usize::from(len);
    if len < 2 {
        return Err(HeadError::Malformed("JPEG segment length under 2"));
    }
    let end = i + len;
    Ok(b.get(i + 2..end).map(|p| (p, end)))
}

fn frame(marker: u8, p: &[u8]) -> Result<Frame, HeadError> {
    let bad = HeadError::Malformed;
    if p.len() < 6 {
        return Err(bad("JPEG frame header too short"));
    }
    let precision = p[0];
    let height = u16::from_be_bytes([p[1], p[2]]);
    let width = u16::from_be_bytes([p[3], p[4]]);
    let components = p[5];
    if components == 0 || p.len() != 6 + 3 * usize::from(components) {
        return Err(bad(
            "JPEG frame header length does not match its components",
        ));
    }
    if height == 0 {
        return Err(bad(
            "JPEG frame height 0 (left to a DNL marker) is not accepted",
        ));
    }
    if width == 0 {
        return Err(bad("JPEG frame width 0"));
    }
    for c in p[6..].chunks_exact(3) {
        let (h, v) = (c[1] >> 4, c[1] & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(bad("JPEG sampling factor outside 1..=4"));
        }
    }
    Ok(Frame {
        marker,
        precision,
        width,
        height,
        components,
    })
}

/// Walks a JPEG (starting with SOI) by the rules above.
pub fn walk(b: &[u8]) -> Result<Walk<'_>, HeadError> {
    if !b.starts_with(&[0xFF, SOI]) {
        return Err(HeadError::Malformed("JPEG without SOI"));
    }
    let mut i = 2;
    let mut found: Option<Frame> = None;
    let mut exif = None;
    let mut in_scans = false;
    // Bytes ending inside the scans are fine (a head, or no EOI); before the
    // first scan the header is cut short.
    let end = |found: Option<Frame>, exif, in_scans: bool| match found {
        Some(frame) if in_scans => Ok(Walk {
            frame,
            exif,
            complete: false,
        }),
        _ => Err(HeadError::Truncated),
    };
    loop {
        let Some((code, at)) = next_marker(b, i, in_scans) else {
            return end(found, exif, in_scans);
        };
        i = at;
        if is_hierarchical(code) {
            return Err(HeadError::UnsupportedFeature("hierarchical JPEG"));
        }
        if is_sof(code) {
            if in_scans {
                return Err(HeadError::Malformed("JPEG frame header after a scan"));
            }
            if found.is_some() {
                return Err(HeadError::Malformed("JPEG with more than one frame header"));
            }
            let Some((p, next)) = segment(b, i)? else {
                return Err(HeadError::Truncated);
            };
            found = Some(frame(code, p)?);
            i = next;
            continue;
        }
        match code {
            SOS => {
                let Some(frame) = found else {
                    return Err(HeadError::Malformed("JPEG scan before its frame header"));
                };
                let Some((p, next)) = segment(b, i)? else {
                    return end(found, exif, in_scans);
                };
                let n = p.first().copied().unwrap_or(0);
                if n == 0 || n > frame.components || p.len() != 4 + 2 * usize::from(n) {
                    return Err(HeadError::Malformed("JPEG scan header length"));
                }
                in_scans = true;
                i = next;
            }
            EOI => {
                let Some(frame) = found.filter(|_| in_scans) else {
                    return Err(HeadError::Malformed("JPEG ends before its first scan"));
                };
                return Ok(Walk {
                    frame,
                    exif,
                    complete: true,
                });
            }
            c if is_skippable(c) => {
                let Some((p, next)) = segment(b, i)? else {
                    return end(found, exif, in_scans);
                };
                if c == APP1 && exif.is_none() && !in_scans && p.starts_with(b"Exif\0\0") {
                    exif = Some(p);
                }
                i = next;
            }
            c if is_rst(c) => {
                return Err(HeadError::Malformed("JPEG restart marker outside a scan"));
            }
            DNL => {
                return Err(HeadError::Malformed("JPEG DNL marker is not accepted"));
            }
            _ => return Err(HeadError::Malformed("JPEG marker not allowed here")),
        }
    }
}

#[cfg(test)]
mod tests;
