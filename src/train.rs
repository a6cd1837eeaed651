//! Training an MLP: the configuration, the epoch loop, evaluation, and the artifacts a run
//! leaves (model, results JSON, plots, sample predictions).

use crate::artifacts::{write_atomic, ModelFile, Normalisation};
use crate::build_info::BuildInfo;
use crate::data::{self, Dataset, DatasetName, Splits};
use crate::nn::{Activation, Init, Mlp, Module};
use crate::optim::{backward_and_step, clip_grad_norm, Adam, LrSchedule, Optimizer, Schedule, Sgd};
use crate::{no_grad, Tensor};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which optimiser to train with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
}

/// Which learning-rate schedule to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Constant.
    Constant,
    /// Multiply by `gamma` every `step_every` epochs.
    Step,
    /// Multiply by `gamma` every epoch.
    Exponential,
    /// Cosine decay to `min_lr` over the run.
    Cosine,
}

/// Everything that defines a training run; saved in full in the results file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// The dataset.
    pub dataset: DatasetName,
    /// Where to look for its files first.
    pub data_dir: Option<PathBuf>,
    /// The nonlinearity between layers.
    pub activation: Activation,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// The learning-rate schedule.
    pub schedule: ScheduleKind,
    /// Epochs between decays (`step`).
    pub step_every: usize,
    /// Decay factor (`step`, `exponential`).
    pub gamma: f64,
    /// Final learning rate (`cosine`).
    pub min_lr: f64,
    /// Epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// Clip the global gradient norm to this (none: no clipping).
    pub clip_grad_norm: Option<f64>,
    /// Weight initialisation.
    pub init: Init,
    /// Fraction of the training file held out for validation.
    pub val_fraction: f64,
    /// Seed of the initialisation, the validation split and the batch order.
    pub seed: u64,
    /// Threads (rayon and OpenBLAS).
    pub threads: usize,
    /// Where artifacts go.
    pub out_dir: PathBuf,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            dataset: DatasetName::Digits,
            data_dir: None,
            activation: Activation::Relu,
            hidden: vec![128, 128, 128],
            epochs: 20,
            batch_size: 32,
            lr: 0.03,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            optimizer: OptimizerKind::Sgd,
            schedule: ScheduleKind::Cosine,
            step_every: 10,
            gamma: 0.5,
            min_lr: 0.0,
            warmup_epochs: 0,
            clip_grad_norm: None,
            init: Init::Xavier,
            val_fraction: 0.1,
            seed: 42,
            threads: rayon::current_num_threads(),
            out_dir: PathBuf::from("artifacts"),
        }
    }
}

impl TrainConfig {
    /// The learning rate of every epoch.
    pub fn lr_schedule(&self) -> LrSchedule {
        let schedule = match self.schedule {
            ScheduleKind::Constant => Schedule::Constant,
            ScheduleKind::Step => Schedule::Step {
                every: self.step_every,
                gamma: self.gamma,
            },
            ScheduleKind::Exponential => Schedule::Exponential { gamma: self.gamma },
            ScheduleKind::Cosine => Schedule::Cosine {
                min_lr: self.min_lr,
            },
        };
        LrSchedule {
            base_lr: self.lr,
            schedule,
            warmup_epochs: self.warmup_epochs,
            epochs: self.epochs,
        }
    }

