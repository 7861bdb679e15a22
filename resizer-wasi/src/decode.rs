//! Decoding: a JPEG shrink-on-load path and `image` for everything else.
//!
//! Decoding is most of the work (about 60% under wasm at 24 MP), and for JPEG
//! most of that is IDCT, upsampling and colour conversion at full size. A
//! reduced-size IDCT (1/2, 1/4, 1/8) skips that work for pixels the largest
//! output would throw away anyway, so the decoder is asked for the smallest
//! scale whose output is still at least as large as the largest target. A
//! YCbCr JPEG then stays in its own planes (`ycc`): no chroma upsampling or
//! colour conversion at the decoded size.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder};

use crate::error::{Error, Result};
use crate::orientation::{self, Orientation};
use crate::probe::{Probe, SourceFormat};
use crate::ycc::Ycc;
use pixport_contract::ImageLimits;

/// Interleaved 8-bit pixel layouts the rest of the pipeline handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Gray,
    Rgb,
    Rgba,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// Decoded samples.
#[derive(Debug)]
pub enum Pixels {
    /// Interleaved, in `Layout` order.
    Packed(Vec<u8>),
    /// A YCbCr JPEG's own planes (layout `Rgb` once converted); see `ycc`.
    Planar(Ycc),
}

#[derive(Debug)]
pub struct Decoded {
    pub pixels: Pixels,
    /// Decoded (possibly reduced) size, in stored orientation.
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub orientation: Orientation,
    pub icc: Option<Vec<u8>>,
    /// Whether decoding already converted the pixels to sRGB through the
    /// source's profile (CMYK JPEGs: the profile is then gone from `icc`).
    pub icc_to_srgb: bool,
    /// Denominator of the shrink-on-load scale used (1 = full size).
    pub scale_denom: u32,
}

/// Decodes `bytes` so the result, once oriented, is at least as wide as the
/// largest of `widths` that the source can serve (never below the target).
pub fn decode(
    bytes: &[u8],
    probe: &Probe,
    widths: &[u32],
    limits: &ImageLimits,
) -> Result<Decoded> {
    if probe.format == SourceFormat::Jpeg
        && let Some(d) = decode_jpeg(bytes, probe, widths, limits)?
    {
        return Ok(d);
    }
    decode_image(bytes, probe, limits)
}

/// Size of one axis after an IDCT scale of `num`/8, as libjpeg and jpeg-decoder round it.
pub fn scaled(len: u32, num: u32) -> u32 {
    (len * num).div_ceil(8)
}

/// Picks the IDCT numerator (1, 2, 4 or 8 eighths): the smallest one that keeps
/// the axis that becomes the output width at least `min_width` pixels.
pub fn choose_scale(width: u32, height: u32, o: Orientation, min_width: u32) -> u32 {
    let axis = if orientation::swaps_axes(o) {
        height
    } else {
        width
    };
    [1, 2, 4]
        .into_iter()
        .find(|&n| scaled(axis, n) >= min_width)
        .unwrap_or(8)
}

fn jpeg_error(e: jpeg_decoder::Error) -> Error {
    match e {
        jpeg_decoder::Error::Format(m) => Error::Corrupt(format!("jpeg: {m}")),
        jpeg_decoder::Error::Unsupported(f) => {
            Error::UnsupportedFormat(format!("jpeg feature {f:?}"))
        }
        jpeg_decoder::Error::Io(io) => Error::Corrupt(format!("jpeg truncated: {io}")),
        jpeg_decoder::Error::Internal(m) => Error::Corrupt(format!("jpeg: {m}")),
        jpeg_decoder::Error::OverLimits(m) => Error::OverLimits(format!("jpeg: {m}")),
    }
}

/// CMYK samples (0 = no ink: the decoder undoes Adobe's inversion) to sRGB
/// through the source's own CMYK profile, as littleCMS would (relative
/// colorimetric); `None` when there is no CMYK profile moxcms can use.
/// Print profiles are what give CMYK numbers a colour: without one the
/// naive formula below shows a press-ready file far too saturated.
fn cmyk_through_profile(icc: &[u8], px: &[u8]) -> Option<Vec<u8>> {
    use moxcms::{ColorProfile, DataColorSpace, Layout as Cms, RenderingIntent, TransformOptions};
    let profile = ColorProfile::new_from_slice(icc).ok()?;
    if profile.color_space != DataColorSpace::Cmyk {
        return None;
    }
    let srgb = ColorProfile::new_srgb();
    // moxcms reads four 8-bit channels as CMYK under its `Rgba` layout. A
    // profile with no relative colorimetric table (A2B1) is read through its
    // A2B0, as the ICC specification and littleCMS do.
    let transform = [
        RenderingIntent::RelativeColorimetric,
        RenderingIntent::Perceptual,
    ]
    .into_iter()
    .find_map(|rendering_intent| {
        let options = TransformOptions {
            rendering_intent,
            ..TransformOptions::default()
        };
        profile
            .create_transform_8bit(Cms::Rgba, &srgb, Cms::Rgb, options)
            .ok()
    })?;
    let mut rgb = vec![0u8; px.len() / 4 * 3];
    transform.transform(px, &mut rgb).ok()?;
    Some(rgb)
}

