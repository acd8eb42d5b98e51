//! Branch-free `exp` and `ln` for the objective's inner loop.
//!
//! libm's versions are calls the compiler cannot vectorise; these are plain arithmetic on
//! f64 bits, so a loop over four rows becomes SIMD code. Both are accurate to a few ulp on
//! the ranges the kernels use them for (checked in the tests); the kernels check those ranges
//! and fall back to libm when a row leaves them.

/// 1.5·2⁵²: adding it rounds to an integer and leaves that integer in the low mantissa bits.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
/// ln 2 split in two (fdlibm's constants): the high part has trailing zero bits, so k·LN2_HI
/// is exact for the k that occur.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Inputs with |x| at most this go through `exp` without overflow or subnormal results.
pub const EXP_SAFE: f64 = 700.0;

/// eˣ for |x| ≤ `EXP_SAFE`.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let shifted = x * std::f64::consts::LOG2_E + ROUND_MAGIC;
    let k = shifted - ROUND_MAGIC;
    let k_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    // Cody–Waite reduction: r = x − k·ln2 in two steps keeps r exact to ~1 ulp.
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series of eʳ to degree 12 on |r| ≤ ln2/2 (truncation < 2e-16 relative), in
    // Estrin's scheme: a shallow tree instead of a 12-deep chain of dependent multiply-adds.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q0 = (1.0 + r) + (1.0 / 2.0 + r * (1.0 / 6.0)) * r2;
    let q1 = (1.0 / 24.0 + r * (1.0 / 120.0)) + (1.0 / 720.0 + r * (1.0 / 5040.0)) * r2;
    let q2 = (1.0 / 40_320.0 + r * (1.0 / 362_880.0)) + (1.0 / 3_628_800.0 + r * (1.0 / 39_916_800.0)) * r2;
    let q3 = 1.0 / 479_001_600.0;
    let p = (q0 + q1 * r4) + (q2 + q3 * r4) * r8;
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    p * scale
}

/// ln x for finite, normal, positive x.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = x.to_bits();
    let exponent = (bits >> 52) as i64 - 1023;
    let m = f64::from_bits((bits & MANTISSA) | 1.0f64.to_bits());
    // Keep m in [√½, √2) so the series argument stays small.
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let exponent = exponent + i64::from(big);
    let e = f64::from_bits(ROUND_MAGIC.to_bits().wrapping_add(exponent as u64)) - ROUND_MAGIC;
    // ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.1716: ten odd terms reach 1e-17.
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let s4 = s2 * s2;
    let s8 = s4 * s4;
    let q0 = (1.0 + s2 * (1.0 / 3.0)) + (1.0 / 5.0 + s2 * (1.0 / 7.0)) * s4;
    let q1 = (1.0 / 9.0 + s2 * (1.0 / 11.0)) + (1.0 / 13.0 + s2 * (1.0 / 15.0)) * s4;
    let q2 = 1.0 / 17.0 + s2 * (1.0 / 19.0);
    let series = (q0 + q1 * s8) + q2 * (s8 * s8);
    // Add the small parts first, the large e·ln2_hi last.
    let small = 2.0 * s * series + e * LN2_LO;
    e * LN2_HI + small
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / b.abs().max(f64::MIN_POSITIVE)).abs() / f64::EPSILON
    }

    #[test]
    fn exp_matches_libm_across_the_safe_range() {
        let mut worst: f64 = 0.0;
        for i in -70_000..=70_000 {
            let x = f64::from(i) * 0.01 + 0.003_7;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst < 4.0, "worst {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ln_matches_libm_over_many_decades() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-300;
        while x < 1e300 {
            for t in [1.0, 1.3, std::f64::consts::SQRT_2, 1.415, 1.9, 2.0 - 1e-15] {
                let v = x * t;
                let err = (ln(v) - v.ln()).abs() / v.ln().abs().max(1.0);
                worst = worst.max(err / f64::EPSILON);
            }
            x *= 7.3;
        }
        assert!(worst < 4.0, "worst {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
    }
}
