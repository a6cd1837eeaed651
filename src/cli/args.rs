//! The command line's arguments: clap definitions of every subcommand, and the checks clap
//! cannot make by itself. `train` and `compare` flatten the library's [`TrainConfig`].

use super::*;

/// ferrograd: a from-scratch autograd engine, and the trainer and analysis tools built on it.
#[derive(Parser, Debug)]
#[command(name = "ferrograd", version = version(), about, long_about = None)]
pub struct Cli {
    /// Threads for ferrograd's kernels and for OpenBLAS (default: all cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=limits::MAX_THREADS as i64))]
    pub threads: Option<u32>,

    #[command(subcommand)]
    pub command: Command,
}

fn version() -> &'static str {
    Box::leak(BuildInfo::version_line().into_boxed_str())
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Trains an MLP and writes its model, results, plots and sample predictions.
    #[command(allow_negative_numbers = true)]
    Train(TrainCommand),
    /// Trains ReLU and Tanh with the same seed and data order, and compares them.
    #[command(allow_negative_numbers = true)]
    Compare(TrainArgs),
    /// Scores a saved model on a test set and draws sample predictions.
    #[command(allow_negative_numbers = true)]
    Predict(PredictArgs),
    /// Measures and analyses: speed, scaling, the Hessian (all three with defaults when no
    /// analysis is named).
    Analyze {
        /// What to analyse (default: all).
        #[command(subcommand)]
        what: Option<AnalyzeCommand>,
    },
    /// Checks every op's first and second derivatives against central differences in f64.
    #[command(allow_negative_numbers = true)]
    Gradcheck {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Seed for the random shapes and values.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Prints how this binary was built: commit, rustc, features, BLAS backend, CPU features.
    Info {
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
}

fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive number, got {s}"))
    }
}

/// Hidden layer widths as one comma-separated argument.
#[derive(Clone, Debug)]
pub struct HiddenSizes(pub Vec<usize>);

/// A comma-separated list of at most `most` whole numbers in `1..=max`, each called `what`.
fn bounded_list(
    s: &str,
    what: &str,
    most: usize,
    max: usize,
) -> std::result::Result<Vec<usize>, String> {
    if s.trim().is_empty() {
        return Err(format!("needs at least one {what}"));
    }
    let items: Vec<&str> = s.split(',').collect();
    if items.len() > most {
        return Err(format!("{} {what}s, at most {most} accepted", items.len()));
    }
    items
        .into_iter()
        .map(|w| match w.trim().parse::<usize>() {
            Ok(v) if (1..=max).contains(&v) => Ok(v),
            Ok(v) => Err(format!("{what} {v} is outside 1..={max}")),
            Err(_) => Err(format!("{w:?} is not a {what}")),
        })
        .collect()
}

fn hidden_sizes(s: &str) -> std::result::Result<HiddenSizes, String> {
    bounded_list(
        s,
        "layer width",
        limits::MAX_HIDDEN_LAYERS,
        limits::MAX_CLI_WIDTH,
    )
    .map(HiddenSizes)
}

fn thread_counts(s: &str) -> std::result::Result<HiddenSizes, String> {
    bounded_list(
        s,
        "thread count",
        limits::MAX_THREAD_COUNTS,
        limits::MAX_THREADS,
    )
    .map(HiddenSizes)
}

/// The settings of `train` and `compare`: the library's [`TrainConfig`] (its defaults and
/// checks), the dataset (asked for when missing) and the grid.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Dataset (asked for on a terminal when missing).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
    /// Everything else that defines the run.
    #[command(flatten)]
    pub config: TrainConfig,
    /// What the sample-predictions grid shows.
    #[command(flatten)]
    pub grid: GridArgs,
}

/// The settings of `train`: those `compare` shares, the activation and resuming.
#[derive(Args, Debug, Clone)]
pub struct TrainCommand {
    /// The settings `compare` shares.
    #[command(flatten)]
    pub args: TrainArgs,
    /// Nonlinearity between layers.
    #[arg(long, value_enum, default_value_t = TrainConfig::default().activation)]
    pub activation: Activation,
    /// Continue an interrupted run from <out>/checkpoints/ (same options required).
    #[arg(long)]
    pub resume: bool,
}

/// What the sample-predictions grid shows (`train`, `compare`, `predict`).
#[derive(Args, Debug, Clone)]
pub struct GridArgs {
    /// Test images drawn in the sample-predictions grid.
    #[arg(long, alias = "examples", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=400))]
    pub show_examples: u32,
    /// Draw only wrong predictions in the grid.
    #[arg(long)]
    pub mistakes: bool,
}

impl GridArgs {
    pub(super) fn options(&self) -> GridOptions {
        GridOptions {
            count: self.show_examples as usize,
            mistakes_only: self.mistakes,
        }
    }
}

