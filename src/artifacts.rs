//! The model format, and where a run's models are found.
//!
//! Every file is written through [`write_atomic`] (see [`crate::files`]), so a crash at any
//! moment leaves either the old file or the new one, never a torn one.

use crate::nn::{Activation, Linear, Mlp};
use crate::Tensor;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use crate::files::write_atomic;
pub use crate::limits::MAX_MODEL_BYTES;

/// The model format's name, stored in every model file.
pub const MODEL_FORMAT: &str = "ferrograd-mlp";
/// The current model format version.
pub const MODEL_FORMAT_VERSION: u32 = 1;
/// Largest layer width accepted.
pub const MAX_WIDTH: usize = 1 << 20;
/// Largest number of weights in one layer accepted.
pub const MAX_LAYER_WEIGHTS: usize = 1 << 28;

/// How raw pixels were scaled to the model's inputs: `x = pixel / divisor`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Normalisation {
    /// What the divisor maps from: `"u8 pixels"` (255) or `"digits 0..16"` (16).
    pub kind: String,
    /// The divisor applied to each raw pixel value.
    pub divisor: f32,
}

/// One affine layer's parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerFile {
    /// `[inputs, outputs]`.
    pub weight_shape: Vec<usize>,
    /// `inputs × outputs` weights, row-major (`weight[i * outputs + j]` links input i to output j).
    pub weight: Vec<f32>,
    /// `outputs` biases.
    pub bias: Vec<f32>,
}

/// A saved model: MessagePack with named fields (see README.md, "Model files").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelFile {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// [`MODEL_FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Layer sizes, inputs first: `[784, 128, 128, 128, 10]`.
    pub architecture: Vec<usize>,
    /// `relu`, `tanh` or `sigmoid`.
    pub activation: String,
    /// The dataset it was trained on.
    pub dataset: String,
    /// `[height, width]` of the input images.
    pub input_shape: Vec<usize>,
    /// Class names, by output index.
    pub classes: Vec<String>,
    /// How pixels become inputs.
    pub normalisation: Normalisation,
    /// The affine layers, first to last.
    pub layers: Vec<LayerFile>,
}

impl ModelFile {
    /// Captures a model.
    pub fn from_mlp(
        mlp: &Mlp<f32>,
        dataset: &str,
        input_shape: [usize; 2],
        classes: Vec<String>,
        normalisation: Normalisation,
    ) -> ModelFile {
        ModelFile {
            format: MODEL_FORMAT.into(),
            format_version: MODEL_FORMAT_VERSION,
            architecture: mlp.sizes(),
            activation: mlp.activation.as_str().into(),
            dataset: dataset.into(),
            input_shape: input_shape.to_vec(),
            classes,
            normalisation,
            layers: mlp
                .layers
                .iter()
                .map(|l| LayerFile {
                    weight_shape: l.weight.shape().to_vec(),
                    weight: l.weight.to_vec(),
                    bias: l.bias.to_vec(),
                })
                .collect(),
        }
    }

    /// Encodes as MessagePack with named fields.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec_named(self).context("cannot encode the model")
    }

    /// Decodes and validates: format, version, architecture, every shape, the activation.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<ModelFile> {
        let m: ModelFile = rmp_serde::from_slice(bytes).map_err(|e| {
            anyhow::anyhow!("{}: not a ferrograd model file ({e})", origin.display())
        })?;
        m.validate(origin)?;
        Ok(m)
    }

    /// Checks format, version, architecture, every shape and value, the activation.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let o = origin.display();
        if self.format != MODEL_FORMAT {
            bail!("{o}: format {:?}, expected {MODEL_FORMAT:?}", self.format);
        }
        if self.format_version != MODEL_FORMAT_VERSION {
            bail!(
                "{o}: model format version {}, this ferrograd reads version {MODEL_FORMAT_VERSION}",
                self.format_version
            );
        }
        let a = &self.architecture;
        if a.len() < 2 || a.iter().any(|&s| s == 0 || s > MAX_WIDTH) {
            bail!("{o}: implausible architecture {a:?}");
        }
        if a.len() - 2 > crate::limits::MAX_HIDDEN_LAYERS {
            bail!(
                "{o}: {} hidden layers, more than the {} accepted",
                a.len() - 2,
                crate::limits::MAX_HIDDEN_LAYERS
            );
        }
        if self.layers.len() != a.len() - 1 {
            bail!("{o}: {} layers for architecture {a:?}", self.layers.len());
        }
        for (i, (l, w)) in self.layers.iter().zip(a.windows(2)).enumerate() {
            if w[0] * w[1] > MAX_LAYER_WEIGHTS {
                bail!("{o}: layer {i} of {}×{} weights is too large", w[0], w[1]);
            }
            if l.weight_shape != [w[0], w[1]]
                || l.weight.len() != w[0] * w[1]
                || l.bias.len() != w[1]
            {
                bail!(
                    "{o}: layer {i} has weights {:?} ({} values) and {} biases, architecture needs {}×{} and {}",
                    l.weight_shape,
                    l.weight.len(),
                    l.bias.len(),
                    w[0],
                    w[1],
                    w[1]
                );
            }
            if l.weight.iter().chain(&l.bias).any(|v| !v.is_finite()) {
                bail!("{o}: layer {i} holds a NaN or infinite parameter");
            }
        }
        if Activation::parse(&self.activation).is_none() {
            bail!("{o}: unknown activation {:?}", self.activation);
        }
        let inputs = self
            .input_shape
            .iter()
            .try_fold(1usize, |n, &s| n.checked_mul(s));
        if self.input_shape.len() != 2 || inputs != Some(a[0]) {
            bail!(
                "{o}: input shape {:?} does not give {} inputs",
                self.input_shape,
                a[0]
            );
        }
        if self.classes.len() != *a.last().unwrap() {
            bail!(
                "{o}: {} class names for {} outputs",
                self.classes.len(),
                a.last().unwrap()
            );
        }
        if !(self.normalisation.divisor.is_finite() && self.normalisation.divisor > 0.0) {
            bail!(
                "{o}: normalisation divisor {} is not positive",
                self.normalisation.divisor
            );
        }
        Ok(())
    }

    /// The model as an [`Mlp`].
    pub fn to_mlp(&self) -> Mlp<f32> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Linear::from_parts(
                    Tensor::from_vec(l.weight.clone(), &l.weight_shape),
                    Tensor::from_vec(l.bias.clone(), &[l.bias.len()]),
                )
            })
            .collect();
        Mlp {
            layers,
            activation: Activation::parse(&self.activation).expect("validated"),
        }
    }

    /// Writes the model atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads and validates a model file: a regular file of at most [`MAX_MODEL_BYTES`],
    /// checked before it is read.
    pub fn load(path: &Path) -> Result<ModelFile> {
        let bytes = crate::files::read_regular(path, MAX_MODEL_BYTES, "model file")?;
        Self::from_bytes(&bytes, path)
    }
}

