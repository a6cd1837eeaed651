//! CIFAR-10's binary version: records of 3,073 bytes (a label, then 1,024 red, 1,024 green and
//! 1,024 blue bytes of a 32×32 image), turned grayscale with ITU-R BT.601 luma
//! `Y = 0.299 R + 0.587 G + 0.114 B`, divided by the registry's divisor (255: [0, 1]).

use crate::files::{open_regular, read_regular, temp_path};
use crate::limits::{try_vec, DataBudget, MAX_ARCHIVE_ENTRIES, MAX_UNPACKED_BYTES};
use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use std::path::{Component, Path};

/// Bytes in one record.
pub const RECORD: usize = 3073;
/// Pixels per channel.
pub const PIXELS: usize = 1024;
/// Largest batch file accepted (the real ones are 30,730,000 bytes).
pub const MAX_FILE: u64 = 256 << 20;
/// The training batches, in order, then the test batch.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch.
pub const TEST_FILE: &str = "test_batch.bin";
/// The folder the archive unpacks to.
pub const FOLDER: &str = "cifar-10-batches-bin";
/// BT.601 luma of one pixel, in [0, 255] (the raw value normalisation divides).
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32
}

/// Parses the bytes of one batch file into grayscale features (1,024 per image, each luma
/// value divided by `divisor`) and labels.
pub fn parse(bytes: &[u8], path: &Path, divisor: f32) -> Result<(Vec<f32>, Vec<u8>)> {
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        bail!(
            "{}: {} bytes is not a whole number of {RECORD}-byte CIFAR-10 records",
            path.display(),
            bytes.len()
        );
    }
    let n = bytes.len() / RECORD;
    let mut features = try_vec(n * PIXELS, path)?;
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            bail!(
                "{}: record {i} has label {}, expected 0..9",
                path.display(),
                rec[0]
            );
        }
        labels.push(rec[0]);
        let (r, g, b) = (
            &rec[1..1 + PIXELS],
            &rec[1 + PIXELS..1 + 2 * PIXELS],
            &rec[1 + 2 * PIXELS..],
        );
        features.extend((0..PIXELS).map(|p| luma(r[p], g[p], b[p]) / divisor));
    }
    Ok((features, labels))
}

/// Bytes a batch file of `file_len` bytes costs loaded: the file, and its features twice
/// (parsed, then appended to the whole training set).
pub fn decoded_cost(file_len: u64) -> u64 {
    file_len + 2 * (file_len / RECORD as u64) * (PIXELS as u64) * 4
}

/// Reads and parses one batch file (a regular file of at most [`MAX_FILE`] bytes), charging
/// its decoded cost to `budget` before reading it.
pub fn read(path: &Path, divisor: f32, budget: &mut DataBudget) -> Result<(Vec<f32>, Vec<u8>)> {
    let len = open_regular(path)?
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    budget.charge(path, decoded_cost(len.min(MAX_FILE)))?;
    let bytes = read_regular(path, MAX_FILE, "CIFAR-10 batch")?;
    parse(&bytes, path, divisor)
}

/// Unpacks `cifar-10-binary.tar.gz` so that `dest/cifar-10-batches-bin/` appears whole or not
/// at all: the entries go to a temporary folder beside it, which is moved into place only when
/// every batch is there with a whole number of records. Refused: any entry whose path is
/// absolute or climbs out with `..`; any entry that is not a plain file or folder (links
/// included); more than [`MAX_ARCHIVE_ENTRIES`] entries or [`MAX_UNPACKED_BYTES`] in all.
pub fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let target = dest.join(FOLDER);
    if target.exists() {
        bail!(
            "{}: exists but does not hold the CIFAR-10 batches; remove it to unpack {} again",
            target.display(),
            archive.display()
        );
    }
    std::fs::create_dir_all(dest).with_context(|| format!("{}: cannot create", dest.display()))?;
    let tmp = temp_path(&target)?;
    std::fs::create_dir(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let result = unpack_into(archive, &tmp).and_then(|()| {
        let unpacked = tmp.join(FOLDER);
        check_batches(archive, &unpacked)?;
        std::fs::rename(&unpacked, &target)
            .with_context(|| format!("{}: cannot move into place", target.display()))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Every batch file present, each a whole number of records.
fn check_batches(archive: &Path, dir: &Path) -> Result<()> {
    for f in TRAIN_FILES.iter().chain([&TEST_FILE]) {
        let len = std::fs::symlink_metadata(dir.join(f))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        if !len.is_some_and(|n| n > 0 && n % RECORD as u64 == 0) {
            bail!(
                "{}: {FOLDER}/{f} is missing or not whole {RECORD}-byte records; nothing was kept",
                archive.display()
            );
        }
    }
    Ok(())
}

fn unpack_into(archive: &Path, dest: &Path) -> Result<()> {
    let a = archive.display();
    let mut tar = tar::Archive::new(MultiGzDecoder::new(open_regular(archive)?));
    let entries = tar
        .entries()
        .with_context(|| format!("{a}: not a tar.gz archive"))?;
    let mut total = 0u64;
    for (i, entry) in entries.enumerate() {
        let mut entry = entry.with_context(|| format!("{a}: corrupt archive"))?;
        let path = entry
            .path()
            .with_context(|| format!("{a}: entry with an unreadable path"))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!("{a}: refusing entry {path:?}: its path leaves the target folder");
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            bail!("{a}: refusing entry {path:?}: not a plain file or folder");
        }
        total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
        if i >= MAX_ARCHIVE_ENTRIES || total > MAX_UNPACKED_BYTES {
            bail!(
                "{a}: refusing entry {path:?}: the archive unpacks to more than {MAX_ARCHIVE_ENTRIES} entries or {} MiB",
                MAX_UNPACKED_BYTES >> 20
            );
        }
        let unpacked = entry
            .unpack_in(dest)
            .with_context(|| format!("{a}: cannot unpack {path:?}"))?;
        if !unpacked {
            bail!("{a}: refusing entry {path:?}");
        }
    }
    Ok(())
}

/// Encodes records (label, then 3,072 channel bytes) — for tests and tools.
pub fn encode(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * RECORD);
    for (label, pixels) in records {
        out.push(*label);
        out.extend_from_slice(pixels);
    }
    out
}
