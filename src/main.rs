//! The `ferrograd` binary: parse the command line and dispatch; errors print on one line.

mod cli;

use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    // First: it may re-execute the process with a better OpenBLAS core (src/blas/mod.rs).
    ferrograd::blas::startup();
    stdout_failures_end_the_run_plainly();
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

/// `println!` panics when standard output cannot be written. `ferrograd train | head -1` then
/// ends as other command-line tools do, killed by SIGPIPE with nothing printed; a stdout that
/// fails otherwise (`> /dev/full`) is one error line and exit code 1, not a backtrace. SIGPIPE
/// itself stays ignored (Rust's default) until then, so that sockets report a closed peer as
/// an error rather than killing the process.
fn stdout_failures_end_the_run_plainly() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        let Some(cause) = message.strip_prefix("failed printing to stdout: ") else {
            return default(info);
        };
        #[cfg(unix)]
        if cause.starts_with("Broken pipe") {
            // SAFETY: restores the signal's default action and raises it on this thread; the
            // process ends as `cat` does when its reader goes away.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        eprintln!("error: cannot write to standard output: {cause}");
        std::process::exit(1);
    }));
}
