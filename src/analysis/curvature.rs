//! Curvature through training: at chosen points of a run, the Hessian's largest eigenvalue
//! (sharpness) on a fixed set of training images, by Lanczos warm-started from the previous
//! point's top eigenvector, and on request Hutchinson's trace and the Gauss–Newton matrix's
//! largest eigenvalue.
//!
//! Each point is measured in `f64` on the same samples `analyze hessian` would use, so the last
//! point of a run and `analyze hessian` on the saved model agree to the tolerance.

use super::eigen::symmetric_eigen;
use super::ggn::GgnOperator;
use super::hessian::{to_f64, HessianOperator};
use super::lanczos::{hutchinson, lanczos_extremes_from};
use crate::data::Dataset;
use crate::nn::Mlp;
use anyhow::{bail, Result};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What each point measures, and how precisely.
#[derive(Clone, Debug, PartialEq)]
pub struct CurvatureOptions {
    /// Images: the first `samples` of the training set, fixed for the run (default 500: on MNIST
    /// with the default model a point then costs about 0.18 of an epoch of the default training,
    /// within the 1.25× budget for tracking every epoch; 1000 costs about 0.39).
    pub samples: usize,
    /// Also Hutchinson's trace with its standard error (default off; `probes` products).
    pub trace: bool,
    /// Rademacher probes for the trace (default 20).
    pub probes: usize,
    /// Also the Gauss–Newton matrix's largest eigenvalue (default off; its own warm start).
    pub ggn: bool,
    /// Stopping rule of each Lanczos run: stop at the first step whose top Ritz pair has
    /// `‖Hv − λv‖ ≤ tol·|λ|` (default 1e-3, the same as `analyze hessian`). The eigenvalue's
    /// error is then at most the residual, and typically its square over the spectral gap.
    pub tol: f64,
    /// Most Lanczos steps per eigenvalue (default 40); a point that reaches it is reported with
    /// its residual, not refused.
    pub max_iter: usize,
    /// Weight of a random direction mixed into the previous eigenvector to form the start
    /// (default 0.1, relative to its unit length): without it, an eigenvalue that overtook the
    /// previous top one since the last point could go unseen for the few steps a warm start
    /// takes.
    pub mix: f64,
    /// Seed of the random directions and probes (default 0).
    pub seed: u64,
}

impl Default for CurvatureOptions {
    fn default() -> Self {
        CurvatureOptions {
            samples: 500,
            trace: false,
            probes: 20,
            ggn: false,
            tol: 1e-3,
            max_iter: 40,
            mix: 0.1,
            seed: 0,
        }
    }
}

/// The curvature at one point of training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvaturePoint {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The learning rate in force at this point.
    pub lr: f64,
    /// The Hessian's largest eigenvalue (sharpness).
    pub lambda_max: f64,
    /// `‖Hv − λv‖` of its unit eigenvector estimate.
    pub residual: f64,
    /// Hutchinson's trace (when asked for).
    pub trace: Option<f64>,
    /// Its standard error.
    pub trace_se: Option<f64>,
    /// The Gauss–Newton matrix's largest eigenvalue (when asked for).
    pub ggn_lambda_max: Option<f64>,
    /// `‖Gv − λv‖` for it.
    pub ggn_residual: Option<f64>,
    /// Operator products this point took (Hessian- and Gauss–Newton-vector products alike:
    /// each costs about two backward passes over the samples).
    pub hvps: usize,
    /// Seconds this point took.
    pub seconds: f64,
}

/// The largest eigenvalue of a symmetric operator with its eigenvector.
#[derive(Clone, Debug)]
pub struct TopEigen {
    /// The eigenvalue estimate (a Ritz value).
    pub value: f64,
    /// `‖Av − λv‖` for `vector`, computed from the recorded products.
    pub residual: f64,
    /// The unit eigenvector estimate.
    pub vector: Vec<f64>,
    /// Products taken.
    pub products: usize,
}

fn unit(mut v: Vec<f64>) -> Vec<f64> {
    let s = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= s);
    v
}

