//! Everything that defines a training run, and what it builds: the model and the optimizer.

use crate::data::DatasetName;
use crate::nn::{Activation, Init, Mlp};
use crate::optim::{Adam, LrSchedule, Optimizer, Schedule, Sgd};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which optimiser to train with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
}

/// Which learning-rate schedule to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
///
/// With the `cli` feature this is also the command line's `train` and `compare` options
/// (`clap::Args`): each default is stated once, in [`Default`], and every range is checked
/// once, in [`validate`](TrainConfig::validate) (the command line calls it before running,
/// and reports a violation as a usage error).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainConfig {
    /// The dataset (the command line takes `--dataset` itself, to ask when it is missing).
    #[cfg_attr(feature = "cli", arg(skip = defaults().dataset))]
    pub dataset: DatasetName,
    /// Folder holding the dataset's files (searched before `data/<name>/`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// The nonlinearity between layers (`train --activation`; `compare` runs two).
    #[cfg_attr(feature = "cli", arg(skip = defaults().activation))]
    pub activation: Activation,
    /// Hidden layer widths, comma-separated.
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ',', num_args = 1, default_values_t = defaults().hidden))]
    pub hidden: Vec<usize>,
    /// Passes over the training set.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = defaults().epochs))]
    pub epochs: usize,
    /// Images per step.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = defaults().batch_size))]
    pub batch_size: usize,
    /// Peak learning rate.
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true, default_value_t = defaults().lr))]
    pub lr: f64,
    /// SGD momentum in [0, 1).
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true, default_value_t = defaults().momentum))]
    pub momentum: f64,
    /// Use Nesterov momentum.
    #[cfg_attr(feature = "cli", arg(long))]
    pub nesterov: bool,
    /// L2 weight decay.
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true, default_value_t = defaults().weight_decay))]
    pub weight_decay: f64,
    /// Optimiser.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = defaults().optimizer))]
    pub optimizer: OptimizerKind,
    /// Learning-rate schedule.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = defaults().schedule))]
    pub schedule: ScheduleKind,
    /// Epochs between decays (step schedule).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = defaults().step_every))]
    pub step_every: usize,
    /// Decay factor (step and exponential schedules).
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true, default_value_t = defaults().gamma))]
    pub gamma: f64,
    /// Final learning rate (cosine schedule).
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true, default_value_t = defaults().min_lr))]
    pub min_lr: f64,
    /// Epochs of linear learning-rate warm-up.
    #[cfg_attr(feature = "cli", arg(long = "warmup", value_name = "WARMUP", default_value_t = defaults().warmup_epochs))]
    pub warmup_epochs: usize,
    /// Clip the global gradient norm to this value (none: no clipping).
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub clip_grad_norm: Option<f64>,
    /// Weight initialisation.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = defaults().init))]
    pub init: Init,
    /// Fraction of the training file held out for validation.
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true, default_value_t = defaults().val_fraction))]
    pub val_fraction: f64,
    /// Seed of the initialisation, validation split and batch order.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = defaults().seed))]
    pub seed: u64,
    /// Threads (rayon and OpenBLAS; the command line's global `--threads`).
    #[cfg_attr(feature = "cli", arg(skip = defaults().threads))]
    pub threads: usize,
    /// Folder for the artifacts.
    #[cfg_attr(feature = "cli", arg(long = "out", value_name = "OUT", default_value_os_t = defaults().out_dir))]
    pub out_dir: PathBuf,
    /// Train on the first N images of the training split only (say, a fixed subset for
    /// full-batch gradient descent with --batch-size N).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub train_samples: Option<usize>,
    /// Curvature tracking (`--curvature-*`); none of it changes what is trained.
    #[serde(default)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub curvature: CurvatureConfig,
}

