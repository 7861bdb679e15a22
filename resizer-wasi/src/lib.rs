//! pixport's resizer: untrusted image bytes in, 1920/640/320 px variants out.
//!
//! The pipeline is one small module per step (as in imgproxy): `probe` and
//! the limits (`pixport_contract::ImageLimits`, the same type and defaults
//! the edge and the Lambda hold) run on the header before any pixels exist,
//! `decode` shrinks JPEGs
//! on load, `resize` cascades, `orientation` rotates the small outputs,
//! `colour` converts them to sRGB, `encode` writes pixels and ICC only and
//! `placeholder` summarises the smallest. `run` is the whole pipeline without
//! I/O, so the WASI binary, native tests and the native benchmark share it.

pub mod avif;
pub mod colour;
pub mod decode;
pub mod encode;
pub mod error;
pub mod manifest;
pub mod options;
pub mod orientation;
pub mod placeholder;
pub mod probe;
pub mod resize;
pub mod ycc;

pub use error::{Error, Result};
pub use options::Options;
pub use pixport_contract::ImageLimits;

use decode::{Layout, Pixels};
use manifest::{Manifest, Source, Variant};

/// The result of a run: the manifest and each variant's bytes, in manifest order.
#[derive(Debug)]
pub struct Output {
    pub manifest: Manifest,
    pub payloads: Vec<Vec<u8>>,
}

/// Runs the whole pipeline on `input`.
pub fn run(input: &[u8], opts: &Options) -> Result<Output> {
    finish(prepare(input, opts)?, opts)
}

/// Everything `finish` needs from the input; the input itself is no longer
/// needed, so a caller that owns it can free it before the resize (in wasm,
/// linear memory never shrinks, so the peak is what a host must budget).
pub struct Prepared {
    dec: decode::Decoded,
    source: Source,
    targets: Vec<resize::Target>,
    skipped: Vec<resize::Skipped>,
}

/// Probe, limits and decode.
pub fn prepare(input: &[u8], opts: &Options) -> Result<Prepared> {
    let limits = &opts.limits;
    limits.check_bytes(input.len() as u64)?;
    let probe = probe::probe(input)?;
    limits.check_dimensions(probe.width, probe.height)?;

    let dec = decode::decode(input, &probe, &opts.widths, limits)?;
    let o = dec.orientation;
    let (disp_w, disp_h) = if orientation::swaps_axes(o) {
        (probe.height, probe.width)
    } else {
        (probe.width, probe.height)
    };
    let (targets, skipped) = resize::plan(disp_w, disp_h, &opts.widths);
    let source = Source {
        format: probe.format,
        width: disp_w,
        height: disp_h,
        orientation: o,
        bytes: input.len() as u64,
        icc: false,
        icc_to_srgb: false,
        decoded_width: dec.width,
        decoded_height: dec.height,
    };
    Ok(Prepared {
        dec,
        source,
        targets,
        skipped,
    })
}

/// Resize, orient and encode.
pub fn finish(p: Prepared, opts: &Options) -> Result<Output> {
    let Prepared {
        dec,
        mut source,
        targets,
        skipped,
    } = p;
    let o = dec.orientation;
    let transparent = dec.layout == Layout::Rgba
        && matches!(&dec.pixels, Pixels::Packed(px) if encode::has_transparency(px));
    let to_srgb = dec
        .icc
        .as_deref()
        .filter(|_| opts.icc_to_srgb)
        .and_then(|icc| colour::ToSrgb::new(icc, dec.layout));
    source.icc_to_srgb = to_srgb.is_some() || dec.icc_to_srgb;
    // Converted pixels need no profile; one moxcms could not read (or an
    // sRGB one) is kept when it matches, as before.
    let icc = dec
        .icc
        .as_deref()
        .filter(|icc| to_srgb.is_none() && encode::icc_matches(icc, dec.layout));
    source.icc = icc.is_some();
    let icc = icc.map(<[u8]>::to_vec);
    let layout = dec.layout;

    let resized = resize::cascade(dec.pixels, dec.width, dec.height, layout, o, &targets)?;
    let mut variants = Vec::with_capacity(resized.len());
    let mut payloads = Vec::with_capacity(resized.len());
    let mut offset = 0u64;
    let mut placeholder = None;
    let last = resized.len().saturating_sub(1);
    for (i, r) in resized.into_iter().enumerate() {
        let (w, h) = (r.target.width, r.target.height);
        let pixels = match &to_srgb {
            Some(t) => t.apply(r.pixels)?,
            None => r.pixels,
        };
        // Never empty: a set always has a rule without a width cap.
        let formats = opts.formats.formats_at(w, transparent);
        let encoded = encode::variants(
            &pixels,
            w,
            h,
            layout,
            &formats,
            transparent,
            opts.quality,
            icc.as_deref(),
        )?;
        if i == last && opts.placeholders {
            placeholder = Some(placeholder::compute(&pixels, w, h, layout)?);
        }
        for (format, bytes) in encoded {
            let len = bytes.len() as u64;
            variants.push(Variant {
                width: w,
                height: h,
                format,
                content_type: format.content_type(),
                bytes: len,
                offset,
                sha256: manifest::sha256_hex(&bytes),
                file: None,
            });
            offset += len;
            payloads.push(bytes);
        }
    }
    let manifest = Manifest {
        version: manifest::MANIFEST_VERSION,
        source,
        variants,
        skipped,
        payload_bytes: offset,
        placeholder,
    };
    Ok(Output { manifest, payloads })
}

