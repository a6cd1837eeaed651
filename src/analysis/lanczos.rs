//! Lanczos with full reorthogonalisation for extreme eigenvalues, Hutchinson's trace estimator
//! and stochastic Lanczos quadrature (SLQ) for the eigenvalue density — all on a symmetric
//! operator given only as a function `v ↦ H·v`.

use super::eigen::{symmetric_eigen, SymmetricEigen};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// A Ritz pair's value and its residual `‖Hv − θv‖`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct RitzValue {
    /// The eigenvalue estimate θ.
    pub value: f64,
    /// `‖Hv − θv‖` for the Ritz vector v (unit length): `β_m · |last component of s|`.
    pub residual: f64,
}

/// The result of a Lanczos run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LanczosResult {
    /// The `k` largest Ritz values, largest first.
    pub largest: Vec<RitzValue>,
    /// The `k` smallest Ritz values, smallest first.
    pub smallest: Vec<RitzValue>,
    /// Lanczos steps taken (operator applications).
    pub iterations: usize,
    /// Whether every requested value met `residual ≤ tol·|value|`.
    pub converged: bool,
}

/// The tridiagonal matrix of a Lanczos run: its diagonal α and off-diagonal β.
struct Krylov {
    alpha: Vec<f64>,
    beta: Vec<f64>,
}

impl Krylov {
    fn tridiagonal(&self) -> Array2<f64> {
        let m = self.alpha.len();
        let mut t = Array2::zeros((m, m));
        for i in 0..m {
            t[[i, i]] = self.alpha[i];
            if i + 1 < m {
                t[[i, i + 1]] = self.beta[i];
                t[[i + 1, i]] = self.beta[i];
            }
        }
        t
    }
}

/// The Ritz values (ascending) of a tridiagonal matrix from its eigendecomposition, with their
/// residuals `b·|s_{m,i}|`, `b` being the next off-diagonal element β_m.
fn ritz(eig: SymmetricEigen, b: f64) -> (Vec<f64>, Vec<f64>) {
    let m = eig.values.len();
    let residuals = (0..m).map(|i| b * eig.vectors[[m - 1, i]].abs()).collect();
    (eig.values, residuals)
}

/// The Gauss quadrature of a tridiagonal matrix from its eigendecomposition: the Ritz values
/// as nodes, the squared first components of their vectors as weights (they sum to 1).
fn quadrature(eig: SymmetricEigen) -> (Vec<f64>, Vec<f64>) {
    let weights = (0..eig.values.len())
        .map(|i| eig.vectors[[0, i]].powi(2))
        .collect();
    (eig.values, weights)
}

/// Runs Lanczos from `start` for at most `max_iter` steps, with full reorthogonalisation
/// (twice, against every earlier basis vector). After each step, `done` sees the Ritz values
/// and residuals and may stop the run.
fn lanczos_run(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    start: Vec<f64>,
    max_iter: usize,
    mut done: impl FnMut(&[f64], &[f64]) -> bool,
) -> (Krylov, Vec<f64>, Vec<f64>) {
    let n = start.len();
    let max_iter = max_iter.min(n).max(1);
    let mut q = start;
    let s = norm(&q);
    q.iter_mut().for_each(|x| *x /= s);
    let mut basis: Vec<Vec<f64>> = vec![q];
    let mut k = Krylov {
        alpha: Vec::new(),
        beta: Vec::new(),
    };
    let mut last = (Vec::new(), Vec::new());
    for j in 0..max_iter {
        let mut w = apply(&basis[j]);
        let a = dot(&basis[j], &w);
        axpy(&mut w, -a, &basis[j]);
        if j > 0 {
            axpy(&mut w, -k.beta[j - 1], &basis[j - 1]);
        }
        // Classical Gram–Schmidt twice ("twice is enough", Parlett): keeps the basis
        // orthogonal to working precision, so no spurious copies of converged values.
        for _ in 0..2 {
            for qi in &basis {
                let c = dot(qi, &w);
                axpy(&mut w, -c, qi);
            }
        }
        k.alpha.push(a);
        let b = norm(&w);
        let (values, residuals) = ritz(symmetric_eigen(&k.tridiagonal()), b);
        let stop = done(&values, &residuals);
        last = (values, residuals);
        // An invariant subspace was found: every Ritz value is exact.
        if stop || b <= 1e-12 * a.abs().max(1e-300) || j + 1 == max_iter {
            break;
        }
        k.beta.push(b);
        w.iter_mut().for_each(|x| *x /= b);
        basis.push(w);
    }
    (k, last.0, last.1)
}

