//! `analyze scaling`: how the autograd training step's time grows with batch size, hidden
//! width, depth and threads, with power laws `t ≈ c·xᵅ` fitted on log-log axes.

use crate::nn::{Activation, Init, Mlp};
use crate::optim::Sgd;
use crate::train::Trainer;
use crate::Tensor;
use anyhow::Result;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One measured configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    /// Which grid: `batch`, `width` or `depth`.
    pub axis: String,
    /// The grid's value (batch size, hidden width or number of hidden layers).
    pub value: usize,
    /// Threads (rayon and BLAS).
    pub threads: usize,
    /// Batch size.
    pub batch: usize,
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Median seconds per step.
    pub step_seconds: f64,
    /// Images per second at that median.
    pub images_per_second: f64,
}

/// A power law fitted to one grid and thread count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fit {
    /// The grid.
    pub axis: String,
    /// Threads.
    pub threads: usize,
    /// α in `t ≈ c·xᵅ` (least squares on log t against log x).
    pub exponent: f64,
    /// c.
    pub prefactor: f64,
}

/// Everything `analyze scaling` measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScalingReport {
    /// GEMM backend.
    pub blas: String,
    /// Timed steps per point.
    pub steps: usize,
    /// Every point.
    pub points: Vec<Point>,
    /// Fitted exponents.
    pub fits: Vec<Fit>,
    /// How the binary was built (CPU features, BLAS, commit): timings mean little without it.
    pub build: crate::build_info::BuildInfo,
}

/// The grids: batch 16 → 1024, width 32 → 1024, depth 1 → 8.
pub const BATCHES: [usize; 7] = [16, 32, 64, 128, 256, 512, 1024];
/// Hidden widths measured.
pub const WIDTHS: [usize; 6] = [32, 64, 128, 256, 512, 1024];
/// Hidden-layer counts measured.
pub const DEPTHS: [usize; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// `(grid value, batch, width, depth)`.
type GridPoint = (usize, usize, usize, usize);

/// Median seconds of one training step ([`Trainer::step`]: SGD with momentum, the update
/// fused into backward) of a 784-input, 10-class ReLU MLP.
pub fn step_seconds(batch: usize, width: usize, depth: usize, steps: usize) -> f64 {
    let mut sizes = vec![784];
    sizes.extend(std::iter::repeat_n(width, depth));
    sizes.push(10);
    let model = Mlp::<f32>::new(&sizes, Activation::Relu, Init::Xavier, 0);
    let mut trainer = Trainer::new(model, Box::new(Sgd::new(0.9)), 0.001);
    let x = Array2::from_shape_fn((batch, 784), |(i, j)| {
        ((i * 31 + j * 7) % 255) as f32 / 255.0
    });
    let y: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut times = Vec::with_capacity(steps);
    for s in 0..steps + 3 {
        let start = Instant::now();
        // The trainer's own step (the one `train` runs), on a fresh copy of the batch as a
        // data loader would hand it over.
        let outcome = trainer.step(&Tensor::from_array(x.clone()), &y);
        assert!(outcome.is_ok(), "scaling: a step at lr 0.001 diverged");
        if s >= 3 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    super::median(&times)
}

/// Least-squares slope and intercept of log y against log x.
pub fn fit_power_law(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = points.iter().map(|(x, y)| (x.ln(), y.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    let slope = sxy / sxx;
    (slope, (my - slope * mx).exp())
}

/// Measures every grid at each of `thread_counts` (each in its own rayon pool, OpenBLAS to match).
pub fn measure(
    steps: usize,
    thread_counts: &[usize],
    mut progress: impl FnMut(&Point),
) -> Result<ScalingReport> {
    let mut points = Vec::new();
    for &threads in thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start {threads} threads: {e}"))?;
        crate::threads::set_blas_threads(threads);
        {
            let grids: [(&str, Vec<GridPoint>); 3] = [
                ("batch", BATCHES.iter().map(|&b| (b, b, 128, 3)).collect()),
                ("width", WIDTHS.iter().map(|&w| (w, 128, w, 3)).collect()),
                ("depth", DEPTHS.iter().map(|&d| (d, 128, 128, d)).collect()),
            ];
            for (axis, grid) in grids {
                for (value, batch, width, depth) in grid {
                    // On the calling thread when the global pool already has this many
                    // threads, as training runs; a step inside `install` runs on a worker
                    // while the pool's idle workers spin beside OpenBLAS's.
                    let run = || step_seconds(batch, width, depth, steps);
                    let t = if threads == rayon::current_num_threads() {
                        run()
                    } else {
                        pool.install(run)
                    };
                    let p = Point {
                        axis: axis.into(),
                        value,
                        threads,
                        batch,
                        width,
                        depth,
                        step_seconds: t,
                        images_per_second: batch as f64 / t,
                    };
                    progress(&p);
                    points.push(p);
                }
            }
        }
    }
    crate::threads::set_blas_threads(rayon::current_num_threads());
    let mut fits = Vec::new();
    for axis in ["batch", "width", "depth"] {
        for &threads in thread_counts {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.axis == axis && p.threads == threads)
                .map(|p| (p.value as f64, p.step_seconds))
                .collect();
            let (exponent, prefactor) = fit_power_law(&pts);
            fits.push(Fit {
                axis: axis.into(),
                threads,
                exponent,
                prefactor,
            });
        }
    }
    Ok(ScalingReport {
        blas: crate::threads::blas_backend().into(),
        steps,
        points,
        fits,
        build: crate::build_info::BuildInfo::current(),
    })
}

/// Draws `scaling_<axis>_<blas>.png` under `dir`, one line per thread count, with the fitted
/// exponent in the legend.
#[cfg(feature = "cli")]
pub fn plot(report: &ScalingReport, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    use crate::plot::{self, Chart, Series};
    let mut paths = Vec::new();
    for (axis, label) in [
        ("batch", "batch size"),
        ("width", "hidden width (3 hidden layers)"),
        ("depth", "hidden layers (width 128)"),
    ] {
        let series: Vec<Series> = report
            .fits
            .iter()
            .filter(|f| f.axis == axis)
            .map(|f| Series {
                name: format!(
                    "{} thread{}: t ∝ x^{:.2}",
                    f.threads,
                    if f.threads == 1 { "" } else { "s" },
                    f.exponent
                ),
                points: report
                    .points
                    .iter()
                    .filter(|p| p.axis == axis && p.threads == f.threads)
                    .map(|p| (p.value as f64, p.step_seconds * 1e3))
                    .collect(),
            })
            .collect();
        let path = dir.join(format!("scaling_{axis}_{}.png", report.blas));
        plot::line_chart(
            &path,
            &Chart {
                title: &format!("Training step time against {label} ({})", report.blas),
                x_label: label,
                y_label: "milliseconds per step",
                x_log: true,
                y_log: true,
                ..Chart::default()
            },
            &series,
        )?;
        paths.push(path);
    }
    Ok(paths)
}
