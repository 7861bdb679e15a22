//! Encode cost per format and width, for choosing the default format set:
//! decodes and resizes one image as the pipeline does, then times each
//! format's encode (RGB conversion of YCbCr included, as a run pays it) on
//! every width. One JSON line per (width, format) on stdout.
//! usage: formats FILE [REPEAT] [WIDTHS]
//!
//! AVIF at widths above 640 is timed once, not REPEAT times: it costs
//! seconds under wasm.

use std::time::Instant;

use resizer_wasi::decode::{Layout, Pixels};
use resizer_wasi::encode::{self, OutFormat};
use resizer_wasi::{ImageLimits, decode, probe, resize};

mod common;

fn main() {
    let common::Args {
        input,
        repeat,
        widths,
    } = common::args("formats");
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
    let transparent = layout == Layout::Rgba
        && matches!(&d.pixels, Pixels::Packed(px) if encode::has_transparency(px));
    let (targets, _) = resize::plan(tw, th, &widths);
    let Ok(rs) = resize::cascade(d.pixels, d.width, d.height, layout, d.orientation, &targets)
    else {
        std::process::exit(5)
    };
    let auto = if transparent {
        OutFormat::Png
    } else {
        OutFormat::Jpeg
    };
    for r in &rs {
        let (w, h) = (r.target.width, r.target.height);
        for format in [auto, OutFormat::Webp, OutFormat::Avif] {
            let runs = if format == OutFormat::Avif && w > 640 {
                1
            } else {
                repeat.max(1)
            };
            let mut ms = Vec::with_capacity(runs);
            let mut bytes = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let Ok(out) =
                    encode::variants(&r.pixels, w, h, layout, &[format], transparent, 82, None)
                else {
                    std::process::exit(6)
                };
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                bytes = out.iter().map(|(_, b)| b.len()).sum::<usize>();
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "{{\"width\": {w}, \"height\": {h}, \"format\": \"{}\", \"ms\": {:.1}, \"bytes\": {bytes}, \"runs\": {runs}}}",
                format.as_str(),
                ms[ms.len() / 2]
            );
        }
    }
}
