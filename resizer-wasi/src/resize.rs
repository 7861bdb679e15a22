//! The resize plan (which widths, what heights) and the cascade that makes them.
//!
//! Each variant is resized from the previous, larger one (1920 -> 640 -> 320)
//! instead of from the decoded source: a Lanczos3 pass costs in proportion to
//! the source it reads, and a 3x step is still a high-quality downscale.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::Serialize;

use crate::decode::{Layout, Pixels};
use crate::error::{Error, Result};
use crate::orientation::{self, Orientation};
use crate::ycc::{Plane, Ycc};

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
/// ratio, rounded to nearest and at least 1 px. A source narrower than every
/// requested width still gets one variant, at its own size: without it such
/// an image would have nothing to serve but the original, metadata and all.
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
    if targets.is_empty() && !widths.is_empty() && width > 0 && height > 0 {
        targets.push(Target { width, height });
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
    pub pixels: Pixels,
}

fn lanczos3() -> ResizeOptions {
    // Lanczos3 on premultiplied alpha (fast_image_resize's default `use_alpha`).
    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
}

/// Runs the cascade. `src` is in stored orientation; each output is oriented.
pub fn cascade(
    src: Pixels,
    src_w: u32,
    src_h: u32,
    layout: Layout,
    o: Orientation,
    targets: &[Target],
) -> Result<Vec<Resized>> {
    match src {
        Pixels::Packed(px) => cascade_packed(px, src_w, src_h, layout, o, targets),
        Pixels::Planar(ycc) => cascade_planar(ycc, o, targets),
    }
}

/// The target in stored orientation.
fn stored(t: &Target, o: Orientation) -> (u32, u32) {
    if orientation::swaps_axes(o) {
        (t.height, t.width)
    } else {
        (t.width, t.height)
    }
}

fn cascade_packed(
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
    let opts = lanczos3();
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
        let (tw, th) = stored(t, o);
        let cur_buf: &[u8] = match &cur {
            Cur::Own(v) => v,
            Cur::Out(i) => match &out[*i].pixels {
                Pixels::Packed(v) => v,
                Pixels::Planar(_) => return Err(Error::Internal("cascade mixed layouts".into())),
            },
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
                pixels: Pixels::Packed(next),
            });
            cur = Cur::Out(out.len() - 1);
        } else {
            let (pixels, w, h) = orientation::apply(&next, tw, th, ch, o);
            debug_assert_eq!((w, h), (t.width, t.height));
            out.push(Resized {
                target: *t,
                pixels: Pixels::Packed(pixels),
            });
            cur = Cur::Own(next);
        }
        (cw, chh) = (tw, th);
    }
    Ok(out)
}

/// The planar cascade: luma to the target size, chroma to half of it
/// (rounded up), which is what a 4:2:0 JPEG encoder stores, whatever the
/// source's subsampling was.
fn cascade_planar(src: Ycc, o: Orientation, targets: &[Target]) -> Result<Vec<Resized>> {
    let mut resizer = Resizer::new();
    enum Cur {
        Own(Ycc),
        Out(usize),
    }
    let mut cur = Cur::Own(src);
    let mut out: Vec<Resized> = Vec::with_capacity(targets.len());
    for t in targets {
        let (tw, th) = stored(t, o);
        let src: &Ycc = match &cur {
            Cur::Own(v) => v,
            Cur::Out(i) => match &out[*i].pixels {
                Pixels::Planar(v) => v,
                Pixels::Packed(_) => return Err(Error::Internal("cascade mixed layouts".into())),
            },
        };
        let luma = (f64::from(tw), f64::from(th));
        let chroma = (luma.0 / 2.0, luma.1 / 2.0);
        let (cw, chh) = (tw.div_ceil(2), th.div_ceil(2));
        let next = Ycc {
            y: resize_plane(&mut resizer, &src.y, tw, th, luma)?,
            cb: resize_plane(&mut resizer, &src.cb, cw, chh, chroma)?,
            cr: resize_plane(&mut resizer, &src.cr, cw, chh, chroma)?,
        };
        if o == 1 {
            out.push(Resized {
                target: *t,
                pixels: Pixels::Planar(next),
            });
            cur = Cur::Out(out.len() - 1);
        } else {
            let oriented = next.oriented(o);
            debug_assert_eq!((oriented.width(), oriented.height()), (t.width, t.height));
            out.push(Resized {
                target: *t,
                pixels: Pixels::Planar(oriented),
            });
            cur = Cur::Own(next);
        }
    }
    Ok(out)
}

