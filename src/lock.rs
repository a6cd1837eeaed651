//! One run per output folder: an advisory lock (`flock`) on `<out>/.ferrograd.lock`, held for
//! the life of the run, with the holder's pid written inside so a second run can name it.
//!
//! `flock` through libc rather than a crate: libc is already a dependency for the O_NOFOLLOW
//! and O_NONBLOCK opens of [`crate::files`], and the kernel drops the lock when the holder
//! dies, however it dies, so a kill never leaves a folder locked.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside the output folder.
pub const LOCK_FILE: &str = ".ferrograd.lock";

/// The sub-folders runs write into (see `artifacts::ArtifactPaths` and `train::checkpoint_path`):
/// a symbolic link in their place would send the run's files elsewhere, so it is refused.
pub const OUT_FOLDERS: [&str; 5] = [
    "models",
    "results",
    "plots",
    "predicted_images",
    "checkpoints",
];

/// A held lock on an output folder; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct OutLock {
    _file: File,
    path: PathBuf,
}

impl OutLock {
    /// Locks `out` (creating it) for this process, then removes the temporary files a killed
    /// run left there. Fails at once, naming the holder's pid, when another run holds it.
    pub fn acquire(out: &Path) -> Result<OutLock> {
        std::fs::create_dir_all(out)
            .with_context(|| format!("{}: cannot create folder", out.display()))?;
        let path = out.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
        if !file.metadata().is_ok_and(|m| m.file_type().is_file()) {
            bail!("{}: the lock file is not a regular file", path.display());
        }
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = (&file).take(64).read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "{}: another ferrograd run ({}) is writing into this folder; wait for it or choose another --out",
                out.display(),
                if holder.is_empty() { "pid unknown".to_string() } else { format!("pid {holder}") }
            );
        }
        for sub in OUT_FOLDERS {
            let p = out.join(sub);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                bail!(
                    "{}: is a link or a file where ferrograd writes a folder; remove it",
                    p.display()
                );
            }
        }
        crate::files::remove_stale_temps(out);
        // The pid goes in last: a lock file naming this run says its cleanup is done.
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| write!(file, "{}", std::process::id()))
            .with_context(|| format!("{}: cannot write the lock file", path.display()))?;
        Ok(OutLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