/// When and how the Hessian's curvature is measured during training (see
/// [`crate::analysis::curvature`]): at the start, every `every` epochs and/or `every_steps`
/// steps, and at the end, on the first `samples` images of the training file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CurvatureConfig {
    /// Measure the Hessian's largest eigenvalue every E epochs (and at the start and the end).
    #[cfg_attr(feature = "cli", arg(long = "curvature-every", value_name = "E"))]
    pub every: Option<usize>,
    /// Measure it every S optimizer steps (finer than epochs; may be combined with the above).
    #[cfg_attr(feature = "cli", arg(long = "curvature-every-steps", value_name = "S"))]
    pub every_steps: Option<usize>,
    /// Images the curvature is measured on: the first N of the training file, fixed for the run.
    #[cfg_attr(feature = "cli", arg(long = "curvature-samples", value_name = "N", default_value_t = CurvatureConfig::default().samples))]
    pub samples: usize,
    /// Also Hutchinson's estimate of the Hessian's trace, with its standard error.
    #[cfg_attr(feature = "cli", arg(long = "curvature-trace"))]
    pub trace: bool,
    /// Also the Gauss–Newton matrix's largest eigenvalue.
    #[cfg_attr(feature = "cli", arg(long = "curvature-ggn"))]
    pub ggn: bool,
}

impl Default for CurvatureConfig {
    fn default() -> Self {
        CurvatureConfig {
            every: None,
            every_steps: None,
            samples: crate::analysis::curvature::CurvatureOptions::default().samples,
            trace: false,
            ggn: false,
        }
    }
}

impl CurvatureConfig {
    /// Whether any point is measured.
    pub fn enabled(&self) -> bool {
        self.every.is_some() || self.every_steps.is_some()
    }

    /// The tracker's options.
    pub fn options(&self) -> crate::analysis::curvature::CurvatureOptions {
        crate::analysis::curvature::CurvatureOptions {
            samples: self.samples,
            trace: self.trace,
            ggn: self.ggn,
            ..Default::default()
        }
    }
}