/// Resizes one plane to `w` x `h` samples that cover `extent` of the
/// image. The source crop is the part of `src` that the destination grid
/// covers: all of `src`'s image extent, scaled by how far the destination's
/// last sample overhangs its own extent, so luma and chroma stay aligned.
fn resize_plane(
    resizer: &mut Resizer,
    src: &Plane,
    w: u32,
    h: u32,
    extent: (f64, f64),
) -> Result<Plane> {
    let crop_w = (src.extent.0 * f64::from(w) / extent.0).min(f64::from(src.width));
    let crop_h = (src.extent.1 * f64::from(h) / extent.1).min(f64::from(src.height));
    let whole = crop_w == f64::from(src.width) && crop_h == f64::from(src.height);
    if whole && (w, h) == (src.width, src.height) {
        let copy = (0..src.height).flat_map(|y| src.row(y)).copied().collect();
        let mut p = Plane::packed(copy, w, h);
        p.extent = extent;
        return Ok(p);
    }
    let len = src.stride as usize * src.height as usize;
    let buf = src
        .data
        .get(..len)
        .ok_or_else(|| Error::Internal("resize: short plane".into()))?;
    let src_img = ImageRef::new(src.stride, src.height, buf, PixelType::U8)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut dst = Image::new(w, h, PixelType::U8);
    resizer
        .resize(
            &src_img,
            &mut dst,
            &lanczos3().crop(0.0, 0.0, crop_w, crop_h),
        )
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    let mut p = Plane::packed(dst.into_vec(), w, h);
    p.extent = extent;
    Ok(p)
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
        // Narrower than every width: one variant at the source's own size.
        let (t, s) = plan(200, 150, &[1920, 640, 320]);
        assert_eq!(
            t,
            vec![Target {
                width: 200,
                height: 150
            }]
        );
        assert_eq!(s.len(), 3);
        assert!(plan(200, 150, &[]).0.is_empty());
    }

    #[test]
    fn cascade_sizes_with_rotation() {
        let src = vec![128u8; 400 * 300 * 3];
        // Orientation 6: stored 400x300 displays as 300x400.
        let (targets, _) = plan(300, 400, &[200, 100]);
        let out = cascade(Pixels::Packed(src), 400, 300, Layout::Rgb, 6, &targets).unwrap();
        assert_eq!(out.len(), 2);
        let packed = |r: &Resized| match &r.pixels {
            Pixels::Packed(v) => v.clone(),
            Pixels::Planar(_) => panic!("planar"),
        };
        assert_eq!(packed(&out[0]).len(), 200 * 267 * 3);
        assert_eq!(packed(&out[1]).len(), 100 * 133 * 3);
        assert!(packed(&out[1]).iter().all(|&p| (127..=129).contains(&p)));
    }

    fn planar(w: u32, h: u32, cw: u32, ch: u32, f: impl Fn(u32, u32) -> u8) -> Ycc {
        let plane = |pw: u32, ph: u32, scale: u32| {
            let data = (0..ph)
                .flat_map(|y| (0..pw).map(move |x| (x, y)))
                .map(|(x, y)| f(x * scale, y * scale))
                .collect();
            Plane::packed(data, pw, ph)
        };
        let cb = plane(cw, ch, w / cw);
        let cr = cb.clone();
        Ycc {
            y: plane(w, h, 1),
            cb,
            cr,
        }
    }

    #[test]
    fn planar_cascade_halves_chroma_and_rotates() {
        // 4:2:0 source, orientation 6: stored 400x300 displays as 300x400.
        let src = planar(400, 300, 200, 150, |_, _| 100);
        let (targets, _) = plan(300, 400, &[201, 100]);
        let out = cascade(Pixels::Planar(src), 400, 300, Layout::Rgb, 6, &targets).unwrap();
        let Pixels::Planar(first) = &out[0].pixels else {
            panic!("packed")
        };
        assert_eq!((first.y.width, first.y.height), (201, 268));
        // Chroma is half the display size, rounded up, and so is its extent.
        assert_eq!((first.cb.width, first.cb.height), (101, 134));
        assert_eq!(first.cb.extent, (100.5, 134.0));
        let Pixels::Planar(second) = &out[1].pixels else {
            panic!("packed")
        };
        assert_eq!((second.cr.width, second.cr.height), (50, 67));
        assert!(second.y.data.iter().all(|&p| (99..=101).contains(&p)));
    }

    #[test]
    fn planar_cascade_keeps_luma_and_chroma_aligned() {
        // A vertical edge at x = 200 of 400 in luma and at 100 of 200 in
        // chroma must land at the same place in both outputs.
        let mut src = planar(400, 40, 200, 20, |x, _| if x < 200 { 20 } else { 220 });
        src.cb = {
            let data = (0..20)
                .flat_map(|_| (0..200).map(|x| if x < 100 { 20 } else { 220 }))
                .collect();
            Plane::packed(data, 200, 20)
        };
        let (targets, _) = plan(400, 40, &[100]);
        let out = cascade(Pixels::Planar(src), 400, 40, Layout::Rgb, 1, &targets).unwrap();
        let Pixels::Planar(v) = &out[0].pixels else {
            panic!("packed")
        };
        let (y, cb) = (v.y.row(5), v.cb.row(2));
        assert!(y[48] < 60 && y[51] > 180, "{:?}", &y[44..56]);
        assert!(cb[23] < 60 && cb[26] > 180, "{:?}", &cb[20..30]);
        assert_eq!(y.iter().filter(|&&p| p < 120).count(), 50);
        assert_eq!(cb.iter().filter(|&&p| p < 120).count(), 25);
    }
}