/// The `k` largest and `k` smallest eigenvalues of the `n`-dimensional symmetric operator
/// `apply`, by Lanczos with full reorthogonalisation from a seeded random start, stopping when
/// every one of them has `‖Hv − θv‖ ≤ tol·|θ|` or after `max_iter` steps.
pub fn lanczos_extremes(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    k: usize,
    max_iter: usize,
    tol: f64,
    want_smallest: bool,
    seed: u64,
) -> LanczosResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let start: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    lanczos_extremes_from(apply, start, k, max_iter, tol, want_smallest)
}

/// [`lanczos_extremes`] from a given start vector (any nonzero length-`n` vector; a good guess
/// of the wanted eigenvector, say the previous one when the operator changes slowly, saves
/// steps).
pub fn lanczos_extremes_from(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    start: Vec<f64>,
    k: usize,
    max_iter: usize,
    tol: f64,
    want_smallest: bool,
) -> LanczosResult {
    let k = k.min(start.len());
    let ok = |v: f64, r: f64| r <= tol * v.abs().max(f64::MIN_POSITIVE);
    let (krylov, values, residuals) = lanczos_run(apply, start, max_iter, |vals, res| {
        let m = vals.len();
        if m < k {
            return false;
        }
        let top = (m - k..m).all(|i| ok(vals[i], res[i]));
        let bottom = !want_smallest || (0..k).all(|i| ok(vals[i], res[i]));
        top && bottom
    });
    let m = values.len();
    let kk = k.min(m);
    let largest: Vec<RitzValue> = (0..kk)
        .map(|i| RitzValue {
            value: values[m - 1 - i],
            residual: residuals[m - 1 - i],
        })
        .collect();
    let smallest: Vec<RitzValue> = if want_smallest {
        (0..kk)
            .map(|i| RitzValue {
                value: values[i],
                residual: residuals[i],
            })
            .collect()
    } else {
        Vec::new()
    };
    let converged = largest
        .iter()
        .chain(&smallest)
        .all(|r| ok(r.value, r.residual));
    LanczosResult {
        largest,
        smallest,
        iterations: krylov.alpha.len(),
        converged,
    }
}

/// Hutchinson's estimate of the trace, `E[zᵀHz]` over Rademacher vectors `z`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// The mean of `zᵀHz` over the probes.
    pub trace: f64,
    /// The standard error of that mean (sample standard deviation / √probes).
    pub standard_error: f64,
    /// Number of probes.
    pub probes: usize,
}

/// Hutchinson's trace estimator with `probes` Rademacher vectors drawn from `seed`.
pub fn hutchinson(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    probes: usize,
    seed: u64,
) -> TraceEstimate {
    let mut rng = StdRng::seed_from_u64(seed);
    let samples: Vec<f64> = (0..probes.max(2))
        .map(|_| {
            let z: Vec<f64> = (0..n)
                .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
                .collect();
            dot(&z, &apply(&z))
        })
        .collect();
    let p = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / p;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (p - 1.0);
    TraceEstimate {
        trace: mean,
        standard_error: (var / p).sqrt(),
        probes: samples.len(),
    }
}

/// Nodes and weights of stochastic Lanczos quadrature, and the density they give.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Density {
    /// Ritz values of every run (the quadrature nodes).
    pub nodes: Vec<f64>,
    /// Their weights (squared first components of the Ritz vectors, divided by the runs).
    pub weights: Vec<f64>,
    /// Evaluation grid.
    pub grid: Vec<f64>,
    /// Gaussian-broadened density on the grid (integrates to about 1).
    pub density: Vec<f64>,
    /// Standard deviation of the Gaussian broadening.
    pub sigma: f64,
    /// Lanczos runs.
    pub runs: usize,
    /// Lanczos steps per run.
    pub steps: usize,
}