impl TrainArgs {
    pub(super) fn config(&self, dataset: DatasetName, activation: Activation) -> TrainConfig {
        TrainConfig {
            dataset,
            activation,
            threads: rayon::current_num_threads(),
            ..self.config.clone()
        }
    }

    /// The ranges [`TrainConfig::validate`] checks, before anything runs: a usage error.
    pub fn check(&self) -> Result<()> {
        self.config.validate()
    }
}

/// The settings of `predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Model file (default: the newest in <out>/models/).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// What the sample-predictions grid shows.
    #[command(flatten)]
    pub grid: GridArgs,
    /// Dataset to score on (default: the one the model was trained on).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
    /// Score on a --dataset other than the model's own (same image size); the grid is then
    /// named after both.
    #[arg(long)]
    pub allow_dataset_mismatch: bool,
    /// Folder holding the dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Artifacts folder (models are looked for in <out>/models/).
    #[arg(long, default_value = "artifacts")]
    pub out: PathBuf,
    /// Print JSON (accuracy, per-class accuracy, confusion matrix) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The `analyze` subcommands.
#[derive(Subcommand, Debug)]
pub enum AnalyzeCommand {
    /// Epoch time of the training loop against the hand-written baseline, where the time goes,
    /// and the GEMM rate achieved.
    #[command(allow_negative_numbers = true)]
    Performance(PerformanceArgs),
    /// Step time against batch size, hidden width, depth and threads; log-log plots with
    /// fitted exponents, and JSON.
    #[command(allow_negative_numbers = true)]
    Scaling(ScalingArgs),
    /// The Hessian of the training loss: top eigenvalues (Lanczos), and on request the trace
    /// (Hutchinson) and eigenvalue density (stochastic Lanczos quadrature), from exact
    /// Hessian-vector products.
    #[command(allow_negative_numbers = true)]
    Hessian(HessianArgs),
    /// All three with their defaults (the Hessian of the newest model, with trace and density).
    All,
}

/// The settings of `analyze hessian`.
#[derive(Args, Debug)]
pub struct HessianArgs {
    /// Model file (default: the newest in <out>/models/).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Dataset of the samples (default: the model's).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
    /// Folder holding the dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Images: the first N of the training file.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub samples: u32,
    /// Eigenvalues to report (at each end with --smallest).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub top_k: u32,
    /// Most Lanczos steps.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub iters: u32,
    /// Converged when ‖Hv − λv‖ ≤ tol·|λ|.
    #[arg(long, allow_hyphen_values = true, default_value_t = 1e-3, value_parser = positive_f64)]
    pub tol: f64,
    /// Also report the k smallest (most negative) eigenvalues.
    #[arg(long)]
    pub smallest: bool,
    /// Also the k largest eigenvalues of the Gauss–Newton matrix Jᵀ H_ℓ J, beside the Hessian's.
    #[arg(long)]
    pub ggn: bool,
    /// Also estimate the trace (Hutchinson, --probes products).
    #[arg(long)]
    pub trace: bool,
    /// Also estimate the eigenvalue density (SLQ, --slq-runs × --slq-steps products).
    #[arg(long)]
    pub density: bool,
    /// Also time one gradient and one Hessian-vector product from scratch (their ratio).
    #[arg(long)]
    pub cost: bool,
    /// The smallest eigenvalues, the trace, the density and the cost as well.
    #[arg(long)]
    pub all: bool,
    /// Rademacher probes for Hutchinson's trace.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub probes: u32,
    /// Lanczos runs for the density.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub slq_runs: u32,
    /// Lanczos steps per density run.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub slq_steps: u32,
    /// Seed of the start vectors and probes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Artifacts folder.
    #[arg(long, default_value = "artifacts")]
    pub out: PathBuf,
    /// Print the results JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The settings of `analyze scaling`.
#[derive(Args, Debug)]
pub struct ScalingArgs {
    /// Timed steps per point (after 3 warm-up steps); the median is reported.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub steps: u32,
    /// Thread counts to compare, comma-separated.
    #[arg(long, default_value = "1,2", value_parser = thread_counts)]
    pub threads_list: HiddenSizes,
    /// Artifacts folder (plots go to <out>/plots/, JSON to <out>/results/).
    #[arg(long, default_value = "artifacts")]
    pub out: PathBuf,
    /// Print the JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The settings of `analyze performance`.
#[derive(Args, Debug)]
pub struct PerformanceArgs {
    /// Dataset whose training file is one epoch.
    #[arg(long, value_enum, default_value_t = DatasetName::Fashion)]
    pub dataset: DatasetName,
    /// Folder holding the dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Images per step.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    /// Timed epochs of each system (after one warm-up epoch).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub epochs: u32,
    /// Hidden layer widths, comma-separated.
    #[arg(long, default_value = "128,128,128", value_parser = hidden_sizes)]
    pub hidden: HiddenSizes,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}
