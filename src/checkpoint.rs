//! Checkpoints: what a run saves after every epoch to continue exactly after a kill, and the
//! checks that stop a damaged or forged one from being trusted: every field against the
//! checkpoint's own configuration when it is read, then against the resuming run.

use crate::analysis::curvature::CurvaturePoint;
use crate::artifacts::{write_atomic, ModelFile};
use crate::limits::MAX_MODEL_BYTES;
use crate::nn::Mlp;
use crate::optim::{Optimizer, OptimizerState};
use crate::train::{EpochMetrics, OptimizerKind, TrainConfig};
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The checkpoint format's name.
pub const CHECKPOINT_FORMAT: &str = "ferrograd-checkpoint";
/// The current checkpoint format version. Version 2 keeps the optimizer's step count as an
/// integer (version 1 kept it as an f32 among the buffers, exact only to 2²⁴ steps).
pub const CHECKPOINT_FORMAT_VERSION: u32 = 2;

/// Settings that do not change what a run computes, so a resumed run may differ in them:
/// where the artifacts go and where the dataset's files were found (the same files moved, or
/// `./out` spelled as an absolute path, resume alike).
const PLACE_SETTINGS: [&str; 2] = ["out_dir", "data_dir"];

/// Everything needed to continue a run exactly: weights, optimizer state, the epochs done
/// (which fix the schedule's position and, replayed, the shuffling generator's state) and the
/// history so far.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// [`CHECKPOINT_FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The run's configuration; a resumed run must have the same.
    pub config: TrainConfig,
    /// Epochs completed.
    pub epochs_done: usize,
    /// The weights after those epochs.
    pub model: ModelFile,
    /// Steps the optimizer has taken (Adam's bias correction depends on it).
    pub optimizer_steps: u64,
    /// The optimizer's buffers (shape, values), in `Optimizer::state` order.
    pub optimizer_state: Vec<(Vec<usize>, Vec<f32>)>,
    /// Metrics of the epochs done.
    pub history: Vec<EpochMetrics>,
    /// Seconds of training so far.
    pub train_seconds: f64,
    /// The curvature points measured so far (`train --curvature-every`); absent in older
    /// checkpoints, which had none.
    #[serde(default)]
    pub curvature: Vec<CurvaturePoint>,
}

/// The two fields every checkpoint starts with.
#[derive(Deserialize)]
struct FormatHeader {
    format: String,
    format_version: u32,
}

fn check_format(format: &str, version: u32, origin: &Path) -> Result<()> {
    if format != CHECKPOINT_FORMAT || version != CHECKPOINT_FORMAT_VERSION {
        bail!(
            "{}: checkpoint format {format:?} version {version}, this ferrograd reads {CHECKPOINT_FORMAT:?} version {CHECKPOINT_FORMAT_VERSION}; train afresh without --resume",
            origin.display()
        );
    }
    Ok(())
}

/// The settings in which two configurations differ, as `name: a → b`, leaving out where
/// files are (the output and data folders).
pub fn config_differences(saved: &TrainConfig, now: &TrainConfig) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(saved), serde_json::to_value(now))
    else {
        return vec!["(settings cannot be compared)".into()];
    };
    a.iter()
        .filter(|(k, _)| !PLACE_SETTINGS.contains(&k.as_str()))
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            let other = b.get(k).map_or("none".to_string(), |x| x.to_string());
            format!("{}: checkpoint {v}, this run {other}", k.replace('_', "-"))
        })
        .collect()
}

