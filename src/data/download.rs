//! Downloads verified by checksum, into a temporary file renamed into place only when the
//! whole file has arrived and its checksum matches: a failure leaves nothing behind.

use anyhow::{bail, Context, Result};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The expected digest of a file, in lowercase hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256.
    Sha256(&'static str),
    /// MD5 (what the dataset authors publish for Fashion-MNIST and CIFAR-10).
    Md5(&'static str),
}

enum Hasher {
    Sha256(Sha256),
    Md5(Md5),
}

impl Hasher {
    fn new(c: &Checksum) -> Hasher {
        match c {
            Checksum::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Checksum::Md5(_) => Hasher::Md5(Md5::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }
    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Checksum {
    /// The expected digest, lowercase hex.
    pub fn expected(&self) -> &'static str {
        match self {
            Checksum::Sha256(s) | Checksum::Md5(s) => s,
        }
    }
    #[cfg(feature = "cli")]
    fn name(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Md5(_) => "md5",
        }
    }
}

/// The digest of a file on disk, as `checksum` computes it.
pub fn file_digest(path: &Path, checksum: &Checksum) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut h = Hasher::new(checksum);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.hex())
}

fn temporary_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `url` to `dest`, checking `checksum`; shows a progress bar on a terminal.
///
/// The bytes go to `dest` + `.part`, which is renamed to `dest` only after the last byte
/// arrived and the checksum matched; on any error it is removed.
pub fn download(url: &str, dest: &Path, checksum: &Checksum) -> Result<()> {
    let tmp = temporary_path(dest);
    let result = fetch(url, &tmp, checksum);
    match result {
        Ok(()) => std::fs::rename(&tmp, dest)
            .with_context(|| format!("{}: cannot move the download into place", dest.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// What a download says in a build without the HTTP client.
pub const NEEDS_CLI: &str = "downloading needs the `cli` feature";

/// Whether this build can download (the HTTP client comes with the `cli` feature).
pub const CAN_DOWNLOAD: bool = cfg!(feature = "cli");

#[cfg(not(feature = "cli"))]
fn fetch(url: &str, _tmp: &Path, _checksum: &Checksum) -> Result<()> {
    bail!("{url}: {NEEDS_CLI}")
}

#[cfg(feature = "cli")]
fn fetch(url: &str, tmp: &Path, checksum: &Checksum) -> Result<()> {
    use std::io::Write;
    use std::time::Duration;
    if let Some(dir) = tmp.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .map_err(|e| anyhow::anyhow!("{url}: download failed: {e}"))?;
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = response.into_body().into_reader();
    let mut out = File::create(tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let bar = crate::progress::Bar::new(
        length,
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    bar.set_message(
        Path::new(url)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let most = crate::limits::MAX_DOWNLOAD_BYTES;
    if length.is_some_and(|n| n > most) {
        bail!(
            "{url}: the server announces {} bytes, more than the {most} any dataset file has",
            length.unwrap_or(0)
        );
    }
    let mut hasher = Hasher::new(checksum);
    let mut received = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| anyhow::anyhow!("{url}: connection lost after {received} bytes: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        received += n as u64;
        if received > most {
            bail!("{url}: more than {most} bytes, more than any dataset file has; the file was discarded");
        }
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if let Some(n) = length {
        if received != n {
            bail!("{url}: connection closed after {received} of {n} bytes");
        }
    }
    out.sync_all()
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    let got = hasher.hex();
    if got != checksum.expected() {
        bail!(
            "{url}: {} mismatch: expected {}, got {got}; the file was discarded",
            checksum.name(),
            checksum.expected()
        );
    }
    Ok(())
}
