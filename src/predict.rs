//! Using a model: loading it, predicting labels and probabilities, evaluating it on a
//! dataset, and scoring predictions (accuracy, per-class accuracy, confusion matrix).
//! Independent of training: nothing here updates a model.

use crate::artifacts::ModelFile;
use crate::data::{self, Dataset, DatasetName};
use crate::nn::{Mlp, Module};
use crate::{no_grad, Tensor};
use anyhow::{bail, Result};
use ndarray::{Array2, Axis};
use std::path::{Path, PathBuf};

/// A model read from disk: its file (architecture, dataset, classes...) and the network.
pub struct LoadedModel {
    /// The decoded, validated file.
    pub file: ModelFile,
    /// The network, ready to run.
    pub mlp: Mlp<f32>,
}

/// Reads and validates a model file.
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    let file = ModelFile::load(path)?;
    let mlp = file.to_mlp();
    Ok(LoadedModel { file, mlp })
}

impl LoadedModel {
    /// The dataset the model was trained on, when this ferrograd knows it.
    pub fn own_dataset(&self) -> Option<DatasetName> {
        DatasetName::parse(&self.file.dataset)
    }

    /// The dataset to score the model (read from `origin`) on: `given`, else its own. Another
    /// dataset than its own is refused unless `allow_mismatch`: its outputs are its own
    /// classes, so scoring them against other labels means nothing.
    pub fn scoring_dataset(
        &self,
        origin: &Path,
        given: Option<DatasetName>,
        allow_mismatch: bool,
    ) -> Result<DatasetName> {
        Ok(match (given, self.own_dataset()) {
            (Some(d), Some(o)) if d != o && !allow_mismatch => bail!(
                "{}: the model was trained on {o}, not {d}; its outputs are {o} classes, so scoring them against {d} labels means nothing (pass --allow-dataset-mismatch to do it anyway)",
                origin.display()
            ),
            (Some(d), _) => d,
            (None, Some(o)) => o,
            (None, None) => bail!(
                "{}: unknown dataset {:?}; pass --dataset",
                origin.display(),
                self.file.dataset
            ),
        })
    }

    /// The name of its sample-predictions grid on `dataset`: `<activation>_<dataset>`, or
    /// `<activation>_<own>_on_<dataset>` on another dataset, so that the model's own stays.
    pub fn grid_tag(&self, dataset: DatasetName) -> String {
        let activation = &self.file.activation;
        match self.own_dataset() {
            Some(o) if o == dataset => format!("{activation}_{dataset}"),
            _ => format!("{activation}_{}_on_{dataset}", self.file.dataset),
        }
    }
}

/// A model scored on a test set: what `predict` prints, and what its grid draws.
pub struct Evaluation {
    /// Accuracy, per-class accuracy, confusion matrix and where the grid goes.
    pub report: PredictReport,
    /// The test set scored (normalised as the model records).
    pub test: Dataset,
    /// The grid's name ([`LoadedModel::grid_tag`]).
    pub tag: String,
    /// Where the grid goes: `<out>/predicted_images/sample_predictions_<tag>.png`.
    pub grid: PathBuf,
}

/// Scores the model read from `origin` on `dataset`'s test set, loaded with the normalisation
/// the model records ([`data::load_for_model`]) and checked to fit the model; `out` is the
/// artifacts folder its grid will go to (not written here).
pub fn score_saved_model(
    loaded: &LoadedModel,
    origin: &Path,
    dataset: DatasetName,
    data_dir: Option<&Path>,
    out: &Path,
) -> Result<Evaluation> {
    let file = &loaded.file;
    let (_, test) = data::load_for_model(dataset, data_dir, &file.normalisation, origin)?;
    crate::validate::model_fits(file, origin, &test)?;
    let prediction = predict(&loaded.mlp, &test.features);
    let scores = score(&prediction.labels, &test.labels, test.classes.len());
    let tag = loaded.grid_tag(dataset);
    let grid = out
        .join("predicted_images")
        .join(format!("sample_predictions_{tag}.png"));
    let report = PredictReport {
        model: origin.display().to_string(),
        model_dataset: file.dataset.clone(),
        activation: file.activation.clone(),
        dataset: dataset.to_string(),
        images: test.len(),
        classes: test.classes.clone(),
        scores,
        grid: grid.display().to_string(),
    };
    Ok(Evaluation {
        report,
        test,
        tag,
        grid,
    })
}

