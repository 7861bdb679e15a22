//! pixport fork: wasm `simd128` versions of the encoder's hot 4x4 kernels
//! (DCT, IDCT, quantization, reconstruction error, coefficient rate).
//!
//! Each one computes exactly what its scalar counterpart (the reference, and
//! the code every other target runs) computes, bit for bit: the scalar DCT
//! and IDCT work in `i64` "because the intermediate results may overflow",
//! these work in `i32` lanes, so each checks that its input is in the range
//! where no intermediate can leave `i32` and returns `None` otherwise (the
//! caller then runs the scalar code). The encoder's blocks are always far
//! inside those ranges: residuals are within +-255, coefficients within
//! about +-2100 (+-33000 for a Y2-derived DC, which takes the scalar path).
//! Only safe intrinsics: vectors are built from and read back to arrays.

use core::arch::wasm32::*;

fn load(a: &[i32]) -> v128 {
    i32x4(a[0], a[1], a[2], a[3])
}

fn store(v: v128, out: &mut [i32]) {
    out[0] = i32x4_extract_lane::<0>(v);
    out[1] = i32x4_extract_lane::<1>(v);
    out[2] = i32x4_extract_lane::<2>(v);
    out[3] = i32x4_extract_lane::<3>(v);
}

/// 1 in the lanes that are not 0, else 0.
fn nonzero(v: v128) -> v128 {
    u32x4_min(i32x4_abs(v), u32x4_splat(1))
}

/// Rows to columns of a 4x4 block held as four row vectors.
fn transpose(r0: v128, r1: v128, r2: v128, r3: v128) -> [v128; 4] {
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1);
    let t1 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1);
    let t2 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
    [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
        i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
    ]
}

/// Whether every lane of the four vectors is within `-limit..=limit`.
fn all_within(v: [v128; 4], limit: i32) -> bool {
    let m = i32x4_max(
        i32x4_max(i32x4_abs(v[0]), i32x4_abs(v[1])),
        i32x4_max(i32x4_abs(v[2]), i32x4_abs(v[3])),
    );
    // `abs(i32::MIN)` stays negative: compare unsigned.
    !v128_any_true(u32x4_gt(m, u32x4_splat(limit as u32)))
}

/// `transform::idct4x4`'s largest input for which every intermediate fits
/// `i32`: the second pass multiplies first-pass outputs (up to about 3.85x
/// the input) by 35468, and 12000 * 3.85 * 35468 < 2^31.
const IDCT_LIMIT: i32 = 12_000;

/// `transform::idct4x4` on `block[..16]`, or `None` (block untouched) when
/// an input is beyond `IDCT_LIMIT`.
pub(crate) fn idct4x4(block: &mut [i32]) -> Option<()> {
    let rows = [
        load(&block[0..4]),
        load(&block[4..8]),
        load(&block[8..12]),
        load(&block[12..16]),
    ];
    if !all_within(rows, IDCT_LIMIT) {
        return None;
    }
    // x * 35468 >> 16 and x + (x * 20091 >> 16), as the scalar code's
    // `(x * CONST2) >> 16` and `x + ((x * CONST1) >> 16)`.
    let mul2 = |x: v128| i32x4_shr(i32x4_mul(x, i32x4_splat(35468)), 16);
    let mul1 = |x: v128| i32x4_add(x, i32x4_shr(i32x4_mul(x, i32x4_splat(20091)), 16));

    // Vertical pass: lane i is column i.
    let [r0, r1, r2, r3] = rows;
    let a1 = i32x4_add(r0, r2);
    let b1 = i32x4_sub(r0, r2);
    let c1 = i32x4_sub(mul2(r1), mul1(r3));
    let d1 = i32x4_add(mul1(r1), mul2(r3));
    let [c0, c1v, c2, c3] = transpose(
        i32x4_add(a1, d1),
        i32x4_add(b1, c1),
        i32x4_sub(b1, c1),
        i32x4_sub(a1, d1),
    );

    // Horizontal pass: lane i is row i.
    let a1 = i32x4_add(c0, c2);
    let b1 = i32x4_sub(c0, c2);
    let c1 = i32x4_sub(mul2(c1v), mul1(c3));
    let d1 = i32x4_add(mul1(c1v), mul2(c3));
    let four = i32x4_splat(4);
    let round = |x: v128| i32x4_shr(i32x4_add(x, four), 3);
    let out = transpose(
        round(i32x4_add(a1, d1)),
        round(i32x4_add(b1, c1)),
        round(i32x4_sub(b1, c1)),
        round(i32x4_sub(a1, d1)),
    );
    for (v, chunk) in out.into_iter().zip(block[..16].chunks_exact_mut(4)) {
        store(v, chunk);
    }
    Some(())
}

