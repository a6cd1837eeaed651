//! Gradient checks by central differences in `f64`, first and second order, run over the
//! catalogue of every op ([`op_cases`], in `catalogue.rs`) by `ferrograd gradcheck`.
//!
//! The error reported is `max |analytic − numeric| / max(1, max |numeric|)` over all entries:
//! relative to the gradient's scale when that is at least 1, absolute below it (so that a
//! gradient of 1e-9 against 0 does not read as a 100% error).

pub use super::catalogue::{op_cases, OpCase};
use super::graph::{enable_grad, grad, no_grad};
use super::Tensor;
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A scalar or tensor function of several `f64` tensors, the thing being checked.
pub type CheckFn = dyn Fn(&[Tensor<f64>]) -> Tensor<f64>;

/// The step of the central differences: the truncation error (∝ h²) and the rounding error
/// (∝ 1e-16/h) balance near 1e-5..1e-6 in `f64`.
pub const STEP: f64 = 1e-6;

/// The tolerance `ferrograd gradcheck` applies to both orders.
pub const TOLERANCE: f64 = 1e-6;

fn max_error(analytic: &[ArrayD<f64>], numeric: &[ArrayD<f64>]) -> f64 {
    let scale = numeric
        .iter()
        .flat_map(|a| a.iter())
        .fold(1.0f64, |m, &x| m.max(x.abs()));
    let diff = analytic
        .iter()
        .zip(numeric)
        .flat_map(|(a, n)| a.iter().zip(n.iter()).map(|(x, y)| (x - y).abs()))
        .fold(0.0f64, |m, d| if d.is_nan() { f64::NAN } else { m.max(d) });
    diff / scale
}

/// Central differences of the scalar function `s` at `inputs`, one entry at a time.
fn numeric_gradient(s: &dyn Fn(&[Tensor<f64>]) -> f64, inputs: &[ArrayD<f64>]) -> Vec<ArrayD<f64>> {
    let _mode = no_grad();
    let mut out = Vec::with_capacity(inputs.len());
    for k in 0..inputs.len() {
        let mut g = ArrayD::zeros(inputs[k].raw_dim());
        for j in 0..inputs[k].len() {
            let at = |delta: f64| {
                let xs: Vec<Tensor<f64>> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let mut a = a.clone();
                        if i == k {
                            a.as_slice_mut().unwrap()[j] += delta;
                        }
                        Tensor::from_array(a)
                    })
                    .collect();
                s(&xs)
            };
            g.as_slice_mut().unwrap()[j] = (at(STEP) - at(-STEP)) / (2.0 * STEP);
        }
        out.push(g);
    }
    out
}

pub(crate) fn leaves(inputs: &[ArrayD<f64>]) -> Vec<Tensor<f64>> {
    inputs
        .iter()
        .map(|a| Tensor::from_array(a.as_standard_layout().into_owned()).with_grad())
        .collect()
}

fn standard(inputs: &[ArrayD<f64>]) -> Vec<ArrayD<f64>> {
    inputs
        .iter()
        .map(|a| a.as_standard_layout().into_owned())
        .collect()
}

/// Fixed random weights of `shape`, so that a tensor output is checked through the scalar
/// `Σ f(x) ⊙ w`, which exercises every output element with a different weight.
fn weights(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(0.5..1.5))
}

fn output_shape(f: &CheckFn, inputs: &[ArrayD<f64>]) -> Vec<usize> {
    let _mode = no_grad();
    let xs: Vec<_> = inputs
        .iter()
        .map(|a| Tensor::from_array(a.clone()))
        .collect();
    f(&xs).shape().to_vec()
}

