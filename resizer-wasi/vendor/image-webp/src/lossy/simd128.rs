//! pixport fork: wasm `simd128` versions of the encoder's hot kernels: 4x4
//! DCT, IDCT and quantization, one 4x4 mode candidate fused (residual to
//! distortion and rate), macroblock squared error, coefficient rate.
//!
//! Each one computes exactly what its scalar counterpart (the reference, and
//! the code every other target runs) computes, bit for bit: the scalar DCT
//! and IDCT work in `i64` "because the intermediate results may overflow",
//! these work in `i32` lanes, so each checks that its input is in the range
//! where no intermediate can leave `i32` and returns `None` otherwise (the
//! caller then runs the scalar code). The encoder's blocks are always far
//! inside those ranges: residuals are within +-255, coefficients within
//! about +-2100 (a 16x16 block's DC, from the Y2 block, can reach about
//! +-33000 and then takes the scalar IDCT).
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
    // `abs(i32::MIN)` stays `i32::MIN`: 2^31 as unsigned, so unsigned
    // max and compare.
    let m = u32x4_max(
        u32x4_max(i32x4_abs(v[0]), i32x4_abs(v[1])),
        u32x4_max(i32x4_abs(v[2]), i32x4_abs(v[3])),
    );
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
    let out = idct_rows(rows);
    for (v, chunk) in out.into_iter().zip(block[..16].chunks_exact_mut(4)) {
        store(v, chunk);
    }
    Some(())
}

/// `idct4x4` on a block held as four row vectors, each lane within
/// `IDCT_LIMIT`.
fn idct_rows(rows: [v128; 4]) -> [v128; 4] {
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
    transpose(
        round(i32x4_add(a1, d1)),
        round(i32x4_add(b1, c1)),
        round(i32x4_sub(b1, c1)),
        round(i32x4_sub(a1, d1)),
    )
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
    let out = dct_rows(rows);
    for (v, chunk) in out.into_iter().zip(block.chunks_exact_mut(4)) {
        store(v, chunk);
    }
    Some(())
}

/// `dct4x4` on a block held as four row vectors, each lane within
/// `DCT_LIMIT`.
fn dct_rows(rows: [v128; 4]) -> [v128; 4] {
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
    [out0, out1, out2, out3]
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
    for (v, chunk) in quantize_rows(rows, first, ac)
        .into_iter()
        .zip(out.chunks_exact_mut(4))
    {
        store(v, chunk);
    }
    Some(out)
}

/// `qdiv` of four row vectors (each lane within `QDIV_LIMIT`) by the
/// reciprocals `first` (for the first row: DC then AC) and `ac` (the rest).
fn quantize_rows(rows: [v128; 4], first: v128, ac: v128) -> [v128; 4] {
    let mut out = rows;
    for (k, v) in out.iter_mut().enumerate() {
        let m = if k == 0 { first } else { ac };
        let a = i32x4_abs(*v);
        // (|v| * m) >> 32: the high halves of the 64-bit products.
        let lo = u64x2_extmul_low_u32x4(a, m);
        let hi = u64x2_extmul_high_u32x4(a, m);
        let r = i32x4_shuffle::<1, 3, 5, 7>(lo, hi);
        // Negate where v < 0: (r ^ s) - s with s = v >> 31.
        let s = i32x4_shr(*v, 31);
        *v = i32x4_sub(v128_xor(r, s), s);
    }
    out
}

fn sum_lanes(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v)
        + i32x4_extract_lane::<1>(v)
        + i32x4_extract_lane::<2>(v)
        + i32x4_extract_lane::<3>(v)
}

/// A 4x4 block of bytes, its rows as four `i32x4`.
fn widen_block(b: &[u8; 16]) -> [v128; 4] {
    let v = u8x16(
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    );
    let lo = u16x8_extend_low_u8x16(v);
    let hi = u16x8_extend_high_u8x16(v);
    [
        u32x4_extend_low_u16x8(lo),
        u32x4_extend_high_u16x8(lo),
        u32x4_extend_low_u16x8(hi),
        u32x4_extend_high_u16x8(hi),
    ]
}

/// A luma quantizer's DC and AC steps and their `qdiv` reciprocals, for
/// `bpred_candidate`.
#[derive(Clone, Copy)]
pub(crate) struct LumaQuant {
    steps_first: v128,
    steps: v128,
    recips_first: v128,
    recips: v128,
}

