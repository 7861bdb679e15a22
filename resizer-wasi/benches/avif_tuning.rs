//! AVIF encoder settings side by side, for choosing `avif::Tuning`: decodes
//! and resizes one image as the pipeline does, then encodes each width of
//! 640 px and below with every setting named on the command line. One JSON
//! line per (width, setting) on stdout, with the file (base64) so the
//! caller can score it.
//!
//! usage: avif_tuning FILE REPEAT SETTING...
//! SETTING: `ravif:Q` (ravif 4:4:4 10-bit, speed 10, as transparent sources
//! get) or `Q:SPEED:MIN-MAX:psnr|psy:filters|nofilters` (the direct rav1e
//! 4:2:0 path; MIN-MAX the partition sizes in px).

use std::time::Instant;

use base64::Engine;
use resizer_wasi::avif::{self, Tuning};
use resizer_wasi::decode::{Layout, Pixels};
use resizer_wasi::{ImageLimits, decode, probe, resize};

fn parse(s: &str) -> Option<(u8, Option<Tuning>)> {
    if let Some(q) = s.strip_prefix("ravif:") {
        return Some((q.parse().ok()?, None));
    }
    let f: Vec<&str> = s.split(':').collect();
    let [q, speed, blocks, tune, filters] = f.as_slice() else {
        return None;
    };
    let (lo, hi) = blocks.split_once('-')?;
    Some((
        q.parse().ok()?,
        Some(Tuning {
            speed: speed.parse().ok()?,
            blocks: (lo.parse().ok()?, hi.parse().ok()?),
            psnr: *tune == "psnr",
            filters: *filters == "filters",
        }),
    ))
}

fn main() {
    let all: Vec<String> = std::env::args().collect();
    let (Some(input), Some(repeat)) = (
        all.get(1).and_then(|p| std::fs::read(p).ok()),
        all.get(2).and_then(|r| r.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: avif_tuning FILE REPEAT SETTING...");
        std::process::exit(2);
    };
    let settings: Vec<(String, (u8, Option<Tuning>))> = all[3..]
        .iter()
        .map(|s| {
            (
                s.clone(),
                parse(s).unwrap_or_else(|| panic!("bad setting {s}")),
            )
        })
        .collect();
    let widths = [1920, 640, 320];
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
    for r in rs.iter().filter(|r| r.target.width <= 640) {
        let (w, h) = (r.target.width, r.target.height);
        let rgb = match &r.pixels {
            Pixels::Planar(ycc) => ycc.to_rgb(),
            Pixels::Packed(px) => px.clone(),
        };
        let rgb_layout = match &r.pixels {
            Pixels::Planar(_) => Layout::Rgb,
            Pixels::Packed(_) => layout,
        };
        for (name, (q, tuning)) in &settings {
            let mut ms = Vec::new();
            let mut out = Vec::new();
            for _ in 0..repeat.max(1) {
                let t = Instant::now();
                out = match (tuning, &r.pixels) {
                    (None, _) => {
                        let px: Vec<rgb::RGB8> = rgb
                            .chunks_exact(3)
                            .map(|p| rgb::RGB8::new(p[0], p[1], p[2]))
                            .collect();
                        ravif::Encoder::new()
                            .with_quality(f32::from(*q))
                            .with_speed(10)
                            .with_num_threads(Some(1))
                            .encode_rgb(imgref::Img::new(&px[..], w as usize, h as usize))
                            .expect("ravif")
                            .avif_file
                    }
                    (Some(t), Pixels::Planar(ycc)) => avif::from_ycc(ycc, *q, *t)
                        .expect("planes fit")
                        .expect("avif"),
                    (Some(t), Pixels::Packed(px)) => {
                        avif::from_rgb(px, w, h, rgb_layout, *q, *t).expect("avif")
                    }
                };
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "{{\"width\": {w}, \"setting\": \"{name}\", \"ms\": {:.1}, \"bytes\": {}, \"data\": \"{}\"}}",
                ms[ms.len() / 2],
                out.len(),
                base64::engine::general_purpose::STANDARD.encode(&out)
            );
        }
    }
}
