//! CIFAR-10's binary version: records of 3,073 bytes (a label, then 1,024 red, 1,024 green and
//! 1,024 blue bytes of a 32×32 image), turned grayscale with ITU-R BT.601 luma
//! `Y = 0.299 R + 0.587 G + 0.114 B`, scaled to [0, 1].

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::fs::File;
use std::path::{Component, Path};

/// Bytes in one record.
pub const RECORD: usize = 3073;
/// Pixels per channel.
pub const PIXELS: usize = 1024;
/// Largest batch file accepted (the real ones are 30,730,000 bytes).
pub const MAX_FILE: u64 = 1 << 30;
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
/// The class names, by label.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// BT.601 luma of one pixel, in [0, 1].
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32) / 255.0
}

/// Parses the bytes of one batch file into grayscale features (1,024 per image) and labels.
pub fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<f32>, Vec<u8>)> {
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        bail!(
            "{}: {} bytes is not a whole number of {RECORD}-byte CIFAR-10 records",
            path.display(),
            bytes.len()
        );
    }
    let n = bytes.len() / RECORD;
    let mut features = Vec::with_capacity(n * PIXELS);
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
        features.extend((0..PIXELS).map(|p| luma(r[p], g[p], b[p])));
    }
    Ok((features, labels))
}

/// Reads and parses one batch file.
pub fn read(path: &Path) -> Result<(Vec<f32>, Vec<u8>)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
    if meta.len() > MAX_FILE {
        bail!(
            "{}: {} bytes is too large for a CIFAR-10 batch",
            path.display(),
            meta.len()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&bytes, path)
}

/// Unpacks `cifar-10-binary.tar.gz` into `dest`, refusing any entry whose path is absolute or
/// climbs out with `..`, and any entry that is not a plain file or folder (links included).
pub fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let file =
        File::open(archive).with_context(|| format!("{}: cannot open", archive.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    std::fs::create_dir_all(dest).with_context(|| format!("{}: cannot create", dest.display()))?;
    let entries = tar
        .entries()
        .with_context(|| format!("{}: not a tar.gz archive", archive.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{}: corrupt archive", archive.display()))?;
        let path = entry
            .path()
            .with_context(|| format!("{}: entry with an unreadable path", archive.display()))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!(
                "{}: refusing entry {:?}: its path leaves the target folder",
                archive.display(),
                path
            );
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "{}: refusing entry {:?}: not a plain file or folder",
                archive.display(),
                path
            );
        }
        let unpacked = entry
            .unpack_in(dest)
            .with_context(|| format!("{}: cannot unpack {:?}", archive.display(), path))?;
        if !unpacked {
            bail!("{}: refusing entry {:?}", archive.display(), path);
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
