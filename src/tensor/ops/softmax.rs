//! Softmax, log-softmax, log-sum-exp (composed from primitives, so their derivatives of every
//! order come for free) and the fused cross-entropy (one pass forward, a closed-form backward).

use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::kernels::Reduce;
use crate::tensor::Tensor;
use ndarray::{Axis, Ix2};
use std::rc::Rc;

/// The backward of [`Op::CrossEntropyGrad`] `O = s·(P − Y)` with `P = softmax(logits)` and
/// `s = g/N`, given the upstream gradient `U`:
/// ∂/∂logits: `s · P ⊙ (U − Σⱼ (P ⊙ U)ⱼ)` per row (the softmax Jacobian diag(p) − ppᵀ),
/// ∂/∂g: `Σ (P − Y) ⊙ U / N`.
/// Written in composed ops, so third and higher derivatives work too; only double backward
/// (Hessian-vector products) ever runs it.
pub(super) fn cross_entropy_grad_backward<T: Element>(
    logits: &Tensor<T>,
    labels: &[usize],
    g: &Tensor<T>,
    upstream: &Tensor<T>,
    give: &mut super::Give<'_, T>,
) {
    let n = logits.shape()[0];
    let inv_n = T::one() / T::of(n as f64);
    let probs = || logits.softmax(1);
    give(logits, &|| {
        let p = probs();
        let pu = &p * upstream;
        let row = pu.sum_axes(&[1], true);
        (&pu - &(&p * &row)) * g.mul_scalar(inv_n)
    });
    give(g, &|| {
        let y = Tensor::from_array(one_hot::<T>(labels, logits.shape()[1]));
        ((probs() - y) * upstream).sum().mul_scalar(inv_n)
    });
}

fn one_hot<T: Element>(labels: &[usize], classes: usize) -> ndarray::Array2<T> {
    let mut y = ndarray::Array2::<T>::zeros((labels.len(), classes));
    for (i, &l) in labels.iter().enumerate() {
        y[[i, l]] = T::one();
    }
    y
}

impl<T: Element> Tensor<T> {
    /// `log Σ exp(x)` over `axis`, computed stably by shifting by the (constant) maximum.
    pub fn logsumexp(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        // The shift m is detached: log Σ e^(x−m) + m does not depend on m, so treating it as a
        // constant leaves every derivative exact.
        let m = self.max_axes(&[axis], true).detach();
        let lse = (self - &m).exp().sum_axes(&[axis], true).log() + m;
        if keepdim {
            lse
        } else {
            let mut shape = self.shape().to_vec();
            shape.remove(axis);
            lse.reshape(&shape)
        }
    }

    /// `exp(x) / Σ exp(x)` over `axis`, stable for large inputs.
    pub fn softmax(&self, axis: usize) -> Tensor<T> {
        let m = self.max_axes(&[axis], true).detach();
        let e = (self - &m).exp();
        let s = e.sum_axes(&[axis], true);
        e / s
    }

    /// `x − logsumexp(x)` over `axis`: the log of the softmax without its underflow.
    pub fn log_softmax(&self, axis: usize) -> Tensor<T> {
        self - &self.logsumexp(axis, true)
    }

    /// `(softmax(self) − one_hot(labels)) · g / N` in one pass per row: the gradient of
    /// [`cross_entropy`](Tensor::cross_entropy) with respect to the logits.
    pub(crate) fn cross_entropy_grad(&self, labels: Rc<[usize]>, g: &Tensor<T>) -> Tensor<T> {
        let _p = crate::profile::scope("cross_entropy_grad");
        let value = {
            let v = self.value();
            let x = v.view().into_dimensionality::<Ix2>().expect("2-D logits");
            let n = x.nrows();
            let scale = g.item() / T::of(n as f64);
            let mut out = x.to_owned();
            for (mut row, &label) in out.axis_iter_mut(Axis(0)).zip(labels.iter()) {
                let m = row
                    .iter()
                    .fold(Reduce::Max.identity(), |a, &b| Reduce::Max.combine(a, b));
                row.mapv_inplace(|z| (z - m).exp());
                let inv = scale / row.sum();
                row.mapv_inplace(|e| e * inv);
                row[label] = row[label] - scale;
            }
            out.into_dyn()
        };
        Tensor::from_op(
            value,
            Op::CrossEntropyGrad {
                logits: self.clone(),
                labels,
                g: g.clone(),
            },
        )
    }

    /// Mean cross-entropy of `logits` (N × C) against integer class `labels` (N values in
    /// `0..C`): `(1/N) Σᵢ (logsumexp(logitsᵢ) − logitsᵢ[labelᵢ])`, computed in one stable pass.
    ///
    /// # Panics
    /// When `logits` is not 2-D, the label count is not N, or a label is not below C.
    pub fn cross_entropy(&self, labels: &[usize]) -> Tensor<T> {
        let _p = crate::profile::scope("cross_entropy");
        let value = {
            let v = self.value();
            let x = v.view().into_dimensionality::<Ix2>().unwrap_or_else(|_| {
                panic!(
                    "cross_entropy: logits must be 2-D, got shape {:?}",
                    v.shape()
                )
            });
            let (n, c) = x.dim();
            assert_eq!(
                labels.len(),
                n,
                "cross_entropy: {} labels for logits of shape {:?}",
                labels.len(),
                v.shape()
            );
            let mut total = 0.0f64;
            for (row, &label) in x.axis_iter(Axis(0)).zip(labels) {
                assert!(
                    label < c,
                    "cross_entropy: label {label} out of range for {c} classes"
                );
                let m = row
                    .iter()
                    .fold(Reduce::Max.identity(), |a, &b| Reduce::Max.combine(a, b));
                let s: T = row.iter().map(|&z| (z - m).exp()).sum();
                total += (m + s.ln() - row[label]).to_f64_lossless();
            }
            ndarray::arr0(T::of(total / n as f64)).into_dyn()
        };
        Tensor::from_op(
            value,
            Op::CrossEntropy {
                logits: self.clone(),
                labels: Rc::from(labels),
            },
        )
    }
}