/// The largest eigenvalue of the `n`-dimensional operator `apply` by Lanczos from `previous`
/// (mixed with a random direction of weight `mix`; a random start when `None`), stopping by
/// [`CurvatureOptions::tol`]'s rule. The eigenvector is formed by Rayleigh–Ritz on the Krylov
/// basis the run visited (recorded with its products, so it costs no further products).
pub fn warm_top_eigen(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    previous: Option<&[f64]>,
    opts: &CurvatureOptions,
    rng: &mut StdRng,
) -> TopEigen {
    let random = unit((0..n).map(|_| StandardNormal.sample(rng)).collect());
    let start = match previous {
        Some(p) if p.len() == n => {
            let p = unit(p.to_vec());
            p.iter()
                .zip(&random)
                .map(|(a, b)| a + opts.mix * b)
                .collect()
        }
        _ => random,
    };
    let (mut basis, mut images) = (Vec::new(), Vec::new());
    let mut record = |q: &[f64]| {
        let aq = apply(q);
        basis.push(q.to_vec());
        images.push(aq.clone());
        aq
    };
    lanczos_extremes_from(&mut record, start, 1, opts.max_iter, opts.tol, false);
    let m = basis.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let t = Array2::from_shape_fn((m, m), |(i, j)| dot(&basis[i], &images[j]));
    let eig = symmetric_eigen(&t);
    let y = eig.vectors.column(m - 1);
    let combine = |vs: &[Vec<f64>]| {
        let mut out = vec![0.0; n];
        for (c, v) in y.iter().zip(vs) {
            out.iter_mut().zip(v).for_each(|(o, x)| *o += c * x);
        }
        out
    };
    let (v, av) = (combine(&basis), combine(&images));
    let norm = dot(&v, &v).sqrt();
    let value = dot(&v, &av) / (norm * norm);
    let residual = av
        .iter()
        .zip(&v)
        .map(|(a, x)| (a - value * x).powi(2))
        .sum::<f64>()
        .sqrt()
        / norm;
    TopEigen {
        value,
        residual,
        vector: v.iter().map(|x| x / norm).collect(),
        products: m,
    }
}

/// Measures curvature at points of one training run on a fixed set of samples.
pub struct CurvatureTracker {
    options: CurvatureOptions,
    x: Array2<f64>,
    labels: Vec<usize>,
    hessian_vector: Option<Vec<f64>>,
    ggn_vector: Option<Vec<f64>>,
    rng: StdRng,
    history: Vec<CurvaturePoint>,
}

impl CurvatureTracker {
    /// A tracker on the first `options.samples` images of `train` (all of them when fewer).
    pub fn new(options: CurvatureOptions, train: &Dataset) -> Self {
        let sample = train.head(options.samples);
        CurvatureTracker {
            x: sample.features.mapv(f64::from),
            labels: sample.labels,
            hessian_vector: None,
            ggn_vector: None,
            rng: StdRng::seed_from_u64(options.seed),
            history: Vec::new(),
            options,
        }
    }

    /// Continues a run: `history` (say, from a checkpoint) is kept and new points are appended.
    /// The next point starts cold, as the eigenvectors are not stored.
    pub fn resume(&mut self, history: Vec<CurvaturePoint>) {
        self.history = history;
    }

    /// The points measured so far, oldest first.
    pub fn history(&self) -> &[CurvaturePoint] {
        &self.history
    }