/// CMYK (0 = no ink, as the decoder returns Adobe's inverted samples) to
/// RGB the way Pillow converts it: (255 - c) * (255 - k) / 255, rounded.
fn cmyk_to_rgb(px: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut out = Vec::with_capacity(px.len() / 4 * 3);
    for p in px.chunks_exact(4) {
        let nk = 255 - u32::from(p[3]);
        for &c in &p[..3] {
            out.push((nk - muldiv255(u32::from(c), nk)) as u8);
        }
    }
    out
}

/// The size the limits were checked on must be the size the decoder is about
/// to decode; checked in every build, before any pixel buffer exists.
fn same_frame(probe: &Probe, width: u32, height: u32) -> Result<()> {
    if (width, height) != (probe.width, probe.height) {
        return Err(Error::Corrupt(format!(
            "{:?}: the decoder reads a {width}x{height} frame, the header {}x{}",
            probe.format, probe.width, probe.height
        )));
    }
    Ok(())
}

/// The fast path, for every JPEG jpeg-decoder decodes: one JPEG marker
/// parser (and its tolerances) for all of them. Returns `None` for what it
/// leaves to `image` (16-bit lossless, features jpeg-decoder lacks).
fn decode_jpeg(
    bytes: &[u8],
    probe: &Probe,
    widths: &[u32],
    limits: &ImageLimits,
) -> Result<Option<Decoded>> {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.set_frame_limits(jpeg_decoder::FrameLimits {
        max_dimension: limits.max_dimension,
        max_pixels: limits.max_pixels,
    });
    match d.read_info() {
        Ok(()) => {}
        Err(jpeg_decoder::Error::Unsupported(_)) => return Ok(None),
        Err(e) => return Err(jpeg_error(e)),
    }
    let Some(info) = d.info() else {
        return Ok(None);
    };
    let cmyk = info.pixel_format == jpeg_decoder::PixelFormat::CMYK32;
    let layout = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Layout::Gray,
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::CMYK32 => Layout::Rgb,
        jpeg_decoder::PixelFormat::L16 => return Ok(None),
    };
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    same_frame(probe, w, h)?;
    let o = probe.orientation;
    let mut icc = d.icc_profile();
    let display_width = if orientation::swaps_axes(o) { h } else { w };
    // The largest width the source can serve; a source narrower than every
    // width is served at its own size (`resize::plan`), so decode it whole.
    let min_width = widths
        .iter()
        .copied()
        .filter(|&t| t <= display_width)
        .max()
        .unwrap_or(display_width);
    let num = choose_scale(w, h, o, min_width);
    // Asking for exactly the scaled size makes the decoder pick exactly `num`.
    let (sw, sh) = (scaled(w, num), scaled(h, num));
    let to_u16 = |v: u32| u16::try_from(v).map_err(|_| Error::OverLimits("jpeg size".into()));
    let (dw, dh) = d.scale(to_u16(sw)?, to_u16(sh)?).map_err(jpeg_error)?;
    let pixels = match d.decode_prefer_planes() {
        Ok(p) => p,
        Err(jpeg_decoder::Error::Unsupported(_)) => return Ok(None),
        Err(e) => return Err(jpeg_error(e)),
    };
    let (dw, dh) = (u32::from(dw), u32::from(dh));
    let mut icc_to_srgb = false;
    let pixels = match pixels {
        jpeg_decoder::DecodedPixels::YCbCr(planes) => {
            let ycc = Ycc::from_jpeg(planes)?;
            if (ycc.width(), ycc.height()) != (dw, dh) {
                return Err(Error::Corrupt("jpeg: decoded size mismatch".into()));
            }
            Pixels::Planar(ycc)
        }
        jpeg_decoder::DecodedPixels::Interleaved(px) => {
            let px = match icc
                .as_deref()
                .filter(|_| cmyk)
                .map(|p| cmyk_through_profile(p, &px))
            {
                Some(Some(rgb)) => {
                    // The pixels are sRGB now: the profile has done its work.
                    icc = None;
                    icc_to_srgb = true;
                    rgb
                }
                _ if cmyk => cmyk_to_rgb(&px),
                _ => px,
            };
            if px.len() != dw as usize * dh as usize * layout.channels() {
                return Err(Error::Corrupt("jpeg: decoded size mismatch".into()));
            }
            Pixels::Packed(px)
        }
    };
    Ok(Some(Decoded {
        pixels,
        width: dw,
        height: dh,
        layout,
        orientation: o,
        icc,
        icc_to_srgb,
        scale_denom: 8 / num,
    }))
}

