//! Analysis tools: speed against a hand-written baseline, scaling, and the Hessian.

pub mod baseline;
pub mod curvature;
pub mod eigen;
pub mod flat;
pub mod gemm_floor;
pub mod ggn;
pub mod hessian;
mod hessian_display;
#[cfg(feature = "cli")]
mod hessian_plots;
pub mod lanczos;
pub mod performance;
mod performance_display;
pub mod scaling;
pub mod scaling_display;

/// The median (the mean of the middle two for an even count; NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// A value for people to read: four significant digits, in plain notation between 0.001 and
/// 100 000 (`1.316`, `245.7`), in scientific notation outside (`3.2e-5`).
pub fn readable(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn readable_values_have_four_significant_digits() {
        assert_eq!(readable(1.316496), "1.316");
        assert_eq!(readable(245.66), "245.7");
        assert_eq!(readable(-0.0123456), "-0.01235");
        assert_eq!(readable(3.2e-5), "3.200e-5");
    }
}