    /// Checks every setting and their combinations against [`crate::limits`] (a
    /// configuration may come from a file, not only from the command line); `Err` names the
    /// setting.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{MAX_BATCH, MAX_CLI_WIDTH, MAX_EPOCHS, MAX_HIDDEN_LAYERS, MAX_THREADS};
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        let checks: [(bool, String); 12] = [
            (
                (1..=MAX_EPOCHS).contains(&self.epochs),
                format!("epochs must be in 1..={MAX_EPOCHS}, got {}", self.epochs),
            ),
            (
                (1..=MAX_BATCH).contains(&self.batch_size),
                format!("batch size must be in 1..={MAX_BATCH}, got {}", self.batch_size),
            ),
            (
                positive(self.lr),
                format!("learning rate must be positive, got {}", self.lr),
            ),
            (
                !self.hidden.is_empty()
                    && self.hidden.len() <= MAX_HIDDEN_LAYERS
                    && self.hidden.iter().all(|w| (1..=MAX_CLI_WIDTH).contains(w)),
                format!(
                    "--hidden needs 1 to {MAX_HIDDEN_LAYERS} widths in 1..={MAX_CLI_WIDTH}, got {} widths {:?}",
                    self.hidden.len(),
                    &self.hidden[..self.hidden.len().min(8)]
                ),
            ),
            (
                (0.0..1.0).contains(&self.val_fraction),
                format!("validation fraction must be in [0, 1), got {}", self.val_fraction),
            ),
            (
                (0.0..1.0).contains(&self.momentum),
                format!("momentum must be in [0, 1), got {}", self.momentum),
            ),
            (
                non_negative(self.weight_decay),
                format!("weight decay must be ≥ 0, got {}", self.weight_decay),
            ),
            (
                positive(self.gamma) && non_negative(self.min_lr),
                format!("gamma must be positive and min-lr ≥ 0, got {} and {}", self.gamma, self.min_lr),
            ),
            (
                (1..=MAX_EPOCHS).contains(&self.step_every),
                format!("step-every must be in 1..={MAX_EPOCHS}, got {}", self.step_every),
            ),
            (
                self.warmup_epochs <= MAX_EPOCHS,
                format!("warm-up must be at most {MAX_EPOCHS} epochs, got {}", self.warmup_epochs),
            ),
            (
                self.clip_grad_norm.is_none_or(positive),
                format!("clip-grad-norm must be positive, got {:?}", self.clip_grad_norm),
            ),
            (
                (1..=MAX_THREADS).contains(&self.threads),
                format!("threads must be in 1..={MAX_THREADS}, got {}", self.threads),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => bail!("{message}"),
            // The hidden layers alone, before the data says the inputs and classes.
            None => crate::limits::check_parameters(&self.hidden),
        }
    }

    /// The file-name suffix of this run's artifacts: `<activation>_<dataset>`.
    pub fn tag(&self) -> String {
        format!("{}_{}", self.activation, self.dataset)
    }
}

/// Metrics after one epoch. Accuracies are fractions in [0, 1].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (weighted by batch size).
    pub train_loss: f64,
    /// Training accuracy over the epoch's steps.
    pub train_accuracy: f64,
    /// Validation loss at the end of the epoch.
    pub val_loss: f64,
    /// Validation accuracy at the end of the epoch.
    pub val_accuracy: f64,
    /// Test loss at the end of the epoch.
    pub test_loss: f64,
    /// Test accuracy at the end of the epoch.
    pub test_accuracy: f64,
    /// Learning rate during the epoch.
    pub lr: f64,
    /// Seconds of the training loop (batches, forward, backward, update).
    pub seconds: f64,
}

/// The final metrics of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FinalMetrics {
    /// Test loss of the final model.
    pub test_loss: f64,
    /// Test accuracy of the final model.
    pub test_accuracy: f64,
    /// Seconds spent in the training loops, all epochs.
    pub train_seconds: f64,
    /// Test accuracy of the final model within each true class (class order of the dataset).
    pub per_class_accuracy: Vec<f64>,
}

/// The results file: configuration, per-epoch metrics, final metrics, build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    /// When the run finished, RFC 3339 in UTC.
    pub timestamp: String,
    /// The epoch (1-based) of the highest validation accuracy, the first if tied; `null`
    /// without a validation set.
    pub best_epoch: Option<usize>,
    /// Every setting of the run.
    pub config: TrainConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// Images in the training, validation and test sets.
    pub sizes: SetSizes,
    /// One entry per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The final model's metrics.
    #[serde(rename = "final")]
    pub final_metrics: FinalMetrics,
    /// How the binary was built.
    pub build: BuildInfo,
}

/// Sizes of the three sets.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SetSizes {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
    /// Test images.
    pub test: usize,
}

/// What [`train`] returns.
pub struct TrainReport {
    /// The trained model.
    pub model: Mlp<f32>,
    /// The results (also written to disk by [`train_and_save`]).
    pub results: Results,
    /// The data it was trained and evaluated on.
    pub splits: Splits,
}

/// The normalisation a dataset's features went through.
pub fn normalisation(name: DatasetName) -> Normalisation {
    name.spec().scaling.to_file()
}

