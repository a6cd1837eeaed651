//! The `ferrograd` binary: parse the command line and dispatch; errors print on one line.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(message) = cli::run(args) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