/// The newest `*.msgpack` in `dir` (by modification time).
pub fn newest_model(dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "{}: no models folder (train a model first, or pass --model PATH)",
            dir.display()
        )
    })?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "msgpack"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p)
        .with_context(|| {
            format!(
                "{}: no *.msgpack model (train one first, or pass --model PATH)",
                dir.display()
            )
        })
}

/// What the sample-predictions grid shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridOptions {
    /// Images in the grid (fewer when the test set, or its mistakes, run out).
    pub count: usize,
    /// Only wrong predictions (the first `count` of the test set).
    pub mistakes_only: bool,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            count: 16,
            mistakes_only: false,
        }
    }
}

/// The paths of a run's artifacts under `out`.
pub struct ArtifactPaths {
    /// `models/model_<tag>.msgpack`
    pub model: PathBuf,
    /// `results/results_<tag>.json`
    pub results: PathBuf,
    /// `plots/*_<tag>.png` (written only with the `cli` feature)
    pub plots: Vec<PathBuf>,
    /// `predicted_images/sample_predictions_<tag>.png` (only with the `cli` feature)
    pub predictions: PathBuf,
    /// `plots/sharpness_<tag>.png` (written when curvature was tracked)
    pub sharpness: PathBuf,
}

impl ArtifactPaths {
    /// The paths for `tag` under `out`.
    pub fn new(out: &Path, tag: &str) -> ArtifactPaths {
        ArtifactPaths {
            model: out.join("models").join(format!("model_{tag}.msgpack")),
            results: out.join("results").join(format!("results_{tag}.json")),
            plots: PLOTS
                .iter()
                .map(|p| out.join("plots").join(format!("{p}_{tag}.png")))
                .collect(),
            predictions: out
                .join("predicted_images")
                .join(format!("sample_predictions_{tag}.png")),
            sharpness: out.join("plots").join(format!("sharpness_{tag}.png")),
        }
    }
}

/// The per-run plots, by file-name prefix.
pub const PLOTS: [&str; 6] = [
    "loss_curves",
    "accuracy_curves",
    "test_loss",
    "test_accuracy",
    "lr_schedule",
    "overfitting_gap",
];

/// Writes the model file, results, plots and sample predictions of a finished run.
pub fn save_run(
    report: &crate::train::TrainReport,
    model_file: &ModelFile,
    out: &Path,
    grid: GridOptions,
) -> Result<ArtifactPaths> {
    let tag = report.results.config.tag();
    let paths = ArtifactPaths::new(out, &tag);
    model_file.save(&paths.model)?;
    let json = serde_json::to_vec_pretty(&report.results).context("cannot encode results")?;
    write_atomic(&paths.results, &json)?;
    // The figures need the `cli` feature (plotters); without it, the model and results only.
    #[cfg(feature = "cli")]
    {
        crate::figures::write_run_plots(&report.results, &paths.plots)?;
        let config = &report.results.config;
        if !report.results.curvature.is_empty() {
            crate::figures::write_sharpness_plot(
                &paths.sharpness,
                &report.results.curvature,
                config.momentum_form(),
                &format!("{} on {}", config.activation, config.dataset),
            )?;
        }
        crate::figures::write_prediction_grid(
            &report.model,
            &report.splits.test,
            grid,
            &paths.predictions,
            &tag,
        )?;
    }
    #[cfg(not(feature = "cli"))]
    let _ = grid;
    Ok(paths)
}
