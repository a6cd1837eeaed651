//! The limits that stop a small input from asking for unbounded work, in one place (README.md,
//! "What ferrograd refuses", lists them). Each is checked against what an input's header says
//! it will cost, before anything is allocated or looped over.

use anyhow::{bail, Result};
use std::path::Path;

/// Most hidden layers (`--hidden`, and layers in a model file): far beyond any MLP that trains,
/// and far below what a stack or a graph of the same depth can hold.
pub const MAX_HIDDEN_LAYERS: usize = 256;
/// Most epochs a run may ask for (`--epochs`, and a checkpoint's settings).
pub const MAX_EPOCHS: usize = 100_000;
/// Largest batch a run may ask for.
pub const MAX_BATCH: usize = 1_000_000;
/// Widest layer accepted on the command line (a model file may hold wider ones, up to
/// [`crate::artifacts::MAX_WIDTH`], within its weight limit).
pub const MAX_CLI_WIDTH: usize = 1 << 16;
/// Most threads in one `analyze scaling --threads-list` entry and in `--threads`.
pub const MAX_THREADS: usize = 1024;
/// Most images `train --curvature-samples` measures on (as `analyze hessian --samples`).
pub const MAX_CURVATURE_SAMPLES: usize = 1_000_000;
/// Most entries in `--threads-list`.
pub const MAX_THREAD_COUNTS: usize = 16;
/// Largest model or checkpoint file read (bytes).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;
/// Largest total unpacked from the CIFAR-10 archive (the real one unpacks to 185 MB).
pub const MAX_UNPACKED_BYTES: u64 = 512 << 20;
/// Most entries in the CIFAR-10 archive (the real one has 9).
pub const MAX_ARCHIVE_ENTRIES: usize = 64;
/// Bytes accepted from one download: the largest file ferrograd fetches is the CIFAR-10
/// archive (about 163 MB), so a server streaming without end is cut off here, long before
/// a disk fills.
pub const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Most parameters in a model a run builds: 2²⁸ (1 GiB of `f32`; training holds about four
/// times that with gradients and optimizer buffers).
pub const MAX_PARAMETERS: u64 = 1 << 28;

/// Refuses layer sizes `sizes` (inputs first) whose parameters pass [`MAX_PARAMETERS`].
pub fn check_parameters(sizes: &[usize]) -> Result<()> {
    let count: u64 = sizes
        .windows(2)
        .map(|w| (w[0] as u64 + 1).saturating_mul(w[1] as u64))
        .fold(0, u64::saturating_add);
    if count > MAX_PARAMETERS {
        bail!(
            "a model of layers {:?} has {count} parameters, more than the {MAX_PARAMETERS} accepted",
            &sizes[..sizes.len().min(8)]
        );
    }
    Ok(())
}

/// Environment variable overriding [`DEFAULT_DATA_MEMORY`]: bytes, or a number with a
/// `K`, `M` or `G` suffix (powers of 1024).
pub const DATA_MEMORY_VAR: &str = "FERROGRAD_MAX_DATA_MEMORY";
/// Default memory a dataset may take once decoded (raw bytes plus `f32` features, training
/// and test sets together): 4 GiB, about 9 times MNIST's 440 MB.
pub const DEFAULT_DATA_MEMORY: u64 = 4 << 30;

/// Parses a size such as `4G`, `512M`, `65536`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, shift) = match s.as_bytes().last()?.to_ascii_uppercase() {
        b'K' => (&s[..s.len() - 1], 10),
        b'M' => (&s[..s.len() - 1], 20),
        b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The memory a dataset load may use, charged file by file from each file's header.
#[derive(Clone, Debug)]
pub struct DataBudget {
    limit: u64,
    used: u64,
}

impl DataBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> DataBudget {
        DataBudget { limit, used: 0 }
    }

    /// The budget of [`DATA_MEMORY_VAR`]; when it is unset, [`DEFAULT_DATA_MEMORY`] or half
    /// the process's address-space limit (`ulimit -v`), whichever is smaller.
    pub fn from_env() -> Result<DataBudget> {
        match std::env::var(DATA_MEMORY_VAR) {
            Err(_) => Ok(DataBudget::new(
                DEFAULT_DATA_MEMORY.min(address_space_limit().map_or(u64::MAX, |l| l / 2)),
            )),
            Ok(v) => match parse_size(&v) {
                Some(limit) => Ok(DataBudget::new(limit)),
                None => bail!("{DATA_MEMORY_VAR}={v:?} is not a size (bytes, or e.g. 512M, 8G)"),
            },
        }
    }

    /// Charges `bytes` for `path`, refusing when the total would pass the limit.
    pub fn charge(&mut self, path: &Path, bytes: u64) -> Result<()> {
        if let Err(total) = self.add(bytes) {
            bail!(
                "{}: decoding it needs {} MiB, which takes this dataset to {} MiB, over the limit of {} MiB (raise {DATA_MEMORY_VAR} if the file is genuine)",
                path.display(),
                bytes >> 20,
                total >> 20,
                self.limit >> 20
            );
        }
        Ok(())
    }

    /// Charges `bytes` of working memory for `what` (an analysis's estimated peak), refusing
    /// when the total would pass the limit; `hint` says how to need less.
    pub fn charge_work(&mut self, what: &str, bytes: u64, hint: &str) -> Result<()> {
        if self.add(bytes).is_err() {
            bail!(
                "{what} needs about {} MiB, over the limit of {} MiB ({hint}, or raise {DATA_MEMORY_VAR})",
                bytes >> 20,
                self.limit >> 20
            );
        }
        Ok(())
    }

    /// Adds `bytes` to what is used when the total stays within the limit; otherwise leaves
    /// the budget as it was and returns the total it would have reached.
    fn add(&mut self, bytes: u64) -> std::result::Result<(), u64> {
        let total = self.used.saturating_add(bytes);
        if total > self.limit {
            return Err(total);
        }
        self.used = total;
        Ok(())
    }
}

