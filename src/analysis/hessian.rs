//! `analyze hessian`: the Hessian of the mean training loss over the first N training images
//! with respect to all parameters, through exact Hessian-vector products by double backward:
//! its extreme eigenvalues by Lanczos, its trace by Hutchinson, its eigenvalue density by SLQ.

use super::flat;
use super::ggn::GgnOperator;
use super::lanczos::{self, Density, LanczosResult, TraceEstimate};
use crate::artifacts::{write_atomic, ModelFile};
use crate::build_info::BuildInfo;
use crate::data::{self, DatasetName};
use crate::nn::{Linear, Mlp, Module};
use crate::tensor::functional::hvp_from_grads;
use crate::{enable_grad, grad, Tensor};
use anyhow::{Context, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// The Hessian of a model's loss on fixed data, as an operator `v ↦ H·v`.
///
/// The gradient is built once with its graph (`create_graph`); each product then costs one
/// backward pass through that graph.
pub struct HessianOperator {
    params: Vec<Tensor<f64>>,
    grads: Vec<Tensor<f64>>,
    /// The loss at the parameters.
    pub loss: f64,
}

impl HessianOperator {
    /// The Hessian of `model`'s mean cross-entropy on `(x, labels)`.
    pub fn new(model: &Mlp<f64>, x: &Array2<f64>, labels: &[usize]) -> Self {
        let _mode = enable_grad();
        let params = model.parameters();
        let loss = model
            .forward(&Tensor::from_array(x.clone()))
            .cross_entropy(labels);
        let grads = grad(std::slice::from_ref(&loss), &params, None, true);
        HessianOperator {
            loss: loss.item(),
            params,
            grads,
        }
    }

    /// Number of parameters (the Hessian is `dim × dim`).
    pub fn dim(&self) -> usize {
        self.params.iter().map(|p| p.len()).sum()
    }

    /// The gradient at the parameters, flattened.
    pub fn gradient(&self) -> Vec<f64> {
        flat::join(&self.grads)
    }

    /// `H·v` for a flat `v` (parameters in `Module::parameters` order, each row-major).
    ///
    /// # Panics
    /// When `v.len() != dim()`.
    pub fn apply(&self, v: &[f64]) -> Vec<f64> {
        let vs = flat::split(&self.params, v, "HessianOperator::apply");
        flat::join(&hvp_from_grads(&self.grads, &self.params, &vs))
    }

    /// The full Hessian, one product per column (small models only).
    pub fn dense(&self) -> Array2<f64> {
        flat::dense(self.dim(), |v| self.apply(v))
    }
}

/// An `f32` model in `f64`, for exact curvature.
pub fn to_f64(model: &Mlp<f32>) -> Mlp<f64> {
    Mlp {
        layers: model
            .layers
            .iter()
            .map(|l| Linear::from_parts(l.weight.cast(), l.bias.cast()))
            .collect(),
        activation: model.activation,
    }
}

/// What `analyze hessian` computes.
#[derive(Clone, Debug)]
pub struct HessianOptions {
    /// The model file.
    pub model: PathBuf,
    /// Dataset (default: the model's).
    pub dataset: Option<DatasetName>,
    /// Folder with the dataset's files.
    pub data_dir: Option<PathBuf>,
    /// Images: the first N of the training file.
    pub samples: usize,
    /// Eigenvalues at each end.
    pub top_k: usize,
    /// Most Lanczos steps.
    pub iters: usize,
    /// Relative residual at which an eigenvalue counts as converged.
    pub tol: f64,
    /// Also report the k smallest eigenvalues.
    pub smallest: bool,
    /// Also the k largest eigenvalues of the Gauss–Newton matrix (same steps and tolerance).
    pub ggn: bool,
    /// Estimate the trace (Hutchinson, `probes` products).
    pub trace: bool,
    /// Estimate the eigenvalue density (SLQ, `slq_runs × slq_steps` products).
    pub density: bool,
    /// Time one gradient and one Hessian-vector product from scratch (7 of each).
    pub cost: bool,
    /// Hutchinson probes.
    pub probes: usize,
    /// SLQ runs.
    pub slq_runs: usize,
    /// Lanczos steps per SLQ run.
    pub slq_steps: usize,
    /// Seed of the random start vectors and probes.
    pub seed: u64,
    /// Where plots and results go.
    pub out: PathBuf,
}

/// Seconds per stage.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HessianTimings {
    /// Loading, the forward pass and the gradient graph.
    pub setup: f64,
    /// Lanczos for the extreme eigenvalues.
    pub lanczos: f64,
    /// Hutchinson's trace.
    pub hutchinson: f64,
    /// Stochastic Lanczos quadrature.
    pub density: f64,
    /// The Gauss–Newton matrix: its graph and its Lanczos run.
    #[serde(default)]
    pub ggn: f64,
    /// Everything.
    pub total: f64,
    /// Mean seconds per Hessian-vector product on the reused gradient graph.
    pub per_hvp: f64,
    /// Median seconds of one gradient (forward and backward, no graph) on the same samples
    /// (`null` unless asked for: it costs several seconds).
    pub gradient: Option<f64>,
    /// Median seconds of one Hessian-vector product from scratch (forward, backward with
    /// graph, double backward) on the same samples (`null` unless asked for).
    pub hvp_from_scratch: Option<f64>,
}

