//! Which GEMM kernels run, and making OpenBLAS use the best ones the CPU supports.
//!
//! Debian's OpenBLAS is a `DYNAMIC_ARCH` build: when the library is loaded (before `main`) it
//! picks a *core* (a kernel set) from the CPU model, or from `OPENBLAS_CORETYPE` when that is
//! set. A CPU model newer than the library gets a generic core: on the AVX-512 Xeon of
//! issue 14 that was `Prescott` (SSE3), 2–3× slower than the `SkylakeX` kernels.
//!
//! The mechanism ([`startup`], first thing in the binary's `main`):
//! 1. `OPENBLAS_CORETYPE` set by the user: used as is, reported as *forced by the user*.
//! 2. Otherwise, if the loaded core is a generic fallback on this CPU ([`choice::decide`] over
//!    the `cpuid` flags), the process re-executes itself once with `OPENBLAS_CORETYPE` set to
//!    the best core whose instructions the CPU reports, and [`MARKER`] set to the same name.
//! 3. The re-executed process sees the marker equal to `OPENBLAS_CORETYPE`, checks that
//!    OpenBLAS loaded that core and that its sgemm agrees with a double-precision reference
//!    ([`selfcheck`]); then it runs, reporting *chosen by ferrograd*. If either fails it prints
//!    one warning line and re-executes once more without `OPENBLAS_CORETYPE`, the marker now
//!    `rejected:<core>`, which no process acts on again: at most two re-executions, no loop.
//!
//! A re-execution costs one process start (a few milliseconds, mostly loading OpenBLAS) and
//! only happens on CPUs OpenBLAS does not recognise. Library users who do not go through the
//! binary's `main` get OpenBLAS's own choice, reported by [`current`] as it is.

pub mod choice;
pub mod selfcheck;

use crate::cpu::CpuFeatures;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::OnceLock;

/// Set by ferrograd on the process it re-executes: the core it chose, or `rejected:<core>`
/// after that core failed its check.
pub const MARKER: &str = "FERROGRAD_BLAS_CORE";

/// For testing the mechanism on a CPU that OpenBLAS recognises: `generic` makes [`startup`]
/// treat the loaded core as `Prescott`; `generic-bad-check` also makes the self-check of the
/// chosen core fail.
pub const SIMULATE: &str = "FERROGRAD_BLAS_SIMULATE";

/// OpenBLAS's own variable naming the core to load.
pub const CORETYPE: &str = "OPENBLAS_CORETYPE";

/// How the core in use was chosen.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CoreSource {
    /// OpenBLAS's own detection from the CPU model.
    #[default]
    Detected,
    /// ferrograd replaced a generic fallback (and the self-check passed).
    ChosenByFerrograd,
    /// `OPENBLAS_CORETYPE` was set by the user.
    ForcedByUser,
    /// The build has no OpenBLAS (the pure-Rust matrixmultiply GEMM).
    NotOpenblas,
}

impl fmt::Display for CoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoreSource::Detected => "detected by OpenBLAS",
            CoreSource::ChosenByFerrograd => "chosen by ferrograd",
            CoreSource::ForcedByUser => "forced by the user (OPENBLAS_CORETYPE)",
            CoreSource::NotOpenblas => "not applicable (no OpenBLAS in this build)",
        })
    }
}

/// The GEMM kernels in use, as every results file and `ferrograd info` report them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BlasCore {
    /// GEMM backend: `openblas` or `matrixmultiply`.
    pub backend: String,
    /// OpenBLAS's core name (`openblas_get_corename()`), or what matrixmultiply does.
    pub core: String,
    /// How that core was chosen.
    pub source: CoreSource,
    /// Whether the core is a generic fallback on this CPU (narrower than its instructions
    /// allow); `analyze performance`'s CI gate fails on it unless the user forced the core.
    pub generic_fallback: bool,
    /// Anything else worth saying (a rejected choice), or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl fmt::Display for BlasCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} core {} ({})", self.backend, self.core, self.source)?;
        if self.generic_fallback {
            f.write_str(", a generic fallback on this CPU")?;
        }
        if !self.note.is_empty() {
            write!(f, "; {}", self.note)?;
        }
        Ok(())
    }
}

static CURRENT: OnceLock<BlasCore> = OnceLock::new();

/// The kernels in use in this process.
pub fn current() -> &'static BlasCore {
    CURRENT.get_or_init(|| {
        let env = Env::read();
        match plan(&env, &loaded_core(), &CpuFeatures::detect()) {
            Step::Use(source, note) => describe(source, note),
            // Without `startup` nothing is verified or re-executed: say what is loaded.
            Step::Verify(_) => describe(CoreSource::ChosenByFerrograd, String::new()),
            Step::Choose(_) => describe(CoreSource::Detected, String::new()),
        }
    })
}

