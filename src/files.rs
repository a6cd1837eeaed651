//! How ferrograd touches the file system where someone else may be writing too: exclusive,
//! unpredictable temporary names for atomic writes; removal of the temporary files and folders
//! a killed run left; and opening only regular files as data or models.
//!
//! A temporary item is named `.<final name>.ferrograd-tmp-<pid>-<16 random hex digits>`: the
//! random part makes the name impossible to plant in advance, `create_new` (O_EXCL) with
//! O_NOFOLLOW makes the creation fail rather than follow or reuse anything already there, and
//! the pid tells a later run whether the writer is still alive.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The marker in every temporary name ferrograd makes.
pub const TEMP_MARKER: &str = ".ferrograd-tmp-";

/// A fresh temporary path beside `path` (same folder, so a rename is atomic).
pub fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    Ok(path.with_file_name(format!(
        ".{}{TEMP_MARKER}{}-{:016x}",
        name.to_string_lossy(),
        std::process::id(),
        rand::random::<u64>()
    )))
}

/// Creates `path` for writing, failing if anything (file, symlink, FIFO) is already there.
pub fn create_exclusive(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// The folder of `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` atomically (exclusive temporary file, fsync, rename), creating
/// folders. A crash at any moment leaves the old file or the new one, never a torn one.
///
/// The folder is opened once (`O_DIRECTORY | O_NOFOLLOW`) and the temporary file is created,
/// and renamed, relative to that descriptor: a symbolic link planted at the folder's name —
/// before the run or while it runs — is refused, and one swapped in after the open cannot
/// redirect the write, because the path is never looked up again.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_of(path);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    let tmp = temp_path(path)?;
    let (tmp_name, final_name) = (c_name(&tmp)?, c_name(path)?);
    let folder = open_folder_nofollow(dir)
        .with_context(|| format!("{}: cannot write into {}", path.display(), dir.display()))?;
    let result = (|| -> std::io::Result<()> {
        let mut f = create_exclusive_in(&folder, &tmp_name)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        use std::os::fd::AsRawFd;
        let fd = folder.as_raw_fd();
        // SAFETY: both names are NUL-terminated and both descriptors are the open folder.
        if unsafe { libc::renameat(fd, tmp_name.as_ptr(), fd, final_name.as_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Make the rename itself durable.
        let _ = folder.sync_all();
        Ok(())
    })();
    if let Err(e) = result {
        use std::os::fd::AsRawFd;
        // SAFETY: a NUL-terminated name relative to the open folder.
        unsafe { libc::unlinkat(folder.as_raw_fd(), tmp_name.as_ptr(), 0) };
        bail!("{}: cannot write: {e}", path.display());
    }
    Ok(())
}

/// The last component of `path` as a C string.
fn c_name(path: &Path) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    std::ffi::CString::new(name.as_bytes())
        .with_context(|| format!("{}: a NUL byte in the name", path.display()))
}

/// Opens `dir` as a folder, refusing a symbolic link at its last component.
fn open_folder_nofollow(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                std::io::Error::other("it is a link or a file where ferrograd writes a folder")
            } else {
                e
            }
        })
}

/// Creates `name` inside the open `folder` for writing, failing if anything is already there.
fn create_exclusive_in(folder: &File, name: &std::ffi::CStr) -> std::io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated name relative to an open folder; the descriptor returned is
    // owned by the File from here on.
    let fd = unsafe {
        libc::openat(
            folder.as_raw_fd(),
            name.as_ptr(),
            flags,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The writer's pid in a temporary name of ours, or `None` when `name` is not one.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = &name[name.find(TEMP_MARKER)? + TEMP_MARKER.len()..];
    let (pid, random) = rest.split_once('-')?;
    (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the temporary files and folders of ferrograd's own naming whose writer is gone,
/// in `dir` and its sub-folders (symbolic links are removed as links, never followed).
/// Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    // A folder walk with an explicit stack, bounded in depth by what exists on disk.
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let name = e.file_name();
            let stale = temp_owner(&name.to_string_lossy()).is_some_and(|pid| !alive(pid));
            let path = e.path();
            if stale {
                let gone = if kind.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed += usize::from(gone.is_ok());
            } else if kind.is_dir() && pending.len() < 10_000 {
                pending.push(path);
            }
        }
    }
    removed
}

/// Opens `path` for reading only if it is a regular file: a FIFO, device, socket or folder
/// is refused without blocking (O_NONBLOCK on the open, the type checked on the open file).
pub fn open_regular(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if !meta.file_type().is_file() {
        bail!(
            "{}: not a regular file (a folder, device, FIFO or socket is never read as data)",
            path.display()
        );
    }
    Ok(file)
}

/// Reads a whole regular file of at most `max` bytes (`what` names the kind in errors); the
/// size is checked before anything is read, and reading stops at `max` whatever the file does.
pub fn read_regular(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    if len > max {
        bail!(
            "{}: {len} bytes is too large for a {what} (limit {max})",
            path.display()
        );
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "{}: grew past the {what} limit of {max} bytes while being read",
            path.display()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_ours_and_unpredictable() {
        let a = temp_path(Path::new("x/model.msgpack")).unwrap();
        let b = temp_path(Path::new("x/model.msgpack")).unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(temp_owner(&name), Some(std::process::id()));
        assert_eq!(temp_owner(".model.msgpack.tmp-123"), None);
        assert_eq!(temp_owner(".m.ferrograd-tmp-12-xyz"), None);
    }

    #[test]
    fn only_dead_writers_temps_are_removed() {
        let dir = std::env::temp_dir().join(format!("ferrograd-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        // pid 0x7fff_fff0 is above Linux's pid_max: never alive.
        let dead = dir.join(format!("sub/.a{TEMP_MARKER}{}-{:016x}", 0x7fff_fff0u32, 1));
        let live = temp_path(&dir.join("b")).unwrap();
        let other = dir.join("sub/.c.tmp-1");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(&dir), 1);
        assert!(!dead.exists() && live.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