/// Loads a dataset and splits off the validation set as `config` says.
pub fn load_splits(config: &TrainConfig) -> Result<Splits> {
    let (train, test) = data::load_dataset(config.dataset, config.data_dir.as_deref())?;
    Ok(data::split_validation(
        train,
        test,
        config.val_fraction,
        config.seed,
    ))
}

/// The model `config` describes, freshly initialised.
pub fn build_model(config: &TrainConfig, inputs: usize, classes: usize) -> Mlp<f32> {
    let mut sizes = vec![inputs];
    sizes.extend(&config.hidden);
    sizes.push(classes);
    Mlp::new(&sizes, config.activation, config.init, config.seed)
}

/// Index of the largest value of each row.
pub fn argmax_rows(logits: &ndarray::ArrayView2<f32>) -> Vec<usize> {
    logits
        .axis_iter(Axis(0))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}

/// Mean loss and accuracy of `model` on `data`, without recording a graph.
pub fn evaluate(model: &Mlp<f32>, data: &Dataset) -> (f64, f64) {
    if data.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let _guard = no_grad();
    let mut loss = 0.0;
    let mut correct = 0usize;
    const CHUNK: usize = 1000;
    for start in (0..data.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(data.len());
        let x = Tensor::from_array(data.features.slice(ndarray::s![start..end, ..]).to_owned());
        let labels = &data.labels[start..end];
        let logits = model.forward(&x);
        loss += logits.cross_entropy(labels).item() as f64 * (end - start) as f64;
        let v = logits.value();
        let v2 = v.view().into_dimensionality::<ndarray::Ix2>().unwrap();
        correct += argmax_rows(&v2)
            .iter()
            .zip(labels)
            .filter(|(p, l)| p == l)
            .count();
    }
    (loss / data.len() as f64, correct as f64 / data.len() as f64)
}

fn progress_bar(steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// How [`train_on`] runs besides the configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Print nothing (no epoch lines, no progress bar).
    pub quiet: bool,
    /// Write a checkpoint here (atomically) after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Continue from this checkpoint (read from the path given) instead of starting afresh.
    pub resume: Option<(Checkpoint, PathBuf)>,
}

pub use crate::checkpoint::{Checkpoint, CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION};

/// The checkpoint path of a run: `<out>/checkpoints/checkpoint_<tag>.msgpack`.
pub fn checkpoint_path(config: &TrainConfig) -> PathBuf {
    config
        .out_dir
        .join("checkpoints")
        .join(format!("checkpoint_{}.msgpack", config.tag()))
}