/// Makes OpenBLAS use the best core the CPU supports (the module's mechanism). Call it first
/// in `main`, before any thread is started: it may replace the process. A no-op without the
/// `openblas` feature.
pub fn startup() {
    let env = Env::read();
    let cpu = CpuFeatures::detect();
    let report = match plan(&env, &loaded_core(), &cpu) {
        Step::Use(CoreSource::ForcedByUser, _) => {
            let core = loaded_core();
            let mut note = String::new();
            if choice::needs_missing_instructions(&core, &cpu) {
                note = format!("{core} needs instructions this CPU does not report");
                eprintln!(
                    "warning: OPENBLAS_CORETYPE loads OpenBLAS's {core} core, which needs instructions this CPU does not report (expect an illegal-instruction crash)"
                );
            }
            describe(CoreSource::ForcedByUser, note)
        }
        Step::Use(source, note) => describe(source, note),
        Step::Choose(core) => {
            reexec(Some(core), core);
            describe(
                CoreSource::Detected,
                format!("could not re-execute to load {core}"),
            )
        }
        Step::Verify(core) => match verify(&core, env.simulate_bad_check()) {
            Ok(()) => describe(CoreSource::ChosenByFerrograd, String::new()),
            Err(why) => {
                eprintln!(
                    "warning: OpenBLAS core {core} {why}; falling back to OpenBLAS's own choice"
                );
                reexec(None, &format!("rejected:{core}"));
                describe(CoreSource::ChosenByFerrograd, format!("{core} {why}"))
            }
        },
    };
    let _ = CURRENT.set(report);
}

/// The environment variables the decision reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Env {
    marker: Option<String>,
    coretype: Option<String>,
    simulate: Option<String>,
}

impl Env {
    fn read() -> Env {
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        Env {
            marker: var(MARKER),
            // Set but empty still counts: OpenBLAS reads it (and loads its default core).
            coretype: std::env::var_os(CORETYPE).map(|v| v.to_string_lossy().into_owned()),
            simulate: var(SIMULATE),
        }
    }

    fn simulate_bad_check(&self) -> bool {
        self.simulate.as_deref() == Some("generic-bad-check")
    }
}

/// What [`startup`] does next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    /// Run with the loaded core.
    Use(CoreSource, String),
    /// Re-execute with this core.
    Choose(&'static str),
    /// This is the re-executed process: check the core ferrograd chose.
    Verify(String),
}

/// The decision over the environment, the loaded core and the CPU (pure, for the tests).
pub(crate) fn plan(env: &Env, loaded: &str, cpu: &CpuFeatures) -> Step {
    if !cfg!(feature = "openblas") {
        return Step::Use(CoreSource::NotOpenblas, String::new());
    }
    match (env.marker.as_deref(), env.coretype.as_deref()) {
        (Some(m), Some(c)) if m == c => Step::Verify(c.to_string()),
        (_, Some(_)) => Step::Use(CoreSource::ForcedByUser, String::new()),
        (Some(m), None) if m.starts_with("rejected:") => Step::Use(
            CoreSource::Detected,
            format!(
                "ferrograd's choice {} failed its check",
                &m["rejected:".len()..]
            ),
        ),
        _ => {
            let detected = if env.simulate.is_some() {
                "Prescott"
            } else {
                loaded
            };
            match choice::decide(detected, cpu) {
                choice::Decision::Keep => Step::Use(CoreSource::Detected, String::new()),
                choice::Decision::Choose(core) => Step::Choose(core),
            }
        }
    }
}

/// The report for the loaded core.
fn describe(source: CoreSource, note: String) -> BlasCore {
    let core = loaded_core();
    BlasCore {
        backend: crate::threads::blas_backend().to_string(),
        generic_fallback: choice::is_generic_fallback(&core, &CpuFeatures::detect()),
        core,
        source,
        note,
    }
}

/// Checks that OpenBLAS loaded `core` and that its sgemm is right.
fn verify(core: &str, simulate_bad: bool) -> Result<(), String> {
    let loaded = loaded_core();
    if !loaded.eq_ignore_ascii_case(core) {
        return Err(format!("was not loaded (OpenBLAS loaded {loaded})"));
    }
    let bad = |ta, m, k, n, a: &[f32], b: &[f32], c: &mut [f32]| {
        cblas_gemm(ta, m, k, n, a, b, c);
        c[0] += 1.0;
    };
    let gemm: &selfcheck::Gemm = if simulate_bad { &bad } else { &cblas_gemm };
    selfcheck::check(gemm)
        .map(|_| ())
        .map_err(|e| format!("failed the sgemm self-check ({e})"))
}

/// Replaces this process by itself with `OPENBLAS_CORETYPE` set to `core` (or removed) and
/// the marker set; returns only when that fails (after a one-line warning).
fn reexec(core: Option<&str>, marker: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_default();
        let error = match std::env::current_exe() {
            Ok(exe) => {
                let mut cmd = std::process::Command::new(exe);
                cmd.arg0(argv0).args(args).env(MARKER, marker);
                match core {
                    Some(c) => cmd.env(CORETYPE, c),
                    None => cmd.env_remove(CORETYPE),
                };
                cmd.exec()
            }
            Err(e) => e,
        };
        eprintln!("warning: could not re-execute ferrograd to choose the OpenBLAS core: {error}");
    }
    #[cfg(not(unix))]
    let _ = (core, marker);
}

