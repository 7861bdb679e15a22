//! What a page paints before the image arrives: a ThumbHash, a BlurHash and
//! the dominant colour.
//!
//! They are computed from the smallest variant's pixels (already resized,
//! oriented and in the colour space the variants are written in), box-filtered
//! to at most 100 x 100, so they cost a few milliseconds and never a second
//! decode. ThumbHash is given as standard base64 (what its JS decoder takes).

use base64::Engine;
use serde::Serialize;

use crate::decode::{Layout, Pixels};
use crate::error::{Error, Result};

/// ThumbHash's encoder accepts at most this many pixels on a side.
const MAX_SIDE: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    /// ThumbHash bytes, standard base64 with padding.
    pub thumbhash: String,
    /// BlurHash with 4 x 3 components (3 x 4 for a portrait image).
    pub blurhash: String,
    /// `#rrggbb`: the mean of the most common colour bucket among opaque pixels.
    pub dominant_color: String,
}

/// Placeholders for a `w` x `h` image in `layout`.
pub fn compute(pixels: &Pixels, w: u32, h: u32, layout: Layout) -> Result<Placeholder> {
    let rgba = to_rgba(pixels, layout);
    let (tw, th) = fit(w, h);
    let small = box_shrink(&rgba, w, h, tw, th);
    let thumb = thumbhash::rgba_to_thumb_hash(tw as usize, th as usize, &small);
    let (cx, cy) = if th > tw { (3, 4) } else { (4, 3) };
    let blurhash = blurhash::encode(cx, cy, tw, th, &small)
        .map_err(|e| Error::Internal(format!("blurhash: {e}")))?;
    let [r, g, b] = dominant(&small);
    Ok(Placeholder {
        thumbhash: base64::engine::general_purpose::STANDARD.encode(thumb),
        blurhash,
        dominant_color: format!("#{r:02x}{g:02x}{b:02x}"),
    })
}

fn to_rgba(pixels: &Pixels, layout: Layout) -> Vec<u8> {
    let (px, layout) = match pixels {
        Pixels::Planar(ycc) => (ycc.to_rgb(), Layout::Rgb),
        Pixels::Packed(px) => (px.clone(), layout),
    };
    match layout {
        Layout::Rgba => px,
        Layout::Rgb => px
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        Layout::Gray => px.iter().flat_map(|&v| [v, v, v, 255]).collect(),
    }
}

/// The size within `MAX_SIDE` x `MAX_SIDE` keeping the aspect ratio, each side at least 1.
fn fit(w: u32, h: u32) -> (u32, u32) {
    let (w, h) = (w.max(1), h.max(1));
    if w <= MAX_SIDE && h <= MAX_SIDE {
        return (w, h);
    }
    let scale = f64::from(MAX_SIDE) / f64::from(w.max(h));
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, MAX_SIDE);
    (side(w), side(h))
}

/// Area average; colour weighted by alpha so transparent pixels (whose RGB
/// is often garbage) do not tint their neighbours.
fn box_shrink(rgba: &[u8], w: u32, h: u32, tw: u32, th: u32) -> Vec<u8> {
    let (w, h, tw, th) = (w as usize, h as usize, tw as usize, th as usize);
    let span = |o: usize, n: usize, tn: usize| {
        let start = o * n / tn;
        (start, ((o + 1) * n / tn).max(start + 1).min(n))
    };
    let mut out = Vec::with_capacity(tw * th * 4);
    for oy in 0..th {
        let (y0, y1) = span(oy, h, th);
        for ox in 0..tw {
            let (x0, x1) = span(ox, w, tw);
            let (mut sum, mut alpha, mut count) = ([0u64; 3], 0u64, 0u64);
            for y in y0..y1 {
                for p in rgba[(y * w + x0) * 4..(y * w + x1) * 4].chunks_exact(4) {
                    let a = u64::from(p[3]);
                    for (s, &c) in sum.iter_mut().zip(p) {
                        *s += u64::from(c) * a;
                    }
                    alpha += a;
                    count += 1;
                }
            }
            let colour = |s: u64| s.checked_div(alpha).unwrap_or(0) as u8;
            out.extend_from_slice(&[
                colour(sum[0]),
                colour(sum[1]),
                colour(sum[2]),
                (alpha / count.max(1)) as u8,
            ]);
        }
    }
    out
}