/// `transform::dct4x4`'s largest input for which every intermediate fits
/// `i32`: the second pass multiplies sums of up to 64x the input by
/// 2217 + 5352, and 4096 * 64 * 7569 < 2^31.
const DCT_LIMIT: i32 = 4096;

/// `transform::dct4x4`, or `None` (block untouched) when an input is beyond
/// `DCT_LIMIT`.
pub(crate) fn dct4x4(block: &mut [i32; 16]) -> Option<()> {
    let rows = [
        load(&block[0..4]),
        load(&block[4..8]),
        load(&block[8..12]),
        load(&block[12..16]),
    ];
    if !all_within(rows, DCT_LIMIT) {
        return None;
    }
    let k2217 = i32x4_splat(2217);
    let k5352 = i32x4_splat(5352);

    // First pass, within each row: lane i is row i.
    let [x0, x1, x2, x3] = transpose(rows[0], rows[1], rows[2], rows[3]);
    let a = i32x4_shl(i32x4_add(x0, x3), 3);
    let b = i32x4_shl(i32x4_add(x1, x2), 3);
    let c = i32x4_shl(i32x4_sub(x1, x2), 3);
    let d = i32x4_shl(i32x4_sub(x0, x3), 3);
    let o0 = i32x4_add(a, b);
    let o2 = i32x4_sub(a, b);
    let o1 = i32x4_shr(
        i32x4_add(
            i32x4_add(i32x4_mul(c, k2217), i32x4_mul(d, k5352)),
            i32x4_splat(14500),
        ),
        12,
    );
    let o3 = i32x4_shr(
        i32x4_add(
            i32x4_sub(i32x4_mul(d, k2217), i32x4_mul(c, k5352)),
            i32x4_splat(7500),
        ),
        12,
    );

    // Second pass, within each column: lane i is column i.
    let [r0, r1, r2, r3] = transpose(o0, o1, o2, o3);
    let a = i32x4_add(r0, r3);
    let b = i32x4_add(r1, r2);
    let c = i32x4_sub(r1, r2);
    let d = i32x4_sub(r0, r3);
    let seven = i32x4_splat(7);
    let out0 = i32x4_shr(i32x4_add(i32x4_add(a, b), seven), 4);
    let out2 = i32x4_shr(i32x4_add(i32x4_sub(a, b), seven), 4);
    // `+ if d != 0 { 1 } else { 0 }` as `+ min(|d|, 1)` (see `nonzero`).
    let out1 = i32x4_add(
        i32x4_shr(
            i32x4_add(
                i32x4_add(i32x4_mul(c, k2217), i32x4_mul(d, k5352)),
                i32x4_splat(12000),
            ),
            16,
        ),
        nonzero(d),
    );
    let out3 = i32x4_shr(
        i32x4_add(
            i32x4_sub(i32x4_mul(d, k2217), i32x4_mul(c, k5352)),
            i32x4_splat(51000),
        ),
        16,
    );
    for (v, chunk) in [out0, out1, out2, out3]
        .into_iter()
        .zip(block.chunks_exact_mut(4))
    {
        store(v, chunk);
    }
    Some(())
}

/// The largest `|v|` `encoder::qdiv`'s reciprocal is exact for.
const QDIV_LIMIT: i32 = (1 << 20) - 1;