#[cfg(feature = "openblas")]
extern "C" {
    fn openblas_get_corename() -> *const std::os::raw::c_char;
    #[allow(clippy::too_many_arguments)]
    fn cblas_sgemm(
        order: i32,
        trans_a: i32,
        trans_b: i32,
        m: i32,
        n: i32,
        k: i32,
        alpha: f32,
        a: *const f32,
        lda: i32,
        b: *const f32,
        ldb: i32,
        beta: f32,
        c: *mut f32,
        ldc: i32,
    );
}

/// The core OpenBLAS loaded, or what the matrixmultiply build does instead.
pub fn loaded_core() -> String {
    #[cfg(feature = "openblas")]
    {
        // SAFETY: returns a pointer to a static NUL-terminated string inside OpenBLAS.
        let name = unsafe { std::ffi::CStr::from_ptr(openblas_get_corename()) };
        name.to_string_lossy().trim().to_string()
    }
    #[cfg(not(feature = "openblas"))]
    "none: matrixmultiply picks its kernel from cpuid".to_string()
}

/// OpenBLAS's row-major sgemm in the [`selfcheck::Gemm`] form.
#[cfg(feature = "openblas")]
pub(crate) fn cblas_gemm(
    ta: bool,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    const ROW_MAJOR: i32 = 101;
    let (no, yes) = (111, 112);
    let lda = if ta { m } else { k };
    // SAFETY: the slices have the lengths the shapes and leading dimensions need.
    unsafe {
        cblas_sgemm(
            ROW_MAJOR,
            if ta { yes } else { no },
            no,
            m as i32,
            n as i32,
            k as i32,
            1.0,
            a.as_ptr(),
            lda as i32,
            b.as_ptr(),
            n as i32,
            0.0,
            c.as_mut_ptr(),
            n as i32,
        )
    }
}

#[cfg(not(feature = "openblas"))]
fn cblas_gemm(_: bool, _: usize, _: usize, _: usize, _: &[f32], _: &[f32], _: &mut [f32]) {
    unreachable!("no OpenBLAS in this build")
}

#[cfg(test)]
mod tests {
    use super::choice::recorded::*;
    use super::*;

    fn env(marker: Option<&str>, coretype: Option<&str>, simulate: Option<&str>) -> Env {
        Env {
            marker: marker.map(str::to_string),
            coretype: coretype.map(str::to_string),
            simulate: simulate.map(str::to_string),
        }
    }

    #[cfg(feature = "openblas")]
    #[test]
    fn the_plan_respects_the_user_and_never_loops() {
        let amd = amd_epyc_zen3();
        let xeon = intel_xeon_avx512();
        let none = env(None, None, None);
        assert_eq!(
            plan(&none, "Zen", &amd),
            Step::Use(CoreSource::Detected, String::new())
        );
        assert_eq!(plan(&none, "Prescott", &amd), Step::Choose("Zen"));
        assert_eq!(plan(&none, "Prescott", &xeon), Step::Choose("Cooperlake"));
        assert_eq!(
            plan(&none, "Prescott", &intel_core2_sse()),
            Step::Use(CoreSource::Detected, String::new())
        );
        // The user's OPENBLAS_CORETYPE wins, even a generic one, even beside a stale marker.
        for e in [
            env(None, Some("Prescott"), None),
            env(Some("Zen"), Some("Prescott"), None),
        ] {
            assert_eq!(
                plan(&e, "Prescott", &xeon),
                Step::Use(CoreSource::ForcedByUser, String::new())
            );
        }
        // The re-executed process verifies; a rejected choice is never tried again.
        assert_eq!(
            plan(
                &env(Some("Cooperlake"), Some("Cooperlake"), None),
                "Cooperlake",
                &xeon
            ),
            Step::Verify("Cooperlake".into())
        );
        let rejected = plan(
            &env(Some("rejected:Cooperlake"), None, None),
            "Prescott",
            &xeon,
        );
        assert!(
            matches!(rejected, Step::Use(CoreSource::Detected, ref n) if n.contains("Cooperlake"))
        );
        // Simulation pretends the detection fell back, and only then.
        assert_eq!(
            plan(&env(None, None, Some("generic")), "Zen", &amd),
            Step::Choose("Zen")
        );
    }

    #[cfg(not(feature = "openblas"))]
    #[test]
    fn matrixmultiply_build_says_so() {
        let e = env(None, Some("Prescott"), Some("generic"));
        assert_eq!(
            plan(&e, "x", &amd_epyc_zen3()),
            Step::Use(CoreSource::NotOpenblas, String::new())
        );
        assert_eq!(current().backend, "matrixmultiply");
        assert_eq!(current().source, CoreSource::NotOpenblas);
        assert!(!current().generic_fallback);
    }

    #[cfg(feature = "openblas")]
    #[test]
    fn current_names_the_loaded_core() {
        let c = current();
        assert_eq!(c.backend, "openblas");
        assert!(
            choice::core_rank(&c.core).is_some(),
            "unknown core {}",
            c.core
        );
        let forced = std::env::var_os(CORETYPE).is_some();
        assert_eq!(c.source == CoreSource::ForcedByUser, forced);
    }
}
