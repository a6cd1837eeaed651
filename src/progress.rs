//! Progress bars on standard error, drawn only when it is a terminal (logs and pipes stay
//! clean).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` steps with `template` (indicatif's syntax), hidden unless standard error is a
/// terminal.
pub fn bar(len: usize, template: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    bar_to(len, template, target)
}

/// A bar of `len` steps with `template`, drawn to `target`.
pub fn bar_to(len: usize, template: &str, target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), target);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
