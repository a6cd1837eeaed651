//! Datasets: MNIST, Fashion-MNIST, CIFAR-10 (grayscale) and the embedded UCI digits; finding
//! their files, downloading them with checksums, splitting and batching.
//!
//! Lookup order for a dataset's files: `--data-dir` (the folder itself, or its `<folder>/`),
//! `$FERROGRAD_DATA` (the same two), `data/<folder>/`, the per-user folder
//! (`$XDG_DATA_HOME/ferrograd/<folder>/`, by default `~/.local/share/ferrograd/<folder>/`),
//! `/usr/share/datasets/<folder>/` (Debian's `dataset-fashion-mnist` installs Fashion-MNIST
//! there), then a download from the canonical source, verified by checksum, into
//! `$FERROGRAD_DATA/<folder>/` when that is set and `data/<folder>/` otherwise. Setting
//! `FERROGRAD_DATA` once makes every command find the data from any working folder.

pub mod cifar;
pub mod download;
pub mod idx;

use crate::limits::DataBudget;
use anyhow::{bail, Context, Result};
use download::Checksum;
use flate2::read::GzDecoder;
use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The UCI digits set (1,797 images of 8×8), compiled into the binary.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Environment variable that replaces the download sources' base address (a mirror, or a
/// local server in tests): `$FERROGRAD_MIRROR/<file>`.
pub const MIRROR_VAR: &str = "FERROGRAD_MIRROR";

/// Environment variable naming a data root searched by every command after `--data-dir`, and
/// where downloads go.
pub const DATA_VAR: &str = "FERROGRAD_DATA";

/// The datasets ferrograd knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    /// MNIST handwritten digits, 28×28.
    Mnist,
    /// Fashion-MNIST clothing images, 28×28.
    #[value(alias = "fashion-mnist")]
    Fashion,
    /// CIFAR-10, 32×32 colour turned grayscale.
    Cifar10,
    /// UCI optical handwritten digits, 8×8, embedded in the binary.
    Digits,
}

impl DatasetName {
    /// Every dataset, in the order menus list them.
    pub const ALL: [DatasetName; 4] = [
        DatasetName::Mnist,
        DatasetName::Fashion,
        DatasetName::Cifar10,
        DatasetName::Digits,
    ];