impl LumaQuant {
    /// `None` unless both steps are in `2..512` (where `RECIPROCALS[q]`
    /// fits `u32` and `qdiv` takes its reciprocal).
    pub(crate) fn new(dc: i16, ac: i16, reciprocals: &[u64; 512]) -> Option<Self> {
        if !(2..512).contains(&dc) || !(2..512).contains(&ac) {
            return None;
        }
        let steps = i32x4_splat(i32::from(ac));
        let recips = u32x4_splat(reciprocals[ac as usize] as u32);
        Some(Self {
            steps_first: i32x4_replace_lane::<0>(steps, i32::from(dc)),
            steps,
            recips_first: u32x4_replace_lane::<0>(recips, reciprocals[dc as usize] as u32),
            recips,
        })
    }
}

/// One B_PRED candidate as `trial_luma_bpred` scores it, in one pass over
/// registers: residual `src - pred`, DCT, `qdiv` quantization, dequantization,
/// IDCT, then the reconstruction's squared error against `src` and the
/// coefficient rate (`coeff_rate_estimate`). Returns (quantized,
/// dequantized residual, distortion, rate). No range checks: residuals are
/// within +-255, so the DCT's output is within +-2100, inside `qdiv`'s and
/// `IDCT_LIMIT`'s ranges, and so is the dequantized `|qdiv(v, q) * q| <= |v|`.
pub(crate) fn bpred_candidate(
    pred: &[u8; 16],
    src: &[u8; 16],
    q: &LumaQuant,
) -> ([i32; 16], [i32; 16], i64, i64) {
    let p = widen_block(pred);
    let s = widen_block(src);
    let residual = [
        i32x4_sub(s[0], p[0]),
        i32x4_sub(s[1], p[1]),
        i32x4_sub(s[2], p[2]),
        i32x4_sub(s[3], p[3]),
    ];
    let quantized = quantize_rows(dct_rows(residual), q.recips_first, q.recips);
    let dequantized = idct_rows([
        i32x4_mul(quantized[0], q.steps_first),
        i32x4_mul(quantized[1], q.steps),
        i32x4_mul(quantized[2], q.steps),
        i32x4_mul(quantized[3], q.steps),
    ]);
    let mut sse = i32x4_splat(0);
    let mut rate = i32x4_splat(0);
    let (mut qout, mut dout) = ([0i32; 16], [0i32; 16]);
    for k in 0..4 {
        let r = i32x4_min(
            i32x4_max(i32x4_add(p[k], dequantized[k]), i32x4_splat(0)),
            i32x4_splat(255),
        );
        let d = i32x4_sub(r, s[k]);
        sse = i32x4_add(sse, i32x4_mul(d, d));
        rate = i32x4_add(
            rate,
            i32x4_add(i32x4_abs(quantized[k]), nonzero(quantized[k])),
        );
        store(quantized[k], &mut qout[k * 4..]);
        store(dequantized[k], &mut dout[k * 4..]);
    }
    (
        qout,
        dout,
        i64::from(sum_lanes(sse)),
        i64::from(sum_lanes(rate)),
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

/// `sum((a - b)^2)` over a `width` x `height` block of two planes (rows
/// `a_stride` and `b_stride` apart): the squared error of a macroblock's
/// reconstruction. `None` unless `width` is 8 or 16 and `height` at most 16
/// (where the `i32` lanes cannot overflow).
pub(crate) fn sse_block(
    a: &[u8],
    a_stride: usize,
    b: &[u8],
    b_stride: usize,
    width: usize,
    height: usize,
) -> Option<i64> {
    if height > 16 || (width != 8 && width != 16) {
        return None;
    }
    let widen8 = |r: &[u8]| {
        u16x8(
            u16::from(r[0]),
            u16::from(r[1]),
            u16::from(r[2]),
            u16::from(r[3]),
            u16::from(r[4]),
            u16::from(r[5]),
            u16::from(r[6]),
            u16::from(r[7]),
        )
    };
    let mut acc = i32x4_splat(0);
    for y in 0..height {
        let ra = &a[y * a_stride..][..width];
        let rb = &b[y * b_stride..][..width];
        for (ca, cb) in ra.chunks_exact(8).zip(rb.chunks_exact(8)) {
            let d = i16x8_sub(widen8(ca), widen8(cb));
            acc = i32x4_add(acc, i32x4_dot_i16x8(d, d));
        }
    }
    Some(i64::from(
        i32x4_extract_lane::<0>(acc)
            + i32x4_extract_lane::<1>(acc)
            + i32x4_extract_lane::<2>(acc)
            + i32x4_extract_lane::<3>(acc),
    ))
}

/// Every kernel against its scalar reference. They run only where the
/// kernels exist: `cargo test -p pixport-image-webp --target wasm32-wasip1`
/// with `scripts/wasi-run` as the runner (FORK.md).
#[cfg(test)]
mod tests {
    use super::super::encoder::{
        bpred_candidate_scalar, coeff_rate_estimate_scalar, quantize_block_scalar,
        sse_block_scalar, RECIPROCALS,
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
        for bad in [DCT_LIMIT + 1, -DCT_LIMIT - 1, i32::MIN, i32::MAX] {
            let mut over = [0; 16];
            over[7] = bad;
            assert!(dct4x4(&mut over).is_none());
            assert_eq!(over[7], bad);
        }
    }

    #[test]
    fn idct_is_the_scalar_idct() {
        for block in blocks(IDCT_LIMIT, 2) {
            let (mut a, mut b) = (block, block);
            assert!(idct4x4(&mut a).is_some(), "{block:?}");
            idct4x4_scalar(&mut b);
            assert_eq!(a, b, "{block:?}");
        }
        for bad in [IDCT_LIMIT + 1, -IDCT_LIMIT - 1, i32::MIN, i32::MAX] {
            let mut over = [0; 16];
            over[3] = bad;
            assert!(idct4x4(&mut over).is_none());
            assert_eq!(over[3], bad);
        }
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
        for bad in [QDIV_LIMIT + 1, -QDIV_LIMIT - 1, i32::MIN, i32::MAX] {
            let mut over = [0; 16];
            over[15] = bad;
            assert!(quantize(&over, RECIPROCALS[4] as u32, RECIPROCALS[4] as u32).is_none());
        }
    }

    /// Random pairs of blocks, near-flat to full range, and the extreme
    /// residuals (0 against 255 and back) in every sign pattern.
    fn pixel_pairs(seed: u64) -> impl Iterator<Item = ([u8; 16], [u8; 16])> {
        let mut rng = Lcg(seed);
        let random = (0..40_000).map(move |n| {
            let spread = [127, 20, 2][n % 3];
            let base = rng.next(127 - spread) + 128;
            let a: [u8; 16] = core::array::from_fn(|_| (base + rng.next(spread)) as u8);
            let b: [u8; 16] = core::array::from_fn(|_| (base + rng.next(spread)) as u8);
            (a, b)
        });
        let extremes = (0u32..1 << 16).map(|signs| {
            let a: [u8; 16] = core::array::from_fn(|i| if signs >> i & 1 == 1 { 255 } else { 0 });
            (a, a.map(|v| 255 - v))
        });
        random.chain(extremes)
    }

    #[test]
    fn bpred_candidate_is_the_scalar_pipeline() {
        let steps = [
            (2, 2),
            (4, 4),
            (8, 9),
            (24, 30),
            (60, 75),
            (157, 284),
            (300, 511),
        ];
        for (n, (pred, src)) in pixel_pairs(6).enumerate() {
            let (dc, ac) = steps[n % steps.len()];
            let quant = LumaQuant::new(dc, ac, &RECIPROCALS).unwrap();
            assert_eq!(
                bpred_candidate(&pred, &src, &quant),
                bpred_candidate_scalar(&pred, &src, dc, ac),
                "{pred:?} {src:?} dc {dc} ac {ac}"
            );
        }
        assert!(LumaQuant::new(1, 4, &RECIPROCALS).is_none());
        assert!(LumaQuant::new(4, 512, &RECIPROCALS).is_none());
    }

    #[test]
    fn rate_is_the_scalar_one() {
        let mut rng = Lcg(4);
        for n in 0..100_000 {
            let coeffs = rng.block([QDIV_LIMIT, 100, 2][n % 3]);
            assert_eq!(coeff_rate(&coeffs), coeff_rate_estimate_scalar(&coeffs));
            let len = 4 * (n % 5) + n % 4;
            let long: Vec<i32> = (0..len).map(|_| rng.next(3)).collect();
            assert_eq!(coeff_rate(&long), coeff_rate_estimate_scalar(&long));
        }
    }

    #[test]
    fn block_sse_is_the_scalar_one() {
        let mut rng = Lcg(5);
        let a: Vec<u8> = (0..40 * 20).map(|_| (rng.next(127) + 128) as u8).collect();
        let b: Vec<u8> = (0..40 * 20).map(|_| (rng.next(127) + 128) as u8).collect();
        let (zeros, full) = (vec![0u8; 40 * 20], vec![255u8; 40 * 20]);
        for (x, y) in [(&a, &b), (&zeros, &full), (&full, &zeros), (&a, &a)] {
            for (sa, sb) in [(21, 40), (9, 17), (16, 16)] {
                for (w, h) in [(16, 16), (8, 8), (16, 3), (4, 4), (12, 16), (16, 17)] {
                    let want = sse_block_scalar(x, sa, y, sb, w, h);
                    match sse_block(x, sa, y, sb, w, h) {
                        Some(got) => assert_eq!(got, want, "{w}x{h} strides {sa} {sb}"),
                        None => assert!((w != 8 && w != 16) || h > 16),
                    }
                }
            }
        }
    }
}
