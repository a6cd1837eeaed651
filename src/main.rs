//! The `ferrograd` binary: parse the command line and dispatch; errors print on one line.

mod cli;

use clap::Parser;

fn main() {
    // First: it may re-execute the process with a better OpenBLAS core (src/blas/mod.rs).
    ferrograd::blas::startup();
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        // One line: the error and its causes, joined.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
