//! The `analyze hessian` report as text: what was computed, the eigenvalues with their
//! residuals, the trace if asked for, and where the time went; numbers to four significant
//! digits.

use super::hessian::HessianReport;
use super::lanczos::RitzValue;
use crate::plot::readable;
use std::fmt;

fn eigen_table(f: &mut fmt::Formatter<'_>, end: &str, values: &[RitzValue]) -> fmt::Result {
    writeln!(f, "  rank {end:>14}   residual ‖Hv−λv‖")?;
    for (i, e) in values.iter().enumerate() {
        writeln!(
            f,
            "  {:>4} {:>14} {:>18}",
            i + 1,
            readable(e.value),
            readable(e.residual)
        )?;
    }
    Ok(())
}

impl fmt::Display for HessianReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Hessian of the mean loss over the first {} {} training images, {} parameters ({} model)",
            self.samples, self.dataset, self.parameters, self.activation
        )?;
        writeln!(
            f,
            "loss {}, gradient norm {}",
            readable(self.loss),
            readable(self.gradient_norm)
        )?;
        let l = &self.lanczos;
        writeln!(
            f,
            "\nLanczos: {} steps, {}",
            l.iterations,
            if l.converged {
                "converged"
            } else {
                "NOT converged (raise --iters)"
            }
        )?;
        eigen_table(f, "largest λ", &l.largest)?;
        if !l.smallest.is_empty() {
            eigen_table(f, "smallest λ", &l.smallest)?;
        }
        match &self.trace {
            Some(t) => writeln!(
                f,
                "\ntrace (Hutchinson, {} probes): {} ± {} (standard error)",
                t.probes,
                readable(t.trace),
                readable(t.standard_error)
            )?,
            None => writeln!(
                f,
                "\ntrace and density not computed (--trace, --density or --all)"
            )?,
        }
        let t = &self.timings;
        write!(
            f,
            "\ntime: setup {:.1}s, Lanczos {:.1}s, trace {:.1}s, density {:.1}s, total {:.1}s ({} s per Hessian-vector product)",
            t.setup, t.lanczos, t.hutchinson, t.density, t.total, readable(t.per_hvp)
        )?;
        if let (Some(g), Some(h)) = (t.gradient, t.hvp_from_scratch) {
            write!(
                f,
                "\none gradient {} s, one Hessian-vector product from scratch {} s: {:.2}x",
                readable(g),
                readable(h),
                h / g
            )?;
        }
        Ok(())
    }
}
