//! The command line: its arguments (`args.rs`) and their dispatch. Each command is
//! a thin layer over the library (`train`, `load_model`, `predict`, `gradcheck`...).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ferrograd::artifacts::newest_model;
use ferrograd::artifacts::GridOptions;
use ferrograd::build_info::BuildInfo;
use ferrograd::data::{self, DatasetName};
use ferrograd::limits;
use ferrograd::lock::OutLock;
use ferrograd::nn::Activation;
use ferrograd::tensor::check_report::GradcheckReport;
use ferrograd::train::{self, TrainConfig};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

mod args;
pub use args::*;

impl Cli {
    /// Checks the settings clap cannot: the training configuration's ranges.
    pub fn check(&self) -> Result<()> {
        match &self.command {
            Command::Train(t) => t.args.check(),
            Command::Compare(args) => args.check(),
            _ => Ok(()),
        }
    }
}

/// Makes OpenBLAS run on the training's thread count when the environment
/// (`OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS`) set another: a run's results and checkpoint
/// record one thread count (`threads`), resuming is checked against it, and the step's
/// arithmetic depends on OpenBLAS's count (one thread takes the fused weight update), so the
/// recorded count must be the one that ran. Says so on one line.
fn follow_run_threads() {
    let (threads, blas) = (
        rayon::current_num_threads(),
        ferrograd::threads::blas_threads(),
    );
    if ferrograd::threads::blas_backend() == "openblas" && blas != threads {
        eprintln!(
            "note: OpenBLAS had {blas} thread(s) from the environment; training runs it on {threads}, as everything else (--threads sets both), so that the results record what ran"
        );
        ferrograd::threads::set_blas_threads(threads);
    }
}

/// Runs the parsed command; `Err` carries the message the binary prints on one line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(t) = cli.threads {
        ferrograd::threads::set_threads(t as usize).map_err(anyhow::Error::msg)?;
    } else if matches!(cli.command, Command::Train(_) | Command::Compare(_)) {
        follow_run_threads();
    }
    if !matches!(cli.command, Command::Info { .. }) {
        ferrograd::limits::check_address_space_for_blas()?;
    }
    match cli.command {
        Command::Train(t) => {
            let args = &t.args;
            let dataset = choose_dataset(args.dataset, args.config.data_dir.as_deref())?;
            report_data_source(dataset, args.config.data_dir.as_deref());
            let _lock = OutLock::acquire(&args.config.out_dir)?;
            let config = args.config(dataset, t.activation);
            let console = &mut ferrograd::progress::Console::default();
            train::train_and_save(&config, args.grid.options(), t.resume, console)?;
            Ok(())
        }
        Command::Compare(args) => compare(&args),
        Command::Predict(args) => predict(&args),
        Command::Analyze { what } => match what.unwrap_or(AnalyzeCommand::All) {
            AnalyzeCommand::Performance(a) => performance(&a),
            AnalyzeCommand::Scaling(a) => scaling(&a),
            AnalyzeCommand::Hessian(a) => hessian(&a),
            AnalyzeCommand::All => analyze_all(),
        },
        Command::Gradcheck { json, seed } => gradcheck(json, seed),
        Command::Info { json } => {
            let info = BuildInfo::current();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{info}");
            }
            Ok(())
        }
    }
}

/// The dataset given, or asked for on a terminal; without a terminal, an error listing them.
fn choose_dataset(given: Option<DatasetName>, data_dir: Option<&Path>) -> Result<DatasetName> {
    if let Some(d) = given {
        return Ok(d);
    }
    if !std::io::stdin().is_terminal() {
        let names: Vec<&str> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
        bail!(
            "no --dataset given and no terminal to ask on: choose one of {}",
            names.join(", ")
        );
    }
    ferrograd::prompt::ask_dataset(&mut std::io::stdin().lock(), &mut std::io::stderr(), |d| {
        data::local_status(d, data_dir).to_string()
    })
}

/// Says on standard error where a dataset's files will be read from, so that a user can tell
/// which copy a result came from.
fn report_data_source(dataset: DatasetName, data_dir: Option<&Path>) {
    // The digits are embedded; data not found locally is downloaded, and the download says
    // where to.
    if let Some(dir) = data::locate(dataset, data_dir) {
        eprintln!("data: {dataset} from {}", dir.display());
    }
}

/// `analyze` alone: performance, scaling and the Hessian (with trace and density) of the
/// newest model, each with its defaults, as `python analysis.py` did.
fn analyze_all() -> Result<()> {
    // The Hessian needs a trained model: say so before minutes of timing, not after.
    newest_model(Path::new("artifacts/models")).context(
        "`analyze` ends with the Hessian of the newest model: train one first (ferrograd train)",
    )?;
    let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
    let analyses = [
        vec!["ferrograd", "analyze", "performance"],
        vec!["ferrograd", "analyze", "scaling"],
        vec!["ferrograd", "analyze", "hessian", "--all"],
    ];
    for args in analyses {
        println!("══ {} ══", args[1..].join(" "));
        match parse(&args)?.command {
            Command::Analyze {
                what: Some(AnalyzeCommand::Performance(a)),
            } => performance(&a)?,
            Command::Analyze {
                what: Some(AnalyzeCommand::Scaling(a)),
            } => scaling(&a)?,
            Command::Analyze {
                what: Some(AnalyzeCommand::Hessian(a)),
            } => hessian(&a)?,
            _ => unreachable!("the list above names three analyses"),
        }
        println!();
    }
    println!("everything went under artifacts/ (plots/, results/)");
    Ok(())
}