    /// The curvature of `model`'s mean cross-entropy on the samples, recorded as the point
    /// `(epoch, step, lr)` and returned.
    ///
    /// # Errors
    /// When the model's input size is not the samples' or there are no samples.
    pub fn measure(
        &mut self,
        model: &Mlp<f32>,
        epoch: usize,
        step: usize,
        lr: f64,
    ) -> Result<CurvaturePoint> {
        let start = Instant::now();
        let inputs = model.sizes()[0];
        if self.x.nrows() == 0 {
            bail!("curvature: no samples to measure on (the training set is empty or --curvature-samples is 0)");
        }
        if inputs != self.x.ncols() {
            bail!(
                "curvature: the model takes {inputs} inputs but the {} samples have {} features",
                self.x.nrows(),
                self.x.ncols()
            );
        }
        let model = to_f64(model);
        let h = HessianOperator::new(&model, &self.x, &self.labels);
        // A diverged model (large steps at the edge of stability can get there) has no
        // curvature to speak of, and a NaN would not survive the results file.
        if !h.loss.is_finite() || !h.gradient().iter().all(|g| g.is_finite()) {
            bail!(
                "curvature: the loss on the {} samples is {} at epoch {epoch} (step {step}): the model diverged",
                self.x.nrows(),
                h.loss
            );
        }
        let n = h.dim();
        let mut products = 0;
        let mut apply_h = |v: &[f64]| {
            products += 1;
            h.apply(v)
        };
        let o = &self.options;
        let top = warm_top_eigen(
            &mut apply_h,
            n,
            self.hessian_vector.as_deref(),
            o,
            &mut self.rng,
        );
        let trace = o.trace.then(|| {
            let seed = o.seed.wrapping_add(1 + self.history.len() as u64);
            hutchinson(&mut apply_h, n, o.probes, seed)
        });
        drop(h);
        let ggn = o.ggn.then(|| {
            let g = GgnOperator::new(&model, &self.x);
            warm_top_eigen(
                &mut |v| g.apply(v),
                n,
                self.ggn_vector.as_deref(),
                o,
                &mut self.rng,
            )
        });
        let point = CurvaturePoint {
            epoch,
            step,
            lr,
            lambda_max: top.value,
            residual: top.residual,
            trace: trace.as_ref().map(|t| t.trace),
            trace_se: trace.as_ref().map(|t| t.standard_error),
            ggn_lambda_max: ggn.as_ref().map(|g| g.value),
            ggn_residual: ggn.as_ref().map(|g| g.residual),
            hvps: products + ggn.as_ref().map_or(0, |g| g.products),
            seconds: start.elapsed().as_secs_f64(),
        };
        self.hessian_vector = Some(top.vector);
        self.ggn_vector = ggn.map(|g| g.vector);
        self.history.push(point.clone());
        Ok(point)
    }
}

/// The sharpness above which the optimizer diverges on a quadratic with that curvature:
/// `2/η` for gradient descent, `2(1 + μ)/η` for heavy-ball momentum `μ` in PyTorch's form
/// (`v ← μv + g`, `θ ← θ − ηv`).
pub fn stability_threshold(lr: f64, momentum: f64) -> f64 {
    2.0 * (1.0 + momentum) / lr
}

/// SGD's momentum, in the form that sets its stability threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Momentum {
    /// Heavy ball (`v ← μv + g`, `θ ← θ − ηv`); μ = 0 is plain gradient descent.
    HeavyBall(f64),
    /// Nesterov in PyTorch's form (`v ← μv + g`, `θ ← θ − η(g + μv)`).
    Nesterov(f64),
}

impl Momentum {
    /// The largest curvature a quadratic may have for the iteration to stay stable at `lr`:
    /// `2(1 + μ)/η` for heavy ball ([`stability_threshold`]); for Nesterov, where the
    /// iteration matrix `[[1 − ηλ(1+μ), −ημ²], [λ, μ]]` reaches the eigenvalue −1 at
    /// `λ = 2(1 + μ)/(η(1 + 2μ))`.
    pub fn threshold(self, lr: f64) -> f64 {
        match self {
            Momentum::HeavyBall(m) => stability_threshold(lr, m),
            Momentum::Nesterov(m) => 2.0 * (1.0 + m) / (lr * (1.0 + 2.0 * m)),
        }
    }

    /// How the threshold is written in legends and logs.
    pub fn label(self) -> String {
        match self {
            Momentum::HeavyBall(0.0) => "2/η".into(),
            Momentum::HeavyBall(m) => format!("2(1+μ)/η, μ = {m}"),
            Momentum::Nesterov(m) => format!("2(1+μ)/(η(1+2μ)), Nesterov μ = {m}"),
        }
    }
}
