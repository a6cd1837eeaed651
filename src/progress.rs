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

/// The command line's view of a training run: a progress bar per epoch on a terminal, and a
/// line per epoch and per message on standard output.
#[derive(Default)]
pub struct Console {
    bar: Option<ProgressBar>,
}

impl crate::train::Observer for Console {
    fn message(&mut self, text: &str) {
        println!("{text}");
    }

    fn curvature(
        &mut self,
        p: &crate::analysis::curvature::CurvaturePoint,
        optimizer: crate::train::OptimizerKind,
        momentum: f64,
    ) {
        let threshold = match optimizer {
            crate::train::OptimizerKind::Sgd => format!(
                ", threshold 2(1+μ)/η {:.4}",
                crate::analysis::curvature::stability_threshold(p.lr, momentum)
            ),
            crate::train::OptimizerKind::Adam => String::new(),
        };
        let line = format!(
            "curvature at epoch {} step {}: λ_max {:.4} (residual {:.1e}, {} HVPs, {:.2}s){threshold}",
            p.epoch, p.step, p.lambda_max, p.residual, p.hvps, p.seconds
        );
        // Above a drawn bar (printing under it would break it); a hidden bar swallows lines.
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => println!("{line}"),
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
        println!(
            "epoch {:>3}/{}  train loss {:.4} acc {:6.2}%  val loss {:.4} acc {:6.2}%  test acc {:6.2}%  lr {:.5}  {:.2}s",
            m.epoch,
            epochs,
            m.train_loss,
            100.0 * m.train_accuracy,
            m.val_loss,
            100.0 * m.val_accuracy,
            100.0 * m.test_accuracy,
            m.lr,
            m.seconds
        );
    }
}
