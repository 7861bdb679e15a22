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
#[derive(Debug, Clone)]
pub struct Plane {
    /// `stride` samples per row; anything past `width` is padding.
    pub data: Vec<u8>,
    pub stride: u32,
    /// Valid samples per row, and rows.
    pub width: u32,
    pub height: u32,
    /// How much of the plane the image covers, in samples: the valid size,
    /// except that a chroma plane of an odd-sized image covers half a sample
    /// less than its valid size (its last sample straddles the image edge).
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
            extent: (f64::from(width), f64::from(height)),
        }
    }

    /// Sample row `y`, valid part only.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride as usize;
        &self.data[start..start + self.width as usize]
    }

    /// This plane turned to display orientation (packed). The extent follows
    /// the axes; on a flip the half-sample overhang of an odd-sized chroma
    /// plane moves to the other edge, a shift of at most half a chroma sample.
    pub fn oriented(&self, o: Orientation) -> Plane {
        let packed = self.tight();
        let (data, w, h) = orientation::apply(&packed, self.width, self.height, 1, o);
        let extent = if orientation::swaps_axes(o) {
            (self.extent.1, self.extent.0)
        } else {
            self.extent
        };
        Plane {
            data,
            stride: w,
            width: w,
            height: h,
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
            Ok(Plane {
                stride: to_u32(p.stride)?,
                width: to_u32(p.width)?,
                height: to_u32(p.height)?,
                data: p.data,
                extent,
            })
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
        for row in 0..h {
            let (cbr, crr) = (
                self.cb.row(chroma_index(row, h, &self.cb, false)),
                self.cr.row(chroma_index(row, h, &self.cr, false)),
            );
            for (x, &luma) in self.y.row(row).iter().enumerate() {
                let cx = chroma_index(x as u32, w, &self.cb, true) as usize;
                let [r, g, b] = ycbcr_to_rgb(luma, cbr[cx], crr[cx]);
                out.extend_from_slice(&[r, g, b]);
            }
        }
        out
    }
}

/// The chroma sample (column if `horizontal`, else row) that luma position
/// `i` of `len` falls in.
pub fn chroma_index(i: u32, len: u32, c: &Plane, horizontal: bool) -> u32 {
    let (extent, valid) = if horizontal {
        (c.extent.0, c.width)
    } else {
        (c.extent.1, c.height)
    };
    let pos = ((f64::from(i) + 0.5) * extent / f64::from(len)) as u32;
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
    fn orientation_swaps_extent() {
        let mut p = Plane::packed((0..6).collect(), 3, 2);
        p.extent = (2.5, 2.0);
        let r = p.oriented(6);
        assert_eq!((r.width, r.height, r.extent), (2, 3, (2.0, 2.5)));
        assert_eq!(r.data, vec![3, 0, 4, 1, 5, 2]);
    }

    #[test]
    fn grey_and_primaries() {
        assert_eq!(ycbcr_to_rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(ycbcr_to_rgb(255, 128, 128), [255, 255, 255]);
        let [r, g, b] = ycbcr_to_rgb(76, 85, 255);
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }
}
