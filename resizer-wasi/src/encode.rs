//! Encoders. Only pixels and (optionally) the ICC profile are written: no
//! EXIF, GPS or XMP can leak because none is ever handed to an encoder.

use std::io::Cursor;

use image::ImageEncoder;
use serde::Serialize;

use crate::decode::Layout;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutFormat {
    Jpeg,
    Png,
    Webp,
}

impl OutFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutFormat::Jpeg => "jpg",
            OutFormat::Png => "png",
            OutFormat::Webp => "webp",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            OutFormat::Jpeg => "image/jpeg",
            OutFormat::Png => "image/png",
            OutFormat::Webp => "image/webp",
        }
    }
}

/// Keeps an ICC profile only if its colour space matches the pixels we write
/// (a CMYK profile on RGB output would make viewers mis-render it).
pub fn icc_matches(icc: &[u8], layout: Layout) -> bool {
    let space = icc.get(16..20);
    match layout {
        Layout::Gray => space == Some(b"GRAY"),
        Layout::Rgb | Layout::Rgba => space == Some(b"RGB "),
    }
}

/// JPEG output: baseline 4:2:0 (about 25% smaller than `image`'s 4:4:4 at
/// equal quality). Alpha, if any, must already be flattened by the caller.
pub fn jpeg(
    px: &[u8],
    w: u32,
    h: u32,
    layout: Layout,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let (w16, h16) = match (u16::try_from(w), u16::try_from(h)) {
        (Ok(a), Ok(b)) if a < u16::MAX && b < u16::MAX => (a, b),
        _ => {
            return Err(Error::OverLimits(format!(
                "{w}x{h} is too large for JPEG output"
            )));
        }
    };
    let mut out = Vec::with_capacity(px.len() / 8);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    // Optimised Huffman tables cost a second pass (~35% of encode time under
    // wasm at 1920 px) for ~1% smaller files: not worth it on the hot path.
    enc.set_optimized_huffman_tables(false);
    if let Some(icc) = icc {
        enc.add_icc_profile(icc)
            .map_err(|e| Error::Internal(format!("jpeg icc: {e}")))?;
    }
    let ct = match layout {
        Layout::Gray => jpeg_encoder::ColorType::Luma,
        Layout::Rgb => jpeg_encoder::ColorType::Rgb,
        Layout::Rgba => jpeg_encoder::ColorType::Rgba,
    };
    enc.encode(px, w16, h16, ct)
        .map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

fn color_type(layout: Layout) -> image::ExtendedColorType {
    match layout {
        Layout::Gray => image::ExtendedColorType::L8,
        Layout::Rgb => image::ExtendedColorType::Rgb8,
        Layout::Rgba => image::ExtendedColorType::Rgba8,
    }
}

/// PNG output (alpha kept), fast deflate: these are delivery copies, and the
/// adaptive filter recovers most of the size a slower level would.
pub fn png(px: &[u8], w: u32, h: u32, layout: Layout, icc: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new_with_quality(
        Cursor::new(&mut out),
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    if let Some(icc) = icc {
        // Unsupported only means "no iCCP"; colours then fall back to sRGB.
        let _ = enc.set_icc_profile(icc.to_vec());
    }
    enc.write_image(px, w, h, color_type(layout))?;
    Ok(out)
}

/// WebP output. `image` 0.25 only writes lossless WebP, so these files are
/// larger than lossy JPEG; the option exists for alpha and for hosts that want WebP.
pub fn webp(px: &[u8], w: u32, h: u32, layout: Layout, icc: Option<&[u8]>) -> Result<Vec<u8>> {
    // The WebP encoder takes RGB/RGBA only.
    let (buf, layout) = match layout {
        Layout::Gray => (
            px.iter().flat_map(|&g| [g, g, g]).collect::<Vec<u8>>(),
            Layout::Rgb,
        ),
        l => (px.to_vec(), l),
    };
    let mut out = Vec::new();
    let mut enc = image::codecs::webp::WebPEncoder::new_lossless(Cursor::new(&mut out));
    if let Some(icc) = icc {
        let _ = enc.set_icc_profile(icc.to_vec());
    }
    enc.write_image(&buf, w, h, color_type(layout))?;
    Ok(out)
}

/// Composites RGBA over white, for JPEG output of a transparent source.
pub fn flatten_on_white(px: &[u8]) -> Vec<u8> {
    px.chunks_exact(4)
        .flat_map(|p| {
            let a = u32::from(p[3]);
            let mix = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            [mix(p[0]), mix(p[1]), mix(p[2])]
        })
        .collect()
}

/// True if any pixel is not fully opaque (an RGBA PNG that is all opaque is
/// a photo and goes out as JPEG).
pub fn has_transparency(px: &[u8]) -> bool {
    px.chunks_exact(4).any(|p| p[3] != 255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_is_420_and_has_no_exif() {
        let px = vec![200u8; 64 * 48 * 3];
        let icc = {
            let mut v = vec![0u8; 128];
            v[16..20].copy_from_slice(b"RGB ");
            v
        };
        let out = jpeg(&px, 64, 48, Layout::Rgb, 82, Some(&icc)).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xD8]);
        // APP1 (EXIF/XMP) marker never written; APP2 (ICC) is.
        assert!(!out.windows(2).any(|w| w == [0xFF, 0xE1]));
        assert!(out.windows(12).any(|w| w == b"ICC_PROFILE\0"));
        let mut d = jpeg_decoder::Decoder::new(&out[..]);
        d.read_info().unwrap();
        let info = d.info().unwrap();
        assert_eq!((info.width, info.height), (64, 48));
    }

    #[test]
    fn icc_space_check() {
        let mut icc = vec![0u8; 128];
        icc[16..20].copy_from_slice(b"CMYK");
        assert!(!icc_matches(&icc, Layout::Rgb));
        icc[16..20].copy_from_slice(b"RGB ");
        assert!(icc_matches(&icc, Layout::Rgba));
        assert!(!icc_matches(&icc, Layout::Gray));
    }

    #[test]
    fn flatten() {
        assert_eq!(
            flatten_on_white(&[0, 0, 0, 0, 10, 20, 30, 255]),
            vec![255, 255, 255, 10, 20, 30]
        );
        assert!(has_transparency(&[0, 0, 0, 254]));
        assert!(!has_transparency(&[0, 0, 0, 255]));
    }

    #[test]
    fn png_and_webp_roundtrip() {
        let px: Vec<u8> = (0..16 * 8 * 4).map(|i| i as u8).collect();
        for bytes in [
            png(&px, 16, 8, Layout::Rgba, None).unwrap(),
            webp(&px, 16, 8, Layout::Rgba, None).unwrap(),
        ] {
            let img = image::load_from_memory(&bytes).unwrap().into_rgba8();
            assert_eq!(img.dimensions(), (16, 8));
            assert_eq!(img.into_raw(), px);
        }
    }
}
