//! Training an MLP: the configuration ([`config`]), the step ([`trainer`]), the epoch loop
//! ([`train_on`]), and what a run produces ([`results`]). Printing goes through an
//! [`Observer`]; writing artifacts is [`crate::artifacts`]'s.

pub mod config;
pub mod results;
pub mod trainer;

pub use crate::checkpoint::{Checkpoint, CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION};
pub use config::{build_model, CurvatureConfig, OptimizerKind, ScheduleKind, TrainConfig};
pub use results::{Comparison, EpochMetrics, FinalMetrics, Results, SetSizes, TrainReport};
pub use trainer::{Divergence, Observer, Phases, Silent, StepOutcome, Trainer};

use crate::analysis::curvature::CurvatureTracker;
use crate::artifacts::{ArtifactPaths, ModelFile, Normalisation};
use crate::build_info::BuildInfo;
use crate::data::{self, Dataset, DatasetName, Splits};
use crate::nn::Module;
use crate::predict::{evaluate, predict_features};
use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;
use std::time::Instant;

/// The normalisation a dataset's features went through.
pub fn normalisation(name: DatasetName) -> Normalisation {
    name.spec().scaling.to_file()
}

/// Loads a dataset and splits off the validation set as `config` says.
pub fn load_splits(config: &TrainConfig) -> Result<Splits> {
    Ok(load_run_data(config)?.0)
}

/// The splits, and the images curvature is measured on when `config` asks for it: the first
/// `--curvature-samples` of the training file (before the validation split, as `analyze
/// hessian` takes them, so the two measure the same loss).
pub fn load_run_data(config: &TrainConfig) -> Result<(Splits, Option<Dataset>)> {
    let (train, test) = data::load_dataset(config.dataset, config.data_dir.as_deref())?;
    if config.curvature.enabled() && config.curvature.samples > train.len() {
        bail!(
            "--curvature-samples {} is more than the {} images of the {} training file",
            config.curvature.samples,
            train.len(),
            config.dataset
        );
    }
    let samples = config
        .curvature
        .enabled()
        .then(|| train.head(config.curvature.samples));
    let splits = data::split_validation(train, test, config.val_fraction, config.seed);
    Ok((splits, samples))
}

/// How [`train_on`] runs besides the configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Write a checkpoint here (atomically) after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Continue from this checkpoint (read from the path given) instead of starting afresh.
    pub resume: Option<(Checkpoint, PathBuf)>,
    /// The images to measure curvature on, when the configuration tracks it.
    pub curvature_samples: Option<Dataset>,
}

/// The checkpoint path of a run: `<out>/checkpoints/checkpoint_<tag>.msgpack`.
pub fn checkpoint_path(config: &TrainConfig) -> PathBuf {
    config
        .out_dir
        .join("checkpoints")
        .join(format!("checkpoint_{}.msgpack", config.tag()))
}

/// The model file of `model`, trained on `splits` as `config` says.
fn model_file(config: &TrainConfig, model: &crate::nn::Mlp<f32>, splits: &Splits) -> ModelFile {
    let train = &splits.train;
    ModelFile::from_mlp(
        model,
        config.dataset.as_str(),
        [train.height, train.width],
        train.classes.clone(),
        normalisation(config.dataset),
    )
}

