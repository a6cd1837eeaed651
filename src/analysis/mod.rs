//! Analysis tools: speed against a hand-written baseline, scaling, and the Hessian.

pub mod baseline;
pub mod curvature;
pub mod eigen;
pub mod flat;
pub mod gemm_floor;
pub mod ggn;
pub mod hessian;
mod hessian_display;
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
