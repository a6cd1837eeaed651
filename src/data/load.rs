//! Loading a dataset's training and test sets into [`Dataset`]s: finding (or downloading) its
//! files and decoding them in the format the registry names, scaling raw pixel values by the
//! divisor given — the registry's, or the one a model recorded.

use super::lookup::{
    cifar_archive, cifar_archive_folder, cifar_folder, download_folder, download_into, idx_file,
    idx_folder, missing_error, search_folders,
};
use super::registry::{DatasetName, Format, IDX_FILES};
use super::{cifar, digits, idx, Dataset};
use crate::artifacts::Normalisation;
use crate::limits::DataBudget;
use anyhow::{bail, Context, Result};
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// Loads a dataset's training and test sets with the registry's normalisation, finding (or
/// downloading) its files; refuses files whose decoded size would pass the memory budget
/// ([`DataBudget::from_env`]) and a training set whose images differ in size from the test
/// set's.
pub fn load_dataset(name: DatasetName, data_dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
    load_scaled(name, data_dir, name.spec().scaling.divisor)
}

/// Loads a dataset as [`load_dataset`] does, but normalised as the model read from `origin`
/// records (see [`super::DatasetSpec::divisor_for`]: its divisor applied, or an error naming
/// `origin` when it describes another kind of pixel).
pub fn load_for_model(
    name: DatasetName,
    data_dir: Option<&Path>,
    model: &Normalisation,
    origin: &Path,
) -> Result<(Dataset, Dataset)> {
    let divisor = name.spec().divisor_for(model, origin)?;
    load_scaled(name, data_dir, divisor)
}

fn load_scaled(
    name: DatasetName,
    data_dir: Option<&Path>,
    divisor: f32,
) -> Result<(Dataset, Dataset)> {
    if let Some(d) = data_dir.filter(|d| !d.is_dir()) {
        bail!("{}: --data-dir is not a folder", d.display());
    }
    let mut budget = DataBudget::from_env()?;
    let local = download_folder(name);
    // Temporary folders of a killed download or extraction, whose writer is gone.
    if let Some(root) = local.parent() {
        crate::files::remove_stale_temps(root);
    }
    let (dir, (train, test)) = match name.spec().format {
        Format::EmbeddedCsv => return digits::load_digits_scaled(divisor),
        Format::Idx => {
            let dir = match idx_folder(&search_folders(name, data_dir)) {
                Some(d) => d,
                None => {
                    download_into(name, &local).map_err(|e| missing_error(name, data_dir, &e))?;
                    local
                }
            };
            let [train_x, train_y, test_x, test_y] = IDX_FILES;
            let train = load_idx_pair(name, &dir, train_x, train_y, divisor, &mut budget)?;
            let test = load_idx_pair(name, &dir, test_x, test_y, divisor, &mut budget)?;
            (dir, (train, test))
        }
        Format::CifarBinary => {
            let dir = find_or_unpack_cifar(data_dir, &local)?;
            let sets = load_cifar(&dir, divisor, &mut budget)?;
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
    let archive_dir = match cifar_archive_folder(&folders) {
        Some(d) => d,
        None => {
            download_into(name, local).map_err(|e| missing_error(name, data_dir, &e))?;
            local.to_path_buf()
        }
    };
    cifar::unpack(&archive_dir.join(cifar_archive()), local)?;
    cifar_folder(local).with_context(|| {
        format!(
            "{}: the archive did not contain the CIFAR-10 batches",
            local.display()
        )
    })
}

/// Loads the CIFAR-10 batches of a `cifar-10-batches-bin` folder, grayscale, each luma value
/// divided by `divisor`.
pub fn load_cifar(dir: &Path, divisor: f32, budget: &mut DataBudget) -> Result<(Dataset, Dataset)> {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for f in cifar::TRAIN_FILES {
        let (x, y) = cifar::read(&dir.join(f), divisor, budget)?;
        features.extend(x);
        labels.extend(y);
    }
    let train = cifar_dataset(features, labels);
    let (x, y) = cifar::read(&dir.join(cifar::TEST_FILE), divisor, budget)?;
    Ok((train, cifar_dataset(x, y)))
}

fn cifar_dataset(features: Vec<f32>, labels: Vec<u8>) -> Dataset {
    let spec = DatasetName::Cifar10.spec();
    let [height, width] = spec.image;
    let n = labels.len();
    Dataset {
        name: DatasetName::Cifar10,
        features: Array2::from_shape_vec((n, cifar::PIXELS), features).expect("whole records"),
        labels: labels.into_iter().map(usize::from).collect(),
        height,
        width,
        classes: spec.class_names(),
    }
}

/// Loads one IDX images/labels pair, checking that they belong together; each pixel becomes
/// `value / divisor`. Both files' decoded sizes are charged to `budget` from their headers.
pub fn load_idx_pair(
    name: DatasetName,
    dir: &Path,
    images: &str,
    labels: &str,
    divisor: f32,
    budget: &mut DataBudget,
) -> Result<Dataset> {
    let ip =
        idx_file(dir, images).with_context(|| format!("{}: no {images}(.gz)", dir.display()))?;
    let lp =
        idx_file(dir, labels).with_context(|| format!("{}: no {labels}(.gz)", dir.display()))?;
    let classes = name.spec().class_names();
    let img = idx::read_images(&ip, budget)?;
    let lab = idx::read_labels(&lp, classes.len(), budget)?;
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
    pixels.extend(img.pixels.iter().map(|&p| p as f32 / divisor));
    drop(img.pixels);
    let features = Array2::from_shape_vec((img.count, d), pixels).expect("IDX sizes were checked");
    Ok(Dataset {
        name,
        features,
        labels: lab.into_iter().map(usize::from).collect(),
        height: img.rows,
        width: img.cols,
        classes,
    })
}