    /// The short name used in file names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::Fashion => "fashion",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Digits => "digits",
        }
    }

    /// The folder its files live in (`data/<folder>/`, `/usr/share/datasets/<folder>/`).
    pub fn folder(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::Fashion => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Digits => "digits",
        }
    }

    /// Parses a short name.
    pub fn parse(s: &str) -> Option<DatasetName> {
        <DatasetName as clap::ValueEnum>::from_str(s, true).ok()
    }

    fn class_names(self) -> Vec<String> {
        let names: Vec<&str> = match self {
            DatasetName::Fashion => vec![
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            DatasetName::Cifar10 => cifar::CLASSES.to_vec(),
            _ => vec!["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        };
        names.into_iter().map(String::from).collect()
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Labelled images: features `N × D` in [0, 1] (row-major pixels) and labels `0..classes`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Which dataset this came from.
    pub name: DatasetName,
    /// One row per image.
    pub features: Array2<f32>,
    /// One label per image.
    pub labels: Vec<usize>,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Class names, by label.
    pub classes: Vec<String>,
}

impl Dataset {
    /// The feature rows `indices`, in that order, as a tensor on a buffer from the tensor pool
    /// (a training batch: the next step's batch reuses this one's memory).
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn batch_tensor(&self, indices: &[usize]) -> crate::Tensor<f32> {
        let mut x = crate::tensor::pool::array(ndarray::Ix2(indices.len(), self.dim()));
        gather_rows(&self.features, indices, &mut x);
        crate::Tensor::from_array(x)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per image.
    pub fn dim(&self) -> usize {
        self.features.ncols()
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            name: self.name,
            features: self.features.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            height: self.height,
            width: self.width,
            classes: self.classes.clone(),
        }
    }

    /// Keeps the rows `sorted` (ascending) in place: the images are not held twice, which at
    /// MNIST's size is 188 MB less at the peak.
    fn keep_rows(mut self, sorted: &[usize]) -> Dataset {
        debug_assert!(sorted.windows(2).all(|w| w[0] < w[1]));
        let cols = self.features.ncols();
        let features = std::mem::replace(&mut self.features, Array2::zeros((0, 0)));
        let (mut flat, offset) = if features.is_standard_layout() {
            features.into_raw_vec_and_offset()
        } else {
            features
                .as_standard_layout()
                .into_owned()
                .into_raw_vec_and_offset()
        };
        // Row `sorted[k]` starts at `base + sorted[k]·cols ≥ k·cols`: copying forward never
        // overwrites a row still to be read.
        let base = offset.unwrap_or(0);
        for (k, &i) in sorted.iter().enumerate() {
            let from = base + i * cols;
            if from != k * cols {
                flat.copy_within(from..from + cols, k * cols);
            }
        }
        flat.truncate(sorted.len() * cols);
        flat.shrink_to_fit();
        self.features = Array2::from_shape_vec((sorted.len(), cols), flat).expect("whole rows");
        self.labels = sorted.iter().map(|&i| self.labels[i]).collect();
        self
    }

    /// The first `n` images (or all when there are fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx)
    }
}

/// Training, validation and test sets.
#[derive(Clone, Debug)]
pub struct Splits {
    /// What the optimiser sees.
    pub train: Dataset,
    /// Carved from the training file with the seed; for model selection and the overfitting gap.
    pub val: Dataset,
    /// The dataset's own test set, never trained on.
    pub test: Dataset,
}

/// Splits `train` into training and validation sets: a seeded shuffle, then the last
/// `val_fraction` of it is the validation set.
pub fn split_validation(train: Dataset, test: Dataset, val_fraction: f64, seed: u64) -> Splits {
    let n = train.len();
    let n_val = ((n as f64) * val_fraction).round() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x005e_ed0f_5a1d));
    let (tr, va) = order.split_at(n - n_val);
    let mut tr = tr.to_vec();
    let mut va = va.to_vec();
    // Keep the file's order inside each part, so a split is easy to reproduce elsewhere.
    tr.sort_unstable();
    va.sort_unstable();
    let val = train.subset(&va);
    Splits {
        val,
        train: train.keep_rows(&tr),
        test,
    }
}

/// The file names of an IDX dataset, training images and labels, then test images and labels.
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Where each dataset is downloaded from, with the published checksums of its files.
fn sources(name: DatasetName) -> (&'static str, Vec<(&'static str, Checksum)>) {
    match name {
        // sha256 of the original files (see ../shared/data/README.md).
        DatasetName::Mnist => (
            "https://ossci-datasets.s3.amazonaws.com/mnist",
            vec![
                (
                    "train-images-idx3-ubyte.gz",
                    Checksum::Sha256(
                        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    ),
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    Checksum::Sha256(
                        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    ),
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    Checksum::Sha256(
                        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    ),
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    Checksum::Sha256(
                        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    ),
                ),
            ],
        ),
        // md5 as Zalando Research publishes them.
        DatasetName::Fashion => (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
            vec![
                (
                    "train-images-idx3-ubyte.gz",
                    Checksum::Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    Checksum::Md5("25c81989df183df01b3e8a0aad5dffbe"),
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    Checksum::Md5("bef4ecab320f06d8554ea6380940ec79"),
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    Checksum::Md5("bb300cfdad3c16e7a12a480ee83cd310"),
                ),
            ],
        ),
        // md5 as the CIFAR page publishes it.
        DatasetName::Cifar10 => (
            "https://www.cs.toronto.edu/~kriz",
            vec![(
                "cifar-10-binary.tar.gz",
                Checksum::Md5("c32a1d4ab5d03f1284b67883e8d87530"),
            )],
        ),
        DatasetName::Digits => ("", vec![]),
    }
}

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

