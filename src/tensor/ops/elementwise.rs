//! Elementwise functions of one tensor, with their derivatives.

use super::activation::{Activation, Function, Visit};
use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::{kernels, Tensor, Value};

/// Which elementwise function a unary op applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind<T> {
    /// `-x`
    Neg,
    /// `eˣ`
    Exp,
    /// `ln x`
    Log,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
    /// An activation function (ReLU, tanh, sigmoid, GELU, SiLU), defined in `activation/`.
    Activation(Activation),
    /// `√x`
    Sqrt,
    /// `|x|`
    Abs,
    /// `xᵖ` for a constant `p`
    PowScalar(T),
    /// `x + c`
    AddScalar(T),
    /// `c · x`
    MulScalar(T),
    /// `min(max(x, lo), hi)`
    Clamp(T, T),
}

impl<T: Element> UnaryKind<T> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            UnaryKind::Neg => "neg",
            UnaryKind::Exp => "exp",
            UnaryKind::Log => "log",
            UnaryKind::Sin => "sin",
            UnaryKind::Cos => "cos",
            UnaryKind::Activation(act) => act.as_str(),
            UnaryKind::Sqrt => "sqrt",
            UnaryKind::Abs => "abs",
            UnaryKind::PowScalar(_) => "pow",
            UnaryKind::AddScalar(_) => "add_scalar",
            UnaryKind::MulScalar(_) => "mul_scalar",
            UnaryKind::Clamp(..) => "clamp",
        }
    }
}

/// An activation applied elementwise by a loop monomorphised for its function (the plain op's
/// forward, and the fused linear kernel's when it keeps the pre-activation).
pub(super) struct MapActivation<'a, 'b, T>(pub(super) &'a ndarray::ArrayViewD<'b, T>);

impl<T: Element> Visit for MapActivation<'_, '_, T> {
    type Output = ndarray::ArrayD<T>;
    fn visit<F: Function>(self) -> ndarray::ArrayD<T> {
        kernels::map(self.0, F::COST, F::value)
    }
}

/// `kind` applied elementwise: one monomorphised loop per function (a `match` inside the
/// loop would stop the compiler from vectorising it).
fn forward<T: Element>(kind: UnaryKind<T>, a: &ndarray::ArrayViewD<T>) -> ndarray::ArrayD<T> {
    use kernels::Cost::{Cheap, Expensive};
    match kind {
        UnaryKind::Neg => kernels::map(a, Cheap, |x| -x),
        UnaryKind::Exp => kernels::map(a, Expensive, |x| x.exp()),
        UnaryKind::Log => kernels::map(a, Expensive, |x| x.ln()),
        UnaryKind::Sin => kernels::map(a, Expensive, |x| x.sin()),
        UnaryKind::Cos => kernels::map(a, Expensive, |x| x.cos()),
        UnaryKind::Activation(act) => act.visit(MapActivation(a)),
        UnaryKind::Sqrt => kernels::map(a, Cheap, |x| x.sqrt()),
        UnaryKind::Abs => kernels::map(a, Cheap, |x| x.abs()),
        UnaryKind::PowScalar(p) => kernels::map(a, Expensive, |x| x.powf(p)),
        UnaryKind::AddScalar(c) => kernels::map(a, Cheap, |x| x + c),
        UnaryKind::MulScalar(c) => kernels::map(a, Cheap, |x| x * c),
        UnaryKind::Clamp(lo, hi) => kernels::map(a, Cheap, |x| clamp(x, lo, hi)),
    }
}

/// ReLU's derivative applied to `g`: 0 where `x <= 0`, else `g` (so a NaN `x` passes `g`).
#[inline]
fn relu_keep<T: Element>(g: T, x: T) -> T {
    if x <= T::zero() {
        T::zero()
    } else {
        g
    }
}

fn check_relu_grad_shapes<T: Element>(g: &Tensor<T>, x: &Tensor<T>) {
    assert!(
        g.value().shape() == x.value().shape(),
        "relu_grad: gradient shape {:?} differs from input shape {:?}",
        g.shape(),
        x.shape()
    );
}

