//! A JPEG photo kept in its own colour space: Y, Cb and Cr planes, chroma at
//! its stored (usually half) resolution.
//!
//! A JPEG source that becomes JPEG variants never needs RGB: the decoder's
//! planes are resized as they are and handed to the encoder as YCbCr, which
//! skips chroma upsampling, both colour conversions and, at 4:2:0, half of
//! the resize work (one full-size channel and two quarter-size ones instead
//! of three full-size ones). Resizing commutes with the (affine) YCbCr
//! transform, so this is the same picture as resizing RGB, up to rounding.
//! Only PNG/WebP output converts, and then at the variant's size.

use crate::error::{Error, Result};
use crate::orientation::{self, Orientation};

/// One 8-bit plane.
///
/// Samples past the valid part (`width..stride` in a row, rows from
/// `height` on) repeat the nearest valid sample, so a filter that reads past
/// the edge sees the edge, never decoder padding.
#[derive(Debug, Clone)]
pub struct Plane {
    pub data: Vec<u8>,
    /// Samples per row of `data`.
    pub stride: u32,
    /// Valid samples per row, and valid rows.
    pub width: u32,
    pub height: u32,
    /// Where the image lies in the plane, per axis (x, y), in samples: from
    /// `origin` to `origin + extent`. Luma covers itself exactly. A chroma
    /// sample spans two luma pixels, so at an odd image size one of them
    /// straddles the image edge and half of it lies outside: at the end
    /// (origin 0), or at the start (origin 0.5) when the plane is made to
    /// be flipped along that axis, so the flip brings it to the end again.
    pub origin: (f64, f64),
    pub extent: (f64, f64),
}

impl Plane {
    /// A tightly packed plane (`stride == width`) covering all of itself.
    pub fn packed(data: Vec<u8>, width: u32, height: u32) -> Plane {
        Plane {
            data,
            stride: width,
            width,
            height,
            origin: (0.0, 0.0),
            extent: (f64::from(width), f64::from(height)),
        }
    }

    /// Rows in `data` (valid ones and edge-replicated padding).
    pub fn rows(&self) -> u32 {
        (self.data.len() / (self.stride.max(1) as usize)) as u32
    }

    /// Sample row `y`, valid part only.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride as usize;
        &self.data[start..start + self.width as usize]
    }

    /// This plane turned to display orientation (packed): origin and extent
    /// follow the pixels, so a straddling chroma sample stays over the edge
    /// it straddles.
    pub fn oriented(&self, o: Orientation) -> Plane {
        let packed = self.tight();
        let (data, w, h) = orientation::apply(&packed, self.width, self.height, 1, o);
        let (rev_x, rev_y) = orientation::reverses_axes(o);
        let flip = |reversed: bool, origin: f64, extent: f64, len: u32| {
            if reversed {
                f64::from(len) - origin - extent
            } else {
                origin
            }
        };
        let ox = flip(rev_x, self.origin.0, self.extent.0, self.width);
        let oy = flip(rev_y, self.origin.1, self.extent.1, self.height);
        let (origin, extent) = if orientation::swaps_axes(o) {
            ((oy, ox), (self.extent.1, self.extent.0))
        } else {
            ((ox, oy), self.extent)
        };
        Plane {
            data,
            stride: w,
            width: w,
            height: h,
            origin,
            extent,
        }
    }

    /// The valid samples without row padding.
    fn tight(&self) -> Vec<u8> {
        if self.stride == self.width {
            let n = self.width as usize * self.height as usize;
            return self.data[..n].to_vec();
        }
        (0..self.height)
            .flat_map(|y| self.row(y))
            .copied()
            .collect()
    }

    /// A copy with `before`/`after` edge-replicated samples around the valid
    /// part, per axis (x, y); origin moves with the added samples.
    pub fn padded(&self, before: (u32, u32), after: (u32, u32)) -> Plane {
        let w = before.0 + self.width + after.0;
        let h = before.1 + self.height + after.1;
        let mut data = Vec::with_capacity(w as usize * h as usize);
        for y in 0..h {
            let sy = y.saturating_sub(before.1).min(self.height - 1);
            let row = self.row(sy);
            let (first, last) = (row[0], row[row.len() - 1]);
            data.extend(std::iter::repeat_n(first, before.0 as usize));
            data.extend_from_slice(row);
            data.extend(std::iter::repeat_n(last, after.0 as usize));
        }
        Plane {
            data,
            stride: w,
            width: w,
            height: h,
            origin: (
                self.origin.0 + f64::from(before.0),
                self.origin.1 + f64::from(before.1),
            ),
            extent: self.extent,
        }
    }

    /// Fills the padding past the valid part with the nearest valid sample.
    fn replicate_edges(&mut self) {
        let (stride, w, h) = (
            self.stride as usize,
            self.width as usize,
            self.height as usize,
        );
        if w == 0 || h == 0 {
            return;
        }
        for row in self.data.chunks_exact_mut(stride).take(h) {
            let edge = row[w - 1];
            row[w..].fill(edge);
        }
        let last = (h - 1) * stride;
        let (valid, padding) = self.data.split_at_mut(h * stride);
        for row in padding.chunks_exact_mut(stride) {
            row.copy_from_slice(&valid[last..last + stride]);
        }
    }
}

