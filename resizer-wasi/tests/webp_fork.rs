//! The vendored WebP encoder (vendor/image-webp, FORK.md) writes exactly the
//! bytes upstream vaam-image-webp 0.1.0 writes: lossy and lossless, grey,
//! RGB and RGBA, odd and macroblock-aligned sizes, low to top quality.
//! Natively this checks the fork's scalar code; built for wasm32-wasip1
//! (FORK.md: `scripts/wasi-run` as the runner) it checks its simd128 code
//! against upstream's scalar code.

/// A seeded photo-like picture: gradients, hard edges, a disc and grain,
/// so the mode search meets flat, textured and edged macroblocks.
fn picture(w: u32, h: u32, channels: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    let mut px = Vec::with_capacity(w as usize * h as usize * channels);
    for y in 0..h {
        for x in 0..w {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let grain = (state >> 27) as i32 - 16;
            let (dx, dy) = (x as i32 - w as i32 / 2, y as i32 - h as i32 / 3);
            let disc = dx * dx + dy * dy < (h as i32 / 4).pow(2);
            let stripe = (x / 7 + y / 11) % 2 == 0;
            let base = [
                (x * 255 / w.max(1)) as i32,
                (y * 255 / h.max(1)) as i32,
                if disc {
                    220
                } else if stripe {
                    90
                } else {
                    30
                },
                if x % 13 < 6 {
                    255
                } else {
                    (x * 17 % 256) as i32
                },
            ];
            for (c, &v) in base.iter().enumerate().take(channels) {
                let v = if c < 3 { v + grain } else { v };
                px.push(v.clamp(0, 255) as u8);
            }
        }
    }
    px
}

fn fork(px: &[u8], w: u32, h: u32, channels: usize, lossy: Option<u8>) -> Vec<u8> {
    use image_webp::{ColorType, EncoderParams, WebPEncoder};
    let color = match channels {
        1 => ColorType::L8,
        3 => ColorType::Rgb8,
        _ => ColorType::Rgba8,
    };
    let mut out = Vec::new();
    let mut enc = WebPEncoder::new(&mut out);
    let mut params = EncoderParams::default();
    params.use_lossy = lossy.is_some();
    params.lossy_quality = lossy.unwrap_or(95);
    enc.set_params(params);
    enc.encode(px, w, h, color).unwrap();
    out
}

fn upstream(px: &[u8], w: u32, h: u32, channels: usize, lossy: Option<u8>) -> Vec<u8> {
    use upstream_webp::{ColorType, EncoderParams, WebPEncoder};
    let color = match channels {
        1 => ColorType::L8,
        3 => ColorType::Rgb8,
        _ => ColorType::Rgba8,
    };
    let mut out = Vec::new();
    let mut enc = WebPEncoder::new(&mut out);
    let mut params = EncoderParams::default();
    params.use_lossy = lossy.is_some();
    params.lossy_quality = lossy.unwrap_or(95);
    enc.set_params(params);
    enc.encode(px, w, h, color).unwrap();
    out
}

#[test]
fn lossy_output_is_upstreams() {
    let sizes = [
        (1, 1),
        (17, 13),
        (64, 48),
        (333, 250),
        (250, 333),
        (640, 427),
    ];
    let mut seed = 7;
    for (w, h) in sizes {
        for channels in [1, 3, 4] {
            seed += 1;
            let px = picture(w, h, channels, seed);
            for q in [0, 5, 30, 60, 75, 90, 100] {
                let (a, b) = (
                    fork(&px, w, h, channels, Some(q)),
                    upstream(&px, w, h, channels, Some(q)),
                );
                assert!(
                    a == b,
                    "{w}x{h}, {channels} channels, q{q}: fork {} bytes, upstream {} bytes",
                    a.len(),
                    b.len()
                );
            }
        }
    }
}

#[test]
fn lossless_output_is_upstreams() {
    for (w, h, channels) in [(33, 21, 3), (128, 96, 4), (50, 50, 1)] {
        let px = picture(w, h, channels, 99);
        assert_eq!(
            fork(&px, w, h, channels, None),
            upstream(&px, w, h, channels, None)
        );
    }
}
