//! Reductions: sum, mean (composed from sum), max; over all elements or chosen axes.

use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::kernels::{self, Reduce};
use crate::tensor::Tensor;
use ndarray::IxDyn;

/// The shape after reducing `axes`, with or without keeping them as length 1.
fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    let mut out = Vec::with_capacity(shape.len());
    for (i, &d) in shape.iter().enumerate() {
        if !axes.contains(&i) {
            out.push(d);
        } else if keepdim {
            out.push(1);
        }
    }
    out
}

fn check_axes(op: &str, shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert!(
        sorted.len() == axes.len() && sorted.iter().all(|&a| a < shape.len()),
        "{op}: axes {axes:?} are not distinct axes of shape {shape:?}"
    );
    sorted
}

/// ∂ sum / ∂x: the gradient copied to every element that was summed.
pub(super) fn sum_backward<T: Element>(
    x: &Tensor<T>,
    axes: &[usize],
    keepdim: bool,
    g: &Tensor<T>,
) -> Tensor<T> {
    let shape = x.shape();
    let g = if keepdim {
        g.clone()
    } else {
        g.reshape(&reduced_shape(&shape, axes, true))
    };
    g.broadcast_to(&shape)
}

/// ∂ max / ∂x: the gradient goes to the maximal elements; `k` tied maxima get `1/k` each (the
/// rule of `maximum`, and of PyTorch's `amax`), so the gradient's sum is always kept.
pub(super) fn max_backward<T: Element>(
    x: &Tensor<T>,
    out: &Tensor<T>,
    axes: &[usize],
    keepdim: bool,
    g: &Tensor<T>,
) -> Tensor<T> {
    let shape = x.shape();
    let kept = reduced_shape(&shape, axes, true);
    let factor = {
        let xv = x.value();
        let ov = out.value();
        let ov = ov.view().into_shape_with_order(IxDyn(&kept)).unwrap();
        let ov = ov.broadcast(xv.raw_dim()).unwrap();
        let hits = ndarray::Zip::from(&xv.view())
            .and(&ov)
            // A NaN maximum came from the NaN elements: they share the gradient, as in
            // PyTorch's `max()` (`evenly_distribute_backward`).
            .map_collect(|&a, &m| {
                if a == m || (a.is_nan() && m.is_nan()) {
                    T::one()
                } else {
                    T::zero()
                }
            });
        let counts = kernels::reduce_axes(Reduce::Sum, &hits.view(), axes);
        (hits / &counts).into_shared()
    };
    let g = if keepdim { g.clone() } else { g.reshape(&kept) };
    g.broadcast_to(&shape).mul_const(factor)
}

impl<T: Element> Tensor<T> {
    /// The sum of all elements (a 0-D tensor).
    pub fn sum(&self) -> Tensor<T> {
        let axes: Vec<usize> = (0..self.ndim()).collect();
        self.sum_axes(&axes, false)
    }

    /// The sum over `axes`; with `keepdim` they stay as length 1.
    ///
    /// # Panics
    /// When an axis is out of range or repeated.
    pub fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Tensor<T> {
        let _p = crate::profile::scope("sum");
        let value = {
            let v = self.value();
            let axes = check_axes("sum", v.shape(), axes);
            let r = kernels::reduce_axes(Reduce::Sum, &v.view(), &axes);
            let shape = reduced_shape(v.shape(), &axes, keepdim);
            r.into_shape_with_order(IxDyn(&shape)).unwrap()
        };
        Tensor::from_op(
            value,
            Op::Sum {
                x: self.clone(),
                axes: axes.to_vec(),
                keepdim,
            },
        )
    }

    /// The mean of all elements (a 0-D tensor).
    pub fn mean(&self) -> Tensor<T> {
        let n = self.len();
        self.sum().mul_scalar(T::one() / T::of(n as f64))
    }

    /// The mean over `axes`; with `keepdim` they stay as length 1.
    pub fn mean_axes(&self, axes: &[usize], keepdim: bool) -> Tensor<T> {
        let shape = self.shape();
        let n: usize = axes.iter().map(|&a| shape[a]).product();
        self.sum_axes(axes, keepdim)
            .mul_scalar(T::one() / T::of(n as f64))
    }

    /// The largest element (a 0-D tensor). See [`max_axes`](Tensor::max_axes) for ties.
    pub fn max(&self) -> Tensor<T> {
        let axes: Vec<usize> = (0..self.ndim()).collect();
        self.max_axes(&axes, false)
    }

    /// The maximum over `axes`; with `keepdim` they stay as length 1.
    ///
    /// Gradient with ties: when `k` elements share the maximum, each receives `1/k` of the
    /// gradient (like PyTorch's `amax`), so the total gradient is kept and the rule is
    /// symmetric in the tied elements.
    ///
    /// # Panics
    /// When an axis is out of range or repeated, or a reduced axis is empty.
    pub fn max_axes(&self, axes: &[usize], keepdim: bool) -> Tensor<T> {
        let _p = crate::profile::scope("max");
        let value = {
            let v = self.value();
            let axes = check_axes("max", v.shape(), axes);
            assert!(
                axes.iter().all(|&a| v.shape()[a] > 0),
                "max: cannot reduce an empty axis of shape {:?}",
                v.shape()
            );
            let r = kernels::reduce_axes(Reduce::Max, &v.view(), &axes);
            let shape = reduced_shape(v.shape(), &axes, keepdim);
            r.into_shape_with_order(IxDyn(&shape)).unwrap()
        };
        Tensor::from_op(
            value,
            Op::Max {
                x: self.clone(),
                axes: axes.to_vec(),
                keepdim,
            },
        )
    }
}
