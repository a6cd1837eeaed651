//! The ops: each family's forward and vector-Jacobian product side by side in one file.
//!
//! `Op` lists every recorded operation; `Op::backward` is one exhaustive `match`, so an op
//! without a gradient rule does not compile. Every rule is written with differentiable tensor
//! ops: during a plain backward pass they run under no-grad and record nothing, and with
//! `create_graph` they record the graph of the gradient itself, which is what makes double
//! backward (and so exact Hessian-vector products) work for every op.

pub mod activation;
mod binary;
mod elementwise;
mod matmul;
mod reduce;
mod shape;
mod softmax;

pub use activation::{Activation, Function};
pub use binary::BinaryKind;
pub use elementwise::UnaryKind;

use super::elem::Element;
use super::{Tensor, Value};
use std::cell::Cell;
use std::rc::Rc;

/// Hands an input and a thunk computing its gradient to the accumulator; the thunk is called
/// only when the input requires a gradient.
pub(crate) type Give<'a, T> = dyn FnMut(&Tensor<T>, &dyn Fn() -> Tensor<T>) + 'a;

/// One recorded operation: its inputs and the state its backward needs.
pub(crate) enum Op<T: Element> {
    /// Elementwise function of one tensor.
    Unary { x: Tensor<T>, kind: UnaryKind<T> },
    /// `grad` where `x > 0`, else 0: ReLU's backward as one fused, differentiable op.
    ReluGrad { grad: Tensor<T>, x: Tensor<T> },
    /// `x * factor` with a constant (non-differentiated) factor broadcast to `x`'s shape.
    MulConst { x: Tensor<T>, factor: Value<T> },
    /// Elementwise function of two tensors, broadcast like NumPy.
    Binary {
        a: Tensor<T>,
        b: Tensor<T>,
        kind: BinaryKind,
    },
    /// 2-D matrix product.
    MatMul { a: Tensor<T>, b: Tensor<T> },
    /// Fused affine map and activation `act(x·W + b)` (W is `in × out`); `pre` keeps
    /// `x·W + b` for an activation whose derivative needs its input.
    Linear {
        x: Tensor<T>,
        w: Tensor<T>,
        b: Option<Tensor<T>>,
        act: Option<Activation>,
        pre: Option<Value<T>>,
    },
    /// Same elements, another shape.
    Reshape { x: Tensor<T> },
    /// Axes reordered: `out.shape[i] = x.shape[axes[i]]`.
    Permute { x: Tensor<T>, axes: Vec<usize> },
    /// Broadcast up to a larger shape.
    BroadcastTo { x: Tensor<T> },
    /// Summed down to a shape `x` was broadcast from (the adjoint of `BroadcastTo`).
    SumTo { x: Tensor<T> },
    /// `x[start..start + len]` along `axis`.
    Slice {
        x: Tensor<T>,
        axis: usize,
        start: usize,
    },
    /// `x` placed at `start` along `axis` in a zero tensor (the adjoint of `Slice`).
    Embed {
        x: Tensor<T>,
        axis: usize,
        start: usize,
    },
    /// Tensors joined along `axis`.
    Concat { xs: Vec<Tensor<T>>, axis: usize },
    /// Rows of `x` (axis 0) picked by `indices`, repeats allowed.
    IndexSelect { x: Tensor<T>, indices: Rc<[usize]> },
    /// Rows of `x` added into row `indices[i]` of a zero tensor (the adjoint of `IndexSelect`).
    ScatterAdd { x: Tensor<T>, indices: Rc<[usize]> },
    /// Sum over `axes`.
    Sum {
        x: Tensor<T>,
        axes: Vec<usize>,
        keepdim: bool,
    },
    /// Maximum over `axes`.
    Max {
        x: Tensor<T>,
        axes: Vec<usize>,
        keepdim: bool,
    },
    /// Mean cross-entropy of `logits` (N × C) against integer labels, fused and stable.
    CrossEntropy {
        logits: Tensor<T>,
        labels: Rc<[usize]>,
    },
    /// `(softmax(logits) − one_hot(labels)) · g / N`: cross-entropy's backward as one fused,
    /// differentiable op (`g` is the 0-D gradient of the loss).
    CrossEntropyGrad {
        logits: Tensor<T>,
        labels: Rc<[usize]>,
        g: Tensor<T>,
    },
}

