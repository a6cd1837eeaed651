//! Finding a dataset's files on disk, and downloading them when they are not there. Which
//! files to look for and where to fetch them from come from the registry ([`super::registry`]).

use super::registry::{DatasetName, Format, IDX_FILES};
use super::{cifar, download, DATA_VAR, MIRROR_VAR};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The folders searched for a dataset, in order.
pub fn search_folders(name: DatasetName, data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for root in data_dir
        .map(Path::to_path_buf)
        .into_iter()
        .chain(data_root())
    {
        let sub = root.join(name.folder());
        dirs.extend([root, sub]);
    }
    dirs.push(Path::new("data").join(name.folder()));
    if let Some(user) = user_data_folder() {
        dirs.push(user.join(name.folder()));
    }
    dirs.push(Path::new("/usr/share/datasets").join(name.folder()));
    dirs
}

/// `$FERROGRAD_DATA`, when set and not empty.
fn data_root() -> Option<PathBuf> {
    std::env::var_os(DATA_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The per-user data folder: `$XDG_DATA_HOME/ferrograd`, else `$HOME/.local/share/ferrograd`.
pub fn user_data_folder() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local").join("share")))
        .map(|d| d.join("ferrograd"))
}

/// Where a download of `name` goes: `$FERROGRAD_DATA/<folder>/`, else `data/<folder>/`.
pub fn download_folder(name: DatasetName) -> PathBuf {
    data_root()
        .unwrap_or_else(|| PathBuf::from("data"))
        .join(name.folder())
}

/// The folder a dataset's files would be read from now, without downloading; `None` for
/// embedded data and for data not found locally.
pub fn locate(name: DatasetName, data_dir: Option<&Path>) -> Option<PathBuf> {
    let folders = search_folders(name, data_dir);
    match name.spec().format {
        Format::EmbeddedCsv => None,
        Format::CifarBinary => folders
            .iter()
            .find_map(|d| cifar_folder(d))
            .or_else(|| cifar_archive_folder(&folders)),
        Format::Idx => idx_folder(&folders),
    }
}

/// The first folder holding all four IDX files.
pub(super) fn idx_folder(folders: &[PathBuf]) -> Option<PathBuf> {
    folders
        .iter()
        .find(|d| IDX_FILES.iter().all(|f| idx_file(d, f).is_some()))
        .cloned()
}

/// The first folder holding CIFAR-10's archive (the one file its source lists).
pub(super) fn cifar_archive_folder(folders: &[PathBuf]) -> Option<PathBuf> {
    folders
        .iter()
        .find(|d| d.join(cifar_archive()).is_file())
        .cloned()
}

/// The name of CIFAR-10's archive, as its source lists it.
pub(super) fn cifar_archive() -> &'static str {
    DatasetName::Cifar10
        .spec()
        .source
        .expect("CIFAR-10 downloads")
        .files[0]
        .0
}

/// `dir/stem.gz` or `dir/stem`, whichever exists (whatever it is: a FIFO or a folder under a
/// data file's name is then refused by name when opened, not passed over for a download).
pub(super) fn idx_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.exists())
}

/// `dir/cifar-10-batches-bin/` or `dir` itself, whichever holds every batch.
pub(super) fn cifar_folder(dir: &Path) -> Option<PathBuf> {
    [dir.join(cifar::FOLDER), dir.to_path_buf()]
        .into_iter()
        .find(|d| {
            d.join(cifar::TEST_FILE).exists()
                && cifar::TRAIN_FILES.iter().all(|f| d.join(f).exists())
        })
}

/// Whether a dataset's files can be found locally (without downloading).
pub fn available_locally(name: DatasetName, data_dir: Option<&Path>) -> bool {
    name.spec().source.is_none() || locate(name, data_dir).is_some()
}

/// What the prompt says beside a dataset: embedded, found, or to be downloaded.
pub fn local_status(name: DatasetName, data_dir: Option<&Path>) -> &'static str {
    if name.spec().source.is_none() {
        "embedded"
    } else if available_locally(name, data_dir) {
        "found locally"
    } else {
        "not found locally: will try to download"
    }
}

