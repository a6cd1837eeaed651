//! What a run produces: per-epoch metrics, the final metrics and the results file.

use super::TrainConfig;
use crate::analysis::curvature::CurvaturePoint;
use crate::build_info::BuildInfo;
use crate::data::Splits;
use crate::nn::Mlp;
use serde::{Deserialize, Serialize};

/// Metrics after one epoch. Accuracies are fractions in [0, 1].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (weighted by batch size).
    pub train_loss: f64,
    /// Training accuracy over the epoch's steps.
    pub train_accuracy: f64,
    /// Validation loss at the end of the epoch.
    pub val_loss: f64,
    /// Validation accuracy at the end of the epoch.
    pub val_accuracy: f64,
    /// Test loss at the end of the epoch.
    pub test_loss: f64,
    /// Test accuracy at the end of the epoch.
    pub test_accuracy: f64,
    /// Learning rate during the epoch.
    pub lr: f64,
    /// Seconds of the training loop (batches, forward, backward, update).
    pub seconds: f64,
}

/// The final metrics of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FinalMetrics {
    /// Test loss of the final model.
    pub test_loss: f64,
    /// Test accuracy of the final model.
    pub test_accuracy: f64,
    /// Seconds spent in the training loops, all epochs.
    pub train_seconds: f64,
    /// Test accuracy of the final model within each true class (class order of the dataset).
    pub per_class_accuracy: Vec<f64>,
}

/// The results file: configuration, per-epoch metrics, final metrics, build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    /// When the run finished, RFC 3339 in UTC.
    pub timestamp: String,
    /// The epoch (1-based) of the highest validation accuracy, the first if tied; `null`
    /// without a validation set.
    pub best_epoch: Option<usize>,
    /// Every setting of the run.
    pub config: TrainConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// Images in the training, validation and test sets.
    pub sizes: SetSizes,
    /// One entry per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The final model's metrics.
    #[serde(rename = "final")]
    pub final_metrics: FinalMetrics,
    /// How the binary was built.
    pub build: BuildInfo,
    /// The curvature measured during training (`--curvature-every`), oldest first; empty
    /// when not asked for.
    #[serde(default)]
    pub curvature: Vec<CurvaturePoint>,
}

/// Sizes of the three sets.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SetSizes {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
    /// Test images.
    pub test: usize,
}

/// What [`train`](super::train) returns.
pub struct TrainReport {
    /// The trained model.
    pub model: Mlp<f32>,
    /// The results (also written to disk by [`train_and_save`](super::train_and_save)).
    pub results: Results,
    /// The data it was trained and evaluated on.
    pub splits: Splits,
}

/// The last epoch and the final metrics of several runs side by side (`compare`'s table).
pub struct Comparison<'a>(pub &'a [Results]);

impl std::fmt::Display for Comparison<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<10} {:>11} {:>10} {:>10} {:>10} {:>10} {:>9}",
            "activation", "train loss", "train acc", "val acc", "test acc", "test loss", "seconds"
        )?;
        for r in self.0 {
            let Some(last) = r.epochs.last() else {
                continue;
            };
            writeln!(
                f,
                "{:<10} {:>11.4} {:>9.2}% {:>9.2}% {:>9.2}% {:>10.4} {:>9.1}",
                r.config.activation.as_str(),
                last.train_loss,
                100.0 * last.train_accuracy,
                100.0 * last.val_accuracy,
                100.0 * r.final_metrics.test_accuracy,
                r.final_metrics.test_loss,
                r.final_metrics.train_seconds
            )?;
        }
        Ok(())
    }
}
