//! Lossy WebP encode time alone, for work on the VP8 encoder
//! (vendor/image-webp): decodes and resizes one image as the pipeline does,
//! then encodes the first width's pixels as WebP REPEAT times (quality 82's
//! WebP quality, as the default run; a YCbCr JPEG's planes turned to RGB
//! first, untimed). One JSON line: the median and every
//! run in ms, and the bytes (which must not move with speed work).
//! usage: webp FILE [REPEAT] [WIDTHS]

use std::time::Instant;

use resizer_wasi::decode::Pixels;
use resizer_wasi::encode;
use resizer_wasi::{ImageLimits, decode, probe, resize};

mod common;

fn main() {
    let common::Args {
        input,
        repeat,
        widths,
    } = common::args("webp");
    let Ok(p) = probe::probe(&input) else {
        std::process::exit(3)
    };
    let Ok(d) = decode::decode(&input, &p, &widths, &ImageLimits::DEFAULT) else {
        std::process::exit(4)
    };
    let (tw, th) = if d.orientation >= 5 {
        (p.height, p.width)
    } else {
        (p.width, p.height)
    };
    let layout = d.layout;
    let (targets, _) = resize::plan(tw, th, &widths);
    let Ok(rs) = resize::cascade(d.pixels, d.width, d.height, layout, d.orientation, &targets)
    else {
        std::process::exit(5)
    };
    let Some(r) = rs.first() else {
        std::process::exit(5)
    };
    let (w, h) = (r.target.width, r.target.height);
    let rgb;
    let px: &[u8] = match &r.pixels {
        Pixels::Packed(px) => px,
        Pixels::Planar(ycc) => {
            rgb = ycc.to_rgb();
            &rgb
        }
    };
    let q = encode::webp_quality(82);
    let mut ms = Vec::new();
    let mut bytes = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let Ok(out) = encode::webp(px, w, h, layout, q, None) else {
            std::process::exit(6)
        };
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = out;
    }
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let runs: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
    println!(
        "{{\"width\": {w}, \"height\": {h}, \"median_ms\": {:.1}, \"runs_ms\": [{}], \"bytes\": {}, \"fnv\": \"{:016x}\"}}",
        sorted[sorted.len() / 2],
        runs.join(", "),
        bytes.len(),
        bytes
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b))
                .wrapping_mul(0x100_0000_01b3))
    );
}
