//! How this binary was built, as embedded by `build.rs`.

use serde::{Deserialize, Serialize};

/// The build's provenance, written into every results file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BuildInfo {
    /// ferrograd's version.
    pub version: String,
    /// Git commit (with `-dirty` when the tree had uncommitted changes).
    pub commit: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Enabled cargo features, comma-separated.
    pub features: String,
    /// GEMM backend: `openblas` or `matrixmultiply`.
    pub blas: String,
    /// The GEMM kernels in use: OpenBLAS's core name and how it was chosen.
    #[serde(default)]
    pub blas_core: crate::blas::BlasCore,
    /// Cargo profile (`release`, `debug`).
    pub profile: String,
    /// Target triple.
    pub target: String,
    /// CPU features the code was compiled for (`target_feature`).
    pub target_features: String,
    /// Threads rayon uses in this process.
    pub threads: usize,
}

impl BuildInfo {
    /// The information for this binary and process.
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: env!("FERROGRAD_GIT_COMMIT").to_string(),
            rustc: env!("FERROGRAD_RUSTC").to_string(),
            features: env!("FERROGRAD_FEATURES").to_string(),
            blas: env!("FERROGRAD_BLAS").to_string(),
            blas_core: crate::blas::current().clone(),
            profile: env!("FERROGRAD_PROFILE").to_string(),
            target: env!("FERROGRAD_TARGET").to_string(),
            target_features: env!("FERROGRAD_TARGET_FEATURES").to_string(),
            threads: rayon::current_num_threads(),
        }
    }

    /// One line for `--version`.
    pub fn version_line() -> String {
        format!(
            "{} (commit {}, {}, blas {}, features [{}])",
            env!("CARGO_PKG_VERSION"),
            env!("FERROGRAD_GIT_COMMIT"),
            env!("FERROGRAD_RUSTC"),
            env!("FERROGRAD_BLAS"),
            env!("FERROGRAD_FEATURES"),
        )
    }
}

/// What `ferrograd info` prints: one labelled line per fact.
impl std::fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "ferrograd {}", self.version)?;
        writeln!(f, "commit           {}", self.commit)?;
        writeln!(f, "rustc            {}", self.rustc)?;
        writeln!(f, "profile          {}", self.profile)?;
        writeln!(f, "target           {}", self.target)?;
        writeln!(f, "features         {}", self.features)?;
        writeln!(f, "blas             {}", self.blas)?;
        writeln!(f, "blas core        {}", self.blas_core.core)?;
        writeln!(f, "core chosen      {}", self.blas_core.source)?;
        if self.blas_core.generic_fallback {
            writeln!(
                f,
                "                 (a generic fallback: this CPU supports faster kernels)"
            )?;
        }
        if !self.blas_core.note.is_empty() {
            writeln!(f, "core note        {}", self.blas_core.note)?;
        }
        writeln!(f, "threads          {}", self.threads)?;
        writeln!(f, "target features  {}", self.target_features)
    }
}
