//! Checks of pairings — model with dataset, training set with test set, options with data —
//! made before any work starts, so that what each input says about the other is never left
//! to a shape assertion deep in the engine. Each error names both sides.

use crate::artifacts::ModelFile;
use crate::data::{Dataset, Splits};
use anyhow::{bail, Result};
use std::path::Path;

/// The training and test sets of one dataset (found in `origin`) must hold images of one size
/// and the same classes.
pub fn same_images(train: &Dataset, test: &Dataset, origin: &Path) -> Result<()> {
    if (train.height, train.width) != (test.height, test.width) {
        bail!(
            "{}: training images are {}×{}, test images {}×{}",
            origin.display(),
            train.height,
            train.width,
            test.height,
            test.width
        );
    }
    if train.classes != test.classes {
        bail!(
            "{}: training set has {} classes, test set {}",
            origin.display(),
            train.classes.len(),
            test.classes.len()
        );
    }
    Ok(())
}

/// A run needs training rows left after the validation split, and test rows to score.
pub fn training_rows(splits: &Splits, val_fraction: f64) -> Result<()> {
    let name = splits.train.name;
    if splits.train.is_empty() {
        let total = splits.train.len() + splits.val.len();
        if total == 0 {
            bail!("{name}: the training set is empty: nothing to learn from");
        }
        bail!(
            "{name}: --val-fraction {val_fraction} leaves no training images of {total} (lower it)"
        );
    }
    if splits.test.is_empty() {
        bail!("{name}: the test set is empty: nothing to score the model on");
    }
    Ok(())
}

/// A saved model must take `data`'s images and predict its classes.
pub fn model_fits(model: &ModelFile, origin: &Path, data: &Dataset) -> Result<()> {
    let inputs = model.architecture[0];
    let outputs = *model.architecture.last().expect("validated architecture");
    let o = origin.display();
    let name = data.name;
    if inputs != data.dim() || model.input_shape != [data.height, data.width] {
        bail!(
            "{o}: the model takes {inputs} inputs ({:?}), {name} images have {} ({}×{})",
            model.input_shape,
            data.dim(),
            data.height,
            data.width
        );
    }
    if outputs != data.classes.len() {
        bail!(
            "{o}: the model predicts {outputs} classes, {name} has {}",
            data.classes.len()
        );
    }
    if data.is_empty() {
        bail!("{name}: no images to run the model {o} on");
    }
    Ok(())
}