/// `encoder::qdiv(v, q)` of the 16 coefficients, `q` the DC step for the
/// first and the AC step for the others, given their reciprocals
/// (`RECIPROCALS[q]`, which must fit `u32`: `q >= 2`); `None` when a value
/// is beyond the reciprocal's exact range.
pub(crate) fn quantize(block: &[i32; 16], dc_recip: u32, ac_recip: u32) -> Option<[i32; 16]> {
    let rows = [
        load(&block[0..4]),
        load(&block[4..8]),
        load(&block[8..12]),
        load(&block[12..16]),
    ];
    if !all_within(rows, QDIV_LIMIT) {
        return None;
    }
    let ac = u32x4_splat(ac_recip);
    let first = u32x4_replace_lane::<0>(ac, dc_recip);
    let mut out = [0i32; 16];
    for (k, (v, chunk)) in rows.into_iter().zip(out.chunks_exact_mut(4)).enumerate() {
        let m = if k == 0 { first } else { ac };
        let a = i32x4_abs(v);
        // (|v| * m) >> 32: the high halves of the 64-bit products.
        let lo = u64x2_extmul_low_u32x4(a, m);
        let hi = u64x2_extmul_high_u32x4(a, m);
        let r = i32x4_shuffle::<1, 3, 5, 7>(lo, hi);
        // Negate where v < 0: (r ^ s) - s with s = v >> 31.
        let s = i32x4_shr(v, 31);
        store(i32x4_sub(v128_xor(r, s), s), chunk);
    }
    Some(out)
}

/// `sum((clamp(pred + residual, 0, 255) - src)^2)` over a 4x4 block: the
/// squared error of a sub-block's reconstruction.
pub(crate) fn recon_sse4x4(pred: &[u8; 16], residual: &[i32; 16], src: &[u8; 16]) -> i64 {
    let mut acc = i32x4_splat(0);
    for k in 0..4 {
        let p = &pred[k * 4..k * 4 + 4];
        let s = &src[k * 4..k * 4 + 4];
        let p = i32x4(
            i32::from(p[0]),
            i32::from(p[1]),
            i32::from(p[2]),
            i32::from(p[3]),
        );
        let s = i32x4(
            i32::from(s[0]),
            i32::from(s[1]),
            i32::from(s[2]),
            i32::from(s[3]),
        );
        let r = i32x4_min(
            i32x4_max(i32x4_add(p, load(&residual[k * 4..])), i32x4_splat(0)),
            i32x4_splat(255),
        );
        let d = i32x4_sub(r, s);
        acc = i32x4_add(acc, i32x4_mul(d, d));
    }
    i64::from(
        i32x4_extract_lane::<0>(acc)
            + i32x4_extract_lane::<1>(acc)
            + i32x4_extract_lane::<2>(acc)
            + i32x4_extract_lane::<3>(acc),
    )
}

/// `encoder::coeff_rate_estimate`: `sum(1 + |c|)` over the non-zero
/// coefficients, for a slice whose length is a multiple of 4 (in `i64`
/// lanes, as the scalar sum).
pub(crate) fn coeff_rate(coeffs: &[i32]) -> i64 {
    let mut acc = i64x2_splat(0);
    for chunk in coeffs.chunks_exact(4) {
        let v = load(chunk);
        // |c| + 1 where c != 0.
        let a = i32x4_add(i32x4_abs(v), nonzero(v));
        acc = i64x2_add(acc, i64x2_extend_low_u32x4(a));
        acc = i64x2_add(acc, i64x2_extend_high_u32x4(a));
    }
    let rest: i64 = coeffs
        .chunks_exact(4)
        .remainder()
        .iter()
        .filter(|&&c| c != 0)
        .map(|&c| 1 + i64::from(c.abs()))
        .sum();
    i64x2_extract_lane::<0>(acc) + i64x2_extract_lane::<1>(acc) + rest
}

/// Every kernel against its scalar reference. They run only where the
/// kernels exist: `cargo test -p pixport-image-webp --target wasm32-wasip1`
/// with `scripts/wasi-run` as the runner (FORK.md).
#[cfg(test)]
mod tests {
    use super::super::encoder::{
        coeff_rate_estimate_scalar, quantize_block_scalar, recon_sse4x4_scalar, RECIPROCALS,
    };
    use super::super::transform::{dct4x4_scalar, idct4x4_scalar};
    use super::*;