/// The folder a dataset's files would be read from now, without downloading; `None` for the
/// embedded digits and for data not found locally.
pub fn locate(name: DatasetName, data_dir: Option<&Path>) -> Option<PathBuf> {
    let folders = search_folders(name, data_dir);
    match name {
        DatasetName::Digits => None,
        DatasetName::Cifar10 => folders.iter().find_map(|d| cifar_folder(d)).or_else(|| {
            folders
                .into_iter()
                .find(|d| d.join("cifar-10-binary.tar.gz").is_file())
        }),
        _ => folders
            .into_iter()
            .find(|d| IDX_FILES.iter().all(|f| idx_file(d, f).is_some())),
    }
}

/// `dir/stem.gz` or `dir/stem`, whichever exists (whatever it is: a FIFO or a folder under a
/// data file's name is then refused by name when opened, not passed over for a download).
fn idx_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.exists())
}

fn cifar_folder(dir: &Path) -> Option<PathBuf> {
    [dir.join(cifar::FOLDER), dir.to_path_buf()]
        .into_iter()
        .find(|d| {
            d.join(cifar::TEST_FILE).exists()
                && cifar::TRAIN_FILES.iter().all(|f| d.join(f).exists())
        })
}

/// Whether a dataset's files can be found locally (without downloading).
pub fn available_locally(name: DatasetName, data_dir: Option<&Path>) -> bool {
    name == DatasetName::Digits || locate(name, data_dir).is_some()
}

