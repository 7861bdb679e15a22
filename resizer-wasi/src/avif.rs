//! AVIF without alpha, straight through rav1e: 8-bit YCbCr 4:2:0 (BT.601,
//! full range, what a JPEG stores), from the JPEG's own planes when the
//! variant has them, else converted from RGB.
//!
//! `ravif` (used for transparent sources) always encodes 4:4:4 at 10 bits
//! with rav1e's psychovisual tuning. At the sizes and qualities the default
//! set makes AVIF, 4:2:0 8-bit gives the luma the bytes that full-size
//! chroma took and roughly halves the encoder's work; PSNR tuning keeps more
//! of the texture SSIM counts (benchmarks.md, "The production job").

use rav1e::prelude::*;

use crate::decode::Layout;
use crate::error::{Error, Result};
use crate::ycc::Ycc;

/// The encoder's knobs: fixed in production ([`Tuning::DEFAULT`]), open to
/// the benchmark child that chose them (`benches/avif_tuning.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// rav1e speed preset, 0 (slowest) ..= 10.
    pub speed: u8,
    /// Smallest and largest partition (block) size, in pixels (4..=64).
    pub blocks: (u8, u8),
    /// Tune for PSNR (true) or rav1e's psychovisual metric.
    pub psnr: bool,
    /// Loop restoration and CDEF filters.
    pub filters: bool,
}

impl Tuning {
    /// Speed 10 with 32x32 blocks only (rav1e's own speed-10 partition;
    /// ravif narrows it to 16x16, ~15% slower for no better SSIM at equal
    /// bytes; 64x64 halves the time again but loses ~0.03 SSIM at 320 px),
    /// PSNR tuning (the psychovisual one costs ~50% more time for the same
    /// SSIM at equal bytes), no CDEF or loop restoration (2x the time for
    /// nothing measurable at these qualities).
    pub const DEFAULT: Tuning = Tuning {
        speed: 10,
        blocks: (32, 32),
        psnr: true,
        filters: false,
    };
}

/// rav1e's quantizer (0..=255) for a quality 1..=100: ravif's curve, so a
/// quality means the same in both paths.
pub fn quantizer(quality: u8) -> u8 {
    let q = f32::from(quality.clamp(1, 100)) / 100.0;
    let x = if q >= 0.82 {
        (1.0 - q) * 2.6
    } else if q > 0.25 {
        q.mul_add(-0.5, 1.0 - 0.125)
    } else {
        1.0 - q
    };
    (x * 255.0).round() as u8
}

fn block(px: u8) -> BlockSize {
    match px {
        0..=4 => BlockSize::BLOCK_4X4,
        5..=8 => BlockSize::BLOCK_8X8,
        9..=16 => BlockSize::BLOCK_16X16,
        17..=32 => BlockSize::BLOCK_32X32,
        _ => BlockSize::BLOCK_64X64,
    }
}

fn config(w: usize, h: usize, quality: u8, t: Tuning) -> Config {
    let mut speed = SpeedSettings::from_preset(t.speed);
    speed.partition.partition_range = PartitionRange::new(block(t.blocks.0), block(t.blocks.1));
    speed.multiref = false;
    speed.rdo_lookahead_frames = 1;
    speed.scene_detection_mode = SceneDetectionSpeed::None;
    speed.cdef = t.filters;
    speed.lrf = t.filters;
    let q = quantizer(quality);
    let enc = EncoderConfig {
        width: w,
        height: h,
        time_base: Rational::new(1, 1),
        bit_depth: 8,
        chroma_sampling: ChromaSampling::Cs420,
        chroma_sample_position: ChromaSamplePosition::Unknown,
        pixel_range: PixelRange::Full,
        color_description: Some(ColorDescription {
            transfer_characteristics: TransferCharacteristics::SRGB,
            color_primaries: ColorPrimaries::BT709,
            matrix_coefficients: MatrixCoefficients::BT601,
        }),
        still_picture: true,
        quantizer: usize::from(q),
        min_quantizer: q,
        tune: if t.psnr {
            Tune::Psnr
        } else {
            Tune::Psychovisual
        },
        tiles: 1,
        speed_settings: speed,
        ..EncoderConfig::with_speed_preset(t.speed)
    };
    Config::new().with_encoder_config(enc).with_threads(1)
}

