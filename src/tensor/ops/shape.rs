//! Ops that move elements without arithmetic: reshape, permute, broadcast and its adjoint,
//! slicing and its adjoint, concatenation, row gathering and its adjoint.
//!
//! Each op's gradient is its adjoint op, so every pair here is closed under differentiation.

use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::{kernels, Tensor};
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use std::rc::Rc;

/// `p⁻¹` such that `p⁻¹[p[i]] = i`.
pub(super) fn inverse_permutation(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &a) in p.iter().enumerate() {
        inv[a] = i;
    }
    inv
}

impl<T: Element> Tensor<T> {
    /// The same elements in row-major order, in another shape (shares the buffer when the
    /// tensor is contiguous).
    ///
    /// # Panics
    /// When the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Tensor<T> {
        let v = self.value().clone();
        let n: usize = shape.iter().product();
        assert_eq!(
            v.len(),
            n,
            "reshape: cannot reshape shape {:?} ({} elements) into {:?}",
            v.shape(),
            v.len(),
            shape
        );
        if v.shape() == shape {
            return self.clone();
        }
        let value = if v.is_standard_layout() {
            v.into_shape_with_order(IxDyn(shape)).unwrap()
        } else {
            v.as_standard_layout()
                .into_owned()
                .into_shared()
                .into_shape_with_order(IxDyn(shape))
                .unwrap()
        };
        Tensor::from_op_shared(value, Op::Reshape { x: self.clone() })
    }

    /// Flattens to one dimension.
    pub fn flatten(&self) -> Tensor<T> {
        self.reshape(&[self.len()])
    }

    /// Reorders the axes: axis `i` of the result is axis `axes[i]` of `self` (a view).
    ///
    /// # Panics
    /// When `axes` is not a permutation of `0..ndim`.
    pub fn permute(&self, axes: &[usize]) -> Tensor<T> {
        let v = self.value().clone();
        let mut seen = vec![false; v.ndim()];
        let valid = axes.len() == v.ndim()
            && axes
                .iter()
                .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
        assert!(
            valid,
            "permute: {axes:?} is not a permutation of the axes of shape {:?}",
            v.shape()
        );
        let value = v.permuted_axes(IxDyn(axes));
        Tensor::from_op_shared(
            value,
            Op::Permute {
                x: self.clone(),
                axes: axes.to_vec(),
            },
        )
    }

    /// Swaps two axes (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Tensor<T> {
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Broadcasts to `shape` by NumPy's rules.
    ///
    /// # Panics
    /// When `self`'s shape does not broadcast to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<T> {
        if self.value().shape() == shape {
            return self.clone();
        }
        let own = self.shape();
        let fits = own.len() <= shape.len()
            && kernels::broadcast_shapes("broadcast_to", &own, shape) == shape;
        assert!(
            fits,
            "broadcast_to: shape {own:?} cannot be broadcast to {shape:?}"
        );
        let value = self.value().broadcast(IxDyn(shape)).unwrap().to_owned();
        Tensor::from_op(value, Op::BroadcastTo { x: self.clone() })
    }

    /// Sums down to `shape`, the shape `self` was broadcast from: the adjoint of
    /// [`broadcast_to`](Tensor::broadcast_to), and what every binary op's backward uses to
    /// reduce a gradient to its input's shape.
    ///
    /// # Panics
    /// When `shape` does not broadcast to `self`'s shape.
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        if self.value().shape() == shape {
            return self.clone();
        }
        let own = self.shape();
        let fits =
            shape.len() <= own.len() && kernels::broadcast_shapes("sum_to", shape, &own) == own;
        assert!(fits, "sum_to: shape {own:?} cannot be summed to {shape:?}");
        let _p = crate::profile::scope("sum_to");
        let value = kernels::sum_to_shape(&self.value().view(), shape);
        Tensor::from_op(value, Op::SumTo { x: self.clone() })
    }

    /// Elements `start..end` along `axis` (a view).
    ///
    /// # Panics
    /// When the axis or range is out of bounds.
    pub fn slice(&self, axis: usize, start: usize, end: usize) -> Tensor<T> {
        let mut v = self.value().clone();
        assert!(
            axis < v.ndim() && start <= end && end <= v.shape()[axis],
            "slice: range {start}..{end} on axis {axis} is out of bounds for shape {:?}",
            v.shape()
        );
        v.slice_axis_inplace(Axis(axis), Slice::from(start..end));
        Tensor::from_op_shared(
            v,
            Op::Slice {
                x: self.clone(),
                axis,
                start,
            },
        )
    }

    /// `self` placed at `start` along `axis` in zeros of length `len` on that axis: the
    /// adjoint of [`slice`](Tensor::slice).
    pub(crate) fn embed(&self, axis: usize, start: usize, len: usize) -> Tensor<T> {
        let v = self.value();
        let mut shape = v.shape().to_vec();
        assert!(start + shape[axis] <= len, "embed: does not fit");
        shape[axis] = len;
        let mut out = ArrayD::zeros(IxDyn(&shape));
        out.slice_axis_mut(Axis(axis), Slice::from(start..start + v.shape()[axis]))
            .assign(&*v);
        drop(v);
        Tensor::from_op(
            out,
            Op::Embed {
                x: self.clone(),
                axis,
                start,
            },
        )
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    ///
    /// # Panics
    /// When `tensors` is empty or the shapes do not fit.
    pub fn concat(tensors: &[Tensor<T>], axis: usize) -> Tensor<T> {
        assert!(!tensors.is_empty(), "concat: no tensors to join");
        let values: Vec<_> = tensors.iter().map(|t| t.value().clone()).collect();
        let views: Vec<_> = values.iter().map(|v| v.view()).collect();
        let value = ndarray::concatenate(Axis(axis), &views).unwrap_or_else(|_| {
            let shapes: Vec<_> = values.iter().map(|v| v.shape().to_vec()).collect();
            panic!("concat: shapes {shapes:?} cannot be joined along axis {axis}")
        });
        Tensor::from_op(
            value,
            Op::Concat {
                xs: tensors.to_vec(),
                axis,
            },
        )
    }

    /// Rows (axis 0) picked by `indices`, in that order; an index may repeat.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn index_select(&self, indices: &[usize]) -> Tensor<T> {
        self.index_select_shared(Rc::from(indices))
    }

    pub(crate) fn index_select_shared(&self, indices: Rc<[usize]>) -> Tensor<T> {
        let _p = crate::profile::scope("index_select");
        let value = {
            let v = self.value();
            assert!(v.ndim() >= 1, "index_select: needs at least one dimension");
            if let Some(&bad) = indices.iter().find(|&&i| i >= v.shape()[0]) {
                panic!(
                    "index_select: index {bad} out of range for shape {:?}",
                    v.shape()
                );
            }
            v.select(Axis(0), &indices)
        };
        Tensor::from_op(
            value,
            Op::IndexSelect {
                x: self.clone(),
                indices,
            },
        )
    }

    /// Row `i` of `self` added into row `indices[i]` of a zero tensor with `rows` rows: the
    /// adjoint of [`index_select`](Tensor::index_select).
    pub(crate) fn scatter_add(&self, indices: Rc<[usize]>, rows: usize) -> Tensor<T> {
        let value = {
            let v = self.value();
            let mut shape = v.shape().to_vec();
            shape[0] = rows;
            let mut out = ArrayD::zeros(IxDyn(&shape));
            for (i, &r) in indices.iter().enumerate() {
                crate::tensor::kernels::add_assign(
                    out.index_axis_mut(Axis(0), r),
                    &v.index_axis(Axis(0), i),
                );
            }
            out
        };
        Tensor::from_op(
            value,
            Op::ScatterAdd {
                x: self.clone(),
                indices,
            },
        )
    }
}