/// `min(max(x, lo), hi)` with NaN kept, as PyTorch's `clamp` (Rust's `f32::max` would return
/// `lo` for a NaN).
#[inline]
fn clamp<T: Element>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// ∂L/∂x of `out = kind(x)` given `g = ∂L/∂out`, in differentiable tensor ops.
pub(super) fn unary_backward<T: Element>(
    kind: &UnaryKind<T>,
    x: &Tensor<T>,
    out: &Tensor<T>,
    g: &Tensor<T>,
) -> Tensor<T> {
    let one = T::one();
    match *kind {
        UnaryKind::Neg => g.neg(),              // d(−x) = −1
        UnaryKind::Exp => g * out,              // d eˣ = eˣ
        UnaryKind::Log => g / x,                // d ln x = 1/x
        UnaryKind::Sin => g * &x.cos(),         // d sin x = cos x
        UnaryKind::Cos => (g * &x.sin()).neg(), // d cos x = −sin x
        UnaryKind::Activation(act) => act.backward(Some(x), out, g.clone()), // activation/
        UnaryKind::Sqrt => g / &out.mul_scalar(T::of(2.0)), // d √x = 1/(2√x)
        UnaryKind::Abs => g.mul_const(sign(&x.value())), // d |x| = sign x (0 at 0)
        UnaryKind::PowScalar(p) => g * &x.powf(p - one).mul_scalar(p), // d xᵖ = p xᵖ⁻¹
        UnaryKind::AddScalar(_) => g.clone(),   // d(x + c) = 1
        UnaryKind::MulScalar(c) => g.mul_scalar(c), // d(cx) = c
        UnaryKind::Clamp(lo, hi) => {
            // d clamp = [lo ≤ x ≤ hi]; at a bound we pass the gradient, as PyTorch does.
            let mask = x
                .value()
                .mapv(|v| if v >= lo && v <= hi { one } else { T::zero() });
            g.mul_const(mask.into_shared())
        }
    }
}

fn sign<T: Element>(v: &Value<T>) -> Value<T> {
    v.mapv(|x| {
        if x > T::zero() {
            T::one()
        } else if x < T::zero() {
            -T::one()
        } else {
            T::zero()
        }
    })
    .into_shared()
}

impl<T: Element> Tensor<T> {
    pub(crate) fn unary(&self, kind: UnaryKind<T>) -> Tensor<T> {
        let _p = crate::profile::scope(kind.name());
        let value = forward(kind, &self.value().view());
        Tensor::from_op(
            value,
            Op::Unary {
                x: self.clone(),
                kind,
            },
        )
    }

    /// `−x`
    pub fn neg(&self) -> Tensor<T> {
        self.unary(UnaryKind::Neg)
    }
    /// `eˣ`, elementwise.
    pub fn exp(&self) -> Tensor<T> {
        self.unary(UnaryKind::Exp)
    }
    /// Natural logarithm, elementwise.
    pub fn log(&self) -> Tensor<T> {
        self.unary(UnaryKind::Log)
    }
    /// Sine, elementwise.
    pub fn sin(&self) -> Tensor<T> {
        self.unary(UnaryKind::Sin)
    }
    /// Cosine, elementwise.
    pub fn cos(&self) -> Tensor<T> {
        self.unary(UnaryKind::Cos)
    }
    /// Hyperbolic tangent, elementwise.
    pub fn tanh(&self) -> Tensor<T> {
        self.activate(Activation::Tanh)
    }
    /// `max(x, 0)`, elementwise. Its derivative at 0 is taken as 0.
    pub fn relu(&self) -> Tensor<T> {
        self.activate(Activation::Relu)
    }
    /// The logistic sigmoid `1 / (1 + e⁻ˣ)`, elementwise and overflow-free.
    pub fn sigmoid(&self) -> Tensor<T> {
        self.activate(Activation::Sigmoid)
    }
    /// Square root, elementwise.
    pub fn sqrt(&self) -> Tensor<T> {
        self.unary(UnaryKind::Sqrt)
    }
    /// Absolute value, elementwise; its derivative at 0 is taken as 0.
    pub fn abs(&self) -> Tensor<T> {
        self.unary(UnaryKind::Abs)
    }
    /// `xᵖ` for a constant exponent, elementwise (see [`Tensor::pow`] for a tensor exponent).
    pub fn powf(&self, p: T) -> Tensor<T> {
        self.unary(UnaryKind::PowScalar(p))
    }
    /// `x²`, elementwise.
    pub fn square(&self) -> Tensor<T> {
        self * self
    }
    /// `x + c`
    pub fn add_scalar(&self, c: T) -> Tensor<T> {
        self.unary(UnaryKind::AddScalar(c))
    }
    /// `c · x`
    pub fn mul_scalar(&self, c: T) -> Tensor<T> {
        self.unary(UnaryKind::MulScalar(c))
    }
    /// `c − x`
    pub fn rsub_scalar(&self, c: T) -> Tensor<T> {
        self.neg().add_scalar(c)
    }
    /// `min(max(x, lo), hi)`, elementwise. Gradient 1 on `[lo, hi]` (bounds included), else 0.
    ///
    /// # Panics
    /// When `lo > hi`.
    pub fn clamp(&self, lo: T, hi: T) -> Tensor<T> {
        assert!(lo <= hi, "clamp: lower bound {lo} above upper bound {hi}");
        self.unary(UnaryKind::Clamp(lo, hi))
    }

