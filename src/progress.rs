//! Progress bars on standard error, drawn only when it is a terminal (logs and pipes stay
//! clean), and the command line's [`Console`] observer of a training run.
//!
//! [`Bar`] is the one seam between the library and indicatif: without the `cli` feature its
//! methods do nothing, so the analyses that report progress need no feature gates of their own.

#[cfg(feature = "cli")]
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on standard error (indicatif's, with the `cli` feature; nothing without it).
pub struct Bar {
    #[cfg(feature = "cli")]
    inner: ProgressBar,
}

/// A bar of `len` steps with `template` (indicatif's syntax), hidden unless standard error is a
/// terminal.
pub fn bar(len: usize, template: &str) -> Bar {
    Bar::new(Some(len as u64), template)
}

#[cfg(feature = "cli")]
impl Bar {
    /// A bar of `len` steps (a spinner-like count when `None`) with `template`, hidden unless
    /// standard error is a terminal.
    pub fn new(len: Option<u64>, template: &str) -> Bar {
        use std::io::IsTerminal;
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let inner = ProgressBar::with_draw_target(len, target);
        inner.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar { inner }
    }
    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        self.inner.inc(n);
    }
    /// Moves to step `pos`.
    pub fn set_position(&self, pos: u64) {
        self.inner.set_position(pos);
    }
    /// The template's `{msg}`.
    pub fn set_message(&self, msg: impl Into<String>) {
        self.inner.set_message(msg.into());
    }
    /// The template's `{prefix}`.
    pub fn set_prefix(&self, prefix: impl Into<String>) {
        self.inner.set_prefix(prefix.into());
    }
    /// Removes the bar from the terminal.
    pub fn finish_and_clear(&self) {
        self.inner.finish_and_clear();
    }
    /// Prints a line on standard output: above the bar when it is drawn (printing under it
    /// would break it), plainly when it is hidden (a hidden bar would swallow the line).
    pub fn println(&self, line: &str) {
        if self.inner.is_hidden() {
            println!("{line}");
        } else {
            self.inner.println(line);
        }
    }
}

/// Without the `cli` feature: the same calls, drawing nothing.
#[cfg(not(feature = "cli"))]
#[allow(missing_docs)]
impl Bar {
    pub fn new(_len: Option<u64>, _template: &str) -> Bar {
        Bar {}
    }
    pub fn inc(&self, _n: u64) {}
    pub fn set_position(&self, _pos: u64) {}
    pub fn set_message(&self, _msg: impl Into<String>) {}
    pub fn set_prefix(&self, _prefix: impl Into<String>) {}
    pub fn finish_and_clear(&self) {}
    pub fn println(&self, line: &str) {
        println!("{line}");
    }
}

/// The command line's view of a training run: a progress bar per epoch on a terminal, and a
/// line per epoch and per message on standard output.
#[derive(Default)]
pub struct Console {
    bar: Option<Bar>,
}

impl crate::train::Observer for Console {
    fn message(&mut self, text: &str) {
        println!("{text}");
    }

    fn curvature(
        &mut self,
        p: &crate::analysis::curvature::CurvaturePoint,
        momentum: Option<crate::analysis::curvature::Momentum>,
    ) {
        let threshold = momentum.map_or(String::new(), |m| {
            format!(", threshold {} = {:.4e}", m.label(), m.threshold(p.lr))
        });
        let line = format!(
            "curvature at epoch {} step {}: λ_max {:.5e} (residual {:.1e}, {} HVPs, {:.2}s){threshold}",
            p.epoch, p.step, p.lambda_max, p.residual, p.hvps, p.seconds
        );
        match &self.bar {
            Some(bar) => bar.println(&line),
            None => println!("{line}"),
        }
    }

    fn epoch_started(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let bar = bar(
            steps,
            "epoch {prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}",
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        self.bar = Some(bar);
    }

    fn step_done(&mut self, step: usize, mean_loss: f64) {
        if let Some(bar) = &self.bar {
            if step % 16 == 0 {
                bar.set_message(format!("loss {mean_loss:.4}"));
            }
            bar.inc(1);
        }
    }

    fn epoch_done(&mut self, m: &crate::train::EpochMetrics, epochs: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        // An accuracy is NaN only for an empty set: say so rather than print NaN.
        let val = if m.val_accuracy.is_nan() {
            "val: none (--val-fraction 0)".to_string()
        } else {
            format!(
                "val loss {:.4} acc {:6.2}%",
                m.val_loss,
                100.0 * m.val_accuracy
            )
        };
        println!(
            "epoch {:>3}/{}  train loss {:.4} acc {:6.2}%  {val}  test acc {:6.2}%  lr {:.5}  {:.2}s",
            m.epoch,
            epochs,
            m.train_loss,
            100.0 * m.train_accuracy,
            100.0 * m.test_accuracy,
            m.lr,
            m.seconds
        );
    }
}
