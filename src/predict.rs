//! Using a saved model: loading it, predicting labels and probabilities, and scoring the
//! predictions (accuracy, per-class accuracy, confusion matrix).

use crate::artifacts::ModelFile;
use crate::data::{self, Dataset, DatasetName};
use crate::nn::Mlp;
use anyhow::{bail, Result};
use ndarray::Array2;
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
pub fn evaluate(
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
    let (labels, probabilities) = crate::train::predict_features(model, x);
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