/// Downloads the dataset's files into `dest` (from `$FERROGRAD_MIRROR/<file>` when set).
///
/// Everything arrives in a temporary folder beside `dest`; only when every file is there and
/// matches its checksum are they moved into `dest`, so a failure leaves no folder behind and
/// never a part of a dataset that a later run could take for the whole.
fn download_into(name: DatasetName, dest: &Path) -> Result<()> {
    let (base, files) = sources(name);
    let base = std::env::var(MIRROR_VAR).unwrap_or_else(|_| base.to_string());
    let tmp = crate::files::temp_path(dest)?;
    std::fs::create_dir_all(&tmp)
        .with_context(|| format!("{}: cannot create folder", tmp.display()))?;
    let result = (|| -> Result<()> {
        let mut fetched = Vec::new();
        for (file, checksum) in &files {
            let target = dest.join(file);
            if target.is_file()
                && download::file_digest(&target, checksum).is_ok_and(|d| d == checksum.expected())
            {
                continue;
            }
            eprintln!("downloading {base}/{file} to {}", target.display());
            download::download(
                &format!("{}/{file}", base.trim_end_matches('/')),
                &tmp.join(file),
                checksum,
            )?;
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

fn missing_error(name: DatasetName, data_dir: Option<&Path>, why: &anyhow::Error) -> anyhow::Error {
    let files: Vec<String> = match name {
        DatasetName::Cifar10 => vec!["cifar-10-binary.tar.gz (or cifar-10-batches-bin/)".into()],
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

/// Loads a dataset's training and test sets, finding (or downloading) its files; refuses
/// files whose decoded size would pass the memory budget ([`DataBudget::from_env`]) and a
/// training set whose images differ in size from the test set's.
pub fn load_dataset(name: DatasetName, data_dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
    if let Some(d) = data_dir.filter(|d| !d.is_dir()) {
        bail!("{}: --data-dir is not a folder", d.display());
    }
    let mut budget = DataBudget::from_env()?;
    let local = download_folder(name);
    // Temporary folders of a killed download or extraction, whose writer is gone.
    if let Some(root) = local.parent() {
        crate::files::remove_stale_temps(root);
    }
    let (dir, (train, test)) = match name {
        DatasetName::Digits => return load_digits(),
        DatasetName::Mnist | DatasetName::Fashion => {
            let dir = match search_folders(name, data_dir)
                .into_iter()
                .find(|d| IDX_FILES.iter().all(|f| idx_file(d, f).is_some()))
            {
                Some(d) => d,
                None => {
                    download_into(name, &local).map_err(|e| missing_error(name, data_dir, &e))?;
                    local
                }
            };
            let train = load_idx_pair(name, &dir, IDX_FILES[0], IDX_FILES[1], &mut budget)?;
            let test = load_idx_pair(name, &dir, IDX_FILES[2], IDX_FILES[3], &mut budget)?;
            (dir, (train, test))
        }
        DatasetName::Cifar10 => {
            let dir = find_or_unpack_cifar(data_dir, &local)?;
            let sets = load_cifar(&dir, &mut budget)?;
            (dir, sets)
        }
    };
    crate::validate::same_images(&train, &test, &dir)?;
    Ok((train, test))
}

/// The `cifar-10-batches-bin` folder: found, or unpacked from an archive found or downloaded.
fn find_or_unpack_cifar(data_dir: Option<&Path>, local: &Path) -> Result<PathBuf> {
    let name = DatasetName::Cifar10;
    let folders = search_folders(name, data_dir);
    if let Some(d) = folders.iter().find_map(|d| cifar_folder(d)) {
        return Ok(d);
    }
    let archive_dir = match folders
        .iter()
        .find(|d| d.join("cifar-10-binary.tar.gz").is_file())
    {
        Some(d) => d.clone(),
        None => {
            download_into(name, local).map_err(|e| missing_error(name, data_dir, &e))?;
            local.to_path_buf()
        }
    };
    cifar::unpack(&archive_dir.join("cifar-10-binary.tar.gz"), local)?;
    cifar_folder(local).with_context(|| {
        format!(
            "{}: the archive did not contain the CIFAR-10 batches",
            local.display()
        )
    })
}

/// Loads the CIFAR-10 batches of a `cifar-10-batches-bin` folder (grayscale).
pub fn load_cifar(dir: &Path, budget: &mut DataBudget) -> Result<(Dataset, Dataset)> {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for f in cifar::TRAIN_FILES {
        let (x, y) = cifar::read(&dir.join(f), budget)?;
        features.extend(x);
        labels.extend(y);
    }
    let train = cifar_dataset(features, labels);
    let (x, y) = cifar::read(&dir.join(cifar::TEST_FILE), budget)?;
    Ok((train, cifar_dataset(x, y)))
}

fn cifar_dataset(features: Vec<f32>, labels: Vec<u8>) -> Dataset {
    let n = labels.len();
    Dataset {
        name: DatasetName::Cifar10,
        features: Array2::from_shape_vec((n, cifar::PIXELS), features).expect("whole records"),
        labels: labels.into_iter().map(usize::from).collect(),
        height: 32,
        width: 32,
        classes: DatasetName::Cifar10.class_names(),
    }
}

/// Loads one IDX images/labels pair, checking that they belong together; both files' decoded
/// sizes are charged to `budget` from their headers.
pub fn load_idx_pair(
    name: DatasetName,
    dir: &Path,
    images: &str,
    labels: &str,
    budget: &mut DataBudget,
) -> Result<Dataset> {
    let ip =
        idx_file(dir, images).with_context(|| format!("{}: no {images}(.gz)", dir.display()))?;
    let lp =
        idx_file(dir, labels).with_context(|| format!("{}: no {labels}(.gz)", dir.display()))?;
    let img = idx::read_images(&ip, budget)?;
    let lab = idx::read_labels(&lp, 10, budget)?;
    if img.count != lab.len() {
        bail!(
            "{}: {} labels for {} images in {}",
            lp.display(),
            lab.len(),
            img.count,
            ip.display()
        );
    }
    let d = img.rows * img.cols;
    let mut pixels = crate::limits::try_vec(img.pixels.len(), &ip)?;
    pixels.extend(img.pixels.iter().map(|&p| p as f32 / 255.0));
    drop(img.pixels);
    let features = Array2::from_shape_vec((img.count, d), pixels).expect("IDX sizes were checked");
    Ok(Dataset {
        name,
        features,
        labels: lab.into_iter().map(usize::from).collect(),
        height: img.rows,
        width: img.cols,
        classes: name.class_names(),
    })
}

/// Every `DIGITS_TEST_EVERY`-th row of the digits file (rows 5, 10, 15, … counting from 1) is
/// a test image: 359 of 1,797, a fixed split anyone can reproduce. The rows are ordered by
/// writer, so an interleaved split shares writers between training and test, like the usual
/// random splits of this set; the last 20% (unseen writers) is a harder test (report.md).
pub const DIGITS_TEST_EVERY: usize = 5;

/// Parses the UCI digits CSV (64 pixel values in 0..16, then the label, per row).
pub fn parse_digits_csv(text: &str, origin: &str) -> Result<Dataset> {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            bail!(
                "{origin}: line {}: {} fields, expected 65",
                i + 1,
                fields.len()
            );
        }
        for (j, f) in fields.iter().enumerate() {
            let v: u32 = f.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "{origin}: line {}: field {} ({f:?}) is not a whole number",
                    i + 1,
                    j + 1
                )
            })?;
            if j < 64 {
                if v > 16 {
                    bail!("{origin}: line {}: pixel {v} outside 0..16", i + 1);
                }
                features.push(v as f32 / 16.0);
            } else {
                if v > 9 {
                    bail!("{origin}: line {}: label {v} outside 0..9", i + 1);
                }
                labels.push(v as usize);
            }
        }
    }
    let n = labels.len();
    Ok(Dataset {
        name: DatasetName::Digits,
        features: Array2::from_shape_vec((n, 64), features).expect("64 per row"),
        labels,
        height: 8,
        width: 8,
        classes: DatasetName::Digits.class_names(),
    })
}

/// The embedded digits: 1,438 training and 359 test images (see [`DIGITS_TEST_EVERY`]).
pub fn load_digits() -> Result<(Dataset, Dataset)> {
    let mut text = String::new();
    GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .context("embedded digits.csv.gz: cannot decompress")?;
    let all = parse_digits_csv(&text, "embedded digits.csv.gz")?;
    let (test, train): (Vec<usize>, Vec<usize>) =
        (0..all.len()).partition(|i| (i + 1) % DIGITS_TEST_EVERY == 0);
    Ok((all.subset(&train), all.subset(&test)))
}

/// Shuffled mini-batches of `0..n` for one epoch (the last one may be smaller).
pub fn shuffled_batches(n: usize, batch: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// Copies rows `indices` of `src` into the rows of `dst` (one `memcpy` a row when both are
/// row-major, as they are for datasets and batches).
///
/// # Panics
/// When `dst` is not `indices.len() × src.ncols()` or an index is out of range.
pub fn gather_rows(src: &Array2<f32>, indices: &[usize], dst: &mut Array2<f32>) {
    assert_eq!(
        dst.dim(),
        (indices.len(), src.ncols()),
        "gather_rows: destination shape does not fit {} rows of {}",
        indices.len(),
        src.ncols()
    );
    for (mut row, &i) in dst.rows_mut().into_iter().zip(indices) {
        let from = src.row(i);
        match (row.as_slice_mut(), from.as_slice()) {
            (Some(d), Some(s)) => d.copy_from_slice(s),
            _ => row.assign(&from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, cols: usize) -> Dataset {
        Dataset {
            name: DatasetName::Digits,
            features: Array2::from_shape_fn((n, cols), |(i, j)| (i * 100 + j) as f32),
            labels: (0..n).map(|i| i % 10).collect(),
            height: 1,
            width: cols,
            classes: (0..10).map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn keeping_rows_in_place_gives_what_copying_them_gives() {
        let keep = [0, 2, 3, 7, 9];
        let d = rows(10, 3);
        let copied = d.subset(&keep);
        let kept = d.keep_rows(&keep);
        assert_eq!(kept.features, copied.features);
        assert_eq!(kept.labels, copied.labels);
        // An array whose first element is not at the start of its buffer.
        let mut d = rows(12, 3);
        d.features.slice_collapse(ndarray::s![2.., ..]);
        d.labels.drain(..2);
        let copied = d.subset(&keep);
        assert_eq!(d.keep_rows(&keep).features, copied.features);
    }
}