/// Labels and class probabilities for a batch.
pub struct Prediction {
    /// The most probable class of each row.
    pub labels: Vec<usize>,
    /// Softmax probabilities, one row per input.
    pub probabilities: Array2<f32>,
}

/// Predicts each row of `x` (features already normalised as the model's file says).
///
/// # Panics
/// When `x`'s width is not the model's input size.
pub fn predict(model: &Mlp<f32>, x: &Array2<f32>) -> Prediction {
    let (labels, probabilities) = predict_features(model, x);
    Prediction {
        labels,
        probabilities,
    }
}

/// How well predictions match the truth.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Scores {
    /// Fraction correct.
    pub accuracy: f64,
    /// Fraction correct within each true class.
    pub per_class_accuracy: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Scores predicted against true labels over `classes` classes.
pub fn score(predicted: &[usize], truth: &[usize], classes: usize) -> Scores {
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&p, &t) in predicted.iter().zip(truth) {
        confusion[t][p] += 1;
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: usize = row.iter().sum();
            if n == 0 {
                f64::NAN
            } else {
                row[c] as f64 / n as f64
            }
        })
        .collect();
    Scores {
        accuracy: correct as f64 / truth.len().max(1) as f64,
        per_class_accuracy,
        confusion,
    }
}

/// What `predict` reports (as JSON with `--json`, as tables through `Display`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PredictReport {
    /// The model file scored.
    pub model: String,
    /// The dataset the model was trained on.
    pub model_dataset: String,
    /// The model's activation.
    pub activation: String,
    /// The dataset whose test set was scored.
    pub dataset: String,
    /// Test images scored.
    pub images: usize,
    /// Class names, in label order (the rows and columns of the confusion matrix).
    pub classes: Vec<String>,
    /// Accuracy, per-class accuracy and confusion matrix.
    #[serde(flatten)]
    pub scores: Scores,
    /// The sample-predictions PNG written.
    pub grid: String,
}

impl std::fmt::Display for PredictReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.scores;
        writeln!(
            f,
            "model {} ({} on {})",
            self.model, self.activation, self.model_dataset
        )?;
        writeln!(
            f,
            "test accuracy on {} {:.2}% ({} of {} images)",
            self.dataset,
            100.0 * s.accuracy,
            (s.accuracy * self.images as f64).round(),
            self.images
        )?;
        writeln!(f, "\nper-class accuracy")?;
        for (c, acc) in s.per_class_accuracy.iter().enumerate() {
            writeln!(f, "  {:>2} {:<12} {:6.2}%", c, self.classes[c], 100.0 * acc)?;
        }
        writeln!(
            f,
            "\nconfusion matrix (rows: true class, columns: predicted)"
        )?;
        write!(f, "      ")?;
        for c in 0..self.classes.len() {
            write!(f, "{c:>6}")?;
        }
        writeln!(f)?;
        for (t, row) in s.confusion.iter().enumerate() {
            write!(f, "  {t:>2}  ")?;
            for n in row {
                write!(f, "{n:>6}")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "\nsample predictions {}", self.grid)
    }
}

/// Index of the largest value of each row.
pub fn argmax_rows(logits: &ndarray::ArrayView2<f32>) -> Vec<usize> {
    logits
        .axis_iter(Axis(0))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}

/// Mean loss and accuracy of `model` on `data`, without recording a graph.
pub fn evaluate(model: &Mlp<f32>, data: &Dataset) -> (f64, f64) {
    if data.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let _guard = no_grad();
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (rows, logits) in forward_in_chunks(model, &data.features) {
        let labels = &data.labels[rows.clone()];
        loss += logits.cross_entropy(labels).item() as f64 * rows.len() as f64;
        correct += correct_rows(&logits, labels);
    }
    (loss / data.len() as f64, correct as f64 / data.len() as f64)
}

