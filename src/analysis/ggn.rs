//! The generalised Gauss–Newton matrix of the mean cross-entropy, `G = Jᵀ H_ℓ J`, as an
//! operator `v ↦ G·v`.
//!
//! `J` is the Jacobian of the logits (all samples) with respect to the parameters and `H_ℓ` the
//! Hessian of the mean cross-entropy with respect to the logits: block diagonal, one block
//! `(diag(p) − ppᵀ)/N` per sample with `p` its softmax probabilities. `G` is the Hessian
//! without the term that carries the network's own curvature (`Σ ∂ℓ/∂z · ∇²z`), so it is
//! positive semi-definite, and equal to the Hessian when the logits are affine in the
//! parameters. Papyan (JMLR 2020) traces the Hessian's top outliers, about one per class, to it.

use super::flat;
use crate::nn::{Mlp, Module};
use crate::tensor::functional::JacobianOperator;
use crate::{enable_grad, Tensor};
use ndarray::{Array2, Axis};

/// `v ↦ G·v` for a model's mean cross-entropy on fixed inputs.
///
/// The logits' graph and the transposed Jacobian's graph are built once; each product is then
/// `J·v` (one backward pass through the transposed graph), `H_ℓ` applied in closed form, and
/// `Jᵀ·w` (one backward pass through the logits' graph), about the cost of a Hessian-vector
/// product.
pub struct GgnOperator {
    params: Vec<Tensor<f64>>,
    jacobian: JacobianOperator<f64>,
    /// Softmax probabilities, one row per sample.
    probs: Array2<f64>,
}

impl GgnOperator {
    /// The Gauss–Newton matrix of `model`'s mean cross-entropy on the inputs `x` (one row per
    /// sample). The labels are not needed: `H_ℓ` depends on the probabilities only.
    pub fn new(model: &Mlp<f64>, x: &Array2<f64>) -> Self {
        let _mode = enable_grad();
        let params = model.parameters();
        let logits = model.forward(&Tensor::from_array(x.clone()));
        let probs = logits
            .detach()
            .softmax(1)
            .to_array()
            .into_dimensionality()
            .expect("logits are a matrix");
        GgnOperator {
            jacobian: JacobianOperator::new(&logits, &params),
            params,
            probs,
        }
    }

    /// Number of parameters (`G` is `dim × dim`).
    pub fn dim(&self) -> usize {
        self.params.iter().map(|p| p.len()).sum()
    }

    /// `G·v` for a flat `v` (parameters in `Module::parameters` order, each row-major).
    ///
    /// # Panics
    /// When `v.len() != dim()`.
    pub fn apply(&self, v: &[f64]) -> Vec<f64> {
        let vs = flat::split(&self.params, v, "GgnOperator::apply");
        let jv: Array2<f64> = self
            .jacobian
            .jvp(&vs)
            .to_array()
            .into_dimensionality()
            .expect("logits are a matrix");
        let w = logit_hessian_times(&self.probs, &jv);
        flat::join(&self.jacobian.vjp(&Tensor::from_array(w)))
    }

    /// The full matrix, one product per column (small models only).
    pub fn dense(&self) -> Array2<f64> {
        flat::dense(self.dim(), |v| self.apply(v))
    }
}

/// `H_ℓ·r` for the mean cross-entropy over `N = probs.nrows()` samples: row by row,
/// `(p ⊙ r − p (p·r)) / N`.
pub fn logit_hessian_times(probs: &Array2<f64>, r: &Array2<f64>) -> Array2<f64> {
    assert_eq!(
        probs.dim(),
        r.dim(),
        "logit_hessian_times: probabilities and direction differ in shape"
    );
    let n = probs.nrows() as f64;
    let pr = (probs * r).sum_axis(Axis(1)).insert_axis(Axis(1));
    (probs * &(r - &pr)) / n
}