/// The defaults, for the command line's attributes.
#[cfg(feature = "cli")]
fn defaults() -> TrainConfig {
    TrainConfig::default()
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            dataset: DatasetName::Digits,
            data_dir: None,
            activation: Activation::Relu,
            hidden: vec![128, 128, 128],
            epochs: 20,
            batch_size: 64,
            lr: 0.05,
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
            // Not rayon's count: asking for it would start the global pool before `--threads`
            // can size it (the command line reads these defaults while parsing).
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            out_dir: PathBuf::from("artifacts"),
            train_samples: None,
            curvature: CurvatureConfig::default(),
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
        let c = &self.curvature;
        // Steps a curvature schedule may name: far beyond any run here.
        const MAX_STEPS: usize = 1 << 40;
        fn shown<V: std::fmt::Display>(v: Option<V>) -> String {
            v.map_or("none".to_string(), |v| v.to_string())
        }
        let checks: [(bool, String); 17] = [
            (
                self.train_samples.is_none_or(|n| n >= 1),
                format!("--train-samples must be at least 1, got {}", shown(self.train_samples)),
            ),
            (
                c.every.is_none_or(|e| (1..=MAX_EPOCHS).contains(&e))
                    && c.every_steps.is_none_or(|s| (1..=MAX_STEPS).contains(&s)),
                format!(
                    "--curvature-every must be in 1..={MAX_EPOCHS} and --curvature-every-steps in 1..={MAX_STEPS}, got {} and {}",
                    shown(c.every), shown(c.every_steps)
                ),
            ),
            (
                c.enabled() || (!c.trace && !c.ggn && c.samples == CurvatureConfig::default().samples),
                "--curvature-samples, --curvature-trace and --curvature-ggn need --curvature-every or --curvature-every-steps".to_string(),
            ),
            (
                (1..=crate::limits::MAX_CURVATURE_SAMPLES).contains(&c.samples),
                format!(
                    "--curvature-samples must be in 1..={}, got {}",
                    crate::limits::MAX_CURVATURE_SAMPLES,
                    c.samples
                ),
            ),
            (
                (1..=MAX_EPOCHS).contains(&self.epochs),
                format!("--epochs must be in 1..={MAX_EPOCHS}, got {}", self.epochs),
            ),
            (
                (1..=MAX_BATCH).contains(&self.batch_size),
                format!("--batch-size must be in 1..={MAX_BATCH}, got {}", self.batch_size),
            ),
            (
                positive(self.lr),
                format!("--lr must be a positive number, got {}", self.lr),
            ),
            (
                !self.hidden.is_empty()
                    && self.hidden.len() <= MAX_HIDDEN_LAYERS
                    && self.hidden.iter().all(|w| (1..=MAX_CLI_WIDTH).contains(w)),
                format!(
                    "--hidden takes 1 to at most {MAX_HIDDEN_LAYERS} widths, each in 1..={MAX_CLI_WIDTH}; got {} widths {:?}",
                    self.hidden.len(),
                    &self.hidden[..self.hidden.len().min(8)]
                ),
            ),
            (
                (0.0..1.0).contains(&self.val_fraction),
                format!("--val-fraction must be in [0, 1), got {}", self.val_fraction),
            ),
            (
                (0.0..1.0).contains(&self.momentum),
                format!("--momentum must be in [0, 1), got {}", self.momentum),
            ),
            (
                non_negative(self.weight_decay),
                format!("--weight-decay must be a number ≥ 0, got {}", self.weight_decay),
            ),
            (
                positive(self.gamma) && self.gamma <= 1.0 && non_negative(self.min_lr) && self.min_lr <= self.lr,
                format!(
                    "--gamma must be a decay factor in (0, 1] and --min-lr in [0, --lr], got {} and {} (--lr {})",
                    self.gamma, self.min_lr, self.lr
                ),
            ),
            (
                self.warmup_epochs <= self.epochs,
                format!(
                    "--warmup must be at most --epochs ({}), got {}",
                    self.epochs, self.warmup_epochs
                ),
            ),
            (
                (1..=MAX_EPOCHS).contains(&self.step_every),
                format!("--step-every must be in 1..={MAX_EPOCHS}, got {}", self.step_every),
            ),
            (
                self.warmup_epochs <= MAX_EPOCHS,
                format!("--warmup must be at most {MAX_EPOCHS} epochs, got {}", self.warmup_epochs),
            ),
            (
                self.clip_grad_norm.is_none_or(positive),
                format!("--clip-grad-norm must be positive, got {}", shown(self.clip_grad_norm)),
            ),
            (
                (1..=MAX_THREADS).contains(&self.threads),
                format!("--threads must be in 1..={MAX_THREADS}, got {}", self.threads),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => bail!("{message}"),
            // The hidden layers alone, before the data says the inputs and classes.
            None => crate::limits::check_parameters(&self.hidden),
        }
    }

    /// The form of SGD's momentum, which sets the stability threshold curvature is compared
    /// with (`None` for Adam, which has no such threshold).
    pub fn momentum_form(&self) -> Option<crate::analysis::curvature::Momentum> {
        use crate::analysis::curvature::Momentum;
        match (self.optimizer, self.nesterov) {
            (OptimizerKind::Sgd, false) => Some(Momentum::HeavyBall(self.momentum)),
            (OptimizerKind::Sgd, true) => Some(Momentum::Nesterov(self.momentum)),
            (OptimizerKind::Adam, _) => None,
        }
    }

    /// The optimizer this configuration names, with its settings.
    pub fn optimizer(&self) -> Box<dyn Optimizer<f32>> {
        match self.optimizer {
            OptimizerKind::Sgd => {
                let mut sgd = Sgd::new(self.momentum);
                sgd.nesterov = self.nesterov;
                sgd.weight_decay = self.weight_decay;
                Box::new(sgd)
            }
            OptimizerKind::Adam => {
                let mut adam = Adam::default();
                adam.weight_decay = self.weight_decay;
                Box::new(adam)
            }
        }
    }

    /// The file-name suffix of this run's artifacts: `<activation>_<dataset>`.
    pub fn tag(&self) -> String {
        format!("{}_{}", self.activation, self.dataset)
    }
}

/// The model `config` describes, freshly initialised.
pub fn build_model(config: &TrainConfig, inputs: usize, classes: usize) -> Mlp<f32> {
    let mut sizes = vec![inputs];
    sizes.extend(&config.hidden);
    sizes.push(classes);
    Mlp::new(&sizes, config.activation, config.init, config.seed)
}