fn image_decoder<'a>(
    bytes: &'a [u8],
    probe: &Probe,
    limits: &ImageLimits,
) -> Result<impl ImageDecoder + 'a> {
    let mut reader = image::ImageReader::with_format(
        Cursor::new(bytes),
        crate::probe::image_format(probe.format),
    );
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    // RGBA16 at the pixel limit plus slack for decoder state; defence in depth
    // behind the header check that already ran.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(l);
    Ok(reader.into_decoder()?)
}

/// The general path: PNG, WebP, GIF (first frame) and JPEGs the fast path declines.
fn decode_image(bytes: &[u8], probe: &Probe, limits: &ImageLimits) -> Result<Decoded> {
    let mut dec = image_decoder(bytes, probe, limits)?;
    let o = probe.orientation;
    let icc = dec.icc_profile().ok().flatten();
    let (w, h) = dec.dimensions();
    same_frame(probe, w, h)?;
    limits.check_dimensions(w, h)?;
    let img = DynamicImage::from_decoder(dec)?;
    let (layout, pixels) = if img.color().has_alpha() {
        (Layout::Rgba, img.into_rgba8().into_raw())
    } else if img.color().has_color() {
        (Layout::Rgb, img.into_rgb8().into_raw())
    } else {
        (Layout::Gray, img.into_luma8().into_raw())
    };
    Ok(Decoded {
        pixels: Pixels::Packed(pixels),
        width: w,
        height: h,
        layout,
        orientation: o,
        icc,
        icc_to_srgb: false,
        scale_denom: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cmyk_profile_converts_cmyk_samples() {
        let px = [0u8, 0, 0, 0, 255, 255, 255, 255];
        let srgb = moxcms::ColorProfile::new_srgb().encode().unwrap();
        assert_eq!(cmyk_through_profile(&srgb, &px), None);
        assert_eq!(cmyk_through_profile(b"not a profile", &px), None);
        // Without a profile the ink formula: no ink is white, all ink black.
        assert_eq!(cmyk_to_rgb(&px), [255, 255, 255, 0, 0, 0]);
    }

    #[test]
    fn scale_never_below_target() {
        // 24 MP -> 1920: 1/2 gives 3000 >= 1920, 1/4 would give 1500.
        assert_eq!(choose_scale(6000, 4000, 1, 1920), 4);
        // 48 MP -> 1920: 1/4 gives 2000.
        assert_eq!(choose_scale(8000, 6000, 1, 1920), 2);
        // Rotated 48 MP: the output width comes from the stored height 6000 -> 1/2 (3000).
        assert_eq!(choose_scale(8000, 6000, 6, 1920), 4);
        // Only 320 wanted from 12 MP: 1/8 gives 500.
        assert_eq!(choose_scale(4000, 3000, 1, 320), 1);
        // Source barely larger than target: full size.
        assert_eq!(choose_scale(2000, 1000, 1, 1920), 8);
        for w in [1, 7, 320, 321, 639, 1920, 1921, 3839, 3841, 7681] {
            for t in [1, 320, 640, 1920] {
                if t <= w {
                    let n = choose_scale(w, 100, 1, t);
                    assert!(scaled(w, n) >= t, "w={w} t={t} n={n}");
                }
            }
        }
    }

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let px: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut out = Vec::new();
        let enc = jpeg_encoder::Encoder::new(&mut out, 90);
        enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    #[test]
    fn shrink_on_load_size() {
        let bytes = jpeg(1000, 600);
        let p = crate::probe::probe(&bytes).unwrap();
        let d = decode(&bytes, &p, &[240, 100], &ImageLimits::DEFAULT).unwrap();
        assert_eq!((d.width, d.height, d.scale_denom), (250, 150, 4));
        let d = decode(&bytes, &p, &[1920, 1000], &ImageLimits::DEFAULT).unwrap();
        assert_eq!((d.width, d.height, d.scale_denom), (1000, 600, 1));
        // Narrower than every width: decoded whole, never shrunk on load.
        let d = decode(&bytes, &p, &[1920, 1200], &ImageLimits::DEFAULT).unwrap();
        assert_eq!((d.width, d.height, d.scale_denom), (1000, 600, 1));
    }

    #[test]
    fn truncated_jpeg_is_corrupt() {
        let bytes = jpeg(256, 256);
        let cut = &bytes[..bytes.len() / 2];
        let p = crate::probe::probe(cut).unwrap();
        let e = decode(cut, &p, &[256], &ImageLimits::DEFAULT).unwrap_err();
        assert_eq!(e.class(), "corrupt", "{e}");
    }
}