/// Median seconds of `f` over `reps` runs.
fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    let t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    super::median(&t)
}

/// Median seconds of one gradient and of one Hessian-vector product from scratch, for the
/// "an HVP costs at most 4 gradients" check.
pub fn gradient_and_hvp_seconds(
    model: &Mlp<f64>,
    x: &Array2<f64>,
    labels: &[usize],
    reps: usize,
) -> (f64, f64) {
    let params = model.parameters();
    let xt = Tensor::from_array(x.clone());
    let v: Vec<Tensor<f64>> = params.iter().map(|p| Tensor::ones(&p.shape())).collect();
    let g = median_seconds(reps, || {
        let loss = model.loss(&xt, labels);
        std::hint::black_box(grad(std::slice::from_ref(&loss), &params, None, false));
    });
    let h = median_seconds(reps, || {
        std::hint::black_box(crate::hvp(|_| model.loss(&xt, labels), &params, &v));
    });
    (g, h)
}

/// The results file `results/hessian_<act>_<ds>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HessianReport {
    /// The model file.
    pub model: String,
    /// Dataset of the samples.
    pub dataset: String,
    /// The model's activation.
    pub activation: String,
    /// Layer sizes.
    pub architecture: Vec<usize>,
    /// Parameters (the Hessian's size).
    pub parameters: usize,
    /// Images: the first `samples` of the training file.
    pub samples: usize,
    /// Mean loss on them.
    pub loss: f64,
    /// Norm of the gradient there.
    pub gradient_norm: f64,
    /// Seed.
    pub seed: u64,
    /// Convergence tolerance.
    pub tol: f64,
    /// Extreme eigenvalues with residuals.
    pub lanczos: LanczosResult,
    /// The Gauss–Newton matrix's largest eigenvalues with residuals (`null` unless asked for).
    #[serde(default)]
    pub ggn: Option<LanczosResult>,
    /// Hutchinson's trace (`null` unless asked for).
    pub trace: Option<TraceEstimate>,
    /// SLQ density (`null` unless asked for).
    pub density: Option<Density>,
    /// Seconds per stage.
    pub timings: HessianTimings,
    /// The build.
    pub build: BuildInfo,
}

/// Bytes the analysis will hold at its peak, from the model's sizes and the options: the
/// Lanczos basis (one vector of every parameter per step), the gradient graph (a few copies of
/// the parameters) and the activations of the samples (more with the Gauss–Newton operator),
/// all in `f64`.
fn memory_estimate(file: &ModelFile, opts: &HessianOptions, samples: usize) -> u64 {
    let steps = opts.iters.max(opts.slq_steps);
    curvature_memory(&file.architecture, steps, samples, opts.ggn)
}

/// The estimated peak of Lanczos with `steps` steps on the Hessian of an MLP of these layer
/// sizes over `samples` images (see `memory_estimate`), shared with `train`'s curvature
/// tracking.
pub(crate) fn curvature_memory(
    architecture: &[usize],
    steps: usize,
    samples: usize,
    ggn: bool,
) -> u64 {
    let params: u64 = architecture
        .windows(2)
        .map(|w| (w[0] as u64 + 1) * w[1] as u64)
        .sum();
    let widths: u64 = architecture.iter().map(|&w| w as u64).sum();
    // The Gauss–Newton operator's graphs (logits, transposed Jacobian) live beside the Hessian's.
    let graphs = if ggn { 12 } else { 8 };
    8u64.saturating_mul(
        params.saturating_mul(steps as u64 + 8).saturating_add(
            (samples as u64)
                .saturating_mul(widths)
                .saturating_mul(graphs),
        ),
    )
}

