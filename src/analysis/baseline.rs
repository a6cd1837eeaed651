//! A hand-written MLP: explicit forward and backward formulas on ndarray, no graph. It exists
//! only to measure what the autograd engine costs over code written for one model by hand,
//! with the same GEMM backend, the same update rule and the same data.

use crate::nn::{Activation, Mlp};
use crate::tensor::ops::activation::{Function, Visit};
use crate::tensor::short_k::SgdStep;
use crate::tensor::split::SplitChoice;
use crate::tensor::{kernels, pool};
use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

/// The weights and momentum buffers of an MLP trained by explicit formulas.
#[derive(Clone, Debug)]
pub struct HandwrittenMlp {
    weights: Vec<Array2<f32>>,
    biases: Vec<Array1<f32>>,
    weight_velocity: Vec<Array2<f32>>,
    bias_velocity: Vec<Array1<f32>>,
    /// Whether this step's weight updates run split over the GEMM threads.
    split: SplitChoice,
    activation: Activation,
}

/// SGD with momentum and weight decay, one pass: the optimiser's own kernel, split over the
/// GEMM threads where that is faster ([`sgd_update_split`](crate::optim::sgd_update_split)),
/// so that the comparison measures the graph and not a different update loop (the kernel's
/// streaming stores made the update several times faster; a plain loop here would credit that
/// to autograd).
fn sgd_update<D: ndarray::Dimension>(
    y: &mut ndarray::Array<f32, D>,
    v: &mut ndarray::Array<f32, D>,
    g: &ndarray::Array<f32, D>,
    (lr, momentum, weight_decay): (f32, f32, f32),
    choice: &SplitChoice,
) {
    match (y.as_slice_mut(), v.as_slice_mut(), g.as_slice()) {
        (Some(y), Some(v), Some(g)) => {
            let (mu, wd, lr) = (momentum as f64, weight_decay as f64, lr as f64);
            crate::optim::sgd_update_split(y, v, g, mu, wd, lr, false, choice);
        }
        // A gradient in another memory order (never made by `step`): the same formula.
        _ => Zip::from(y).and(v).and(g).for_each(|y, v, &g| {
            *v = momentum * *v + (g + weight_decay * *y);
            *y -= lr * *v;
        }),
    }
}

/// `z ← f(z + b)` for the activation `F`: its definition, written out as a loop.
struct BiasActivation<'a, 'b>(&'a mut Array2<f32>, ArrayView2<'b, f32>);

impl Visit for BiasActivation<'_, '_> {
    type Output = ();
    fn visit<F: Function>(self) {
        Zip::from(self.0)
            .and_broadcast(&self.1)
            .for_each(|z, &b| *z = F::value(*z + b));
    }
}

/// `d ← d · f'(z)` for the activation `F`, given the kept output `h = f(z)` and, for an
/// activation whose derivative needs it, the kept pre-activation `z` (else `h` again).
struct TimesDerivative<'a, 'b>(
    &'a mut Array2<f32>,
    ArrayView2<'b, f32>,
    ArrayView2<'b, f32>,
);

impl Visit for TimesDerivative<'_, '_> {
    type Output = ();
    fn visit<F: Function>(self) {
        Zip::from(self.0)
            .and(&self.1)
            .and(&self.2)
            .for_each(|d, &z, &h| *d *= F::derivative(z, h));
    }
}

impl HandwrittenMlp {
    /// A copy of `mlp`'s weights (so both start from the same point).
    pub fn from_mlp(mlp: &Mlp<f32>) -> Self {
        let weights: Vec<Array2<f32>> = mlp
            .layers
            .iter()
            .map(|l| l.weight.to_array().into_dimensionality().unwrap())
            .collect();
        let biases: Vec<Array1<f32>> = mlp
            .layers
            .iter()
            .map(|l| l.bias.to_array().into_dimensionality().unwrap())
            .collect();
        HandwrittenMlp {
            weight_velocity: weights.iter().map(|w| Array2::zeros(w.raw_dim())).collect(),
            bias_velocity: biases.iter().map(|b| Array1::zeros(b.raw_dim())).collect(),
            split: SplitChoice::default(),
            weights,
            biases,
            activation: mlp.activation,
        }
    }