/// The least address space (`ulimit -v`) a computing command accepts with OpenBLAS: below
/// about this, OpenBLAS's first GEMM cannot map its buffers and its allocator waits for
/// memory for ever instead of failing (seen: a hang at 400,000 KiB, work at 800,000 KiB).
pub const MIN_ADDRESS_SPACE_FOR_OPENBLAS: u64 = 768 << 20;

/// Refuses, in one line, to start work that would reach OpenBLAS under an address-space limit
/// it cannot run in (a hang otherwise); nothing to check for the pure-Rust GEMM.
pub fn check_address_space_for_blas() -> anyhow::Result<()> {
    if !cfg!(feature = "openblas") {
        return Ok(());
    }
    match address_space_limit() {
        Some(limit) if limit < MIN_ADDRESS_SPACE_FOR_OPENBLAS => anyhow::bail!(
            "the address-space limit (ulimit -v) of {} MiB is below the {} MiB OpenBLAS needs for its GEMM buffers (it would wait for memory for ever); raise the limit, or use a build without --features openblas",
            limit >> 20,
            MIN_ADDRESS_SPACE_FOR_OPENBLAS >> 20
        ),
        _ => Ok(()),
    }
}

/// The soft `RLIMIT_AS` of this process, when there is one.
fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    (r == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// A vector with room for `n` items, or an error naming `path` when the memory cannot be
/// had: the allocation a budget allowed may still fail under a tighter `ulimit`, and that must
/// be a message, not an abort.
pub fn try_vec<T>(n: usize, path: &Path) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        anyhow::anyhow!(
            "{}: cannot allocate {} MiB to decode it",
            path.display(),
            n.saturating_mul(std::mem::size_of::<T>()) >> 20
        )
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999G"), None);
    }

    #[test]
    fn the_budget_is_cumulative() {
        let mut b = DataBudget::new(100);
        b.charge(Path::new("a"), 60).unwrap();
        let e = b.charge(Path::new("b"), 60).unwrap_err().to_string();
        assert!(e.contains("b:") && e.contains(DATA_MEMORY_VAR), "{e}");
    }
}