/// Rows per forward pass when a whole set is evaluated: a few MB of activations instead of a
/// copy of the set (a 10,000-image test set whole was 31 MB a copy, kept by the buffer pool),
/// and the same chunks for [`evaluate`] and [`predict_features`], so the accuracy and the
/// per-class figures of one run come from the same products.
const CHUNK: usize = 1000;

/// The logits of `x`'s rows, [`CHUNK`] rows a forward pass (one empty pass for no rows, so
/// that the width of the output is still known).
fn forward_in_chunks<'a>(
    model: &'a Mlp<f32>,
    x: &'a Array2<f32>,
) -> impl Iterator<Item = (std::ops::Range<usize>, Tensor<f32>)> + 'a {
    let n = x.nrows();
    (0..n.div_ceil(CHUNK).max(1)).map(move |c| {
        let rows = c * CHUNK..((c + 1) * CHUNK).min(n);
        let chunk = x.slice(ndarray::s![rows.clone(), ..]).to_owned();
        (rows, model.forward(&Tensor::from_array(chunk)))
    })
}

/// Predicted labels and class probabilities (softmax) for each row of `x`.
pub fn predict_features(model: &Mlp<f32>, x: &Array2<f32>) -> (Vec<usize>, Array2<f32>) {
    let _guard = no_grad();
    let parts: Vec<Array2<f32>> = forward_in_chunks(model, x)
        .map(|(_, logits)| {
            logits
                .softmax(1)
                .to_array()
                .into_dimensionality::<ndarray::Ix2>()
                .expect("2-D probabilities")
        })
        .collect();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let p = ndarray::concatenate(ndarray::Axis(0), &views).expect("chunks of the same width");
    (argmax_rows(&p.view()), p)
}

/// Rows of `logits` (N × classes) whose largest value is at the row's label: what training
/// and evaluation count as correct.
pub fn correct_rows(logits: &Tensor<f32>, labels: &[usize]) -> usize {
    let v = logits.value();
    let v2 = v
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D logits");
    argmax_rows(&v2)
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Init};

    #[test]
    fn a_set_larger_than_a_chunk_is_predicted_as_its_rows_are_one_by_one() {
        // 2,345 rows: two whole chunks and a part, so order and the last chunk's length count.
        let model = Mlp::<f32>::new(&[7, 9, 4], Activation::Tanh, Init::Xavier, 3);
        let x = Tensor::<f32>::rand_normal(&[2345, 7], 0.0, 1.0, 11)
            .to_array()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let (labels, p) = predict_features(&model, &x);
        assert_eq!(p.dim(), (2345, 4));
        // No rows: no predictions, but still four columns.
        let (none, empty) = predict_features(&model, &Array2::zeros((0, 7)));
        assert!(none.is_empty() && empty.dim() == (0, 4));
        for i in [0, 1, 999, 1000, 1001, 1999, 2000, 2344] {
            let (one_label, one) =
                predict_features(&model, &x.slice(ndarray::s![i..i + 1, ..]).to_owned());
            for (a, b) in p.row(i).iter().zip(one.row(0)) {
                assert!((a - b).abs() <= 1e-6, "row {i}: {a} against {b}");
            }
            assert_eq!(labels[i], one_label[0], "row {i}");
        }
        // Scored against its own predictions, the set is right everywhere: evaluate's chunks
        // give the same argmax as predict_features' chunks.
        let data = crate::data::Dataset {
            name: crate::data::DatasetName::Digits,
            features: x,
            labels,
            height: 1,
            width: 7,
            classes: ["a", "b", "c", "d"].map(String::from).to_vec(),
        };
        let (loss, accuracy) = evaluate(&model, &data);
        assert_eq!(accuracy, 1.0);
        assert!(loss.is_finite());
    }
}