/// The mean of the fullest bucket of a 8 x 8 x 8 colour histogram over the
/// mostly opaque pixels (all pixels if none is): what the eye reads as "the"
/// colour, where a plain mean of a blue sky and a red roof is a brown.
fn dominant(rgba: &[u8]) -> [u8; 3] {
    let opaque = rgba.chunks_exact(4).any(|p| p[3] >= 128);
    let mut buckets = vec![([0u64; 3], 0u64); 512];
    for p in rgba.chunks_exact(4).filter(|p| !opaque || p[3] >= 128) {
        let i = usize::from(p[0] >> 5) << 6 | usize::from(p[1] >> 5) << 3 | usize::from(p[2] >> 5);
        let (sum, n) = &mut buckets[i];
        for (s, &c) in sum.iter_mut().zip(p) {
            *s += u64::from(c);
        }
        *n += 1;
    }
    // The first fullest bucket, so ties resolve the same on every run.
    let (sum, n) = buckets.iter().fold(
        ([0u64; 3], 0u64),
        |best, b| if b.1 > best.1 { *b } else { best },
    );
    let n = n.max(1);
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed_rgb(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        let mut px = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                px.extend_from_slice(&f(x, y));
            }
        }
        Pixels::Packed(px)
    }

    #[test]
    fn fits_within_100_keeping_aspect() {
        assert_eq!(fit(320, 213), (100, 67));
        assert_eq!(fit(213, 320), (67, 100));
        assert_eq!(fit(80, 60), (80, 60));
        assert_eq!(fit(320, 1), (100, 1));
    }

    #[test]
    fn dominant_is_the_largest_area_not_the_mean() {
        // Two thirds blue, one third red: the mean would be purple.
        let px = packed_rgb(300, 200, |x, _| {
            if x < 200 {
                [20, 40, 200]
            } else {
                [220, 10, 10]
            }
        });
        let p = compute(&px, 300, 200, Layout::Rgb).unwrap();
        assert_eq!(p.dominant_color, "#1428c8");
    }

    #[test]
    fn hashes_decode_to_the_source_colours() {
        let px = packed_rgb(320, 213, |_, _| [200, 100, 50]);
        let p = compute(&px, 320, 213, Layout::Rgb).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&p.thumbhash)
            .unwrap();
        let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&bytes).unwrap();
        let near = |v: f32, want: u8| (v * 255.0 - f32::from(want)).abs() < 6.0;
        assert!(near(r, 200) && near(g, 100) && near(b, 50), "{r} {g} {b}");
        assert!((a - 1.0).abs() < 0.01);
        // Landscape: 4 x 3 components, so 4 + 2 * 4 * 3 = 28 characters.
        assert_eq!(p.blurhash.len(), 28);
        let back = blurhash::decode(&p.blurhash, 4, 4, 1.0).unwrap();
        // BlurHash quantises its AC terms coarsely: within 12 of 255.
        assert!(back.chunks_exact(4).all(|q| {
            q[0].abs_diff(200) < 12 && q[1].abs_diff(100) < 12 && q[2].abs_diff(50) < 12
        }));
        assert_eq!(p.dominant_color, "#c86432");
    }

    #[test]
    fn portrait_gets_more_vertical_components() {
        let px = packed_rgb(60, 90, |x, y| [(x * 4) as u8, (y * 2) as u8, 9]);
        let p = compute(&px, 60, 90, Layout::Rgb).unwrap();
        assert_eq!(p.blurhash.len(), 4 + 2 * 3 * 4);
    }

    #[test]
    fn transparent_pixels_do_not_tint() {
        // Left half fully transparent with garbage green; right half opaque red.
        let mut px = Vec::new();
        for _ in 0..50 {
            for x in 0..200 {
                px.extend_from_slice(&if x < 100 {
                    [0, 255, 0, 0]
                } else {
                    [255, 0, 0, 255]
                });
            }
        }
        let p = compute(&Pixels::Packed(px), 200, 50, Layout::Rgba).unwrap();
        assert_eq!(p.dominant_color, "#ff0000");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&p.thumbhash)
            .unwrap();
        let (_, _, _, a) = thumbhash::thumb_hash_to_average_rgba(&bytes).unwrap();
        assert!(a < 0.7, "alpha {a}");
    }

    #[test]
    fn gray_is_grey() {
        let p = compute(&Pixels::Packed(vec![77; 40 * 30]), 40, 30, Layout::Gray).unwrap();
        assert_eq!(p.dominant_color, "#4d4d4d");
    }
}
