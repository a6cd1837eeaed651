//! Neural-network building blocks on the engine: the [`Module`] trait, [`Linear`] layers with
//! Xavier or He initialisation, activations, [`Sequential`], and the [`Mlp`] the trainer uses.

use crate::tensor::elem::Element;
use crate::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// A differentiable function with parameters.
pub trait Module<T: Element> {
    /// Applies the module to a batch.
    fn forward(&self, x: &Tensor<T>) -> Tensor<T>;

    /// The parameters with their names (`"0.weight"`, `"0.bias"`...), in a fixed order.
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)>;

    /// The parameters, in the order of [`named_parameters`](Module::named_parameters).
    fn parameters(&self) -> Vec<Tensor<T>> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Switches between training and evaluation behaviour (a no-op for modules without any,
    /// such as every module here; kept so that dropout-like modules fit the trait).
    fn set_training(&mut self, _training: bool) {}

    /// The number of scalar parameters.
    fn parameter_count(&self) -> usize {
        self.parameters().iter().map(|p| p.len()).sum()
    }
}

/// How a [`Linear`] layer's weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Glorot & Bengio (2010): `U(−a, a)`, `a = √(6 / (fan_in + fan_out))`, which keeps the
    /// variance of activations and of gradients about constant through tanh/sigmoid layers.
    Xavier,
    /// He et al. (2015): `U(−a, a)`, `a = √(6 / fan_in)`, twice Xavier's variance for a square
    /// layer, compensating ReLU zeroing half of its inputs.
    He,
}

/// An affine layer `y = x·W + b` with `W` of shape `in × out` and `b` of shape `out`.
///
/// ```
/// use ferrograd::nn::{Init, Linear, Module};
/// use ferrograd::Tensor;
/// let layer = Linear::<f32>::new(3, 2, Init::Xavier, 0);
/// let y = layer.forward(&Tensor::ones(&[4, 3]));
/// assert_eq!(y.shape(), vec![4, 2]);
/// assert_eq!(layer.parameter_count(), 3 * 2 + 2);
/// ```
#[derive(Clone, Debug)]
pub struct Linear<T: Element = f32> {
    /// Weights, `in × out`.
    pub weight: Tensor<T>,
    /// Bias, `out`.
    pub bias: Tensor<T>,
}

impl<T: Element> Linear<T> {
    /// A layer with weights drawn by `init` from `seed` and a zero bias.
    pub fn new(inputs: usize, outputs: usize, init: Init, seed: u64) -> Self {
        Self::with_rng(inputs, outputs, init, &mut StdRng::seed_from_u64(seed))
    }

    /// A layer drawing its weights from a caller's generator.
    pub fn with_rng(inputs: usize, outputs: usize, init: Init, rng: &mut StdRng) -> Self {
        let bound = match init {
            Init::Xavier => (6.0 / (inputs + outputs) as f64).sqrt(),
            Init::He => (6.0 / inputs as f64).sqrt(),
        };
        Linear {
            weight: Tensor::rand_uniform_with(&[inputs, outputs], -bound, bound, rng).with_grad(),
            bias: Tensor::zeros(&[outputs]).with_grad(),
        }
    }

    /// A layer from given weights (`in × out`) and bias (`out`).
    pub fn from_parts(weight: Tensor<T>, bias: Tensor<T>) -> Self {
        assert_eq!(
            weight.shape()[1..],
            bias.shape()[..],
            "Linear::from_parts: weight {:?} and bias {:?} do not fit",
            weight.shape(),
            bias.shape()
        );
        Linear {
            weight: weight.with_grad(),
            bias: bias.with_grad(),
        }
    }
}

impl<T: Element> Module<T> for Linear<T> {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.linear(&self.weight, Some(&self.bias))
    }
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }
}

/// The nonlinearities a layer can use: defined once each, in the engine
/// (`tensor::ops::activation`), and re-exported here.
pub use crate::tensor::ops::Activation;

impl<T: Element> Module<T> for Activation {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.activate(*self)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        Vec::new()
    }
}

/// Modules applied one after another.
pub struct Sequential<T: Element = f32> {
    layers: Vec<Box<dyn Module<T>>>,
}

impl<T: Element> Sequential<T> {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }
    /// Appends a module (builder style).
    pub fn push(mut self, m: impl Module<T> + 'static) -> Self {
        self.layers.push(Box::new(m));
        self
    }
}

impl<T: Element> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        self.layers.iter().fold(x.clone(), |h, m| m.forward(&h))
    }
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.named_parameters()
                    .into_iter()
                    .map(move |(n, p)| (format!("{i}.{n}"), p))
            })
            .collect()
    }
    fn set_training(&mut self, training: bool) {
        for m in &mut self.layers {
            m.set_training(training);
        }
    }
}

/// A multilayer perceptron: `Linear → act → … → Linear` (logits out, no final activation).
///
/// `Mlp::new(&[784, 128, 128, 128, 10], …)` is the default model: 134,794 parameters.
#[derive(Clone, Debug)]
pub struct Mlp<T: Element = f32> {
    /// The affine layers, first to last.
    pub layers: Vec<Linear<T>>,
    /// The nonlinearity between layers.
    pub activation: Activation,
}

impl<T: Element> Mlp<T> {
    /// An MLP with the given layer sizes (inputs, hidden..., outputs), weights drawn from `seed`.
    ///
    /// # Panics
    /// With fewer than two sizes or a zero size.
    pub fn new(sizes: &[usize], activation: Activation, init: Init, seed: u64) -> Self {
        assert!(
            sizes.len() >= 2 && sizes.iter().all(|&s| s > 0),
            "Mlp::new: need at least two positive layer sizes, got {sizes:?}"
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let layers = sizes
            .windows(2)
            .map(|w| Linear::with_rng(w[0], w[1], init, &mut rng))
            .collect();
        Mlp { layers, activation }
    }

    /// The layer sizes, inputs first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.layers[0].weight.shape()[0]];
        s.extend(self.layers.iter().map(|l| l.weight.shape()[1]));
        s
    }

    /// Mean cross-entropy of the logits against `labels`.
    pub fn loss(&self, x: &Tensor<T>, labels: &[usize]) -> Tensor<T> {
        self.forward(x).cross_entropy(labels)
    }
}

impl<T: Element> Module<T> for Mlp<T> {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        // Hidden layers fuse their activation into the affine op (one pass, one array kept).
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = if i < last {
                h.linear_act(&layer.weight, Some(&layer.bias), self.activation)
            } else {
                h.linear(&layer.weight, Some(&layer.bias))
            };
        }
        h
    }
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [
                    (format!("layers.{i}.weight"), l.weight.clone()),
                    (format!("layers.{i}.bias"), l.bias.clone()),
                ]
            })
            .collect()
    }
}