    /// A seeded generator of values in `-limit..=limit`.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, limit: i32) -> i32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let span = 2 * i64::from(limit) + 1;
            ((self.0 >> 33) as i64 % span - i64::from(limit)) as i32
        }

        fn block(&mut self, limit: i32) -> [i32; 16] {
            core::array::from_fn(|_| self.next(limit))
        }
    }

    /// Blocks of every sign pattern at `limit` (where the intermediates are
    /// largest), then random ones at several magnitudes up to it.
    fn blocks(limit: i32, seed: u64) -> impl Iterator<Item = [i32; 16]> {
        let extremes = (0u32..1 << 16).map(move |signs| {
            core::array::from_fn(|i| if signs >> i & 1 == 1 { -limit } else { limit })
        });
        let mut rng = Lcg(seed);
        let random = (0..60_000).map(move |n| {
            let l = [limit, limit / 3, 255, 40, 3][n % 5];
            rng.block(l)
        });
        extremes.chain(random)
    }

    #[test]
    fn dct_is_the_scalar_dct() {
        for block in blocks(DCT_LIMIT, 1) {
            let (mut a, mut b) = (block, block);
            assert!(dct4x4(&mut a).is_some(), "{block:?}");
            dct4x4_scalar(&mut b);
            assert_eq!(a, b, "{block:?}");
        }
        let mut over = [0; 16];
        over[7] = DCT_LIMIT + 1;
        assert!(dct4x4(&mut over).is_none());
        assert_eq!(over[7], DCT_LIMIT + 1);
    }

    #[test]
    fn idct_is_the_scalar_idct() {
        for block in blocks(IDCT_LIMIT, 2) {
            let (mut a, mut b) = (block, block);
            assert!(idct4x4(&mut a).is_some(), "{block:?}");
            idct4x4_scalar(&mut b);
            assert_eq!(a, b, "{block:?}");
        }
        let mut over = [0; 16];
        over[3] = -IDCT_LIMIT - 1;
        assert!(idct4x4(&mut over).is_none());
        assert_eq!(over[3], -IDCT_LIMIT - 1);
    }

    #[test]
    fn quantize_is_qdiv() {
        let mut rng = Lcg(3);
        for dc in 2i16..512 {
            let ac = 513 - dc;
            let (dr, ar) = (
                RECIPROCALS[dc as usize] as u32,
                RECIPROCALS[ac as usize] as u32,
            );
            for n in 0..400 {
                let mut block = rng.block([QDIV_LIMIT, 1 << 16, 4096, 600, 20][n % 5]);
                if n == 0 {
                    block[0] = QDIV_LIMIT;
                    block[1] = -QDIV_LIMIT;
                }
                assert_eq!(
                    quantize(&block, dr, ar),
                    Some(quantize_block_scalar(&block, dc, ac)),
                    "{block:?} dc {dc} ac {ac}"
                );
            }
        }
        let mut over = [0; 16];
        over[15] = QDIV_LIMIT + 1;
        assert!(quantize(&over, RECIPROCALS[4] as u32, RECIPROCALS[4] as u32).is_none());
    }

    #[test]
    fn recon_sse_and_rate_are_the_scalar_ones() {
        let mut rng = Lcg(4);
        for n in 0..100_000 {
            let pred: [u8; 16] = core::array::from_fn(|_| (rng.next(127) + 128) as u8);
            let src: [u8; 16] = core::array::from_fn(|_| (rng.next(127) + 128) as u8);
            let residual = rng.block([IDCT_LIMIT, 300, 40][n % 3]);
            assert_eq!(
                recon_sse4x4(&pred, &residual, &src),
                recon_sse4x4_scalar(&pred, &residual, &src)
            );
            let coeffs = rng.block([QDIV_LIMIT, 100, 2][n % 3]);
            assert_eq!(coeff_rate(&coeffs), coeff_rate_estimate_scalar(&coeffs));
            let len = 4 * (n % 5) + n % 4;
            let long: Vec<i32> = (0..len).map(|_| rng.next(3)).collect();
            assert_eq!(coeff_rate(&long), coeff_rate_estimate_scalar(&long));
        }
    }
}