impl<T: Element> Op<T> {
    /// The op's name, as gradcheck and error messages print it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Unary { kind, .. } => kind.name(),
            Op::ReluGrad { .. } => "relu_grad",
            Op::MulConst { .. } => "mul_const",
            Op::Binary { kind, .. } => kind.name(),
            Op::MatMul { .. } => "matmul",
            Op::Linear { .. } => "linear",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::BroadcastTo { .. } => "broadcast_to",
            Op::SumTo { .. } => "sum_to",
            Op::Slice { .. } => "slice",
            Op::Embed { .. } => "embed",
            Op::Concat { .. } => "concat",
            Op::IndexSelect { .. } => "index_select",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Sum { .. } => "sum",
            Op::Max { .. } => "max",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::CrossEntropyGrad { .. } => "cross_entropy_grad",
        }
    }

    /// Calls `f` on every input tensor.
    pub(crate) fn for_each_input(&self, mut f: impl FnMut(&Tensor<T>)) {
        match self {
            Op::Unary { x, .. }
            | Op::MulConst { x, .. }
            | Op::Reshape { x }
            | Op::Permute { x, .. }
            | Op::BroadcastTo { x }
            | Op::SumTo { x }
            | Op::Slice { x, .. }
            | Op::Embed { x, .. }
            | Op::IndexSelect { x, .. }
            | Op::ScatterAdd { x, .. }
            | Op::Sum { x, .. }
            | Op::Max { x, .. }
            | Op::CrossEntropy { logits: x, .. } => f(x),
            Op::ReluGrad { grad, x } => {
                f(grad);
                f(x)
            }
            Op::CrossEntropyGrad { logits, g, .. } => {
                f(logits);
                f(g)
            }
            Op::Binary { a, b, .. } | Op::MatMul { a, b } => {
                f(a);
                f(b)
            }
            Op::Linear { x, w, b, .. } => {
                f(x);
                f(w);
                if let Some(b) = b {
                    f(b)
                }
            }
            Op::Concat { xs, .. } => xs.iter().for_each(f),
        }
    }

    pub(crate) fn any_input_requires_grad(&self) -> bool {
        let mut any = false;
        self.for_each_input(|t| any |= t.requires_grad());
        any
    }

    /// The vector-Jacobian product: given `g = ∂L/∂out`, hands `∂L/∂input` to `acc` for every
    /// input that requires a gradient (and computes nothing for the others).
    ///
    /// `g` comes by value: a rule may overwrite its buffer (ReLU's mask does) — and can only
    /// do so when no other handle to it exists, which `Tensor::value_mut_if_unique` proves
    /// with `Rc::get_mut`. A caller that still needs `g` afterwards passes a clone, and the
    /// rule then allocates; no rule ever writes through a borrowed gradient.
    pub(crate) fn backward(
        &self,
        out: &Tensor<T>,
        g: Tensor<T>,
        acc: &mut dyn FnMut(&Tensor<T>, Tensor<T>),
        offer: crate::tensor::graph::ProductHandler<'_, T>,
    ) {
        let mut give = |x: &Tensor<T>, grad: &dyn Fn() -> Tensor<T>| {
            if x.requires_grad() {
                acc(x, grad())
            }
        };
        // The arms that reuse `g` move it into the thunk (which `give` calls at most once);
        // all others borrow it.
        let once = |g: Tensor<T>| Cell::new(Some(g));
        match self {
            // Each activation's rule is in its file under `activation/`.
            Op::Unary {
                x,
                kind: UnaryKind::Activation(act),
            } => {
                let g = once(g);
                give(x, &|| act.backward(Some(x), out, g.take().unwrap()))
            }
            Op::Unary { x, kind } => give(x, &|| elementwise::unary_backward(kind, x, out, &g)),
            // Linear in `grad`.
            Op::ReluGrad { grad, x } => {
                let g = once(g);
                give(grad, &|| g.take().unwrap().into_relu_grad(x))
            }
            Op::MulConst { x, factor } => give(x, &|| g.mul_const(factor.clone())),
            Op::Binary { a, b, kind } => binary::backward(*kind, a, b, out, &g, &mut give),
            Op::MatMul { a, b } => {
                give(a, &|| g.matmul(&b.t())); // ∂(AB)/∂A: G·Bᵀ
                give(b, &|| a.t().matmul(&g)); // ∂(AB)/∂B: Aᵀ·G
            }
            Op::Linear { x, w, b, act, pre } => {
                // ∂L/∂z for z = x·W + b: the activation's derivative.
                let dz = matmul::activation_backward(*act, x, w, b.as_ref(), pre.as_ref(), out, g);
                if crate::is_grad_enabled() {
                    give(x, &|| dz.matmul(&w.t())); // ∂z/∂x: dz·Wᵀ
                    give(w, &|| x.t().matmul(&dz)); // ∂z/∂W: xᵀ·dz
                    if let Some(b) = b {
                        give(b, &|| dz.sum_to(&b.shape())); // ∂z/∂b: Σ over the batch
                    }
                } else {
                    // No graph of the gradient: the same products and sum (same bits) on
                    // the arrays, without building tensors for the transposes.
                    matmul::linear_backward_arrays(x, w, b.as_ref(), &dz, &mut give, offer);
                }
            }
            Op::Reshape { x } => give(x, &|| g.reshape(&x.shape())),
            Op::Permute { x, axes } => give(x, &|| g.permute(&shape::inverse_permutation(axes))),
            Op::BroadcastTo { x } => give(x, &|| g.sum_to(&x.shape())),
            Op::SumTo { x } => give(x, &|| g.broadcast_to(&x.shape())),
            Op::Slice { x, axis, start } => give(x, &|| g.embed(*axis, *start, x.shape()[*axis])),
            Op::Embed { x, axis, start } => {
                give(x, &|| g.slice(*axis, *start, *start + x.shape()[*axis]))
            }
            Op::Concat { xs, axis } => {
                let mut start = 0;
                for x in xs {
                    let len = x.shape()[*axis];
                    give(x, &|| g.slice(*axis, start, start + len));
                    start += len;
                }
            }
            Op::IndexSelect { x, indices } => {
                give(x, &|| g.scatter_add(indices.clone(), x.shape()[0]))
            }
            Op::ScatterAdd { x, indices } => give(x, &|| g.index_select_shared(indices.clone())),
            Op::Sum { x, axes, keepdim } => {
                give(x, &|| reduce::sum_backward(x, axes, *keepdim, &g))
            }
            Op::Max { x, axes, keepdim } => {
                give(x, &|| reduce::max_backward(x, out, axes, *keepdim, &g))
            }
            // ∂ mean CE / ∂ logits = (softmax − one_hot) · g / N, as one fused op.
            Op::CrossEntropy { logits, labels } => {
                give(logits, &|| logits.cross_entropy_grad(labels.clone(), &g))
            }
            Op::CrossEntropyGrad {
                logits,
                labels,
                g: scale,
            } => softmax::cross_entropy_grad_backward(logits, labels, scale, &g, &mut give),
        }
    }
}
