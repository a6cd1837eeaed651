//! Datasets: MNIST, Fashion-MNIST, CIFAR-10 (grayscale) and the embedded UCI digits; finding
//! their files, downloading them with checksums, splitting and batching. Every fact about a
//! dataset (files, checksums, mirrors, shape, classes, normalisation) is in [`registry`].
//!
//! Lookup order for a dataset's files: `--data-dir` (the folder itself, or its `<folder>/`),
//! `$FERROGRAD_DATA` (the same two), `data/<folder>/`, the per-user folder
//! (`$XDG_DATA_HOME/ferrograd/<folder>/`, by default `~/.local/share/ferrograd/<folder>/`),
//! `/usr/share/datasets/<folder>/` (Debian's `dataset-fashion-mnist` installs Fashion-MNIST
//! there), then a download from the canonical source, verified by checksum, into
//! `$FERROGRAD_DATA/<folder>/` when that is set and `data/<folder>/` otherwise. Setting
//! `FERROGRAD_DATA` once makes every command find the data from any working folder.

pub mod cifar;
pub mod digits;
pub mod download;
pub mod idx;
mod load;
mod lookup;
mod prefetch;
pub mod registry;

pub use digits::{load_digits, parse_digits_csv, DIGITS_CSV_GZ, DIGITS_TEST_EVERY};
pub use load::{load_cifar, load_dataset, load_for_model, load_idx_pair};
pub use lookup::{
    available_locally, download_folder, local_status, locate, search_folders, user_data_folder,
};
pub use prefetch::{for_each_batch, for_each_batch_on};
pub use registry::{DatasetName, DatasetSpec};

use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Environment variable that replaces the download sources' base address (a mirror, or a
/// local server in tests): `$FERROGRAD_MIRROR/<file>`.
pub const MIRROR_VAR: &str = "FERROGRAD_MIRROR";

/// Environment variable naming a data root searched by every command after `--data-dir`, and
/// where downloads go.
pub const DATA_VAR: &str = "FERROGRAD_DATA";

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
        crate::Tensor::from_array(self.batch_array(indices))
    }

    /// The feature rows `indices`, in that order, on a buffer from the calling thread's
    /// tensor pool.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn batch_array(&self, indices: &[usize]) -> Array2<f32> {
        let mut x = crate::tensor::pool::array(ndarray::Ix2(indices.len(), self.dim()));
        gather_rows(&self.features, indices, &mut x);
        x
    }

    /// The labels of the rows `indices`, in that order.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.labels[i]).collect()
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
            labels: self.labels_of(indices),
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
        self.labels = self.labels_of(sorted);
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