/// Trains the model `config` describes on `splits`, reporting to `observer`. Stops with an
/// error naming the epoch and batch if the loss or a parameter becomes NaN or infinite (the
/// last checkpoint, from the last good epoch, stays as it was).
pub fn train_on(
    config: &TrainConfig,
    mut splits: Splits,
    options: RunOptions,
    observer: &mut dyn Observer,
) -> Result<TrainReport> {
    config.validate()?;
    if let Some(n) = config.train_samples {
        if n > splits.train.len() {
            bail!(
                "--train-samples {n} is more than the {} images of the training split",
                splits.train.len()
            );
        }
        splits.train = splits.train.head(n);
    }
    crate::validate::training_rows(&splits, config.val_fraction)?;
    let classes = splits.train.classes.len();
    let mut sizes = vec![splits.train.dim()];
    sizes.extend(&config.hidden);
    sizes.push(classes);
    crate::limits::check_parameters(&sizes)?;
    let schedule = config.lr_schedule();
    let mut trainer = Trainer::new(
        build_model(config, splits.train.dim(), classes),
        config.optimizer(),
        schedule.lr(0),
    );
    trainer.clip_grad_norm = config.clip_grad_norm;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut epochs = Vec::with_capacity(config.epochs);
    let train = &splits.train;
    let mut total_seconds = 0.0;
    let mut first_epoch = 0;
    let steps_per_epoch = train.len().div_ceil(config.batch_size);
    let mut tracker = match (&options.curvature_samples, config.curvature.enabled()) {
        (Some(samples), true) => {
            let o = config.curvature.options();
            crate::limits::DataBudget::from_env()?.charge_work(
                "curvature tracking",
                crate::analysis::hessian::curvature_memory(
                    &sizes,
                    o.max_iter,
                    samples.len(),
                    o.ggn,
                ),
                "lower --curvature-samples",
            )?;
            Some(CurvatureTracker::new(o, samples))
        }
        (None, true) => bail!("curvature tracking needs its samples (see load_run_data)"),
        _ => None,
    };
    if let Some((c, origin)) = options.resume {
        c.check_resume(config, &trainer.model.sizes(), steps_per_epoch, &origin)?;
        c.restore(&trainer.model, trainer.optimizer.as_mut())?;
        // Replaying the shuffles of the epochs done puts the generator where it was.
        for _ in 0..c.epochs_done {
            data::shuffled_batches(train.len(), config.batch_size, &mut rng);
        }
        first_epoch = c.epochs_done;
        epochs = c.history;
        if let Some(t) = tracker.as_mut() {
            t.resume(c.curvature);
        }
        total_seconds = c.train_seconds;
        observer.message(&format!(
            "resuming after epoch {first_epoch} of {}",
            config.epochs
        ));
    }
    let measure = |tracker: &mut Option<CurvatureTracker>,
                   model: &crate::nn::Mlp<f32>,
                   epoch: usize,
                   step: usize,
                   lr: f64,
                   observer: &mut dyn Observer|
     -> Result<()> {
        if let Some(t) = tracker {
            if t.history().last().is_none_or(|p| p.step != step) {
                let point = t.measure(model, epoch, step, lr)?;
                observer.curvature(&point, config.momentum_form());
            }
        }
        Ok(())
    };
    if first_epoch == 0 {
        measure(&mut tracker, &trainer.model, 0, 0, schedule.lr(0), observer)?;
    }
    for epoch in first_epoch..config.epochs {
        trainer.lr = schedule.lr(epoch);
        let batches = data::shuffled_batches(train.len(), config.batch_size, &mut rng);
        observer.epoch_started(epoch + 1, config.epochs, batches.len());
        let start = Instant::now();
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        let lr = trainer.lr;
        trainer.steps(train, &batches, |b, trainer, outcome| {
            let step = outcome.or_else(|d| {
                let at = format!("epoch {} batch {} of {}", epoch + 1, b + 1, batches.len());
                match d {
                    Divergence::Loss(l) => bail!(
                        "training diverged: loss is {l} at {at} (lower --lr, or use --clip-grad-norm)"
                    ),
                    Divergence::Parameters { loss } => bail!(
                        "training diverged: a parameter became NaN or infinite in the update of {at} (loss before it {loss:.4e}; lower --lr, or use --clip-grad-norm)"
                    ),
                }
            })?;
            loss_sum += step.loss * batches[b].len() as f64;
            correct += step.correct;
            observer.step_done(b, loss_sum / ((b + 1) * config.batch_size) as f64);
            let global = epoch * steps_per_epoch + b + 1;
            if config
                .curvature
                .every_steps
                .is_some_and(|s| global % s == 0)
            {
                measure(&mut tracker, &trainer.model, epoch, global, lr, observer)?;
            }
            anyhow::Ok(())
        })?;
        let seconds = start.elapsed().as_secs_f64();
        total_seconds += seconds;
        let (val_loss, val_accuracy) = evaluate(&trainer.model, &splits.val);
        let (test_loss, test_accuracy) = evaluate(&trainer.model, &splits.test);
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            val_loss,
            val_accuracy,
            test_loss,
            test_accuracy,
            lr: trainer.lr,
            seconds,
        };
        observer.epoch_done(&m, config.epochs);
        // Every weight can be finite while the outputs overflow (logits of ±inf make the
        // loss NaN): such a model has diverged as surely as a NaN weight, and must not be
        // checkpointed or saved. The validation set decides, as it decides everything else;
        // without one (`--val-fraction 0`) the test set, which the run evaluates anyway — a
        // sanity check, not a choice of model.
        let (set, loss) = if splits.val.is_empty() {
            ("test", test_loss)
        } else {
            ("validation", val_loss)
        };
        let has_set = !(splits.val.is_empty() && splits.test.is_empty());
        if has_set && !loss.is_finite() {
            bail!(
                "training diverged: the {set} loss is {loss} after epoch {} of {} (the model's outputs overflow; lower --lr, or use --clip-grad-norm)",
                epoch + 1,
                config.epochs
            );
        }
        epochs.push(m);
        let every = config.curvature.every;
        if every.is_some_and(|e| (epoch + 1) % e == 0) || epoch + 1 == config.epochs {
            let global = (epoch + 1) * steps_per_epoch;
            measure(
                &mut tracker,
                &trainer.model,
                epoch + 1,
                global,
                trainer.lr,
                observer,
            )?;
        }
        if let Some(path) = &options.checkpoint {
            let mut c = Checkpoint::capture(
                config,
                epoch + 1,
                model_file(config, &trainer.model, &splits),
                trainer.optimizer.as_ref(),
                &epochs,
                total_seconds,
            );
            c.curvature = tracker
                .as_ref()
                .map_or(Vec::new(), |t| t.history().to_vec());
            c.save(path)?;
        }
    }
    let model = trainer.model;
    let (test_loss, test_accuracy) = evaluate(&model, &splits.test);
    let per_class_accuracy = crate::predict::score(
        &predict_features(&model, &splits.test.features).0,
        &splits.test.labels,
        classes,
    )
    .per_class_accuracy;
    let results = Results {
        timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        best_epoch: best_epoch(&epochs),
        config: config.clone(),
        parameters: model.parameter_count(),
        sizes: SetSizes {
            train: splits.train.len(),
            val: splits.val.len(),
            test: splits.test.len(),
        },
        epochs,
        final_metrics: FinalMetrics {
            test_loss,
            test_accuracy,
            train_seconds: total_seconds,
            per_class_accuracy,
        },
        build: BuildInfo::current(),
        curvature: tracker.map_or(Vec::new(), |t| t.history().to_vec()),
    };
    Ok(TrainReport {
        model,
        results,
        splits,
    })
}

