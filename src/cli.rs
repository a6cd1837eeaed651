//! The command line: clap definitions of every subcommand and their dispatch.

use clap::{Parser, Subcommand};
use ferrograd::build_info::BuildInfo;
use ferrograd::tensor::check;

/// ferrograd: a from-scratch autograd engine, and the trainer and analysis tools built on it.
#[derive(Parser, Debug)]
#[command(name = "ferrograd", version = version(), about, long_about = None)]
pub struct Cli {
    /// Threads for ferrograd's kernels and for OpenBLAS (default: all cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
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
    /// Checks every op's first and second derivatives against central differences in f64.
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

/// Runs the parsed command; `Err` carries a one-line message for the user.
pub fn run(cli: Cli) -> Result<(), String> {
    if let Some(t) = cli.threads {
        ferrograd::threads::set_threads(t as usize)?;
    }
    match cli.command {
        Command::Gradcheck { json, seed } => gradcheck(json, seed),
        Command::Info { json } => {
            let info = BuildInfo::current();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?
                );
            } else {
                println!("ferrograd {}", info.version);
                println!("commit           {}", info.commit);
                println!("rustc            {}", info.rustc);
                println!("profile          {}", info.profile);
                println!("target           {}", info.target);
                println!("features         {}", info.features);
                println!("blas             {}", info.blas);
                println!("threads          {}", info.threads);
                println!("target features  {}", info.target_features);
            }
            Ok(())
        }
    }
}

fn gradcheck(json: bool, seed: u64) -> Result<(), String> {
    let reports = check::check_all(seed);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{:<22} {:>14} {:>14}  pass (tolerance {:.0e})",
            "op",
            "first order",
            "second order",
            check::TOLERANCE
        );
        for r in &reports {
            println!(
                "{:<22} {:>14.3e} {:>14.3e}  {}",
                r.op,
                r.first_order,
                r.second_order,
                if r.pass { "yes" } else { "NO" }
            );
        }
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.op.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("gradcheck failed for: {}", failed.join(", ")))
    }
}
