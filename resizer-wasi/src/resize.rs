//! The resize plan (which widths, what heights) and the cascade that makes them.
//!
//! Each variant is resized from the previous, larger one (1920 -> 640 -> 320)
//! instead of from the decoded source: a Lanczos3 pass costs in proportion to
//! the source it reads, and a 3x step is still a high-quality downscale.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::Serialize;

use crate::decode::Layout;
use crate::error::{Error, Result};
use crate::orientation::{self, Orientation};

/// One output, in display (oriented) coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub width: u32,
    pub reason: &'static str,
}

/// Splits requested widths (largest first) into targets and skipped widths.
/// `width`/`height` are the oriented source size. Heights keep the aspect
/// ratio, rounded to nearest and at least 1 px.
pub fn plan(width: u32, height: u32, widths: &[u32]) -> (Vec<Target>, Vec<Skipped>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for &w in widths {
        if w > width {
            skipped.push(Skipped {
                width: w,
                reason: "would upscale",
            });
            continue;
        }
        let h = ((u64::from(height) * u64::from(w) * 2 + u64::from(width))
            / (2 * u64::from(width)))
        .max(1);
        targets.push(Target {
            width: w,
            height: u32::try_from(h).unwrap_or(u32::MAX),
        });
    }
    (targets, skipped)
}

fn pixel_type(layout: Layout) -> PixelType {
    match layout {
        Layout::Gray => PixelType::U8,
        Layout::Rgb => PixelType::U8x3,
        Layout::Rgba => PixelType::U8x4,
    }
}

/// A resized variant, already oriented for display.
pub struct Resized {
    pub target: Target,
    pub pixels: Vec<u8>,
}

/// Runs the cascade. `src` is in stored orientation; each output is oriented.
pub fn cascade(
    src: Vec<u8>,
    src_w: u32,
    src_h: u32,
    layout: Layout,
    o: Orientation,
    targets: &[Target],
) -> Result<Vec<Resized>> {
    let pt = pixel_type(layout);
    let ch = layout.channels();
    let mut resizer = Resizer::new();
    // Lanczos3 on premultiplied alpha (fast_image_resize's default `use_alpha`).
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    // The cascade's current source: the decoded image at first (freed after
    // the first step), then the previous variant, borrowed from `out` when no
    // rotation made it differ from the unrotated pixels.
    enum Cur {
        Own(Vec<u8>),
        Out(usize),
    }
    let mut cur = Cur::Own(src);
    let (mut cw, mut chh) = (src_w, src_h);
    let mut out: Vec<Resized> = Vec::with_capacity(targets.len());
    for t in targets {
        // The target in stored orientation.
        let (tw, th) = if orientation::swaps_axes(o) {
            (t.height, t.width)
        } else {
            (t.width, t.height)
        };
        let cur_buf: &[u8] = match &cur {
            Cur::Own(v) => v,
            Cur::Out(i) => &out[*i].pixels,
        };
        let next = if (tw, th) == (cw, chh) {
            cur_buf.to_vec()
        } else {
            let src_img = ImageRef::new(cw, chh, cur_buf, pt)
                .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
            let mut dst = Image::new(tw, th, pt);
            resizer
                .resize(&src_img, &mut dst, &opts)
                .map_err(|e| Error::Internal(format!("resize: {e}")))?;
            dst.into_vec()
        };
        if o == 1 {
            out.push(Resized {
                target: *t,
                pixels: next,
            });
            cur = Cur::Out(out.len() - 1);
        } else {
            let (pixels, w, h) = orientation::apply(&next, tw, th, ch, o);
            debug_assert_eq!((w, h), (t.width, t.height));
            out.push(Resized { target: *t, pixels });
            cur = Cur::Own(next);
        }
        (cw, chh) = (tw, th);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_keeps_aspect_and_never_upscales() {
        let (t, s) = plan(6000, 4000, &[1920, 640, 320]);
        assert_eq!(
            t,
            vec![
                Target {
                    width: 1920,
                    height: 1280
                },
                Target {
                    width: 640,
                    height: 427
                },
                Target {
                    width: 320,
                    height: 213
                },
            ]
        );
        assert!(s.is_empty());
        let (t, s) = plan(512, 512, &[1920, 640, 320]);
        assert_eq!(
            t,
            vec![Target {
                width: 320,
                height: 320
            }]
        );
        assert_eq!(
            s.iter().map(|s| s.width).collect::<Vec<_>>(),
            vec![1920, 640]
        );
        assert_eq!(s[0].reason, "would upscale");
        // Extreme panorama: height never 0.
        let (t, _) = plan(20000, 10, &[320]);
        assert_eq!(t[0].height, 1);
        // Equal width is not an upscale.
        assert_eq!(plan(640, 480, &[640]).0.len(), 1);
    }

    #[test]
    fn cascade_sizes_with_rotation() {
        let src = vec![128u8; 400 * 300 * 3];
        // Orientation 6: stored 400x300 displays as 300x400.
        let (targets, _) = plan(300, 400, &[200, 100]);
        let out = cascade(src, 400, 300, Layout::Rgb, 6, &targets).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].pixels.len(), 200 * 267 * 3);
        assert_eq!(out[1].pixels.len(), 100 * 133 * 3);
        assert!(out[1].pixels.iter().all(|&p| (127..=129).contains(&p)));
    }
}