/// Trains the model `config` describes on `splits`; prints one line per epoch (and a progress
/// bar on a terminal) unless quiet. Stops with an error naming the epoch and batch if the loss
/// becomes NaN or infinite (the last checkpoint, from the last good epoch, stays as it was).
pub fn train_on(config: &TrainConfig, splits: Splits, options: RunOptions) -> Result<TrainReport> {
    config.validate()?;
    crate::validate::training_rows(&splits, config.val_fraction)?;
    let quiet = options.quiet;
    let classes = splits.train.classes.len();
    let mut sizes = vec![splits.train.dim()];
    sizes.extend(&config.hidden);
    sizes.push(classes);
    crate::limits::check_parameters(&sizes)?;
    let model = build_model(config, splits.train.dim(), classes);
    let params = model.parameters();
    let mut optimizer: Box<dyn Optimizer<f32>> = match config.optimizer {
        OptimizerKind::Sgd => {
            let mut sgd = Sgd::new(config.momentum);
            sgd.nesterov = config.nesterov;
            sgd.weight_decay = config.weight_decay;
            Box::new(sgd)
        }
        OptimizerKind::Adam => {
            let mut adam = Adam::default();
            adam.weight_decay = config.weight_decay;
            Box::new(adam)
        }
    };
    let schedule = config.lr_schedule();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut epochs = Vec::with_capacity(config.epochs);
    let train = &splits.train;
    let mut total_seconds = 0.0;
    let mut first_epoch = 0;
    if let Some((c, origin)) = options.resume {
        let steps_per_epoch = train.len().div_ceil(config.batch_size);
        c.check_resume(config, &model.sizes(), steps_per_epoch, &origin)?;
        c.restore(&model, optimizer.as_mut())?;
        // Replaying the shuffles of the epochs done puts the generator where it was.
        for _ in 0..c.epochs_done {
            data::shuffled_batches(train.len(), config.batch_size, &mut rng);
        }
        first_epoch = c.epochs_done;
        epochs = c.history;
        total_seconds = c.train_seconds;
        if !quiet {
            println!("resuming after epoch {first_epoch} of {}", config.epochs);
        }
    }
    for epoch in first_epoch..config.epochs {
        let lr = schedule.lr(epoch);
        let batches = data::shuffled_batches(train.len(), config.batch_size, &mut rng);
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            progress_bar(batches.len(), epoch + 1, config.epochs)
        };
        let start = Instant::now();
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (b, idx) in batches.iter().enumerate() {
            let x = train.batch_tensor(idx);
            let labels: Vec<usize> = idx.iter().map(|&i| train.labels[i]).collect();
            for p in &params {
                p.zero_grad();
            }
            let logits = model.forward(&x);
            let loss = logits.cross_entropy(&labels);
            let l = loss.item() as f64;
            if !l.is_finite() {
                bail!(
                    "training diverged: loss is {l} at epoch {} batch {} of {} (lower --lr, or use --clip-grad-norm)",
                    epoch + 1,
                    b + 1,
                    batches.len()
                );
            }
            let finite = match config.clip_grad_norm {
                // Clipping needs every gradient before the first update.
                Some(max) => {
                    loss.backward();
                    clip_grad_norm(&params, max);
                    optimizer.step(&params, lr)
                }
                None => backward_and_step(&loss, &params, optimizer.as_mut(), lr),
            };
            // A NaN weight need not reach the loss (a saturated tanh turns ±∞ into ±1), so
            // the parameters themselves are checked, by the update that wrote them.
            if !finite {
                bail!(
                    "training diverged: a parameter became NaN or infinite in the update of epoch {} batch {} of {} (loss before it {l:.4e}; lower --lr, or use --clip-grad-norm)",
                    epoch + 1,
                    b + 1,
                    batches.len()
                );
            }
            loss_sum += l * idx.len() as f64;
            let v = logits.value();
            let v2 = v.view().into_dimensionality::<ndarray::Ix2>().unwrap();
            correct += argmax_rows(&v2)
                .iter()
                .zip(&labels)
                .filter(|(p, l)| p == l)
                .count();
            if b % 16 == 0 {
                bar.set_message(format!(
                    "loss {:.4}",
                    loss_sum / ((b + 1) * config.batch_size) as f64
                ));
            }
            bar.inc(1);
        }
        let seconds = start.elapsed().as_secs_f64();
        total_seconds += seconds;
        bar.finish_and_clear();
        let (val_loss, val_accuracy) = evaluate(&model, &splits.val);
        let (test_loss, test_accuracy) = evaluate(&model, &splits.test);
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            val_loss,
            val_accuracy,
            test_loss,
            test_accuracy,
            lr,
            seconds,
        };
        if !quiet {
            println!(
                "epoch {:>3}/{}  train loss {:.4} acc {:6.2}%  val loss {:.4} acc {:6.2}%  test acc {:6.2}%  lr {:.5}  {:.2}s",
                m.epoch,
                config.epochs,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.val_loss,
                100.0 * m.val_accuracy,
                100.0 * m.test_accuracy,
                m.lr,
                m.seconds
            );
        }
        epochs.push(m);
        if let Some(path) = &options.checkpoint {
            let model_file = ModelFile::from_mlp(
                &model,
                config.dataset.as_str(),
                [train.height, train.width],
                train.classes.clone(),
                normalisation(config.dataset),
            );
            Checkpoint::capture(
                config,
                epoch + 1,
                model_file,
                optimizer.as_ref(),
                &epochs,
                total_seconds,
            )
            .save(path)?;
        }
    }
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

/// Loads the data and trains (see [`train_on`]); writes nothing.
pub fn train(config: &TrainConfig) -> Result<TrainReport> {
    config.validate()?;
    let splits = load_splits(config)?;
    train_on(
        config,
        splits,
        RunOptions {
            quiet: true,
            ..RunOptions::default()
        },
    )
}

