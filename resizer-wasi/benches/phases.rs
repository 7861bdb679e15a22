//! Where the time goes: times each pipeline step on one image (native or
//! wasm32-wasip1), to direct optimisation. usage: phases FILE [REPEAT] [WIDTHS]

use std::time::Instant;

use resizer_wasi::{ImageLimits, decode, encode, probe, resize};

mod common;

fn main() {
    let common::Args {
        input,
        repeat,
        widths,
    } = common::args("phases");
    let args: Vec<String> = std::env::args().collect();
    if args.get(4).map(String::as_str) == Some("zune") {
        for _ in 0..repeat {
            let t = Instant::now();
            let img = image::load_from_memory_with_format(&input, image::ImageFormat::Jpeg);
            println!(
                "zune-jpeg via image: {:.1} ms ok={}",
                t.elapsed().as_secs_f64() * 1000.0,
                img.is_ok()
            );
        }
        return;
    }
    for _ in 0..repeat {
        let t0 = Instant::now();
        let Ok(p) = probe::probe(&input) else {
            std::process::exit(3)
        };
        let tp = Instant::now();
        let Ok(d) = decode::decode(&input, &p, &widths, &ImageLimits::DEFAULT) else {
            std::process::exit(4)
        };
        let t1 = Instant::now();
        let (tw, th) = if d.orientation >= 5 {
            (p.height, p.width)
        } else {
            (p.width, p.height)
        };
        let (targets, _) = resize::plan(tw, th, &widths);
        let layout = d.layout;
        let Ok(rs) = resize::cascade(d.pixels, d.width, d.height, layout, d.orientation, &targets)
        else {
            std::process::exit(7)
        };
        let t2 = Instant::now();
        let mut n = 0;
        for r in &rs {
            let Ok(b) = encode::variant(
                &r.pixels,
                r.target.width,
                r.target.height,
                layout,
                encode::OutFormat::Jpeg,
                false,
                82,
                None,
            ) else {
                std::process::exit(7)
            };
            n += b.len();
        }
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        println!(
            "probe {:.2} ms, decode {:.1} ms ({}x{}), resize {:.1} ms, encode {:.1} ms ({n} bytes), total {:.1} ms",
            ms(t0, tp),
            ms(tp, t1),
            d.width,
            d.height,
            ms(t1, t2),
            ms(t2, t3),
            ms(t0, t3)
        );
    }
}
