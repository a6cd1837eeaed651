//! The `analyze hessian` report as text: what was computed, the eigenvalues with their
//! residuals, the trace if asked for, and where the time went; numbers to four significant
//! digits.

use super::hessian::HessianReport;
use super::lanczos::RitzValue;
use super::readable;
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

/// The Hessian's and the Gauss–Newton matrix's largest eigenvalues side by side.
fn ggn_table(f: &mut fmt::Formatter<'_>, h: &[RitzValue], g: &[RitzValue]) -> fmt::Result {
    writeln!(
        f,
        "  rank {:>14} {:>18} {:>16} {:>18}",
        "Hessian λ", "residual ‖Hv−λv‖", "Gauss–Newton λ", "residual ‖Gv−λv‖"
    )?;
    let cell = |e: Option<&RitzValue>| {
        e.map_or(("-".into(), "-".into()), |e| {
            (readable(e.value), readable(e.residual))
        })
    };
    for i in 0..h.len().max(g.len()) {
        let ((hv, hr), (gv, gr)) = (cell(h.get(i)), cell(g.get(i)));
        writeln!(f, "  {:>4} {hv:>14} {hr:>18} {gv:>16} {gr:>18}", i + 1)?;
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
        if let Some(g) = &self.ggn {
            writeln!(
                f,
                "Gauss–Newton Lanczos: {} steps, {}",
                g.iterations,
                if g.converged {
                    "converged"
                } else {
                    "NOT converged (raise --iters)"
                }
            )?;
            ggn_table(f, &l.largest, &g.largest)?;
        } else {
            eigen_table(f, "largest λ", &l.largest)?;
        }
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
        if self.ggn.is_some() {
            write!(f, "\nGauss–Newton {:.1}s", t.ggn)?;
        }
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
