//! Crafted JPEG headers (issue 12): each is refused as `over_limits` or
//! `corrupt` before any pixel buffer exists, in milliseconds.

use std::time::{Duration, Instant};

use resizer_wasi::decode;
use resizer_wasi::probe::{Probe, SourceFormat};
use resizer_wasi::{ImageLimits, Options, run};

/// A real baseline JPEG from a seeded pattern.
fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut state = 0x1234_5678u32;
    let px: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
        .map(|i| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((i / 3 % 97) as u8).wrapping_add((state >> 28) as u8)
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn sof(code: u8, w: u16, h: u16) -> Vec<u8> {
    let mut v = vec![0xFF, code, 0, 17, 8];
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    v
}

/// Index of the first `FF code` marker.
fn marker_at(b: &[u8], code: u8) -> usize {
    b.windows(2).position(|w| w == [0xFF, code]).unwrap()
}

fn insert(b: &[u8], at: usize, what: &[u8]) -> Vec<u8> {
    [&b[..at], what, &b[at..]].concat()
}

/// Refused from the header means milliseconds; decoding the hidden frame
/// would take minutes and gigabytes. The bound is loose on purpose, so a
/// debug build on a loaded machine never trips it, yet any real decode does.
const HEADER_ONLY: Duration = Duration::from_secs(10);

fn class(input: &[u8]) -> &'static str {
    let t = Instant::now();
    let r = run(input, &Options::default());
    assert!(t.elapsed() < HEADER_ONLY, "took {:?}", t.elapsed());
    match r {
        Ok(_) => "ok",
        Err(e) => e.class(),
    }
}

#[test]
fn stuffed_zero_hiding_a_huge_frame() {
    let base = jpeg(64, 48);
    let hidden = sof(0xC0, 65500, 65500);
    let mut stuffed = vec![0xFF, 0x00, 0x00, (hidden.len() + 2) as u8];
    stuffed.extend_from_slice(&hidden);
    // Before the real frame header: two frame headers.
    let b = insert(&base, marker_at(&base, 0xC0), &stuffed);
    assert!(b.len() < 2048);
    assert_eq!(class(&b), "corrupt");
    // In place of it: the hidden frame is the frame, over the limits.
    let at = marker_at(&base, 0xC0);
    let b = [&base[..at], &stuffed, &base[at + 19..]].concat();
    assert_eq!(class(&b), "over_limits");
}

#[test]
fn frame_header_after_the_scan() {
    let base = jpeg(64, 48);
    let eoi = base.len() - 2;
    for code in [0xC0, 0xC1, 0xC2] {
        let b = insert(&base, eoi, &sof(code, 65500, 65500));
        assert_eq!(class(&b), "corrupt", "SOF{code:02X}");
    }
}

#[test]
fn several_frame_headers() {
    let base = jpeg(64, 48);
    let at = marker_at(&base, 0xC0);
    let b = insert(&base, at, &sof(0xC0, 64, 48));
    assert_eq!(class(&b), "corrupt");
    let b = insert(&base, at, &sof(0xC2, 60000, 60000));
    assert_eq!(class(&b), "corrupt");
}

#[test]
fn dnl_and_restart_outside_scans() {
    let base = jpeg(64, 48);
    let at = marker_at(&base, 0xC0);
    // Height 0: left to a DNL marker.
    let mut b = base.clone();
    b[at + 5] = 0;
    b[at + 6] = 0;
    assert_eq!(class(&b), "corrupt");
    let b = insert(&base, base.len() - 2, &[0xFF, 0xDC, 0, 4, 0, 48]);
    assert_eq!(class(&b), "corrupt");
    let b = insert(&base, at, &[0xFF, 0xD3]);
    assert_eq!(class(&b), "corrupt");
}

#[test]
fn bad_segment_lengths() {
    let base = jpeg(64, 48);
    let at = marker_at(&base, 0xC0);
    let b = insert(&base, at, &[0xFF, 0xE3, 0, 1]);
    assert_eq!(class(&b), "corrupt");
    let b = [&base[..at], &[0xFF, 0xFE, 0xFF, 0xF0][..], b"cut"].concat();
    assert_eq!(class(&b), "corrupt");
}

