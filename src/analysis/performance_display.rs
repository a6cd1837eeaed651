//! The `analyze performance` report as text: the run, the epoch times against the
//! hand-written baseline and the GEMM floor, then where the time went by phase, by op and by
//! GEMM shape.

use super::performance::PerfReport;
use std::fmt;

/// The report says the cores are shared when the reference product gains less than this
/// share of a thread's worth from each thread after the first: on the 2-core machine PERF.md
/// measures, 1.07–1.20× (once 0.79×) in its slow state, when the host's other work shares the
/// cores, and 1.61–1.72× in its fast state.
const SHARED_CORES_GAIN_BELOW: f64 = 0.3;

/// `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

impl PerfReport {
    fn fmt_summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<String> = self.architecture.iter().map(|s| s.to_string()).collect();
        let threads = if self.blas == "openblas" && self.blas_threads != self.threads {
            format!(
                "{} (OpenBLAS: {})",
                plural(self.threads, "thread"),
                self.blas_threads
            )
        } else {
            plural(self.threads, "thread")
        };
        writeln!(
            f,
            "{} {}, batch {}, {} steps of {} images; {threads}, blas {}",
            self.dataset,
            sizes.join("-"),
            self.batch_size,
            self.steps_per_epoch,
            self.images,
            self.blas
        )?;
        writeln!(f, "GEMM kernels: {}", self.blas_core)?;
        writeln!(
            f,
            "epoch (median of {}): autograd {:.3} s, hand-written {:.3} s, ratio {:.3}",
            self.epoch_seconds.len(),
            self.epoch_seconds_median,
            self.handwritten_epoch_seconds_median,
            self.ratio
        )?;
        writeln!(
            f,
            "GEMM floor {:.3} s (the epoch's GEMMs as plain GEMMs), floor ratio {:.3}",
            self.gemm_floor_seconds, self.floor_ratio
        )?;
        let peak = &self.cpu_peak;
        writeln!(
            f,
            "floor GEMM rate {:.1} GFLOP/s = {:.0}% of the peak {:.1} GFLOP/s \
             ({}: {} × {:.0} MHz × {} FLOPs/cycle)",
            self.floor_gflops,
            100.0 * self.floor_fraction_of_peak,
            peak.gflops,
            peak.model,
            plural(peak.cores, "core"),
            peak.mhz,
            peak.flops_per_cycle
        )?;
        let (m, k, n) = super::performance::SPEEDUP_SHAPE;
        if let Some(speedup) = self.gemm_thread_speedup {
            let threads = self.blas_threads;
            write!(
                f,
                "a {m}×{k}·{k}×{n} GEMM on {threads} threads: {speedup:.2}× one thread"
            )?;
            // The peak counts the GEMM's threads up to the cores this process may use.
            let cores = self.cpu_peak.cores;
            if threads > cores {
                write!(
                    f,
                    " — more threads than the {cores} cores this process may use"
                )?;
            } else if speedup < 1.0 + SHARED_CORES_GAIN_BELOW * (threads as f64 - 1.0) {
                write!(
                    f,
                    " — other work shares the cores: timings move, and a floor whose \
                     products run on all threads is not a lower bound"
                )?;
            }
            writeln!(f)?;
        } else if self.blas == "openblas" && self.blas_threads == 1 && self.threads > 1 {
            writeln!(
                f,
                "OpenBLAS runs on one thread (OPENBLAS_NUM_THREADS or OMP_NUM_THREADS in the \
                 environment?), so no thread speedup was measured"
            )?;
        }
        Ok(())
    }

    fn fmt_phases(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.phases;
        let total = p.total();
        writeln!(f, "\nphase       seconds   share")?;
        for (name, v) in [
            ("data", p.data),
            ("forward", p.forward),
            ("backward", p.backward),
            ("optimizer", p.optimizer),
        ] {
            writeln!(f, "{name:<10} {v:>8.4} {:>6.1}%", 100.0 * v / total)?;
        }
        Ok(())
    }

    fn fmt_ops(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nop (one profiled epoch)       calls   seconds   share")?;
        let op_total: f64 = self.ops.iter().map(|o| o.seconds).sum();
        for o in &self.ops {
            writeln!(
                f,
                "{:<26} {:>8} {:>9.4} {:>6.1}%",
                o.op,
                o.calls,
                o.seconds,
                100.0 * o.seconds / op_total
            )?;
        }
        Ok(())
    }

    fn fmt_gemm(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nGEMM m×k·k×n        calls  GFLOP/s in training  plain GEMM"
        )?;
        for g in &self.gemm {
            writeln!(
                f,
                "{:>5}×{:>4}·{:>4}×{:<5} {:>6} {:>20.1} {:>11.1}",
                g.shape[0],
                g.shape[1],
                g.shape[1],
                g.shape[2],
                g.calls,
                g.gflops_in_training,
                g.gflops_plain_gemm
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for PerfReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_summary(f)?;
        self.fmt_phases(f)?;
        self.fmt_ops(f)?;
        self.fmt_gemm(f)?;
        writeln!(
            f,
            "\nmatmul work per epoch: {:.2} GFLOP",
            self.epoch_matmul_gflop
        )
    }
}