/// Downloads the dataset's files into `dest`, from `$FERROGRAD_MIRROR/<file>` when set, else
/// from each of the registry's mirrors in turn until one delivers the file.
///
/// Everything arrives in a temporary folder beside `dest`; only when every file is there and
/// matches its checksum are they moved into `dest`, so a failure leaves no folder behind and
/// never a part of a dataset that a later run could take for the whole.
pub(super) fn download_into(name: DatasetName, dest: &Path) -> Result<()> {
    let Some(source) = name.spec().source else {
        return Ok(());
    };
    anyhow::ensure!(download::CAN_DOWNLOAD, download::NEEDS_CLI);
    let mirrors: Vec<String> = match std::env::var(MIRROR_VAR) {
        Ok(m) => vec![m],
        Err(_) => source.mirrors.iter().map(|m| m.to_string()).collect(),
    };
    let tmp = crate::files::temp_path(dest)?;
    std::fs::create_dir_all(&tmp)
        .with_context(|| format!("{}: cannot create folder", tmp.display()))?;
    let result = (|| -> Result<()> {
        let mut fetched = Vec::new();
        for (file, checksum) in source.files {
            let target = dest.join(file);
            if target.is_file()
                && download::file_digest(&target, checksum).is_ok_and(|d| d == checksum.expected())
            {
                continue;
            }
            fetch_from_mirrors(&mirrors, file, checksum, &target, &tmp)?;
            fetched.push(*file);
        }
        std::fs::create_dir_all(dest)
            .with_context(|| format!("{}: cannot create folder", dest.display()))?;
        for file in fetched {
            std::fs::rename(tmp.join(file), dest.join(file)).with_context(|| {
                format!("{}: cannot move into place", dest.join(file).display())
            })?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// One file into `tmp/<file>`, from the first mirror that delivers it whole; the last
/// mirror's error when none does.
fn fetch_from_mirrors(
    mirrors: &[String],
    file: &str,
    checksum: &download::Checksum,
    target: &Path,
    tmp: &Path,
) -> Result<()> {
    let mut last = anyhow::anyhow!("{file}: no download mirror known");
    for base in mirrors {
        eprintln!("downloading {base}/{file} to {}", target.display());
        let url = format!("{}/{file}", base.trim_end_matches('/'));
        match download::download(&url, &tmp.join(file), checksum) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The error when a dataset is neither found nor downloaded: where it looked, what it needs.
pub(super) fn missing_error(
    name: DatasetName,
    data_dir: Option<&Path>,
    why: &anyhow::Error,
) -> anyhow::Error {
    let files: Vec<String> = match name.spec().format {
        Format::CifarBinary => vec![format!("{} (or {}/)", cifar_archive(), cifar::FOLDER)],
        _ => IDX_FILES.iter().map(|f| format!("{f}.gz")).collect(),
    };
    let looked: Vec<String> = search_folders(name, data_dir)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    anyhow::anyhow!(
        "{name}: dataset files not found (looked in {}) and the download failed ({why:#}); put {} in data/{}/, pass --data-dir DIR or set {DATA_VAR}=DIR",
        looked.join(", "),
        files.join(", "),
        name.folder()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the HTTP client a download refuses at once, touching nothing, and the error a
    /// user sees says why and where the files go.
    #[test]
    #[cfg(not(feature = "cli"))]
    fn without_cli_a_download_refuses_and_says_where_the_files_go() {
        let dest = std::env::temp_dir()
            .join(format!("ferrograd-nocli-{}", std::process::id()))
            .join("mnist");
        let error = download_into(DatasetName::Mnist, &dest).unwrap_err();
        assert_eq!(error.to_string(), download::NEEDS_CLI);
        assert!(!dest.exists() && !dest.parent().unwrap().exists());
        let shown = format!("{:#}", missing_error(DatasetName::Mnist, None, &error));
        assert!(!shown.contains('\n'), "{shown}");
        for needle in ["downloading needs the `cli` feature", "put ", "data/mnist/"] {
            assert!(shown.contains(needle), "{needle:?} not in {shown}");
        }
    }

    /// The embedded dataset needs no download in any build.
    #[test]
    fn the_embedded_dataset_never_downloads() {
        let dest = std::env::temp_dir().join(format!("ferrograd-embedded-{}", std::process::id()));
        download_into(DatasetName::Digits, &dest).unwrap();
        assert!(!dest.exists());
    }
}