/// Runs what `opts` asks for (the extreme eigenvalues always; the trace and the density on
/// request) and writes the results and plots.
pub fn analyze(opts: &HessianOptions) -> Result<(HessianReport, Vec<PathBuf>, PathBuf)> {
    let start = Instant::now();
    let file = ModelFile::load(&opts.model)?;
    let dataset = match opts.dataset {
        Some(d) => d,
        None => DatasetName::parse(&file.dataset).with_context(|| {
            format!(
                "{}: unknown dataset {:?}; pass --dataset",
                opts.model.display(),
                file.dataset
            )
        })?,
    };
    let (train, _) = data::load_for_model(
        dataset,
        opts.data_dir.as_deref(),
        &file.normalisation,
        &opts.model,
    )?;
    crate::validate::model_fits(&file, &opts.model, &train)?;
    let sample = train.head(opts.samples);
    crate::limits::DataBudget::from_env()?.charge_work(
        &format!("analyze hessian on {}", opts.model.display()),
        memory_estimate(&file, opts, sample.len()),
        "lower --samples or --iters",
    )?;
    let model = to_f64(&file.to_mlp());
    let x = sample.features.mapv(f64::from);
    let op = HessianOperator::new(&model, &x, &sample.labels);
    let n = op.dim();
    let gradient_norm = op.gradient().iter().map(|g| g * g).sum::<f64>().sqrt();
    let setup = start.elapsed().as_secs_f64();

    // A Krylov space of an n×n operator has at most n dimensions: steps beyond n add nothing
    // but the cost of reorthogonalising against the basis (quadratic in the steps).
    let (iters, slq_steps) = (opts.iters.min(n), opts.slq_steps.min(n).max(2));
    let products = iters * (1 + usize::from(opts.ggn))
        + if opts.trace { opts.probes } else { 0 }
        + if opts.density {
            opts.slq_runs * slq_steps
        } else {
            0
        };
    let progress = crate::progress::bar(
        products,
        "{msg:<24} {bar:30} {pos}/{len} Hessian-vector products  eta {eta}",
    );
    let mut hvps = 0usize;
    let mut apply = |v: &[f64]| {
        hvps += 1;
        progress.inc(1);
        op.apply(v)
    };
    progress.set_message("Lanczos");
    let t = Instant::now();
    let lanczos = lanczos::lanczos_extremes(
        &mut apply,
        n,
        opts.top_k,
        iters,
        opts.tol,
        opts.smallest,
        opts.seed,
    );
    let lanczos_s = t.elapsed().as_secs_f64();
    progress.set_message("Gauss–Newton Lanczos");
    let t = Instant::now();
    let ggn = opts.ggn.then(|| {
        let g = GgnOperator::new(&model, &x);
        let mut apply = |v: &[f64]| {
            progress.inc(1);
            g.apply(v)
        };
        lanczos::lanczos_extremes(&mut apply, n, opts.top_k, iters, opts.tol, false, opts.seed)
    });
    let ggn_s = t.elapsed().as_secs_f64();
    progress.set_message("Hutchinson trace");
    let t = Instant::now();
    let trace = opts
        .trace
        .then(|| lanczos::hutchinson(&mut apply, n, opts.probes, opts.seed + 1));
    let hutchinson_s = t.elapsed().as_secs_f64();
    progress.set_message("SLQ density");
    let t = Instant::now();
    let density = opts.density.then(|| {
        lanczos::slq_density(
            &mut apply,
            n,
            opts.slq_runs,
            slq_steps,
            0.01,
            400,
            opts.seed + 2,
        )
    });
    let density_s = t.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let (gradient_s, hvp_s) = if opts.cost {
        let (g, h) = gradient_and_hvp_seconds(&model, &x, &sample.labels, 7);
        (Some(g), Some(h))
    } else {
        (None, None)
    };
    let total = start.elapsed().as_secs_f64();

    let report = HessianReport {
        model: opts.model.display().to_string(),
        dataset: dataset.to_string(),
        activation: file.activation.clone(),
        architecture: file.architecture.clone(),
        parameters: n,
        samples: sample.len(),
        loss: op.loss,
        gradient_norm,
        seed: opts.seed,
        tol: opts.tol,
        lanczos,
        ggn,
        trace,
        density,
        timings: HessianTimings {
            setup,
            lanczos: lanczos_s,
            hutchinson: hutchinson_s,
            density: density_s,
            ggn: ggn_s,
            total,
            per_hvp: (lanczos_s + hutchinson_s + density_s) / hvps.max(1) as f64,
            gradient: gradient_s,
            hvp_from_scratch: hvp_s,
        },
        build: BuildInfo::current(),
    };
    let tag = format!("{}_{}", file.activation, dataset);
    // Plots need the `cli` feature (plotters); without it the results file is all there is.
    #[cfg(feature = "cli")]
    let plots = super::hessian_plots::write_plots(&report, &opts.out.join("plots"), &tag)?;
    #[cfg(not(feature = "cli"))]
    let plots = Vec::new();
    let json = opts.out.join("results").join(format!("hessian_{tag}.json"));
    write_atomic(&json, &serde_json::to_vec_pretty(&report)?)?;
    Ok((report, plots, json))
}