/// First-order check: the gradient of `Σ f(x) ⊙ w` from backward (both without and with
/// `create_graph`, the two paths a user can take) against central differences. Returns the
/// larger of the two errors.
pub fn gradcheck(f: &CheckFn, inputs: &[ArrayD<f64>]) -> f64 {
    let inputs = standard(inputs);
    let w = Tensor::from_array(weights(&output_shape(f, &inputs), 7));
    let s = |xs: &[Tensor<f64>]| (&f(xs) * &w).sum();
    let numeric = numeric_gradient(&|xs| s(xs).item(), &inputs);
    let mut worst = 0.0f64;
    for create_graph in [false, true] {
        let _mode = enable_grad();
        let xs = leaves(&inputs);
        let out = s(&xs);
        let analytic: Vec<ArrayD<f64>> = grad(&[out], &xs, None, create_graph)
            .iter()
            .map(|g| g.to_array())
            .collect();
        let e = max_error(&analytic, &numeric);
        worst = if e.is_nan() { f64::NAN } else { worst.max(e) };
    }
    worst
}

/// Second-order check, as PyTorch's `gradgradcheck`: with `u` the output's gradient treated
/// as an input and fixed random directions `v`, the scalar `h(x, u) = Σₖ ⟨∂⟨f(x), u⟩/∂xₖ, vₖ⟩`
/// is differentiated by double backward (with respect to every `xₖ` and `u`) and compared
/// with central differences of `h` computed by first-order backward. This checks every
/// backward rule's own derivative: the Hessian-vector products `H·v` and the Jacobian `J·v`.
pub fn gradgradcheck(f: &CheckFn, inputs: &[ArrayD<f64>]) -> f64 {
    let inputs = standard(inputs);
    let out_shape = output_shape(f, &inputs);
    let mut rng = StdRng::seed_from_u64(11);
    let v: Vec<Tensor<f64>> = inputs
        .iter()
        .map(|a| {
            Tensor::from_array(ArrayD::from_shape_fn(a.raw_dim(), |_| {
                StandardNormal.sample(&mut rng)
            }))
        })
        .collect();
    let mut all = inputs.clone();
    all.push(weights(&out_shape, 13));
    let n = inputs.len();
    // h(x, u) with the inner gradient built with or without a graph.
    let h = |xs: &[Tensor<f64>], create_graph: bool| -> Tensor<f64> {
        let _mode = enable_grad();
        let ins: Vec<Tensor<f64>> = xs[..n]
            .iter()
            .map(|t| {
                if t.requires_grad() {
                    t.clone()
                } else {
                    t.detach().with_grad()
                }
            })
            .collect();
        let s = (&f(&ins) * &xs[n]).sum();
        let gs = grad(&[s], &ins, None, create_graph);
        let mut total = Tensor::scalar(0.0);
        for (g, vk) in gs.iter().zip(&v) {
            total = total + (g * vk).sum();
        }
        total
    };
    let numeric = numeric_gradient(&|xs| h(xs, false).item(), &all);
    let xs = leaves(&all);
    let out = h(&xs, true);
    let analytic: Vec<ArrayD<f64>> = if out.requires_grad() {
        grad(&[out], &xs, None, false)
            .iter()
            .map(|g| g.to_array())
            .collect()
    } else {
        all.iter().map(|a| ArrayD::zeros(a.raw_dim())).collect()
    };
    max_error(&analytic, &numeric)
}

/// The result of checking one op.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OpReport {
    /// The op's name.
    pub op: String,
    /// The first-order error (see the module's documentation).
    pub first_order: f64,
    /// The second-order error.
    pub second_order: f64,
    /// Whether both errors are within [`TOLERANCE`].
    pub pass: bool,
}

/// Checks every op of [`op_cases`], first and second order.
pub fn check_all(seed: u64) -> Vec<OpReport> {
    op_cases(seed)
        .into_iter()
        .map(|c| {
            let first = gradcheck(&*c.f, &c.inputs);
            let second = gradgradcheck(&*c.f, &c.inputs);
            OpReport {
                op: c.name,
                first_order: first,
                second_order: second,
                pass: first <= TOLERANCE && second <= TOLERANCE,
            }
        })
        .collect()
}