/// The paths of a run's artifacts under `out`.
pub struct ArtifactPaths {
    /// `models/model_<tag>.msgpack`
    pub model: PathBuf,
    /// `results/results_<tag>.json`
    pub results: PathBuf,
    /// `plots/*_<tag>.png`
    pub plots: Vec<PathBuf>,
    /// `predicted_images/sample_predictions_<tag>.png`
    pub predictions: PathBuf,
}

impl ArtifactPaths {
    /// The paths for `tag` under `out`.
    pub fn new(out: &Path, tag: &str) -> ArtifactPaths {
        ArtifactPaths {
            model: out.join("models").join(format!("model_{tag}.msgpack")),
            results: out.join("results").join(format!("results_{tag}.json")),
            plots: PLOTS
                .iter()
                .map(|p| out.join("plots").join(format!("{p}_{tag}.png")))
                .collect(),
            predictions: out
                .join("predicted_images")
                .join(format!("sample_predictions_{tag}.png")),
        }
    }
}

/// The per-run plots, by file-name prefix.
pub const PLOTS: [&str; 6] = [
    "loss_curves",
    "accuracy_curves",
    "test_loss",
    "test_accuracy",
    "lr_schedule",
    "overfitting_gap",
];

/// Writes the model, results and plots of a finished run.
pub fn save_artifacts(
    report: &TrainReport,
    out: &Path,
    grid: crate::figures::GridOptions,
) -> Result<ArtifactPaths> {
    let config = &report.results.config;
    let tag = config.tag();
    let paths = ArtifactPaths::new(out, &tag);
    let train = &report.splits.train;
    let model_file = ModelFile::from_mlp(
        &report.model,
        config.dataset.as_str(),
        [train.height, train.width],
        train.classes.clone(),
        normalisation(config.dataset),
    );
    model_file.save(&paths.model)?;
    let json = serde_json::to_vec_pretty(&report.results).context("cannot encode results")?;
    write_atomic(&paths.results, &json)?;
    crate::figures::write_run_plots(&report.results, &paths.plots)?;
    crate::figures::write_prediction_grid(
        &report.model,
        &report.splits.test,
        grid,
        &paths.predictions,
        &tag,
    )?;
    Ok(paths)
}

/// Predicted labels and class probabilities (softmax) for each row of `x`.
pub fn predict_features(model: &Mlp<f32>, x: &Array2<f32>) -> (Vec<usize>, Array2<f32>) {
    let _guard = no_grad();
    let logits = model.forward(&Tensor::from_array(x.clone()));
    let probs = logits.softmax(1);
    let p = probs
        .to_array()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D probabilities");
    (argmax_rows(&p.view()), p)
}

/// Loads, trains and writes every artifact, with a checkpoint after every epoch; with
/// `resume`, continues from that checkpoint. Prints progress and the parameter count.
pub fn train_and_save(
    config: &TrainConfig,
    grid: crate::figures::GridOptions,
    resume: bool,
) -> Result<(TrainReport, ArtifactPaths)> {
    config.validate()?;
    let checkpoint = checkpoint_path(config);
    let resume = if resume {
        Some((Checkpoint::load(&checkpoint)?, checkpoint.clone()))
    } else {
        None
    };
    let splits = load_splits(config)?;
    println!(
        "dataset {}: {} train, {} validation, {} test images of {}×{}",
        config.dataset,
        splits.train.len(),
        splits.val.len(),
        splits.test.len(),
        splits.train.height,
        splits.train.width
    );
    let mut sizes = vec![splits.train.dim()];
    sizes.extend(&config.hidden);
    sizes.push(splits.train.classes.len());
    let count: usize = sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    println!(
        "model {} with {}: {count} parameters; {} threads, blas {}",
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" → "),
        config.activation,
        rayon::current_num_threads(),
        crate::threads::blas_backend()
    );
    let report = train_on(
        config,
        splits,
        RunOptions {
            quiet: false,
            checkpoint: Some(checkpoint),
            resume,
        },
    )?;
    let paths = save_artifacts(&report, &config.out_dir, grid)?;
    let f = &report.results.final_metrics;
    println!(
        "final test accuracy {:.2}% (loss {:.4}) after {:.1}s of training",
        100.0 * f.test_accuracy,
        f.test_loss,
        f.train_seconds
    );
    println!("model   {}", paths.model.display());
    println!("results {}", paths.results.display());
    println!("plots   {}/plots/", config.out_dir.display());
    Ok((report, paths))
}
