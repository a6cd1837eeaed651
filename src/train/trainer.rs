//! One training step, the same everywhere: `train`, `compare`, `analyze performance` (the
//! autograd side), `analyze scaling` and the benches all call [`Trainer::step`], so what is
//! timed is what trains.

use crate::data::Dataset;
use crate::nn::{Mlp, Module};
use crate::optim::{backward_and_step, clip_grad_norm, Optimizer};
use crate::Tensor;
use std::time::Instant;

/// Seconds of each phase of training steps.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Phases {
    /// Getting the batch's rows: the wait for the loader thread in [`Trainer::steps`] (which
    /// gathers the next batch while a step runs), the whole gather in [`Trainer::step_on`].
    pub data: f64,
    /// Forward pass and loss.
    pub forward: f64,
    /// Backward pass, with the update fused into it (or, when clipping, followed by it).
    pub backward: f64,
    /// Clearing gradients before the step.
    pub optimizer: f64,
}

impl Phases {
    /// Adds `o`'s seconds to these.
    pub fn add(&mut self, o: &Phases) {
        self.data += o.data;
        self.forward += o.forward;
        self.backward += o.backward;
        self.optimizer += o.optimizer;
    }

    /// All phases together.
    pub fn total(&self) -> f64 {
        self.data + self.forward + self.backward + self.optimizer
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug)]
pub struct StepOutcome {
    /// Mean loss of the batch before the update.
    pub loss: f64,
    /// Rows of the batch the model classified correctly before the update.
    pub correct: usize,
    /// Where the step's time went.
    pub phases: Phases,
}

/// Why a step could not go on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Divergence {
    /// The loss itself was NaN or infinite (nothing was updated).
    Loss(f64),
    /// The update wrote a NaN or infinite parameter (`loss` is the batch's loss before it). A
    /// NaN weight need not reach the loss (a saturated tanh turns ±∞ into ±1), so the
    /// parameters are checked by the update that wrote them.
    Parameters {
        /// The batch's loss before the update.
        loss: f64,
    },
}

/// The model, its optimizer and the update rule's settings: everything a step needs.
pub struct Trainer {
    /// The network being trained.
    pub model: Mlp<f32>,
    params: Vec<Tensor<f32>>,
    /// The optimizer and its state (momentum buffers...).
    pub optimizer: Box<dyn Optimizer<f32>>,
    /// Clip the global gradient norm to this before each update.
    pub clip_grad_norm: Option<f64>,
    /// The learning rate of the next steps (the schedule's value for the current epoch).
    pub lr: f64,
}

impl Trainer {
    /// A trainer for `model` with `optimizer`.
    pub fn new(model: Mlp<f32>, optimizer: Box<dyn Optimizer<f32>>, lr: f64) -> Trainer {
        Trainer {
            params: model.parameters(),
            model,
            optimizer,
            clip_grad_norm: None,
            lr,
        }
    }

    /// One step on the rows `indices` of `data`: gather, forward, loss, backward and update.
    pub fn step_on(
        &mut self,
        data: &Dataset,
        indices: &[usize],
    ) -> Result<StepOutcome, Divergence> {
        let start = Instant::now();
        let x = data.batch_tensor(indices);
        let labels = data.labels_of(indices);
        let gathered = start.elapsed().as_secs_f64();
        let mut outcome = self.step(&x, &labels)?;
        outcome.phases.data = gathered;
        Ok(outcome)
    }

    /// Steps over `batches` of `data` in order, each batch gathered on a loader thread while
    /// the step before it runs ([`data::for_each_batch`](crate::data::for_each_batch); on the
    /// calling thread when the run uses one thread, `--threads 1`); after each step,
    /// `each(b, trainer, outcome)`. The outcome's `data` phase is the time the step waited for
    /// its rows. Stops at the first error `each` returns.
    pub fn steps<E>(
        &mut self,
        data: &Dataset,
        batches: &[Vec<usize>],
        mut each: impl FnMut(usize, &Trainer, Result<StepOutcome, Divergence>) -> Result<(), E>,
    ) -> Result<(), E> {
        crate::data::for_each_batch(data, batches, |b, x, waited| {
            let outcome = self
                .step(&Tensor::from_array(x), &data.labels_of(&batches[b]))
                .map(|mut o| {
                    o.phases.data = waited;
                    o
                });
            each(b, self, outcome)
        })
    }

    /// One step on a batch `x` (rows) with its labels: gradients cleared, forward, mean
    /// cross-entropy, backward with each layer updated as soon as its gradient is complete
    /// (or, with clipping, all gradients first). Errs, naming what, when the loss or an
    /// updated parameter is not finite.
    pub fn step(&mut self, x: &Tensor<f32>, labels: &[usize]) -> Result<StepOutcome, Divergence> {
        let t0 = Instant::now();
        for p in &self.params {
            p.zero_grad();
        }
        let t1 = Instant::now();
        let logits = self.model.forward(x);
        let loss = logits.cross_entropy(labels);
        let l = loss.item() as f64;
        if !l.is_finite() {
            return Err(Divergence::Loss(l));
        }
        let t2 = Instant::now();
        let finite = match self.clip_grad_norm {
            Some(max) => {
                loss.backward();
                clip_grad_norm(&self.params, max);
                self.optimizer.step(&self.params, self.lr)
            }
            None => backward_and_step(&loss, &self.params, self.optimizer.as_mut(), self.lr),
        };
        let t3 = Instant::now();
        if !finite {
            return Err(Divergence::Parameters { loss: l });
        }
        let correct = crate::predict::correct_rows(&logits, labels);
        Ok(StepOutcome {
            loss: l,
            correct,
            phases: Phases {
                data: 0.0,
                forward: (t2 - t1).as_secs_f64(),
                backward: (t3 - t2).as_secs_f64(),
                optimizer: (t1 - t0).as_secs_f64(),
            },
        })
    }
}

/// What a training run reports as it goes; the command line draws progress bars and prints
/// epoch lines, a library user may log or stay silent (every method does nothing by default).
pub trait Observer {
    /// A message about the run as a whole ("resuming after epoch 3 of 20").
    fn message(&mut self, _text: &str) {}
    /// Epoch `epoch` (1-based) of `epochs` starts, with `steps` steps.
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// Step `step` (0-based) of the epoch is done; `mean_loss` is the epoch's so far.
    fn step_done(&mut self, _step: usize, _mean_loss: f64) {}
    /// The epoch is done and evaluated.
    fn epoch_done(&mut self, _metrics: &super::EpochMetrics, _epochs: usize) {}
    /// A curvature point was measured; `momentum` gives its stability threshold (`None`:
    /// an optimizer without one).
    fn curvature(
        &mut self,
        _point: &crate::analysis::curvature::CurvaturePoint,
        _momentum: Option<crate::analysis::curvature::Momentum>,
    ) {
    }
}

/// An observer that reports nothing.
pub struct Silent;

impl Observer for Silent {}
