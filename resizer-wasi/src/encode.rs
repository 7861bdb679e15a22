//! Encoders. Only pixels and (optionally) the ICC profile are written: no
//! EXIF, GPS or XMP can leak because none is ever handed to an encoder.

use std::io::Cursor;

use image::ImageEncoder;

use crate::avif;
use crate::decode::{Layout, Pixels};
use crate::error::{Error, Result};
use crate::ycc::Ycc;

/// The contract's format names: the manifest the host reads spells them.
pub use pixport_contract::OutputFormat as OutFormat;

/// WebP quality for a JPEG quality: VP8 at the same number keeps visibly
/// less detail (SSIM vs the resized source ~0.05 below JPEG's on the class
/// photos), +8 brings it within ~0.01 at ~80% of the JPEG's bytes.
pub fn webp_quality(jpeg_quality: u8) -> u8 {
    jpeg_quality.saturating_add(8).min(100)
}

/// AVIF quality for a JPEG quality, opaque sources (rav1e 4:2:0 8-bit,
/// `avif.rs`): -7 (75 at the default 82) makes about the bytes ravif's
/// 4:4:4 10-bit made at -12, at an SSIM no lower (higher at 320 px).
pub fn avif_quality(jpeg_quality: u8) -> u8 {
    jpeg_quality.saturating_sub(7).max(1)
}

/// AVIF (ravif) quality for a JPEG quality, transparent sources: -12 gives
/// ~45% of the JPEG's bytes at an SSIM ~0.03 below it on the grain-heavy
/// class photos (AV1 smooths film grain, which SSIM counts as loss).
pub fn avif_alpha_quality(jpeg_quality: u8) -> u8 {
    jpeg_quality.saturating_sub(12).max(1)
}

/// rav1e's fastest preset for ravif (transparent sources): under wasm (one
/// thread, no asm) ~1 s at 640 px (docs/resizer.md).
const AVIF_SPEED: u8 = 10;

/// Keeps an ICC profile only if its colour space matches the pixels we write
/// (a CMYK profile on RGB output would make viewers mis-render it).
pub fn icc_matches(icc: &[u8], layout: Layout) -> bool {
    let space = icc.get(16..20);
    match layout {
        Layout::Gray => space == Some(b"GRAY"),
        Layout::Rgb | Layout::Rgba => space == Some(b"RGB "),
    }
}

/// One variant in `format`. `transparent`: the (RGBA) source has alpha
/// that is not all opaque, so JPEG output flattens it on white.
#[allow(clippy::too_many_arguments)]
pub fn variant(
    pixels: &Pixels,
    w: u32,
    h: u32,
    layout: Layout,
    format: OutFormat,
    transparent: bool,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let px = match (pixels, format) {
        (Pixels::Planar(ycc), OutFormat::Jpeg) => return jpeg_ycc(ycc, quality, icc),
        (Pixels::Planar(ycc), OutFormat::Avif) => {
            if let Some(out) = avif::from_ycc(ycc, avif_quality(quality), avif::Tuning::DEFAULT) {
                return out;
            }
            &ycc.to_rgb()
        }
        (Pixels::Planar(ycc), _) => &ycc.to_rgb(),
        (Pixels::Packed(px), _) => px,
    };
    match format {
        OutFormat::Jpeg if layout == Layout::Rgba && transparent => {
            jpeg(&flatten_on_white(px), w, h, Layout::Rgb, quality, icc)
        }
        OutFormat::Jpeg => jpeg(px, w, h, layout, quality, icc),
        OutFormat::Png => png(px, w, h, layout, icc),
        OutFormat::Webp => webp(px, w, h, layout, webp_quality(quality), icc),
        // An all-opaque RGBA source is opaque AVIF: 4:2:0, no alpha plane.
        OutFormat::Avif if layout == Layout::Rgba && !transparent => {
            let rgb: Vec<u8> = px
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            avif(&rgb, w, h, Layout::Rgb, quality)
        }
        OutFormat::Avif => avif(px, w, h, layout, quality),
    }
}

