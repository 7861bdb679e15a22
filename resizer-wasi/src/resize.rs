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
    // Not past what a JPEG can hold: such a source gets no variant, not an
    // error (it can only arise with limits raised past the defaults).
    let fits = |v: u32| (1..u32::from(u16::MAX)).contains(&v);
    if targets.is_empty() && !widths.is_empty() && fits(width) && fits(height) {
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
    let mut resizer = Resizer::new();
    match src {
        Pixels::Packed(px) => {
            let pt = pixel_type(layout);
            let opts = lanczos3();
            let out = steps(
                (px, src_w, src_h),
                o,
                targets,
                |(px, w, h), tw, th| {
                    if (tw, th) == (*w, *h) {
                        return Ok((px.clone(), tw, th));
                    }
                    let src_img = ImageRef::new(*w, *h, px, pt)
                        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
                    let mut dst = Image::new(tw, th, pt);
                    resizer
                        .resize(&src_img, &mut dst, &opts)
                        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
                    Ok((dst.into_vec(), tw, th))
                },
                |(px, w, h)| {
                    let (px, w, h) = orientation::apply(px, *w, *h, layout.channels(), o);
                    (px, w, h)
                },
            )?;
            Ok(out
                .into_iter()
                .map(|(target, (px, _, _))| Resized {
                    target,
                    pixels: Pixels::Packed(px),
                })
                .collect())
        }
        Pixels::Planar(ycc) => {
            // At an odd size the last chroma sample overhangs the image; on
            // an axis the orientation will reverse, put the overhang at the
            // start, so it is at the end (where the encoder expects it) once
            // oriented.
            let (rev_x, rev_y) = orientation::reverses_axes(o);
            let overhang = |reversed: bool, t: u32| if reversed && t % 2 == 1 { 0.5 } else { 0.0 };
            let out = steps(
                ycc,
                o,
                targets,
                |src, tw, th| {
                    // Luma to the target, chroma to half of it (rounded up):
                    // what a 4:2:0 JPEG stores, whatever the source's
                    // subsampling was.
                    let luma = (f64::from(tw), f64::from(th));
                    let chroma = (luma.0 / 2.0, luma.1 / 2.0);
                    let half = (tw.div_ceil(2), th.div_ceil(2));
                    let origin = (overhang(rev_x, tw), overhang(rev_y, th));
                    Ok(Ycc {
                        y: resize_plane(&mut resizer, &src.y, (tw, th), (0.0, 0.0), luma)?,
                        cb: resize_plane(&mut resizer, &src.cb, half, origin, chroma)?,
                        cr: resize_plane(&mut resizer, &src.cr, half, origin, chroma)?,
                    })
                },
                |ycc| ycc.oriented(o),
            )?;
            Ok(out
                .into_iter()
                .map(|(target, ycc)| Resized {
                    target,
                    pixels: Pixels::Planar(ycc),
                })
                .collect())
        }
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

/// The cascade's bookkeeping, for any image representation: each target is
/// resized from the previous step (the source first) and oriented. The
/// current source is the decoded image at first (freed after the first
/// step), then the previous variant, borrowed from the output when no
/// orientation made it differ from the unoriented pixels.
fn steps<S>(
    src: S,
    o: Orientation,
    targets: &[Target],
    mut resize: impl FnMut(&S, u32, u32) -> Result<S>,
    orient: impl Fn(&S) -> S,
) -> Result<Vec<(Target, S)>> {
    enum Cur<S> {
        Own(S),
        Out(usize),
    }
    let mut cur = Cur::Own(src);
    let mut out: Vec<(Target, S)> = Vec::with_capacity(targets.len());
    for t in targets {
        let (tw, th) = stored(t, o);
        let from = match &cur {
            Cur::Own(v) => v,
            Cur::Out(i) => &out[*i].1,
        };
        let next = resize(from, tw, th)?;
        if o == 1 {
            out.push((*t, next));
            cur = Cur::Out(out.len() - 1);
        } else {
            out.push((*t, orient(&next)));
            cur = Cur::Own(next);
        }
    }
    Ok(out)
}

/// Resizes one plane to `w` x `h` samples whose grid places the image at
/// `origin` with `extent` (see `ycc::Plane`). The source crop is the part of
/// `src` that this grid covers, so luma and chroma stay aligned even where a
/// chroma sample overhangs the image edge; what the crop needs past `src`'s
/// valid samples is edge-replicated.
fn resize_plane(
    resizer: &mut Resizer,
    src: &Plane,
    (w, h): (u32, u32),
    origin: (f64, f64),
    extent: (f64, f64),
) -> Result<Plane> {
    // Per axis: destination sample u is at image fraction (u - origin) /
    // extent, which is source position src.origin + that * src.extent.
    let span = |s_origin: f64, s_extent: f64, d_origin: f64, d_extent: f64, n: u32| {
        let r = s_extent / d_extent;
        (s_origin - d_origin * r, f64::from(n) * r)
    };
    let (left, crop_w) = span(src.origin.0, src.extent.0, origin.0, extent.0, w);
    let (top, crop_h) = span(src.origin.1, src.extent.1, origin.1, extent.1, h);
    let finish = |data: Vec<u8>| {
        let mut p = Plane::packed(data, w, h);
        p.origin = origin;
        p.extent = extent;
        p
    };
    let exact = |v: f64, n: u32| (v - f64::from(n)).abs() < 1e-9;
    if exact(left, 0)
        && exact(top, 0)
        && exact(crop_w, w)
        && exact(crop_h, h)
        && (w, h) == (src.width, src.height)
    {
        return Ok(finish((0..h).flat_map(|y| src.row(y)).copied().collect()));
    }
    // Samples the crop needs before the plane and past its valid part (the
    // existing padding already repeats the edge, so it counts as room).
    const EPS: f64 = 1e-6;
    let need = |start: f64, len: f64, room: u32| {
        let before = (-start - EPS).max(0.0).ceil() as u32;
        let after = (start + len - f64::from(room) - EPS).max(0.0).ceil() as u32;
        (before, after)
    };
    let (bx, ax) = need(left, crop_w, src.stride);
    let (by, ay) = need(top, crop_h, src.rows());
    let padded;
    let view = if (bx, ax, by, ay) == (0, 0, 0, 0) {
        src
    } else {
        // Measured from the valid part, which is all `padded` copies.
        let (_, ax) = need(left, crop_w, src.width);
        let (_, ay) = need(top, crop_h, src.height);
        padded = src.padded((bx, by), (ax, ay));
        &padded
    };
    let (left, top) = (left + f64::from(bx), top + f64::from(by));
    let (vw, vh) = (view.stride, view.rows());
    // Rounding must not push the crop past the view by a hair.
    let crop_w = crop_w.min(f64::from(vw) - left);
    let crop_h = crop_h.min(f64::from(vh) - top);
    let len = vw as usize * vh as usize;
    let buf = view
        .data
        .get(..len)
        .ok_or_else(|| Error::Internal("resize: short plane".into()))?;
    let src_img = ImageRef::new(vw, vh, buf, PixelType::U8)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let mut dst = Image::new(w, h, PixelType::U8);
    resizer
        .resize(
            &src_img,
            &mut dst,
            &lanczos3().crop(left, top, crop_w, crop_h),
        )
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    Ok(finish(dst.into_vec()))
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

    /// Luma and chroma made from one ramp (chroma sampled at the centres of
    /// 2x2 luma pixels, odd sizes so a chroma sample overhangs each far
    /// edge). After the cascade and each orientation, every interior chroma
    /// sample must equal the mean of the four luma pixels it covers within
    /// rounding; a one-pixel slip between the planes costs 2-4 levels.
    #[test]
    fn planar_cascade_keeps_chroma_over_its_luma_pixels() {
        let (w, h) = (203u32, 151u32);
        for axis in 0..2 {
            let ramp = |x: f64, y: f64| (1.2 * if axis == 0 { x } else { y }).round() as u8;
            let plane = |pw: u32, ph: u32, step: f64| {
                let data = (0..ph)
                    .flat_map(|y| (0..pw).map(move |x| (x, y)))
                    .map(|(x, y)| ramp((f64::from(x) + 0.5) * step, (f64::from(y) + 0.5) * step))
                    .collect();
                Plane::packed(data, pw, ph)
            };
            let mut cb = plane(w.div_ceil(2), h.div_ceil(2), 2.0);
            cb.extent = (f64::from(w) / 2.0, f64::from(h) / 2.0);
            for o in 1..=8u8 {
                let (dw, dh) = if orientation::swaps_axes(o) {
                    (h, w)
                } else {
                    (w, h)
                };
                let (targets, _) = plan(dw, dh, &[101, 61]);
                let src = Ycc {
                    y: plane(w, h, 1.0),
                    cb: cb.clone(),
                    cr: cb.clone(),
                };
                let out = cascade(Pixels::Planar(src), w, h, Layout::Rgb, o, &targets).unwrap();
                for r in &out {
                    let Pixels::Planar(v) = &r.pixels else {
                        panic!("packed")
                    };
                    assert_eq!(v.cb.origin, (0.0, 0.0), "orientation {o}");
                    let (cw, ch) = (v.cb.width, v.cb.height);
                    let mut worst = 0.0f64;
                    for cy in 2..ch - 2 {
                        for cx in 2..cw - 2 {
                            let l = |x: u32, y: u32| f64::from(v.y.row(y)[x as usize]);
                            let (x, y) = (2 * cx, 2 * cy);
                            let mean =
                                (l(x, y) + l(x + 1, y) + l(x, y + 1) + l(x + 1, y + 1)) / 4.0;
                            let c = f64::from(v.cb.row(cy)[cx as usize]);
                            worst = worst.max((mean - c).abs());
                        }
                    }
                    assert!(
                        worst <= 1.0,
                        "axis {axis}, orientation {o}, {}x{}: chroma off by {worst}",
                        r.target.width,
                        r.target.height
                    );
                }
            }
        }
    }
}
