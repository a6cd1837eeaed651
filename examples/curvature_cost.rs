//! What curvature tracking costs: measures a [`CurvatureTracker`] point on each of a run's
//! per-epoch checkpoints in order (so every point after the first is warm-started from the
//! previous one, as in training) and prints seconds, products and residuals beside the epoch's
//! own training seconds recorded in the checkpoint.
//!
//! ```text
//! cargo run --release --features openblas --example curvature_cost -- \
//!     --data-dir DIR [--samples N] [--mix M] [--tol T] [--trace] [--ggn] [--plot PNG] CHECKPOINT...
//! ```

use anyhow::{bail, Context, Result};
use ferrograd::analysis::curvature::{CurvatureOptions, CurvatureTracker};
use ferrograd::checkpoint::Checkpoint;
use ferrograd::data::{load_dataset, DatasetName};
use ferrograd::figures::write_sharpness_plot;
use std::path::PathBuf;

fn number<T: std::str::FromStr>(arg: Option<String>, flag: &str) -> Result<T> {
    arg.and_then(|a| a.parse().ok())
        .with_context(|| format!("{flag} needs a number"))
}

fn main() -> Result<()> {
    let mut options = CurvatureOptions::default();
    let (mut data_dir, mut plot, mut files) = (None, None, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" => data_dir = args.next().map(PathBuf::from),
            "--samples" => options.samples = number(args.next(), "--samples")?,
            "--mix" => options.mix = number(args.next(), "--mix")?,
            "--tol" => options.tol = number(args.next(), "--tol")?,
            "--trace" => options.trace = true,
            "--ggn" => options.ggn = true,
            "--plot" => plot = args.next().map(PathBuf::from),
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        bail!("give the checkpoints of a run, oldest first");
    }
    let mut tracker = None;
    let mut momentum = 0.0;
    println!(
        "epoch   step  lambda_max  residual/λ  hvps  point_s  epoch_s  ratio  ggn_λ  trace±se"
    );
    for f in &files {
        let ck = Checkpoint::load(f)?;
        let tracker = match &mut tracker {
            Some(t) => t,
            None => {
                let name = DatasetName::parse(&ck.model.dataset)
                    .with_context(|| format!("{}: unknown dataset", f.display()))?;
                let (train, _) = load_dataset(name, data_dir.as_deref())?;
                tracker.insert(CurvatureTracker::new(options.clone(), &train))
            }
        };
        momentum = ck.config.momentum;
        let last = ck.history.last().context("checkpoint without epochs")?;
        let p = tracker.measure(
            &ck.model.to_mlp(),
            ck.epochs_done,
            ck.optimizer_steps as usize,
            last.lr,
        )?;
        println!(
            "{:>5} {:>6} {:>11.5} {:>11.2e} {:>5} {:>8.3} {:>8.3} {:>6.3}  {:?}  {:?}±{:?}",
            p.epoch,
            p.step,
            p.lambda_max,
            p.residual / p.lambda_max,
            p.hvps,
            p.seconds,
            last.seconds,
            p.seconds / last.seconds,
            p.ggn_lambda_max,
            p.trace,
            p.trace_se
        );
    }
    if let (Some(path), Some(t)) = (plot, &tracker) {
        write_sharpness_plot(
            &path,
            t.history(),
            Some(ferrograd::analysis::curvature::Momentum::HeavyBall(
                momentum,
            )),
            "curvature_cost",
        )?;
        println!("plot {}", path.display());
    }
    Ok(())
}
