//! The IDX format of MNIST and Fashion-MNIST (gzipped or raw).
//!
//! Layout: a 4-byte magic `0x00 0x00 0x08 n` (unsigned bytes, `n` dimensions), `n` big-endian
//! u32 sizes, then the bytes in row-major order. Images have 3 dimensions, labels 1.
//! Every header is checked, and its sizes bounded, before the data is allocated.

use crate::limits::{try_vec, DataBudget, DEFAULT_DATA_MEMORY};
use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use std::io::{BufReader, Read};
use std::path::Path;

/// Largest number of items accepted (MNIST has 60,000; this leaves room and stops a header
/// from asking for gigabytes).
pub const MAX_ITEMS: usize = 10_000_000;
/// Largest image side accepted.
pub const MAX_SIDE: usize = 4096;
/// Largest pixel payload accepted, in bytes (1 GiB).
pub const MAX_BYTES: usize = 1 << 30;

/// Images read from an IDX file: `count` images of `rows × cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count · rows · cols` pixel bytes.
    pub pixels: Vec<u8>,
}

/// Wraps `input` in a gzip decoder when it starts with gzip's magic bytes; every member of a
/// multi-member file (what `cat a.gz b.gz` makes, valid per RFC 1952) is read.
fn decompressing<'a, R: std::io::BufRead + 'a>(
    mut input: R,
    path: &Path,
) -> Result<Box<dyn Read + 'a>> {
    let head = input
        .fill_buf()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    })
}

/// Opens `path` (a regular file only), decompressing when it starts with gzip's magic bytes.
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = crate::files::open_regular(path)?;
    decompressing(BufReader::new(file), path)
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], path: &Path, what: &str) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => bail!(
                "{}: truncated {what}: expected {} bytes, found {filled}",
                path.display(),
                buf.len()
            ),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => bail!("{}: cannot read {what}: {e}", path.display()),
        }
    }
    Ok(())
}

/// Reads the header; returns the dimension sizes after checking the magic and their count.
fn header(r: &mut dyn Read, path: &Path, dims: usize, kind: &str) -> Result<Vec<usize>> {
    let mut magic = [0u8; 4];
    read_exact(r, &mut magic, path, "header")?;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 {
        bail!(
            "{}: not an IDX file of unsigned bytes (magic {:02x} {:02x} {:02x} {:02x}, expected 00 00 08 {dims:02x})",
            path.display(),
            magic[0],
            magic[1],
            magic[2],
            magic[3]
        );
    }
    if magic[3] as usize != dims {
        bail!(
            "{}: IDX {kind} file must have {dims} dimension(s), header says {}",
            path.display(),
            magic[3]
        );
    }
    let mut sizes = vec![0usize; dims];
    for s in sizes.iter_mut() {
        let mut b = [0u8; 4];
        read_exact(r, &mut b, path, "header")?;
        *s = u32::from_be_bytes(b) as usize;
    }
    Ok(sizes)
}

/// Reads exactly `len` payload bytes (already charged to a budget) and checks that nothing
/// follows. The buffer is reserved once, fallibly; pages that no byte reaches are never touched,
/// so a header that lies about its size costs address space, not memory.
fn payload(r: &mut dyn Read, len: usize, path: &Path) -> Result<Vec<u8>> {
    let mut data = try_vec(len, path)?;
    let got = r
        .take(len as u64)
        .read_to_end(&mut data)
        .map_err(|e| anyhow::anyhow!("{}: cannot read data: {e}", path.display()))?;
    if got < len {
        bail!(
            "{}: truncated data: the header promises {len} bytes, the file has {got}",
            path.display()
        );
    }
    let mut extra = [0u8; 1];
    match r.read(&mut extra) {
        Ok(0) => Ok(data),
        Ok(_) => bail!(
            "{}: more data than the header's {len} bytes",
            path.display()
        ),
        Err(e) => bail!("{}: cannot read: {e}", path.display()),
    }
}

/// Bytes a loaded dataset holds per pixel: the raw byte and its `f32` feature.
pub const BYTES_PER_PIXEL: u64 = 1 + 4;
/// Bytes a loaded dataset holds per label: the raw byte and its `usize` label.
pub const BYTES_PER_LABEL: u64 = 1 + 8;

/// Reads an IDX image file (3 dimensions: count, rows, cols), charging what it will cost
/// decoded to `budget` from the header, before reading the pixels.
pub fn read_images(path: &Path, budget: &mut DataBudget) -> Result<IdxImages> {
    parse_images(&mut *open(path)?, path, budget)
}

/// Parses IDX image bytes (gzipped or raw) under the default budget; `origin` names them in
/// errors.
pub fn parse_images_bytes(bytes: &[u8], origin: &Path) -> Result<IdxImages> {
    let mut budget = DataBudget::new(DEFAULT_DATA_MEMORY);
    parse_images(&mut *decompressing(bytes, origin)?, origin, &mut budget)
}

/// Parses IDX label bytes (gzipped or raw) under the default budget; `origin` names them in
/// errors.
pub fn parse_labels_bytes(bytes: &[u8], classes: usize, origin: &Path) -> Result<Vec<u8>> {
    let mut budget = DataBudget::new(DEFAULT_DATA_MEMORY);
    parse_labels(
        &mut *decompressing(bytes, origin)?,
        classes,
        origin,
        &mut budget,
    )
}

fn parse_images(r: &mut dyn Read, path: &Path, budget: &mut DataBudget) -> Result<IdxImages> {
    let s = header(&mut *r, path, 3, "image")?;
    let (count, rows, cols) = (s[0], s[1], s[2]);
    if count > MAX_ITEMS || rows == 0 || cols == 0 || rows > MAX_SIDE || cols > MAX_SIDE {
        bail!(
            "{}: implausible image header: {count} images of {rows}×{cols}",
            path.display()
        );
    }
    let len = count * rows * cols;
    if len > MAX_BYTES {
        bail!(
            "{}: header claims {len} bytes of pixels, more than the {MAX_BYTES} accepted",
            path.display()
        );
    }
    budget.charge(path, len as u64 * BYTES_PER_PIXEL)?;
    let pixels = payload(r, len, path)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Reads an IDX label file (1 dimension); every label must be below `classes`.
pub fn read_labels(path: &Path, classes: usize, budget: &mut DataBudget) -> Result<Vec<u8>> {
    parse_labels(&mut *open(path)?, classes, path, budget)
}

fn parse_labels(
    r: &mut dyn Read,
    classes: usize,
    path: &Path,
    budget: &mut DataBudget,
) -> Result<Vec<u8>> {
    let s = header(&mut *r, path, 1, "label")?;
    if s[0] > MAX_ITEMS {
        bail!("{}: header claims {} labels", path.display(), s[0]);
    }
    budget.charge(path, s[0] as u64 * BYTES_PER_LABEL)?;
    let labels = payload(r, s[0], path)?;
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        bail!(
            "{}: label {l} at index {i} is not a class (expected 0..{})",
            path.display(),
            classes - 1
        );
    }
    Ok(labels)
}

/// Writes an IDX file (used by tests and tools that make small datasets).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