    /// The weights, first layer first.
    pub fn weights(&self) -> &[Array2<f32>] {
        &self.weights
    }

    /// One SGD step on a batch; returns the mean cross-entropy before the update.
    pub fn step(
        &mut self,
        x: ArrayView2<f32>,
        labels: &[usize],
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> f32 {
        self.split.begin_cycle();
        let layers = self.weights.len();
        let n = x.nrows();
        // Forward, keeping every layer's output for the backward pass.
        let mut outputs: Vec<Array2<f32>> = Vec::with_capacity(layers);
        // Pre-activations, kept only when the activation's derivative needs them.
        let mut pre: Vec<Array2<f32>> = Vec::new();
        for l in 0..layers {
            let input = if l == 0 { x } else { outputs[l - 1].view() };
            let mut z = kernels::gemm(&input, &self.weights[l].view());
            let b = self.biases[l].view().insert_axis(Axis(0));
            if l + 1 < layers {
                if !self.activation.from_output() {
                    // Its derivative needs z + b: kept, and computed as the loop below does.
                    let mut kept = z.clone();
                    Zip::from(&mut kept)
                        .and_broadcast(&b)
                        .for_each(|z, &b| *z += b);
                    pre.push(kept);
                }
                self.activation.visit(BiasActivation(&mut z, b));
            } else {
                Zip::from(&mut z)
                    .and_broadcast(&b)
                    .for_each(|z, &b| *z += b);
            }
            outputs.push(z);
        }
        // Softmax cross-entropy; the logits' buffer becomes ∂L/∂logits = (p − onehot)/N.
        let mut g = outputs.pop().expect("at least one layer");
        let mut loss = 0.0f64;
        for (mut row, &label) in g.axis_iter_mut(Axis(0)).zip(labels) {
            let m = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            loss += (s.ln() - row[label].ln()) as f64;
            let scale = 1.0 / (s * n as f32);
            row.mapv_inplace(|v| v * scale);
            row[label] -= 1.0 / n as f32;
        }
        // Backward, updating each layer once its input gradient has been computed.
        let coefficients = (lr, momentum, weight_decay);
        for l in (0..layers).rev() {
            let input = if l == 0 { x } else { outputs[l - 1].view() };
            let gb = g.sum_axis(Axis(0));
            let gh = (l > 0).then(|| {
                let mut gh = kernels::gemm(&g.view(), &self.weights[l].t());
                let h = outputs[l - 1].view();
                let z = pre.get(l - 1).map_or(h, |z| z.view());
                self.activation.visit(TimesDerivative(&mut gh, z, h));
                gh
            });
            // The weight gradient applied straight from the product where the trainer's
            // optimiser does so, by the same function, so that the comparison measures the
            // graph and not a different update.
            let (m, out) = self.weights[l].dim();
            match (input.as_slice(), g.as_slice()) {
                (Some(x), Some(dz)) if crate::optim::product_update_applies(n, out) => {
                    let step = SgdStep {
                        momentum,
                        weight_decay,
                        lr,
                        nesterov: false,
                    };
                    crate::optim::sgd_product_update(
                        x,
                        dz,
                        (n, m, out),
                        self.weights[l].as_slice_mut().expect("row-major"),
                        self.weight_velocity[l].as_slice_mut().expect("row-major"),
                        step,
                        &self.split,
                    );
                }
                _ => {
                    let gw = kernels::gemm(&input.t(), &g.view());
                    sgd_update(
                        &mut self.weights[l],
                        &mut self.weight_velocity[l],
                        &gw,
                        coefficients,
                        &self.split,
                    );
                    pool::give_array(gw);
                }
            }
            sgd_update(
                &mut self.biases[l],
                &mut self.bias_velocity[l],
                &gb,
                coefficients,
                &self.split,
            );
            if let Some(gh) = gh {
                pool::give_array(std::mem::replace(&mut g, gh));
            }
        }
        // Back to the pool, as the engine's tensors go when the graph is dropped: both sides
        // reuse last step's buffers.
        outputs
            .into_iter()
            .chain(pre)
            .chain([g])
            .for_each(pool::give_array);
        (loss / n as f64) as f32
    }
}
