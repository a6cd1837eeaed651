//! The `ferrograd` binary: parse the command line and dispatch; errors print on one line.

mod cli;

use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    // First: it may re-execute the process with a better OpenBLAS core (src/blas/mod.rs).
    ferrograd::blas::startup();
    let args = cli::Cli::try_parse().unwrap_or_else(|e| {
        // Help, version, and a bare `ferrograd` print in full, as clap does.
        if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            e.exit()
        }
        // A usage error on one line, as every other error: clap's first line (which names the
        // argument and what is wrong), without its usage block.
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("error: invalid arguments");
        eprintln!("{first} (see --help)");
        std::process::exit(2);
    });
    // Settings that parse but are out of range (checked once, by the library's
    // configuration) are usage errors too.
    if let Err(error) = args.check() {
        eprintln!("error: {error:#} (see --help)");
        std::process::exit(2);
    }
    if let Err(error) = cli::run(args) {
        // One line: the error and its causes, joined.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