fn compare(args: &TrainArgs) -> Result<()> {
    let dataset = choose_dataset(args.dataset, args.config.data_dir.as_deref())?;
    let _lock = OutLock::acquire(&args.config.out_dir)?;
    report_data_source(dataset, args.config.data_dir.as_deref());
    let mut runs = Vec::new();
    for activation in [Activation::Relu, Activation::Tanh] {
        println!("── {activation} ──");
        let config = args.config(dataset, activation);
        let console = &mut ferrograd::progress::Console::default();
        let (report, _) = train::train_and_save(&config, args.grid.options(), false, console)?;
        runs.push(report.results);
    }
    ferrograd::figures::write_compare_plots(&runs, &args.config.out_dir, dataset)?;
    println!();
    print!("{}", train::Comparison(&runs));
    println!(
        "plots   {}/plots/compare_*_{dataset}.png",
        args.config.out_dir.display()
    );
    Ok(())
}

fn predict(args: &PredictArgs) -> Result<()> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => newest_model(&args.out.join("models"))?,
    };
    let loaded = ferrograd::load_model(&path)?;
    let _lock = OutLock::acquire(&args.out)?;
    let dataset = loaded.scoring_dataset(&path, args.dataset, args.allow_dataset_mismatch)?;
    report_data_source(dataset, args.data_dir.as_deref());
    let ev = ferrograd::predict::score_saved_model(
        &loaded,
        &path,
        dataset,
        args.data_dir.as_deref(),
        &args.out,
    )?;
    let grid_options = args.grid.options();
    ferrograd::figures::write_prediction_grid(
        &loaded.mlp,
        &ev.test,
        grid_options,
        &ev.grid,
        &ev.tag,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ev.report)?);
    } else {
        print!("{}", ev.report);
    }
    Ok(())
}

fn gradcheck(json: bool, seed: u64) -> Result<()> {
    let report = GradcheckReport::run(seed);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    let failed = report.failed();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("gradcheck failed for: {}", failed.join(", "))
    }
}

fn performance(a: &PerformanceArgs) -> Result<()> {
    use ferrograd::analysis::performance::{measure, PerfOptions};
    let opts = PerfOptions {
        dataset: a.dataset,
        data_dir: a.data_dir.clone(),
        batch_size: a.batch_size as usize,
        epochs: a.epochs as usize,
        hidden: a.hidden.0.clone(),
        ..PerfOptions::default()
    };
    let r = measure(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{r}");
    }
    Ok(())
}

fn scaling(a: &ScalingArgs) -> Result<()> {
    use ferrograd::analysis::scaling::{self, Point};
    let json = a.json;
    if !json {
        println!("{}", Point::TABLE_HEADER);
    }
    let _lock = OutLock::acquire(&a.out)?;
    // Rows as they are measured: a full run takes minutes.
    let report = scaling::measure(a.steps as usize, &a.threads_list.0, |p| {
        if !json {
            println!("{p}");
        }
    })?;
    let plots = scaling::plot(&report, &a.out.join("plots"))?;
    let path = a
        .out
        .join("results")
        .join(format!("scaling_{}.json", report.blas));
    ferrograd::artifacts::write_atomic(&path, &serde_json::to_vec_pretty(&report)?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", report.fits_table());
    for p in plots {
        println!("plot    {}", p.display());
    }
    println!("results {}", path.display());
    Ok(())
}

fn hessian(a: &HessianArgs) -> Result<()> {
    use ferrograd::analysis::hessian::{analyze, HessianOptions};
    let model = match &a.model {
        Some(p) => p.clone(),
        None => newest_model(&a.out.join("models"))?,
    };
    let _lock = OutLock::acquire(&a.out)?;
    if let Some(d) = a.dataset {
        report_data_source(d, a.data_dir.as_deref());
    } else if let Some(d) = ferrograd::artifacts::ModelFile::load(&model)
        .ok()
        .and_then(|f| DatasetName::parse(&f.dataset))
    {
        report_data_source(d, a.data_dir.as_deref());
    }
    let (r, plots, json) = analyze(&HessianOptions {
        model,
        dataset: a.dataset,
        data_dir: a.data_dir.clone(),
        samples: a.samples as usize,
        top_k: a.top_k as usize,
        iters: a.iters as usize,
        tol: a.tol,
        smallest: a.smallest || a.all,
        ggn: a.ggn,
        trace: a.trace || a.all,
        density: a.density || a.all,
        cost: a.cost || a.all,
        probes: a.probes as usize,
        slq_runs: a.slq_runs as usize,
        slq_steps: a.slq_steps as usize,
        seed: a.seed,
        out: a.out.clone(),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("{r}");
    for p in plots {
        println!("plot    {}", p.display());
    }
    println!("results {}", json.display());
    Ok(())
}