/// The epoch (1-based) of the highest validation accuracy, the first if tied; `None` when no
/// epoch has one (no validation set).
pub fn best_epoch(epochs: &[EpochMetrics]) -> Option<usize> {
    epochs
        .iter()
        .filter(|m| m.val_accuracy.is_finite())
        .fold(None, |best: Option<&EpochMetrics>, m| match best {
            Some(b) if b.val_accuracy >= m.val_accuracy => Some(b),
            _ => Some(m),
        })
        .map(|m| m.epoch)
}

/// Loads the data and trains (see [`train_on`]), silently; writes nothing.
pub fn train(config: &TrainConfig) -> Result<TrainReport> {
    config.validate()?;
    let (splits, curvature_samples) = load_run_data(config)?;
    let options = RunOptions {
        curvature_samples,
        ..RunOptions::default()
    };
    train_on(config, splits, options, &mut Silent)
}

/// Loads, trains and writes every artifact, with a checkpoint after every epoch; with
/// `resume`, continues from that checkpoint. Reports the data, the model and the outcome to
/// `observer`.
pub fn train_and_save(
    config: &TrainConfig,
    grid: crate::artifacts::GridOptions,
    resume: bool,
    observer: &mut dyn Observer,
) -> Result<(TrainReport, ArtifactPaths)> {
    config.validate()?;
    let checkpoint = checkpoint_path(config);
    let resume = if resume {
        Some((Checkpoint::load(&checkpoint)?, checkpoint.clone()))
    } else {
        None
    };
    let (splits, curvature_samples) = load_run_data(config)?;
    observer.message(&format!(
        "dataset {}: {} train, {} validation, {} test images of {}×{}",
        config.dataset,
        splits.train.len(),
        splits.val.len(),
        splits.test.len(),
        splits.train.height,
        splits.train.width
    ));
    let mut sizes = vec![splits.train.dim()];
    sizes.extend(&config.hidden);
    sizes.push(splits.train.classes.len());
    let count: usize = sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    observer.message(&format!(
        "model {} with {}: {count} parameters; {} threads, blas {}",
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" → "),
        config.activation,
        rayon::current_num_threads(),
        crate::threads::blas_backend()
    ));
    let options = RunOptions {
        checkpoint: Some(checkpoint),
        resume,
        curvature_samples,
    };
    let report = train_on(config, splits, options, observer)?;
    let model_file = model_file(config, &report.model, &report.splits);
    let paths = crate::artifacts::save_run(&report, &model_file, &config.out_dir, grid)?;
    let f = &report.results.final_metrics;
    observer.message(&format!(
        "final test accuracy {:.2}% (loss {:.4}) after {:.1}s of training",
        100.0 * f.test_accuracy,
        f.test_loss,
        f.train_seconds
    ));
    observer.message(&format!("model   {}", paths.model.display()));
    observer.message(&format!("results {}", paths.results.display()));
    observer.message(&format!("plots   {}/plots/", config.out_dir.display()));
    Ok((report, paths))
}