/// A YCbCr image: full-resolution luma, chroma at any integer subsampling.
#[derive(Debug, Clone)]
pub struct Ycc {
    pub y: Plane,
    pub cb: Plane,
    pub cr: Plane,
}

impl Ycc {
    /// Takes over the decoder's planes (no copy; row padding is kept and
    /// skipped through `stride`).
    pub fn from_jpeg(planes: [jpeg_decoder::Plane; 3]) -> Result<Ycc> {
        let [y, cb, cr] = planes;
        let luma = (y.width as f64, y.height as f64);
        let convert = |p: jpeg_decoder::Plane| -> Result<Plane> {
            let to_u32 = |v: usize| {
                u32::try_from(v).map_err(|_| Error::OverLimits("jpeg plane size".into()))
            };
            if p.h == 0 || p.v == 0 || p.h_max == 0 || p.v_max == 0 {
                return Err(Error::Corrupt("jpeg: zero sampling factor".into()));
            }
            // Luma's valid size scaled by this component's sampling: never
            // more than its own valid size, which is that figure rounded up.
            let extent = (
                (luma.0 * f64::from(p.h) / f64::from(p.h_max)).min(p.width as f64),
                (luma.1 * f64::from(p.v) / f64::from(p.v_max)).min(p.height as f64),
            );
            if p.width == 0 || p.height == 0 {
                return Err(Error::Corrupt("jpeg: empty plane".into()));
            }
            let mut plane = Plane {
                stride: to_u32(p.stride)?,
                width: to_u32(p.width)?,
                height: to_u32(p.height)?,
                data: p.data,
                origin: (0.0, 0.0),
                extent,
            };
            plane.replicate_edges();
            Ok(plane)
        };
        Ok(Ycc {
            y: convert(y)?,
            cb: convert(cb)?,
            cr: convert(cr)?,
        })
    }

    pub fn width(&self) -> u32 {
        self.y.width
    }

    pub fn height(&self) -> u32 {
        self.y.height
    }

    pub fn oriented(&self, o: Orientation) -> Ycc {
        Ycc {
            y: self.y.oriented(o),
            cb: self.cb.oriented(o),
            cr: self.cr.oriented(o),
        }
    }

    /// Interleaved RGB at luma resolution (chroma by nearest sample), with
    /// jpeg-decoder's JFIF conversion; for PNG/WebP output of a JPEG source.
    pub fn to_rgb(&self) -> Vec<u8> {
        let (w, h) = (self.y.width, self.y.height);
        let mut out = Vec::with_capacity(w as usize * h as usize * 3);
        let columns = |c: &Plane| -> Vec<usize> {
            (0..w)
                .map(|x| chroma_index(x, w, c, true) as usize)
                .collect()
        };
        let (cb_x, cr_x) = (columns(&self.cb), columns(&self.cr));
        for row in 0..h {
            let (cbr, crr) = (
                self.cb.row(chroma_index(row, h, &self.cb, false)),
                self.cr.row(chroma_index(row, h, &self.cr, false)),
            );
            for (x, &luma) in self.y.row(row).iter().enumerate() {
                let [r, g, b] = ycbcr_to_rgb(luma, cbr[cb_x[x]], crr[cr_x[x]]);
                out.extend_from_slice(&[r, g, b]);
            }
        }
        out
    }
}

/// The chroma sample (column if `horizontal`, else row) that luma position
/// `i` of `len` falls in.
pub fn chroma_index(i: u32, len: u32, c: &Plane, horizontal: bool) -> u32 {
    let (origin, extent, valid) = if horizontal {
        (c.origin.0, c.extent.0, c.width)
    } else {
        (c.origin.1, c.extent.1, c.height)
    };
    let pos = (origin + (f64::from(i) + 0.5) * extent / f64::from(len)).max(0.0) as u32;
    pos.min(valid.saturating_sub(1))
}

const FIXED: i32 = 20;

