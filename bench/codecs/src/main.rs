//! One encode with one candidate: a PNG (RGB or RGBA) on stdin, the encoded
//! file on stdout, `{"encode_ms": ..}` on stderr.
//!
//! usage: codec-candidates vaam-webp|webp-rust|ravif QUALITY [SPEED]

use std::io::{Read, Write};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let codec = args.first().map(String::as_str).unwrap_or("");
    let quality: u8 = args.get(1).and_then(|q| q.parse().ok()).unwrap_or(80);
    let speed: u8 = args.get(2).and_then(|q| q.parse().ok()).unwrap_or(10);
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).expect("stdin");
    let mut dec = png::Decoder::new(std::io::Cursor::new(input));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let (w, h) = (info.width, info.height);
    let alpha = info.color_type == png::ColorType::Rgba;
    let rgba: Vec<u8> = if alpha {
        buf[..info.buffer_size()].to_vec()
    } else {
        buf[..info.buffer_size()]
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };
    let t = Instant::now();
    let out = match codec {
        #[cfg(feature = "vaam")]
        "vaam-webp" => {
            let mut out = Vec::new();
            let mut enc = image_webp::WebPEncoder::new(&mut out);
            let mut params = image_webp::EncoderParams::default();
            params.use_lossy = true;
            params.lossy_quality = quality;
            enc.set_params(params);
            let (data, ct) = if alpha {
                (&rgba[..], image_webp::ColorType::Rgba8)
            } else {
                (&buf[..info.buffer_size()], image_webp::ColorType::Rgb8)
            };
            enc.encode(data, w, h, ct).expect("vaam encode");
            out
        }
        "webp-rust" => {
            let img = webp_rust::ImageBuffer {
                width: w as usize,
                height: h as usize,
                rgba: rgba.clone(),
            };
            let cfg = webp_rust::LossyEncodingConfig {
                quality: f32::from(quality),
                method: speed.min(6),
                ..Default::default()
            };
            webp_rust::encode_lossy_with_config(&img, &cfg, None).expect("webp-rust encode")
        }
        "ravif" => {
            let px: Vec<rgb::RGBA8> = rgba
                .chunks_exact(4)
                .map(|p| rgb::RGBA8::new(p[0], p[1], p[2], p[3]))
                .collect();
            let img = imgref::Img::new(&px[..], w as usize, h as usize);
            ravif::Encoder::new()
                .with_quality(f32::from(quality))
                .with_speed(speed)
                .with_num_threads(Some(1))
                .encode_rgba(img)
                .expect("ravif encode")
                .avif_file
        }
        other => panic!("unknown codec {other}"),
    };
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    std::io::stdout().write_all(&out).expect("stdout");
    eprintln!("{{\"encode_ms\": {ms:.2}}}");
}