/// The eigenvalue density by SLQ (Lin, Saad & Yang 2016; as PyHessian): `runs` Lanczos runs of
/// `steps` steps from Rademacher starts; each run's Ritz values weighted by the squared first
/// components of their vectors, averaged, then broadened by Gaussians of width
/// `sigma_fraction` × the spectrum's range on a grid of `points`.
pub fn slq_density(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    runs: usize,
    steps: usize,
    sigma_fraction: f64,
    points: usize,
    seed: u64,
) -> Density {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut nodes, mut weights) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let z: Vec<f64> = (0..n)
            .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
            .collect();
        let (krylov, _, _) = lanczos_run(apply, z, steps, |_, _| false);
        let (values, run_weights) = quadrature(symmetric_eigen(&krylov.tridiagonal()));
        nodes.extend(values);
        weights.extend(run_weights.iter().map(|w| w / runs as f64));
    }
    let lo = nodes.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = nodes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-12);
    let sigma = sigma_fraction * span;
    let (a, b) = (lo - 5.0 * sigma, hi + 5.0 * sigma);
    let grid: Vec<f64> = (0..points)
        .map(|i| a + (b - a) * i as f64 / (points - 1) as f64)
        .collect();
    let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    let density = grid
        .iter()
        .map(|&t| {
            nodes
                .iter()
                .zip(&weights)
                .map(|(&x, &w)| w * norm * (-(t - x).powi(2) / (2.0 * sigma * sigma)).exp())
                .sum()
        })
        .collect();
    Density {
        nodes,
        weights,
        grid,
        density,
        sigma,
        runs,
        steps,
    }
}

#[cfg(all(test, feature = "openblas"))]
mod tests {
    use super::*;
    use crate::analysis::eigen::{jacobi_eigen, lapack_eigen};
    use crate::analysis::hessian::HessianOperator;
    use crate::nn::{Activation, Init, Mlp};

    /// The Hessian of a small MLP's loss on random data (`dim` = 20·24 + 24 + 24·5 + 5 = 629).
    fn hessian(act: Activation) -> HessianOperator {
        let model = Mlp::<f64>::new(&[20, 24, 5], act, Init::Xavier, 3);
        let mut rng = StdRng::seed_from_u64(4);
        let x = Array2::from_shape_fn((64, 20), |_| rng.random_range(-2.0..2.0));
        let y: Vec<usize> = (0..64).map(|_| rng.random_range(0..5)).collect();
        HessianOperator::new(&model, &x, &y)
    }

    /// The largest difference between `a` and `b`, over `scale`.
    fn relative(a: &[f64], b: &[f64], scale: f64) -> f64 {
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    #[test]
    fn what_the_analysis_reports_is_the_same_with_either_solver() {
        // On the same tridiagonal T (from a real Hessian), Jacobi and LAPACK give the same Ritz
        // values, residuals and quadrature weights to 1e-10 of ‖T‖ (weights: of their sum, 1).
        for act in [Activation::Relu, Activation::Tanh] {
            let op = hessian(act);
            let mut apply = |v: &[f64]| op.apply(v);
            let mut rng = StdRng::seed_from_u64(5);
            let start: Vec<f64> = (0..op.dim())
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let (full, _, _) = lanczos_run(&mut apply, start, 201, |_, _| false);
            for m in [10, 60, 200] {
                let k = Krylov {
                    alpha: full.alpha[..m].to_vec(),
                    beta: full.beta[..m - 1].to_vec(),
                };
                let (t, b) = (k.tridiagonal(), full.beta[m - 1]);
                let (vj, rj) = ritz(jacobi_eigen(&t), b);
                let (vl, rl) = ritz(lapack_eigen(&t), b);
                let norm = vl[0].abs().max(vl[m - 1].abs());
                let (_, wj) = quadrature(jacobi_eigen(&t));
                let (_, wl) = quadrature(lapack_eigen(&t));
                let errors = [
                    relative(&vj, &vl, norm),
                    relative(&rj, &rl, norm),
                    relative(&wj, &wl, 1.0),
                ];
                println!("{act}, {m} steps: values, residuals, weights differ by {errors:?}");
                assert!(
                    errors.iter().all(|&e| e <= 1e-10),
                    "{act}, {m} steps: {errors:?}"
                );
            }
        }
    }
}
