//! EXIF orientation: read from the TIFF structure and applied to pixels.
//!
//! We apply it to the small resized variants rather than the decoded source:
//! rotating a 1920 px image is ~10x cheaper than rotating a 24 MP one, and the
//! resize itself does not care which way is up.

/// EXIF orientation value 1..=8 (1 = as stored).
pub type Orientation = u8;

/// True when the orientation swaps width and height (transpose family, 5..=8).
pub fn swaps_axes(o: Orientation) -> bool {
    matches!(o, 5..=8)
}

/// Which stored axes `apply` reverses (x, y): a plane that is not symmetric
/// about its centre (a chroma grid overhanging one edge) must know.
pub fn reverses_axes(o: Orientation) -> (bool, bool) {
    (matches!(o, 2 | 3 | 7 | 8), matches!(o, 3 | 4 | 6 | 7))
}

/// Finds tag 0x0112 in IFD0 of an EXIF blob (with or without the `Exif\0\0`
/// prefix). Malformed EXIF is ignored (orientation 1), never an error: EXIF is
/// advisory and often damaged by editors.
pub fn from_exif(exif: &[u8]) -> Orientation {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    parse_tiff(tiff)
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

fn parse_tiff(t: &[u8]) -> Option<u8> {
    let le = match t.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b = t.get(i..i + 2)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b = t.get(i..i + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? == 0x0112 {
            // SHORT, count 1: the value sits in the first two bytes of the value field.
            let v = u16_at(entry + 8)?;
            return u8::try_from(v).ok();
        }
    }
    None
}

/// Applies orientation `o` to an interleaved 8-bit buffer with `ch` channels.
/// Returns the new buffer and its (width, height).
pub fn apply(src: &[u8], w: u32, h: u32, ch: usize, o: Orientation) -> (Vec<u8>, u32, u32) {
    if !(2..=8).contains(&o) {
        return (src.to_vec(), w, h);
    }
    let (w_us, h_us) = (w as usize, h as usize);
    let (ow, oh) = if swaps_axes(o) {
        (h_us, w_us)
    } else {
        (w_us, h_us)
    };
    // For each output pixel (x, y), the source pixel it shows is
    // base + x * dx + y * dy (in pixels).
    let (wi, hi) = (w_us as isize, h_us as isize);
    let (base, dx, dy) = match o {
        2 => (wi - 1, -1, wi),
        3 => ((hi - 1) * wi + wi - 1, -1, -wi),
        4 => ((hi - 1) * wi, 1, -wi),
        5 => (0, wi, 1),
        6 => ((hi - 1) * wi, -wi, 1),
        7 => ((hi - 1) * wi + wi - 1, -wi, -1),
        _ => (wi - 1, wi, -1), // 8
    };
    let walk = Walk {
        base,
        dx,
        dy,
        ow,
        oh,
    };
    let out = match ch {
        1 => walk.run::<1>(src),
        3 => walk.run::<3>(src),
        4 => walk.run::<4>(src),
        _ => walk.run_dyn(src, ch),
    };
    (out, ow as u32, oh as u32)
}

/// The output in square tiles, so that a turn by 90 degrees reads the
/// source's rows a tile at a time instead of striding down a whole column
/// per output pixel (the output of a portrait 1920 px variant is 5 MP).
struct Walk {
    base: isize,
    dx: isize,
    dy: isize,
    ow: usize,
    oh: usize,
}

const TILE: usize = 32;

impl Walk {
    fn tiles(&self, mut px: impl FnMut(usize, usize)) {
        for ty in (0..self.oh).step_by(TILE) {
            for tx in (0..self.ow).step_by(TILE) {
                for y in ty..(ty + TILE).min(self.oh) {
                    let row = self.base + y as isize * self.dy;
                    for x in tx..(tx + TILE).min(self.ow) {
                        px(y * self.ow + x, (row + x as isize * self.dx) as usize);
                    }
                }
            }
        }
    }

    fn run<const CH: usize>(&self, src: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.ow * self.oh * CH];
        let (dst, from) = (out.as_chunks_mut::<CH>().0, src.as_chunks::<CH>().0);
        self.tiles(|d, s| dst[d] = from[s]);
        out
    }

    fn run_dyn(&self, src: &[u8], ch: usize) -> Vec<u8> {
        let mut out = vec![0u8; self.ow * self.oh * ch];
        self.tiles(|d, s| out[d * ch..d * ch + ch].copy_from_slice(&src[s * ch..s * ch + ch]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_axes_match_apply() {
        // Stored 3x2; the value at the output's first pixel says which stored
        // x (or y) it came from: the far one iff that axis is reversed.
        let xs = [0u8, 1, 2, 0, 1, 2];
        let ys = [0u8, 0, 0, 1, 1, 1];
        for o in 1..=8 {
            let (rx, ry) = reverses_axes(o);
            assert_eq!(apply(&xs, 3, 2, 1, o).0[0] == 2, rx, "x, orientation {o}");
            assert_eq!(apply(&ys, 3, 2, 1, o).0[0] == 1, ry, "y, orientation {o}");
        }
    }

    type Enc = (fn(u16) -> [u8; 2], fn(u32) -> [u8; 4]);

    fn exif(le: bool, o: u16) -> Vec<u8> {
        let mut v = b"Exif\0\0".to_vec();
        let (u16b, u32b): Enc = if le {
            (u16::to_le_bytes, u32::to_le_bytes)
        } else {
            (u16::to_be_bytes, u32::to_be_bytes)
        };
        v.extend_from_slice(if le { b"II" } else { b"MM" });
        v.extend_from_slice(&u16b(42));
        v.extend_from_slice(&u32b(8));
        v.extend_from_slice(&u16b(1));
        v.extend_from_slice(&u16b(0x0112));
        v.extend_from_slice(&u16b(3));
        v.extend_from_slice(&u32b(1));
        v.extend_from_slice(&u16b(o));
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&u32b(0));
        v
    }

    #[test]
    fn parses_both_byte_orders() {
        for o in 1..=8 {
            assert_eq!(from_exif(&exif(true, o)), o as u8);
            assert_eq!(from_exif(&exif(false, o)), o as u8);
        }
    }

    #[test]
    fn garbage_means_upright() {
        assert_eq!(from_exif(b""), 1);
        assert_eq!(from_exif(b"Exif\0\0II*\0\xff\xff\xff\xff"), 1);
        assert_eq!(from_exif(&exif(true, 9)), 1);
        assert_eq!(from_exif(&exif(true, 0)), 1);
    }

    /// A 3x2 image with distinct pixels, checked against the EXIF spec's
    /// definition of each orientation (where stored row 0 / column 0 go).
    #[test]
    fn all_eight() {
        // stored:
        // 1 2 3
        // 4 5 6
        let src = [1u8, 2, 3, 4, 5, 6];
        let cases: [(u8, &[u8], u32, u32); 8] = [
            (1, &[1, 2, 3, 4, 5, 6], 3, 2),
            (2, &[3, 2, 1, 6, 5, 4], 3, 2),
            (3, &[6, 5, 4, 3, 2, 1], 3, 2),
            (4, &[4, 5, 6, 1, 2, 3], 3, 2),
            (5, &[1, 4, 2, 5, 3, 6], 2, 3),
            (6, &[4, 1, 5, 2, 6, 3], 2, 3),
            (7, &[6, 3, 5, 2, 4, 1], 2, 3),
            (8, &[3, 6, 2, 5, 1, 4], 2, 3),
        ];
        for (o, want, ww, wh) in cases {
            let (got, w, h) = apply(&src, 3, 2, 1, o);
            assert_eq!((&got[..], w, h), (want, ww, wh), "orientation {o}");
        }
    }

    /// The tiled walk is the per-pixel definition, at sizes that end
    /// mid-tile, for every channel count.
    #[test]
    fn tiled_matches_per_pixel() {
        for (w, h) in [(1, 1), (33, 70), (65, 31)] {
            for ch in 1..=4 {
                let src: Vec<u8> = (0..w * h * ch).map(|i| (i * 7 % 251) as u8).collect();
                for o in 2..=8u8 {
                    let (got, ow, oh) = apply(&src, w as u32, h as u32, ch, o);
                    for y in 0..oh as usize {
                        for x in 0..ow as usize {
                            let (sx, sy) = match o {
                                2 => (w - 1 - x, y),
                                3 => (w - 1 - x, h - 1 - y),
                                4 => (x, h - 1 - y),
                                5 => (y, x),
                                6 => (y, h - 1 - x),
                                7 => (w - 1 - y, h - 1 - x),
                                _ => (w - 1 - y, x),
                            };
                            let (d, s) = ((y * ow as usize + x) * ch, (sy * w + sx) * ch);
                            assert_eq!(got[d..d + ch], src[s..s + ch], "o={o} ch={ch} {w}x{h}");
                        }
                    }
                }
            }
        }
    }
}