fn fixed(x: f64) -> i32 {
    (x * f64::from(1 << FIXED) + 0.5) as i32
}

/// JFIF YCbCr -> RGB in 20-bit fixed point, as jpeg-decoder converts.
pub fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i32::from(y) * (1 << FIXED) + (1 << (FIXED - 1));
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let clamp = |v: i32| (v >> FIXED).clamp(0, 255) as u8;
    [
        clamp(y + fixed(1.40200) * cr),
        clamp(y - fixed(0.34414) * cb - fixed(0.71414) * cr),
        clamp(y + fixed(1.77200) * cb),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_444(w: u16, h: u16) -> Vec<u8> {
        let px: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
            .map(|i| ((i * 7) % 253) as u8)
            .collect();
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
        enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    #[test]
    fn planes_convert_like_the_decoder() {
        // At 4:4:4 no upsampling is involved, so converting the planes must
        // give the decoder's own interleaved RGB (its SIMD conversion may
        // round a sample the other way).
        let bytes = jpeg_444(37, 21);
        let rgb = jpeg_decoder::Decoder::new(&bytes[..]).decode().unwrap();
        let planes = match jpeg_decoder::Decoder::new(&bytes[..])
            .decode_prefer_planes()
            .unwrap()
        {
            jpeg_decoder::DecodedPixels::YCbCr(p) => p,
            jpeg_decoder::DecodedPixels::Interleaved(_) => panic!("expected planes"),
        };
        let ycc = Ycc::from_jpeg(planes).unwrap();
        assert_eq!((ycc.width(), ycc.height()), (37, 21));
        let ours = ycc.to_rgb();
        assert_eq!(ours.len(), rgb.len());
        let worst = ours.iter().zip(&rgb).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(worst <= Some(1), "max difference {worst:?}");
    }

    #[test]
    fn odd_sized_420_chroma_extent() {
        let px = vec![90u8; 33 * 17 * 3];
        let mut bytes = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 90);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        enc.encode(&px, 33, 17, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let jpeg_decoder::DecodedPixels::YCbCr(planes) = jpeg_decoder::Decoder::new(&bytes[..])
            .decode_prefer_planes()
            .unwrap()
        else {
            panic!("expected planes")
        };
        let ycc = Ycc::from_jpeg(planes).unwrap();
        assert_eq!((ycc.cb.width, ycc.cb.height), (17, 9));
        assert_eq!(ycc.cb.extent, (16.5, 8.5));
        assert_eq!(chroma_index(32, 33, &ycc.cb, true), 16);
        assert_eq!(chroma_index(1, 33, &ycc.cb, true), 0);
        assert_eq!(chroma_index(2, 33, &ycc.cb, true), 1);
    }

    #[test]
    fn orientation_moves_origin_and_extent() {
        let mut p = Plane::packed((0..6).collect(), 3, 2);
        p.extent = (2.5, 2.0);
        // 6 transposes and reverses stored y: x extent becomes y extent.
        let r = p.oriented(6);
        assert_eq!(
            (r.width, r.height, r.extent, r.origin),
            (2, 3, (2.0, 2.5), (0.0, 0.0))
        );
        assert_eq!(r.data, vec![3, 0, 4, 1, 5, 2]);
        // 2 reverses x: the half sample outside the image moves to the start.
        let r = p.oriented(2);
        assert_eq!((r.origin, r.extent), ((0.5, 0.0), (2.5, 2.0)));
        // A plane made for that flip (origin 0.5) comes out with origin 0.
        p.origin = (0.5, 0.0);
        assert_eq!(p.oriented(2).origin, (0.0, 0.0));
        assert_eq!(p.oriented(8).origin, (0.0, 0.0));
    }

    #[test]
    fn padding_repeats_edges() {
        let mut p = Plane {
            data: vec![1, 2, 99, 3, 4, 99, 99, 99, 99],
            stride: 3,
            width: 2,
            height: 2,
            origin: (0.0, 0.0),
            extent: (2.0, 2.0),
        };
        p.replicate_edges();
        assert_eq!(p.data, vec![1, 2, 2, 3, 4, 4, 3, 4, 4]);
        let q = p.padded((1, 0), (2, 1));
        assert_eq!((q.width, q.height, q.origin), (5, 3, (1.0, 0.0)));
        assert_eq!(q.data, vec![1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 3, 3, 4, 4, 4]);
    }

    #[test]
    fn grey_and_primaries() {
        assert_eq!(ycbcr_to_rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(ycbcr_to_rgb(255, 128, 128), [255, 255, 255]);
        let [r, g, b] = ycbcr_to_rgb(76, 85, 255);
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }
}
