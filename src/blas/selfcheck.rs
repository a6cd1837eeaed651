//! A numerical self-check of a single-precision GEMM against a double-precision reference,
//! run before ferrograd trusts a core it chose: a few shapes that cover the kernels' edge
//! cases (sizes that are not multiples of any block) and a transposed operand, under a
//! millisecond.

/// A row-major `C = op(A)·B` of `m×k · k×n`, where `op(A)` is `A` stored `k×m` when
/// `transpose_a` (the layout of the weight gradients in backward).
pub type Gemm<'a> = dyn Fn(bool, usize, usize, usize, &[f32], &[f32], &mut [f32]) + 'a;

/// The shapes checked: `(transpose_a, m, k, n)`.
const SHAPES: [(bool, usize, usize, usize); 3] = [
    (false, 67, 45, 37),
    (true, 33, 130, 29),
    (false, 128, 160, 96),
];

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Checks `gemm` on every shape: each element within `k·ε` of the reference, relative to
/// `Σ|a||b|` (the textbook bound of a length-`k` dot product, which any correct summation
/// order meets). Returns the worst error in units of that bound, or the first failure.
pub fn check(gemm: &Gemm) -> Result<f64, String> {
    let mut worst = 0.0f64;
    for (i, &(ta, m, k, n)) in SHAPES.iter().enumerate() {
        let a = values(m * k, 2 * i as u64 + 1);
        let b = values(k * n, 2 * i as u64 + 2);
        let mut c = vec![f32::NAN; m * n];
        gemm(ta, m, k, n, &a, &b, &mut c);
        let at = |r: usize, l: usize| f64::from(if ta { a[l * m + r] } else { a[r * k + l] });
        for r in 0..m {
            for col in 0..n {
                let (mut exact, mut scale) = (0.0f64, 0.0f64);
                for l in 0..k {
                    let p = at(r, l) * f64::from(b[l * n + col]);
                    exact += p;
                    scale += p.abs();
                }
                let bound = k as f64 * f64::from(f32::EPSILON) * scale.max(f64::MIN_POSITIVE);
                let err = (f64::from(c[r * n + col]) - exact).abs() / bound;
                // NaN fails too.
                if err.is_nan() || err > 1.0 {
                    return Err(format!(
                        "sgemm {m}×{k}·{k}×{n}{} element ({r}, {col}) is {} where {exact:.6} was expected",
                        if ta { " (A transposed)" } else { "" },
                        c[r * n + col]
                    ));
                }
                worst = worst.max(err);
            }
        }
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straightforward f32 GEMM: correct, so it must pass.
    fn naive(ta: bool, m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        for r in 0..m {
            for col in 0..n {
                c[r * n + col] = (0..k)
                    .map(|l| if ta { a[l * m + r] } else { a[r * k + l] } * b[l * n + col])
                    .sum();
            }
        }
    }

    #[test]
    fn correct_gemm_passes() {
        let worst = check(&naive).unwrap();
        assert!(worst < 1.0);
    }

    #[test]
    fn wrong_gemms_fail() {
        // A kernel that drops the last k term (an edge-case bug).
        let short = |ta, m, k, n, a: &[f32], b: &[f32], c: &mut [f32]| {
            naive(ta, m, k, n, a, b, c);
            for r in 0..m {
                for col in 0..n {
                    let last = if ta {
                        a[(k - 1) * m + r]
                    } else {
                        a[r * k + k - 1]
                    };
                    c[r * n + col] -= last * b[(k - 1) * n + col];
                }
            }
        };
        assert!(check(&short).is_err());
        // One element off by a relative 1e-3 (a broken tail loop).
        let tail = |ta, m, k, n, a: &[f32], b: &[f32], c: &mut [f32]| {
            naive(ta, m, k, n, a, b, c);
            c[m * n - 1] *= 1.001;
            c[m * n - 1] += 1e-3;
        };
        assert!(check(&tail).is_err());
        // Leaves the output untouched (NaN).
        assert!(check(&|_, _, _, _, _: &[f32], _: &[f32], _: &mut [f32]| {}).is_err());
        // Ignores the transpose flag.
        let no_t = |_, m, k, n, a: &[f32], b: &[f32], c: &mut [f32]| naive(false, m, k, n, a, b, c);
        assert!(check(&no_t).is_err());
    }

    #[cfg(feature = "openblas")]
    #[test]
    fn openblas_passes() {
        assert!(check(&super::super::cblas_gemm).unwrap() < 1.0);
    }
}