    /// `self` where `x > 0`, else 0 (ReLU's backward, fused and itself differentiable). A NaN
    /// in `x` passes the gradient, as PyTorch's `threshold_backward` (`x <= 0 ? 0 : g`) does.
    pub(crate) fn relu_grad(&self, x: &Tensor<T>) -> Tensor<T> {
        check_relu_grad_shapes(self, x);
        let _p = crate::profile::scope("relu_grad");
        let value = kernels::zip_map(
            &self.value().view(),
            &x.value().view(),
            x.value().shape(),
            kernels::Cost::Cheap,
            relu_keep,
        );
        Tensor::from_op(
            value,
            Op::ReluGrad {
                grad: self.clone(),
                x: x.clone(),
            },
        )
    }

    /// [`relu_grad`](Tensor::relu_grad) of a gradient handed over by value: when nothing is
    /// recorded and this is the only handle to it, the buffer is masked in place (no
    /// allocation, and it is still in cache). Ownership is the permission: a caller that
    /// keeps the gradient keeps a handle, and then this allocates like `relu_grad`.
    pub(crate) fn into_relu_grad(mut self, x: &Tensor<T>) -> Tensor<T> {
        check_relu_grad_shapes(&self, x);
        if !crate::is_grad_enabled() {
            if let Some(v) = self.value_mut_if_unique() {
                let _p = crate::profile::scope("relu_grad");
                let xv = x.value();
                let same_layout = v.strides() == xv.strides();
                // An unconditional store of a select: vectorises, and no branch to mispredict
                // on the (random) signs — a branchy `if x <= 0 { g = 0 }` measured 20× slower.
                match (v.as_slice_memory_order_mut(), xv.as_slice_memory_order()) {
                    (Some(gs), Some(xs)) if same_layout => gs
                        .iter_mut()
                        .zip(xs)
                        .for_each(|(g, &x)| *g = relu_keep(*g, x)),
                    _ => ndarray::Zip::from(v.view_mut())
                        .and(&*xv)
                        .for_each(|g, &x| *g = relu_keep(*g, x)),
                }
                drop(xv);
                return self;
            }
        }
        self.relu_grad(x)
    }

    /// `x · factor` where `factor` is a constant broadcast to `x`'s shape.
    pub(crate) fn mul_const(&self, factor: Value<T>) -> Tensor<T> {
        let _p = crate::profile::scope("mul_const");
        let shape = self.shape();
        let value = kernels::zip_map(
            &self.value().view(),
            &factor.view(),
            &shape,
            kernels::Cost::Cheap,
            |x, f| x * f,
        );
        assert_eq!(
            value.shape(),
            &shape[..],
            "mul_const: factor of shape {:?} does not broadcast to {:?}",
            factor.shape(),
            shape
        );
        Tensor::from_op(
            value,
            Op::MulConst {
                x: self.clone(),
                factor,
            },
        )
    }
}