/// Encodes one 4:2:0 frame given as three tightly packed planes.
fn encode(
    w: usize,
    h: usize,
    planes: [(&[u8], usize); 3],
    quality: u8,
    t: Tuning,
) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Internal(format!("avif encode: {e}"));
    let mut ctx: Context<u8> = config(w, h, quality, t)
        .new_context()
        .map_err(|e| err(&e))?;
    let mut frame = ctx.new_frame();
    for (plane, (data, stride)) in frame.planes.iter_mut().zip(planes) {
        plane.copy_from_raw_u8(data, stride, 1);
    }
    ctx.send_frame(frame).map_err(|e| err(&e))?;
    ctx.flush();
    let mut av1 = Vec::new();
    loop {
        match ctx.receive_packet() {
            Ok(packet) => av1.extend_from_slice(&packet.data),
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => break,
            Err(e) => return Err(err(&e)),
        }
    }
    let mut file = avif_serialize::Aviffy::new();
    file.set_chroma_subsampling((true, true))
        .set_full_color_range(true)
        .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601);
    Ok(file.to_vec(&av1, None, w as u32, h as u32, 8))
}

/// Whether the chroma planes are exactly half the luma size from the first
/// pixel (4:2:0 as AV1 and JPEG store it).
pub fn fits(ycc: &Ycc) -> bool {
    let half = (ycc.width().div_ceil(2), ycc.height().div_ceil(2));
    let ok = |c: &crate::ycc::Plane| (c.width, c.height) == half && c.origin == (0.0, 0.0);
    ok(&ycc.cb) && ok(&ycc.cr)
}

/// AVIF from a variant's own YCbCr planes; `None` when the chroma planes
/// are not exactly half the luma size from the first pixel (then the
/// caller converts from RGB).
pub fn from_ycc(ycc: &Ycc, quality: u8, t: Tuning) -> Option<Result<Vec<u8>>> {
    if !fits(ycc) {
        return None;
    }
    let (w, h) = (ycc.width(), ycc.height());
    fn p(c: &crate::ycc::Plane) -> (&[u8], usize) {
        (&c.data[..], c.stride as usize)
    }
    Some(encode(
        w as usize,
        h as usize,
        [p(&ycc.y), p(&ycc.cb), p(&ycc.cr)],
        quality,
        t,
    ))
}

/// AVIF from opaque grey or RGB pixels: BT.601 full-range YCbCr (JPEG's),
/// each chroma sample the mean of its 2x2 pixels.
pub fn from_rgb(
    px: &[u8],
    w: u32,
    h: u32,
    layout: Layout,
    quality: u8,
    t: Tuning,
) -> Result<Vec<u8>> {
    let (w, h) = (w as usize, h as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let n = match layout {
        Layout::Gray => 1,
        Layout::Rgb => 3,
        Layout::Rgba => {
            return Err(Error::Internal("avif: alpha goes through ravif".into()));
        }
    };
    let mut y = vec![0u8; w * h];
    let mut cb = vec![128u8; cw * ch];
    let mut cr = vec![128u8; cw * ch];
    if n == 1 {
        y.copy_from_slice(&px[..w * h]);
    } else {
        // Per 2x2 cell: luma per pixel, chroma from the summed RGB (the
        // transform is affine, so this is the mean of the pixels' chroma).
        for cy in 0..ch {
            for cx in 0..cw {
                let (mut r, mut g, mut b, mut k) = (0i32, 0i32, 0i32, 0i32);
                for yy in 2 * cy..(2 * cy + 2).min(h) {
                    for xx in 2 * cx..(2 * cx + 2).min(w) {
                        let i = (yy * w + xx) * 3;
                        let (pr, pg, pb) =
                            (i32::from(px[i]), i32::from(px[i + 1]), i32::from(px[i + 2]));
                        y[yy * w + xx] = luma(pr, pg, pb);
                        r += pr;
                        g += pg;
                        b += pb;
                        k += 1;
                    }
                }
                // BT.601 full range, 16-bit fixed point, rounded.
                let c = |kr: i32, kg: i32, kb: i32| {
                    let v = (kr * r + kg * g + kb * b) / k;
                    (((128 << 16) + v + (1 << 15)) >> 16).clamp(0, 255) as u8
                };
                cb[cy * cw + cx] = c(-11059, -21709, 32768);
                cr[cy * cw + cx] = c(32768, -27439, -5329);
            }
        }
    }
    encode(w, h, [(&y, w), (&cb, cw), (&cr, cw)], quality, t)
}

fn luma(r: i32, g: i32, b: i32) -> u8 {
    ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16).clamp(0, 255) as u8
}