#[cfg(test)]
mod tests {
    use super::*;
    use encode::OutFormat;
    use std::io::Cursor;

    fn encode_png(img: image::DynamicImage) -> Vec<u8> {
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        buf
    }

    #[test]
    fn jpeg_default_three_widths() {
        let px: Vec<u8> = (0..2400 * 1600 * 3)
            .map(|i| ((i / 3) % 256) as u8)
            .collect();
        let mut jpg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpg, 85)
            .encode(&px, 2400, 1600, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let out = run(&jpg, &Options::default()).unwrap();
        let dims: Vec<_> = out
            .manifest
            .variants
            .iter()
            .map(|v| (v.width, v.height))
            .collect();
        assert_eq!(dims, vec![(1920, 1280), (640, 427), (320, 213)]);
        for (v, p) in out.manifest.variants.iter().zip(&out.payloads) {
            let img = image::load_from_memory(p).unwrap();
            assert_eq!((img.width(), img.height()), (v.width, v.height));
            assert_eq!(v.format, OutFormat::Jpeg);
        }
        assert_eq!(out.manifest.source.decoded_width, 2400);
    }

    #[test]
    fn transparent_png_stays_png_and_small_source_is_not_upscaled() {
        let mut img = image::RgbaImage::new(500, 400);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = image::Rgba([x as u8, 0, 0, if x < 250 { 0 } else { 255 }]);
        }
        let out = run(&encode_png(img.into()), &Options::default()).unwrap();
        assert_eq!(out.manifest.variants.len(), 1);
        assert_eq!(out.manifest.variants[0].format, OutFormat::Png);
        assert_eq!(
            (
                out.manifest.variants[0].width,
                out.manifest.variants[0].height
            ),
            (320, 256)
        );
        let skipped: Vec<_> = out.manifest.skipped.iter().map(|s| s.width).collect();
        assert_eq!(skipped, vec![1920, 640]);
        let back = image::load_from_memory(&out.payloads[0]).unwrap();
        assert!(back.color().has_alpha());
    }

    #[test]
    fn one_run_makes_every_format_of_the_set() {
        let mut img = image::RgbaImage::new(700, 350);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgba([x as u8, y as u8, 90, if x < 150 { 0 } else { 255 }]);
        }
        let opts = Options {
            widths: vec![640, 320, 160],
            formats: "auto,webp,avif:320".parse().unwrap(),
            ..Options::default()
        };
        let out = run(&encode_png(img.into()), &opts).unwrap();
        let got: Vec<_> = out
            .manifest
            .variants
            .iter()
            .map(|v| (v.width, v.format.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (640, "png"),
                (640, "webp"),
                (320, "png"),
                (320, "webp"),
                (320, "avif"),
                (160, "png"),
                (160, "webp"),
                (160, "avif"),
            ]
        );
        let mut offset = 0;
        for (v, p) in out.manifest.variants.iter().zip(&out.payloads) {
            assert_eq!((v.offset, v.bytes), (offset, p.len() as u64));
            assert_eq!(v.content_type, v.format.content_type());
            offset += v.bytes;
            if v.format != OutFormat::Avif {
                let back = image::load_from_memory(p).unwrap();
                assert_eq!((back.width(), back.height()), (v.width, v.height));
                assert!(back.color().has_alpha(), "{:?}", v.format);
            }
        }
        assert_eq!(out.manifest.payload_bytes, offset);
        assert!(out.manifest.placeholder.is_some());
    }

    #[test]
    fn opaque_rgba_png_becomes_jpeg() {
        let img = image::RgbaImage::from_pixel(700, 300, image::Rgba([10, 20, 30, 255]));
        let out = run(&encode_png(img.into()), &Options::default()).unwrap();
        assert!(
            out.manifest
                .variants
                .iter()
                .all(|v| v.format == OutFormat::Jpeg)
        );
    }

    #[test]
    fn header_bomb_refused_before_decode() {
        // A PNG IHDR claiming 50000x50000 with no data at all.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&50_000u32.to_be_bytes());
        ihdr.extend_from_slice(&50_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        let e = run(&png, &Options::default()).unwrap_err();
        assert_eq!(e.class(), "over_limits", "{e}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn text_is_unsupported() {
        assert_eq!(
            run(b"just some text", &Options::default())
                .unwrap_err()
                .class(),
            "unsupported_format"
        );
    }
}