/// Every format of `formats` for one width. A YCbCr source is turned into
/// RGB at most once, however many non-JPEG formats want it.
#[allow(clippy::too_many_arguments)]
pub fn variants(
    pixels: &Pixels,
    w: u32,
    h: u32,
    layout: Layout,
    formats: &[OutFormat],
    transparent: bool,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<(OutFormat, Vec<u8>)>> {
    // JPEG and (from fitting planes) AVIF encode the planes themselves.
    let planar = |f: OutFormat| {
        f == OutFormat::Jpeg
            || (f == OutFormat::Avif && matches!(pixels, Pixels::Planar(y) if avif::fits(y)))
    };
    let rgb = match pixels {
        Pixels::Planar(ycc) if formats.iter().any(|&f| !planar(f)) => {
            Some(Pixels::Packed(ycc.to_rgb()))
        }
        _ => None,
    };
    formats
        .iter()
        .map(|&format| {
            let px = match &rgb {
                Some(rgb) if !planar(format) => rgb,
                _ => pixels,
            };
            variant(px, w, h, layout, format, transparent, quality, icc).map(|b| (format, b))
        })
        .collect()
}

fn jpeg_size(w: u32, h: u32) -> Result<(u16, u16)> {
    match (u16::try_from(w), u16::try_from(h)) {
        (Ok(a), Ok(b)) if a < u16::MAX && b < u16::MAX => Ok((a, b)),
        _ => Err(Error::OverLimits(format!(
            "{w}x{h} is too large for JPEG output"
        ))),
    }
}

/// The JPEG encoder every output uses: baseline 4:2:0 (about 25% smaller
/// than `image`'s 4:4:4 at equal quality), ICC profile only.
fn jpeg_encoder<'a>(
    out: &'a mut Vec<u8>,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<jpeg_encoder::Encoder<&'a mut Vec<u8>>> {
    let mut enc = jpeg_encoder::Encoder::new(out, quality);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    // Optimised Huffman tables cost a second pass (~35% of encode time under
    // wasm at 1920 px) for ~1% smaller files: not worth it on the hot path.
    enc.set_optimized_huffman_tables(false);
    if let Some(icc) = icc {
        enc.add_icc_profile(icc)
            .map_err(|e| Error::Internal(format!("jpeg icc: {e}")))?;
    }
    Ok(enc)
}

/// JPEG output from interleaved pixels. Alpha, if any, must already be
/// flattened by the caller.
pub fn jpeg(
    px: &[u8],
    w: u32,
    h: u32,
    layout: Layout,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let (w16, h16) = jpeg_size(w, h)?;
    let mut out = Vec::with_capacity(px.len() / 8);
    let ct = match layout {
        Layout::Gray => jpeg_encoder::ColorType::Luma,
        Layout::Rgb => jpeg_encoder::ColorType::Rgb,
        Layout::Rgba => jpeg_encoder::ColorType::Rgba,
    };
    jpeg_encoder(&mut out, quality, icc)?
        .encode(px, w16, h16, ct)
        .map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

/// JPEG output straight from YCbCr planes, no colour conversion. The chroma
/// planes must be half the luma size, rounded up, starting at the image's
/// first pixel (as `resize` makes them, orientation applied):
/// each chroma sample is repeated over its 2x2 luma pixels and the encoder's
/// 4:2:0 subsampling takes it back unchanged.
pub fn jpeg_ycc(ycc: &Ycc, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>> {
    let (w, h) = (ycc.width(), ycc.height());
    let half = (w.div_ceil(2), h.div_ceil(2));
    let fits = |c: &crate::ycc::Plane| (c.width, c.height) == half && c.origin == (0.0, 0.0);
    if !fits(&ycc.cb) || !fits(&ycc.cr) {
        return Err(Error::Internal(format!(
            "jpeg: chroma {}x{} for luma {w}x{h}",
            ycc.cb.width, ycc.cb.height
        )));
    }
    let (w16, h16) = jpeg_size(w, h)?;
    let mut out = Vec::with_capacity(w as usize * h as usize / 4);
    jpeg_encoder(&mut out, quality, icc)?
        .encode_image(YccImage {
            ycc,
            width: w16,
            height: h16,
        })
        .map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

/// `jpeg_encoder`'s view of planes whose chroma is exactly half the luma size.
struct YccImage<'a> {
    ycc: &'a Ycc,
    width: u16,
    height: u16,
}

impl jpeg_encoder::ImageBuffer for YccImage<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let (y, w) = (u32::from(y), usize::from(self.width));
        buffers[0].extend_from_slice(self.ycc.y.row(y));
        for (buf, plane) in [(1, &self.ycc.cb), (2, &self.ycc.cr)] {
            let buf = &mut buffers[buf];
            let start = buf.len();
            buf.extend(plane.row(y / 2).iter().flat_map(|&c| [c, c]));
            buf.truncate(start + w);
        }
    }
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

/// Lossy WebP (VP8) output. Alpha, when the pixels have it, goes in a
/// lossless ALPH chunk, so transparency survives exactly; only colour is
/// lossy. VP8 frames are at most 16383 px a side.
pub fn webp(
    px: &[u8],
    w: u32,
    h: u32,
    layout: Layout,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    const MAX_SIDE: u32 = 16383;
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(Error::OverLimits(format!(
            "{w}x{h} is too large for WebP output"
        )));
    }
    let color = match layout {
        Layout::Gray => image_webp::ColorType::L8,
        Layout::Rgb => image_webp::ColorType::Rgb8,
        Layout::Rgba => image_webp::ColorType::Rgba8,
    };
    let mut out = Vec::with_capacity(px.len() / 16);
    let mut enc = image_webp::WebPEncoder::new(&mut out);
    let mut params = image_webp::EncoderParams::default();
    params.use_lossy = true;
    params.lossy_quality = quality;
    enc.set_params(params);
    if let Some(icc) = icc {
        enc.set_icc_profile(icc.to_vec());
    }
    enc.encode(px, w, h, color)
        .map_err(|e| Error::Internal(format!("webp encode: {e}")))?;
    Ok(out)
}

/// AVIF output for a JPEG `quality`. Opaque (grey, RGB) pixels go to rav1e
/// directly as 8-bit 4:2:0 (`avif.rs`). Transparent ones go through ravif
/// (4:4:4, 10-bit, speed 10, one thread): alpha becomes an AV1 alpha
/// plane and colour under fully transparent pixels is cleaned (it cannot
/// be seen and costs bytes). No ICC profile is written, so a kept
/// (unconverted) profile is not carried: the pixels are then read as sRGB.
pub fn avif(px: &[u8], w: u32, h: u32, layout: Layout, quality: u8) -> Result<Vec<u8>> {
    if layout != Layout::Rgba {
        return avif::from_rgb(
            px,
            w,
            h,
            layout,
            avif_quality(quality),
            avif::Tuning::DEFAULT,
        );
    }
    let (w, h) = (w as usize, h as usize);
    let enc = ravif::Encoder::new()
        .with_quality(f32::from(avif_alpha_quality(quality)))
        .with_speed(AVIF_SPEED)
        .with_num_threads(Some(1));
    let err = |e: ravif::Error| Error::Internal(format!("avif encode: {e}"));
    let file = match layout {
        Layout::Rgba => {
            let px: Vec<rgb::RGBA8> = px
                .chunks_exact(4)
                .map(|p| rgb::RGBA8::new(p[0], p[1], p[2], p[3]))
                .collect();
            enc.encode_rgba(imgref::Img::new(&px[..], w, h))
                .map_err(err)?
                .avif_file
        }
        Layout::Rgb | Layout::Gray => {
            let px: Vec<rgb::RGB8> = match layout {
                Layout::Gray => px.iter().map(|&g| rgb::RGB8::new(g, g, g)).collect(),
                _ => px
                    .chunks_exact(3)
                    .map(|p| rgb::RGB8::new(p[0], p[1], p[2]))
                    .collect(),
            };
            enc.encode_rgb(imgref::Img::new(&px[..], w, h))
                .map_err(err)?
                .avif_file
        }
    };
    Ok(file)
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
    fn png_roundtrip() {
        let px: Vec<u8> = (0..16 * 8 * 4).map(|i| i as u8).collect();
        let bytes = png(&px, 16, 8, Layout::Rgba, None).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(img.dimensions(), (16, 8));
        assert_eq!(img.into_raw(), px);
    }

    /// A smooth photo-like test card: gradients and a disc, with the left
    /// quarter transparent when `alpha`.
    fn card(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let mut px = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as i32 - w as i32 / 2, y as i32 - h as i32 / 2);
                let disc = dx * dx + dy * dy < (h as i32 / 3).pow(2);
                let r = (x * 255 / w) as u8;
                let g = (y * 255 / h) as u8;
                let b = if disc { 220 } else { 40 };
                let a = if alpha && x < w / 4 { 0 } else { 255 };
                px.extend_from_slice(&[r, g, b, a]);
            }
        }
        px
    }

    fn rgb_of(rgba: &[u8]) -> Vec<u8> {
        rgba.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    /// Mean absolute channel difference over the opaque pixels.
    fn mean_diff(want: &[u8], got: &[u8]) -> f64 {
        let (mut sum, mut n) = (0u64, 0u64);
        for (a, b) in want.chunks_exact(4).zip(got.chunks_exact(4)) {
            if a[3] == 255 {
                sum += (0..3).map(|i| u64::from(a[i].abs_diff(b[i]))).sum::<u64>();
                n += 3;
            }
        }
        sum as f64 / n.max(1) as f64
    }

    fn decode_rgba(bytes: &[u8]) -> image::RgbaImage {
        image::load_from_memory(bytes).unwrap().into_rgba8()
    }

    #[test]
    fn webp_is_lossy_close_and_keeps_alpha() {
        let (w, h) = (96, 64);
        for alpha in [false, true] {
            let px = card(w, h, alpha);
            let bytes = if alpha {
                webp(&px, w, h, Layout::Rgba, 90, None).unwrap()
            } else {
                webp(&rgb_of(&px), w, h, Layout::Rgb, 90, None).unwrap()
            };
            assert_eq!(&bytes[..4], b"RIFF");
            assert!(bytes.windows(4).any(|c| c == b"VP8 "), "not lossy VP8");
            assert!(!bytes.windows(4).any(|c| c == b"EXIF" || c == b"XMP "));
            let img = decode_rgba(&bytes);
            assert_eq!(img.dimensions(), (w, h));
            let got = img.into_raw();
            let diff = mean_diff(&px, &got);
            assert!(diff < 6.0, "mean difference {diff}");
            // Alpha is lossless: exactly the source's.
            let alphas = |v: &[u8]| v.chunks_exact(4).map(|p| p[3]).collect::<Vec<_>>();
            assert_eq!(alphas(&got), alphas(&px));
        }
        let grey: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        let img = decode_rgba(&webp(&grey, w, h, Layout::Gray, 90, None).unwrap());
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!(
            webp(&grey, 16384, 1, Layout::Gray, 90, None)
                .unwrap_err()
                .class(),
            "over_limits"
        );
    }

    /// The AVIF's header: `ftyp` brand `avif`, the size in `ispe`, and
    /// whether an alpha plane (an `auxC` alpha item) is present. `image`
    /// cannot decode AVIF without dav1d (C), so the pixels are checked by
    /// the Python tests (Pillow); here the container is.
    fn avif_header(bytes: &[u8]) -> (u32, u32, bool) {
        assert_eq!(&bytes[4..12], b"ftypavif");
        let at = bytes.windows(4).position(|c| c == b"ispe").unwrap() + 8;
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        let alpha = bytes
            .windows(44)
            .any(|c| c.starts_with(b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"));
        (be(at), be(at + 4), alpha)
    }

    #[test]
    fn avif_has_size_and_alpha_and_no_exif() {
        let (w, h) = (80, 48);
        let px = card(w, h, true);
        let with_alpha = avif(&px, w, h, Layout::Rgba, 70).unwrap();
        assert_eq!(avif_header(&with_alpha), (w, h, true));
        let opaque = avif(&rgb_of(&px), w, h, Layout::Rgb, 70).unwrap();
        assert_eq!(avif_header(&opaque), (w, h, false));
        for bytes in [&with_alpha, &opaque] {
            assert!(!bytes.windows(4).any(|c| c == b"Exif"));
        }
        let grey = vec![128u8; (w * h) as usize];
        assert_eq!(
            avif_header(&avif(&grey, w, h, Layout::Gray, 70).unwrap()),
            (w, h, false)
        );
    }

    #[test]
    fn one_width_in_every_format() {
        let (w, h) = (64, 40);
        let px = rgb_of(&card(w, h, false));
        let out = variants(
            &Pixels::Packed(px),
            w,
            h,
            Layout::Rgb,
            &[
                OutFormat::Jpeg,
                OutFormat::Webp,
                OutFormat::Avif,
                OutFormat::Png,
            ],
            false,
            82,
            None,
        )
        .unwrap();
        let names: Vec<_> = out.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["jpeg", "webp", "avif", "png"]);
        assert_eq!(&out[0].1[..2], &[0xFF, 0xD8]);
        assert_eq!(&out[1].1[8..12], b"WEBP");
        assert_eq!(avif_header(&out[2].1), (w, h, false));
        assert_eq!(&out[3].1[1..4], b"PNG");
    }

    #[test]
    fn ycc_jpeg_keeps_colour() {
        // An odd-sized picture, left half red and right half blue, in 4:2:0
        // planes: the JPEG made from the planes must decode to the same colours.
        let (w, h) = (33u32, 17u32);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let red = rgb_to_ycc(255, 0, 0);
        let blue = rgb_to_ycc(0, 0, 255);
        let pick = |x: u32, limit: u32| if x < limit { red } else { blue };
        let plane = |pw: u32, ph: u32, limit: u32, i: usize| {
            let data = (0..ph)
                .flat_map(|_| (0..pw).map(move |x| pick(x, limit)[i]))
                .collect();
            crate::ycc::Plane::packed(data, pw, ph)
        };
        let ycc = Ycc {
            y: plane(w, h, 16, 0),
            cb: plane(cw, ch, 8, 1),
            cr: plane(cw, ch, 8, 2),
        };
        let bytes = jpeg_ycc(&ycc, 95, None).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().into_rgb8();
        assert_eq!(img.dimensions(), (w, h));
        let near = |p: &image::Rgb<u8>, want: [u8; 3]| {
            p.0.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 12)
        };
        assert!(
            near(img.get_pixel(4, 8), [255, 0, 0]),
            "{:?}",
            img.get_pixel(4, 8)
        );
        assert!(
            near(img.get_pixel(28, 8), [0, 0, 255]),
            "{:?}",
            img.get_pixel(28, 8)
        );
        // Same planes through the RGB path give the same picture.
        let via_rgb = jpeg(&ycc.to_rgb(), w, h, Layout::Rgb, 95, None).unwrap();
        let img2 = image::load_from_memory(&via_rgb).unwrap().into_rgb8();
        let diff = img
            .pixels()
            .zip(img2.pixels())
            .map(|(a, b)| {
                a.0.iter()
                    .zip(b.0)
                    .map(|(&x, y)| u32::from(x.abs_diff(y)))
                    .max()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        assert!(diff <= 40, "max channel difference {diff}");
        let mismatched = Ycc {
            cb: plane(w, h, 16, 1),
            ..ycc
        };
        assert_eq!(
            jpeg_ycc(&mismatched, 95, None).unwrap_err().class(),
            "internal"
        );
    }

    fn rgb_to_ycc(r: u8, g: u8, b: u8) -> [u8; 3] {
        let (y, cb, cr) = jpeg_encoder::rgb_to_ycbcr(r, g, b);
        [y, cb, cr]
    }
}
