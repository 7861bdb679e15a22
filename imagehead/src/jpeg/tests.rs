//! Crafted headers, one per rule in the module docs.

use super::*;
use std::vec::Vec;

fn seg(code: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = std::vec![0xFF, code];
    v.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn sof(code: u8, w: u16, h: u16) -> Vec<u8> {
    let mut p = std::vec![8];
    p.extend_from_slice(&h.to_be_bytes());
    p.extend_from_slice(&w.to_be_bytes());
    p.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    seg(code, &p)
}

fn sos() -> Vec<u8> {
    seg(0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])
}

/// Entropy-coded bytes with stuffed zeros and a restart marker, as encoders write.
fn scan_data() -> Vec<u8> {
    std::vec![
        0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0x00, 0x78
    ]
}

fn jpeg(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = std::vec![0xFF, SOI];
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

const EOI_: &[u8] = &[0xFF, EOI];

fn size(b: &[u8]) -> Result<(u16, u16), HeadError> {
    walk(b).map(|w| (w.frame.width, w.frame.height))
}

fn malformed(b: &[u8]) -> bool {
    matches!(walk(b), Err(HeadError::Malformed(_)))
}

#[test]
fn plain_baseline() {
    let b = jpeg(&[
        &seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"),
        &seg(0xDB, &[0; 65]),
        &sof(0xC0, 640, 480),
        &seg(0xC4, &[0; 17]),
        &sos(),
        &scan_data(),
        EOI_,
    ]);
    let w = walk(&b).unwrap();
    assert_eq!(
        (w.frame.width, w.frame.height, w.frame.marker),
        (640, 480, 0xC0)
    );
    assert!(w.complete);
}

#[test]
fn stuffed_zero_is_not_a_marker() {
    // The old probe read `FF 00` as a marker with a "length" of 0x0013 and
    // skipped the 65500x65500 SOF behind it to the 10x10 one; the decoder
    // reads on and meets the big one first. Both now see the big one first,
    // and the second frame header is refused.
    let hidden = sof(0xC0, 65500, 65500);
    let mut stuffed = std::vec![0xFF, 0x00, 0x00, (hidden.len() + 2) as u8];
    stuffed.extend_from_slice(&hidden);
    let b = jpeg(&[&stuffed, &sof(0xC0, 10, 10), &sos(), &scan_data(), EOI_]);
    assert!(malformed(&b), "{:?}", walk(&b));
    // Without the second SOF the hidden one is simply the frame: its real
    // size goes to the limits.
    let b = jpeg(&[&stuffed, &sos(), &scan_data(), EOI_]);
    assert_eq!(size(&b), Ok((65500, 65500)));
}

#[test]
fn fill_bytes_before_markers() {
    let mut filled = std::vec![0xFF, 0xFF, 0xFF];
    filled.extend_from_slice(&sof(0xC2, 33, 44));
    let b = jpeg(&[
        &filled,
        &[0xFF, 0xFF],
        &sos(),
        &scan_data(),
        &[0xFF, 0xFF, 0xFF, EOI],
    ]);
    let w = walk(&b).unwrap();
    assert_eq!(
        (w.frame.width, w.frame.height, w.frame.marker),
        (33, 44, 0xC2)
    );
    assert!(w.complete);
}

#[test]
fn several_frame_headers_are_refused() {
    let b = jpeg(&[&sof(0xC0, 10, 10), &sof(0xC0, 10, 10), &sos(), EOI_]);
    assert!(malformed(&b));
    let b = jpeg(&[&sof(0xC0, 10, 10), &sof(0xC2, 60000, 60000), &sos(), EOI_]);
    assert!(malformed(&b));
}

#[test]
fn frame_header_after_a_scan_is_refused() {
    // In the entropy-coded data, between scans, and hidden behind a stuffed zero.
    for after in [
        [sof(0xC0, 65500, 65500)].concat(),
        [seg(0xC4, &[0; 17]), sof(0xC1, 65500, 65500)].concat(),
        [std::vec![0xFF, 0x00, 0xFF, 0xFF], sof(0xC2, 100, 100)].concat(),
    ] {
        let b = jpeg(&[
            &sof(0xC0, 10, 10),
            &sos(),
            &scan_data(),
            &after,
            &sos(),
            EOI_,
        ]);
        assert!(malformed(&b), "{:?}", walk(&b));
    }
}

#[test]
fn restart_markers_belong_in_scans() {
    let b = jpeg(&[&sof(0xC0, 10, 10), &[0xFF, 0xD3], &sos(), EOI_]);
    assert!(malformed(&b));
    let mut data = Vec::new();
    for n in 0..8 {
        data.extend_from_slice(&[0x11, 0xFF, 0xD0 + n]);
    }
    let b = jpeg(&[&sof(0xC0, 10, 10), &seg(0xDD, &[0, 4]), &sos(), &data, EOI_]);
    assert_eq!(size(&b), Ok((10, 10)));
}

#[test]
fn dnl_is_refused() {
    let b = jpeg(&[
        &sof(0xC0, 10, 0),
        &sos(),
        &scan_data(),
        &seg(DNL, &[0, 10]),
        EOI_,
    ]);
    assert!(malformed(&b));
    let b = jpeg(&[
        &sof(0xC0, 10, 10),
        &sos(),
        &scan_data(),
        &seg(DNL, &[0xFF, 0xDC]),
        EOI_,
    ]);
    assert!(malformed(&b));
}

#[test]
fn hierarchical_is_unsupported() {
    let b = jpeg(&[
        &seg(0xDE, &sof(0xC0, 10, 10)[4..]),
        &sof(0xC5, 10, 10),
        &sos(),
        EOI_,
    ]);
    assert_eq!(
        walk(&b),
        Err(HeadError::UnsupportedFeature("hierarchical JPEG"))
    );
}

#[test]
fn segment_lengths() {
    // Under 2.
    let b = jpeg(&[&[0xFF, 0xE0, 0x00, 0x01], &sof(0xC0, 10, 10), &sos(), EOI_]);
    assert!(malformed(&b));
    // Past the end before the frame header: the header is cut short.
    let b = jpeg(&[&[0xFF, 0xE1, 0xFF, 0xF0, 0, 0, 0]]);
    assert_eq!(walk(&b), Err(HeadError::Truncated));
    // A COM longer than its declared length: its tail is skipped as garbage.
    let mut com = seg(0xFE, b"hello");
    com.extend_from_slice(b" world, no FF here");
    let b = jpeg(&[&com, &sof(0xC0, 12, 34), &sos(), EOI_]);
    assert_eq!(size(&b), Ok((12, 34)));
    // Frame header length that does not match its component count.
    let mut bad = sof(0xC0, 10, 10);
    bad[3] += 3;
    bad.extend_from_slice(&[4, 0x11, 0]);
    bad[13] = 3;
    let b = jpeg(&[&bad, &sos(), EOI_]);
    assert!(malformed(&b), "{:?}", walk(&b));
}

#[test]
fn truncated_app14_is_tolerated() {
    // Pillow's truncated_app14.jpg: an Adobe APP14 whose length says 11, so
    // the transform flags sit after the segment; libjpeg skips them.
    let mut app14 = std::vec![0xFF, 0xEE, 0x00, 0x0B];
    app14.extend_from_slice(b"Adobe\0\x64\x80\x00\x00\x00\x01");
    let b = jpeg(&[&app14, &sof(0xC0, 64, 48), &sos(), &scan_data(), EOI_]);
    assert_eq!(size(&b), Ok((64, 48)));
}

#[test]
fn missing_eoi_after_scans() {
    let b = jpeg(&[&sof(0xC0, 64, 48), &sos(), &scan_data()]);
    let w = walk(&b).unwrap();
    assert_eq!((w.frame.width, w.complete), (64, false));
    // But not before the first scan.
    let b = jpeg(&[&sof(0xC0, 64, 48)]);
    assert_eq!(walk(&b), Err(HeadError::Truncated));
    let b = jpeg(&[&sof(0xC0, 64, 48), EOI_]);
    assert!(malformed(&b));
}

#[test]
fn markers_not_allowed() {
    for code in [0x01, 0x02, 0xBF, 0xC8, 0xF0, 0xFD, SOI] {
        let b = jpeg(&[&sof(0xC0, 10, 10), &[0xFF, code], &sos(), EOI_]);
        assert!(malformed(&b), "code {code:02X}");
    }
    let b = jpeg(&[&sos(), &sof(0xC0, 10, 10), EOI_]);
    assert!(malformed(&b));
}

#[test]
fn zero_sizes_and_sampling() {
    assert!(malformed(&jpeg(&[&sof(0xC0, 0, 10), &sos(), EOI_])));
    let mut bad = sof(0xC0, 10, 10);
    bad[11] = 0x51;
    assert!(malformed(&jpeg(&[&bad, &sos(), EOI_])));
}

#[test]
fn first_exif_segment() {
    let b = jpeg(&[
        &seg(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>"),
        &seg(0xE1, b"Exif\0\0first"),
        &seg(0xE1, b"Exif\0\0second"),
        &sof(0xC0, 10, 10),
        &sos(),
        EOI_,
    ]);
    assert_eq!(walk(&b).unwrap().exif, Some(&b"Exif\0\0first"[..]));
}

#[test]
fn bytes_after_eoi_are_not_read() {
    // An MPO / Ultra HDR JPEG carries a second picture after EOI.
    let second = jpeg(&[&sof(0xC0, 60000, 60000), &sos(), EOI_]);
    let b = jpeg(&[&sof(0xC0, 10, 10), &sos(), &scan_data(), EOI_, &second]);
    assert_eq!(size(&b), Ok((10, 10)));
}

#[test]
fn find_ff_matches_a_plain_search() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut b = std::vec![0u8; 4096];
    for x in &mut b {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *x = if state.is_multiple_of(61) {
            0xFF
        } else {
            (state >> 8) as u8 & 0xFE
        };
    }
    for i in 0..b.len() {
        assert_eq!(
            find_ff(&b, i),
            b[i..].iter().position(|&x| x == 0xFF).map(|p| i + p)
        );
    }
}

/// Seeded mutations of a valid file: every walk ends (no panic, no loop), and
/// whatever it accepts has a frame header that the mutated bytes contain.
#[test]
fn mutations_never_panic() {
    let base = jpeg(&[
        &seg(0xE1, b"Exif\0\0MM\0*\0\0\0\x08"),
        &seg(0xDB, &[0; 65]),
        &sof(0xC0, 300, 200),
        &seg(0xC4, &[0; 17]),
        &sos(),
        &scan_data(),
        EOI_,
    ]);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % b.len();
            match next() % 3 {
                0 => b[at] = next() as u8,
                1 => b[at] = 0xFF,
                _ => b.truncate(at.max(2)),
            }
        }
        if let Ok(w) = walk(&b) {
            let h = w.frame.height.to_be_bytes();
            let wd = w.frame.width.to_be_bytes();
            assert!(b.windows(4).any(|x| x == [h[0], h[1], wd[0], wd[1]]));
        }
    }
}