impl Checkpoint {
    /// Captures a run after `epochs_done` epochs.
    pub fn capture(
        config: &TrainConfig,
        epochs_done: usize,
        model: ModelFile,
        optimizer: &dyn Optimizer<f32>,
        history: &[EpochMetrics],
        train_seconds: f64,
    ) -> Checkpoint {
        let state = optimizer.state();
        Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            format_version: CHECKPOINT_FORMAT_VERSION,
            config: config.clone(),
            epochs_done,
            model,
            optimizer_steps: state.steps,
            optimizer_state: state
                .buffers
                .into_iter()
                .map(|a| (a.shape().to_vec(), a.iter().copied().collect()))
                .collect(),
            history: history.to_vec(),
            train_seconds,
            curvature: Vec::new(),
        }
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = rmp_serde::to_vec_named(self).context("cannot encode the checkpoint")?;
        write_atomic(path, &bytes)
    }

    /// Reads a checkpoint file (a regular file of at most [`MAX_MODEL_BYTES`]) and checks
    /// every field against its own configuration.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        if !path.exists() {
            bail!("{}: no checkpoint to resume from", path.display());
        }
        let bytes = crate::files::read_regular(path, MAX_MODEL_BYTES, "checkpoint")?;
        Self::from_bytes(&bytes, path)
    }

    /// Decodes and validates checkpoint bytes; `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Checkpoint> {
        let not_ours = |e: rmp_serde::decode::Error| {
            anyhow::anyhow!("{}: not a ferrograd checkpoint ({e})", origin.display())
        };
        // The format and version first, so that a file of another version is named as such
        // rather than reported as a missing field.
        let header: FormatHeader = rmp_serde::from_slice(bytes).map_err(not_ours)?;
        check_format(&header.format, header.format_version, origin)?;
        let c: Checkpoint = rmp_serde::from_slice(bytes).map_err(not_ours)?;
        c.validate(origin)?;
        Ok(c)
    }

    /// Checks the checkpoint against itself: format, configuration, counters, history, model
    /// and optimizer buffers.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let o = origin.display();
        check_format(&self.format, self.format_version, origin)?;
        let config = &self.config;
        config
            .validate()
            .with_context(|| format!("{o}: the checkpoint's own settings are invalid"))?;
        if !(1..=config.epochs).contains(&self.epochs_done) {
            bail!(
                "{o}: {} epochs done, its settings run {} epochs",
                self.epochs_done,
                config.epochs
            );
        }
        if self.history.len() != self.epochs_done
            || self
                .history
                .iter()
                .enumerate()
                .any(|(i, m)| m.epoch != i + 1)
        {
            bail!(
                "{o}: the history holds {} epochs numbered {:?}..., the checkpoint says {} were done",
                self.history.len(),
                self.history.iter().take(3).map(|m| m.epoch).collect::<Vec<_>>(),
                self.epochs_done
            );
        }
        // The metrics a run always has (the validation ones are NaN without a validation set).
        let fraction = |x: f64| (0.0..=1.0).contains(&x);
        if let Some(m) = self.history.iter().find(|m| {
            !(m.train_loss.is_finite()
                && m.test_loss.is_finite()
                && fraction(m.train_accuracy)
                && fraction(m.test_accuracy)
                && m.lr.is_finite()
                && m.seconds.is_finite()
                && m.seconds >= 0.0)
        }) {
            bail!(
                "{o}: the history's epoch {} holds a metric that no run produces (NaN, infinite, or an accuracy outside 0..1)",
                m.epoch
            );
        }
        if let Some(p) = self.curvature.iter().find(|p| {
            !(p.lambda_max.is_finite()
                && p.residual.is_finite()
                && p.lr.is_finite()
                && p.seconds.is_finite()
                && p.epoch <= self.epochs_done)
        }) {
            bail!(
                "{o}: the curvature point at epoch {} step {} holds a value no run produces",
                p.epoch,
                p.step
            );
        }
        if !(self.train_seconds.is_finite() && self.train_seconds >= 0.0) {
            bail!(
                "{o}: training time {} is not a duration",
                self.train_seconds
            );
        }
        self.model.validate(origin)?;
        let m = &self.model;
        let hidden = &m.architecture[1..m.architecture.len() - 1];
        if hidden != config.hidden.as_slice()
            || m.activation != config.activation.as_str()
            || m.dataset != config.dataset.as_str()
        {
            bail!(
                "{o}: the model is {} {:?} on {}, its settings say {} {:?} on {}",
                m.activation,
                hidden,
                m.dataset,
                config.activation,
                config.hidden,
                config.dataset
            );
        }
        self.validate_optimizer_state(origin)
    }

    /// The optimizer buffers must be those of this optimizer for this model.
    fn validate_optimizer_state(&self, origin: &Path) -> Result<()> {
        let params: Vec<Vec<usize>> = self
            .model
            .layers
            .iter()
            .flat_map(|l| [l.weight_shape.clone(), vec![l.bias.len()]])
            .collect();
        let shapes: Vec<&Vec<usize>> = self.optimizer_state.iter().map(|(s, _)| s).collect();
        let fits = |s: &[&Vec<usize>]| s.iter().copied().eq(params.iter());
        let ok = match self.config.optimizer {
            OptimizerKind::Sgd => shapes.is_empty() || fits(&shapes),
            OptimizerKind::Adam => {
                shapes.is_empty()
                    || (shapes.len() == 2 * params.len()
                        && fits(&shapes[..params.len()])
                        && fits(&shapes[params.len()..]))
            }
        };
        if !ok {
            bail!(
                "{}: optimizer buffers of shapes {shapes:?} do not belong to {:?} on a model of parameters {params:?}",
                origin.display(),
                self.config.optimizer
            );
        }
        for (shape, values) in &self.optimizer_state {
            if shape.iter().product::<usize>() != values.len() {
                bail!(
                    "{}: optimizer buffer of shape {shape:?} holds {} values",
                    origin.display(),
                    values.len()
                );
            }
            if values.iter().any(|v| !v.is_finite()) {
                bail!(
                    "{}: an optimizer buffer holds a NaN or infinite value",
                    origin.display()
                );
            }
        }
        Ok(())
    }

    /// Checks that a run of `config` with a model of layer sizes `sizes` and `steps_per_epoch`
    /// steps can continue from this checkpoint; the refusal names each setting that differs.
    pub fn check_resume(
        &self,
        config: &TrainConfig,
        sizes: &[usize],
        steps_per_epoch: usize,
        origin: &Path,
    ) -> Result<()> {
        let o = origin.display();
        let differences = config_differences(&self.config, config);
        if !differences.is_empty() {
            bail!(
                "{o}: the checkpoint was written with other settings ({}); resume with the same options, or train afresh without --resume",
                differences.join("; ")
            );
        }
        if self.model.architecture != sizes {
            bail!(
                "{o}: the checkpoint's model has layers {:?}, this dataset needs {sizes:?}",
                self.model.architecture
            );
        }
        let most = self.epochs_done as u64 * steps_per_epoch as u64;
        if self.optimizer_steps > most {
            bail!(
                "{o}: the optimizer's step counter {} is impossible after {} epochs of {steps_per_epoch} steps",
                self.optimizer_steps,
                self.epochs_done
            );
        }
        Ok(())
    }

    /// Puts the weights into `model` and the buffers into `optimizer` (after
    /// [`check_resume`](Checkpoint::check_resume)).
    pub fn restore(&self, model: &Mlp<f32>, optimizer: &mut dyn Optimizer<f32>) -> Result<()> {
        for (p, saved) in model.layers.iter().zip(&self.model.layers) {
            p.weight.set_value(ArrayD::from_shape_vec(
                IxDyn(&saved.weight_shape),
                saved.weight.clone(),
            )?);
            p.bias.set_value(ArrayD::from_shape_vec(
                IxDyn(&[saved.bias.len()]),
                saved.bias.clone(),
            )?);
        }
        let buffers = self
            .optimizer_state
            .iter()
            .map(|(shape, v)| ArrayD::from_shape_vec(IxDyn(shape), v.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        optimizer.set_state(OptimizerState {
            steps: self.optimizer_steps,
            buffers,
        });
        Ok(())
    }
}