#[test]
fn hierarchical_is_unsupported() {
    let base = jpeg(64, 48);
    let at = marker_at(&base, 0xC0);
    let mut dhp = sof(0xC0, 64, 48);
    dhp[1] = 0xDE;
    let b = insert(&base, at, &dhp);
    assert_eq!(class(&b), "unsupported_format");
}

/// The decode path's own check, for a header the probe would have read
/// differently: the decoder refuses a frame over the limits as it parses it,
/// and one within them but not the probed one, in release builds too.
#[test]
fn decoder_checks_the_frame_it_decodes() {
    let claims_small = Probe {
        format: SourceFormat::Jpeg,
        width: 10,
        height: 10,
        orientation: 1,
    };
    let base = jpeg(64, 48);
    let at = marker_at(&base, 0xC0);
    let huge = [&base[..at], &sof(0xC0, 65500, 65500), &base[at + 19..]].concat();
    let t = Instant::now();
    let e = decode::decode(&huge, &claims_small, &[320], &ImageLimits::DEFAULT).unwrap_err();
    assert_eq!(e.class(), "over_limits", "{e}");
    let e = decode::decode(&base, &claims_small, &[320], &ImageLimits::DEFAULT).unwrap_err();
    assert_eq!(e.class(), "corrupt", "{e}");
    assert!(t.elapsed() < HEADER_ONLY);
}

#[test]
fn intact_pictures_with_damaged_framing_decode() {
    let base = jpeg(64, 48);
    let at = marker_at(&base, 0xC0);
    // Pillow's truncated_app14.jpg: APP14 length 11, its tail left between segments.
    let mut app14 = vec![0xFF, 0xEE, 0x00, 0x0B];
    app14.extend_from_slice(b"Adobe\0\x64\x80\x00\x00\x00\x01");
    let b = insert(&base, at, &app14);
    assert_eq!(class(&b), "ok");
    // A COM shorter than its text, and fill bytes before a marker.
    let mut com = vec![0xFF, 0xFE, 0x00, 0x04, b'h', b'i'];
    com.extend_from_slice(b" there");
    com.extend_from_slice(&[0xFF, 0xFF]);
    let b = insert(&base, at, &com);
    assert_eq!(class(&b), "ok");
}

fn progressive_jpeg(w: u16, h: u16) -> Vec<u8> {
    let px: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
    enc.set_progressive(true);
    enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

/// Output variants of a run, to compare two inputs' pictures.
fn payloads(input: &[u8]) -> Vec<Vec<u8>> {
    run(input, &Options::default()).unwrap().payloads
}

#[test]
fn missing_eoi_after_complete_scans_decodes_the_same() {
    for full in [jpeg(400, 300), progressive_jpeg(400, 300)] {
        assert!(full.ends_with(&[0xFF, 0xD9]));
        let no_eoi = &full[..full.len() - 2];
        assert_eq!(class(no_eoi), "ok");
        assert_eq!(payloads(no_eoi), payloads(&full));
    }
}

#[test]
fn scans_cut_short_stay_corrupt() {
    for full in [jpeg(400, 300), progressive_jpeg(400, 300)] {
        let sos = marker_at(&full, 0xDA);
        for cut in [sos + 40, (sos + full.len()) / 2, full.len() - 40] {
            assert_eq!(
                class(&full[..cut]),
                "corrupt",
                "cut at {cut} of {}",
                full.len()
            );
        }
    }
    // A progressive file cut at a scan boundary lacks later scans.
    let full = progressive_jpeg(400, 300);
    let starts: Vec<usize> = full
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == [0xFF, 0xDA])
        .map(|(i, _)| i)
        .collect();
    assert!(starts.len() > 2);
    for &at in &starts[1..] {
        assert_eq!(class(&full[..at]), "corrupt", "cut before the scan at {at}");
    }
}
