//! Elementwise functions of two tensors, broadcast like NumPy, with their derivatives.
//!
//! Every rule ends in [`Tensor::sum_to`], the one helper that reduces a broadcast gradient back
//! to its input's shape (a no-op, without a copy, when no broadcasting happened).

use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::kernels::{
    self,
    Cost::{Cheap, Expensive},
};
use crate::tensor::Tensor;
use std::ops;

/// Which two-argument function a binary op applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// `a + b`
    Add,
    /// `a − b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b`
    Div,
    /// `aᵇ`
    Pow,
    /// `max(a, b)`
    Maximum,
    /// `min(a, b)`
    Minimum,
}

impl BinaryKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
            BinaryKind::Pow => "pow_tensor",
            BinaryKind::Maximum => "maximum",
            BinaryKind::Minimum => "minimum",
        }
    }
}

/// The share of the gradient that goes to `a` in `max(a, b)` (`greater = true`) or `min(a, b)`:
/// 0 where `a` loses, ½ on a tie — a tie splits the gradient evenly, so `max(x, x)` has
/// derivative 1 like `x` itself — else 1. As in PyTorch (`masked_fill_(a < b, 0)`), a NaN on
/// either side makes neither lose, so the gradient reaches both; `b`'s share is this with the
/// arguments swapped.
fn winner_share<T: Element>(a: T, b: T, greater: bool) -> T {
    let loses = if greater { a < b } else { a > b };
    if a == b {
        T::of(0.5)
    } else if loses {
        T::zero()
    } else {
        T::one()
    }
}

/// `max(a, b)` (`greater`) or `min(a, b)` with NaN kept, as PyTorch's `maximum`/`minimum`
/// (Rust's `f32::max` returns the other argument).
#[inline]
fn extremum<T: Element>(a: T, b: T, greater: bool) -> T {
    let a_wins = if greater { a > b } else { a < b };
    if a_wins || a.is_nan() {
        a
    } else {
        b
    }
}

pub(super) fn backward<T: Element>(
    kind: BinaryKind,
    a: &Tensor<T>,
    b: &Tensor<T>,
    out: &Tensor<T>,
    g: &Tensor<T>,
    give: &mut super::Give<'_, T>,
) {
    let (sa, sb) = (a.shape(), b.shape());
    match kind {
        BinaryKind::Add => {
            give(a, &|| g.sum_to(&sa)); // ∂(a+b)/∂a = 1
            give(b, &|| g.sum_to(&sb)); // ∂(a+b)/∂b = 1
        }
        BinaryKind::Sub => {
            give(a, &|| g.sum_to(&sa)); // ∂(a−b)/∂a = 1
            give(b, &|| g.neg().sum_to(&sb)); // ∂(a−b)/∂b = −1
        }
        BinaryKind::Mul => {
            give(a, &|| (g * b).sum_to(&sa)); // ∂(ab)/∂a = b
            give(b, &|| (g * a).sum_to(&sb)); // ∂(ab)/∂b = a
        }
        BinaryKind::Div => {
            give(a, &|| (g / b).sum_to(&sa)); // ∂(a/b)/∂a = 1/b
            give(b, &|| (g * out / b).neg().sum_to(&sb)); // ∂(a/b)/∂b = −a/b² = −out/b
        }
        BinaryKind::Pow => {
            // ∂aᵇ/∂a = b·aᵇ⁻¹
            give(a, &|| {
                (g * &(b * &a.pow(&b.add_scalar(-T::one())))).sum_to(&sa)
            });
            // ∂aᵇ/∂b = aᵇ·ln a
            give(b, &|| (g * &(out * &a.log())).sum_to(&sb));
        }
        BinaryKind::Maximum | BinaryKind::Minimum => {
            let greater = kind == BinaryKind::Maximum;
            let shape = out.shape();
            let share = |first: &Tensor<T>, second: &Tensor<T>| {
                kernels::zip_map(
                    &first.value().view(),
                    &second.value().view(),
                    &shape,
                    Cheap,
                    |x, y| winner_share(x, y, greater),
                )
                .into_shared()
            };
            give(a, &|| g.mul_const(share(a, b)).sum_to(&sa));
            give(b, &|| g.mul_const(share(b, a)).sum_to(&sb));
        }
    }
}

impl<T: Element> Tensor<T> {
    pub(crate) fn binary(&self, other: &Tensor<T>, kind: BinaryKind) -> Tensor<T> {
        let _p = crate::profile::scope(kind.name());
        let value = {
            let (a, b) = (self.value(), other.value());
            let shape = kernels::broadcast_shapes(kind.name(), a.shape(), b.shape());
            let (a, b) = (a.view(), b.view());
            match kind {
                BinaryKind::Add => kernels::zip_map(&a, &b, &shape, Cheap, |x, y| x + y),
                BinaryKind::Sub => kernels::zip_map(&a, &b, &shape, Cheap, |x, y| x - y),
                BinaryKind::Mul => kernels::zip_map(&a, &b, &shape, Cheap, |x, y| x * y),
                BinaryKind::Div => kernels::zip_map(&a, &b, &shape, Cheap, |x, y| x / y),
                BinaryKind::Pow => kernels::zip_map(&a, &b, &shape, Expensive, |x, y| x.powf(y)),
                BinaryKind::Maximum => {
                    kernels::zip_map(&a, &b, &shape, Cheap, |x, y| extremum(x, y, true))
                }
                BinaryKind::Minimum => {
                    kernels::zip_map(&a, &b, &shape, Cheap, |x, y| extremum(x, y, false))
                }
            }
        };
        Tensor::from_op(
            value,
            Op::Binary {
                a: self.clone(),
                b: other.clone(),
                kind,
            },
        )
    }

    /// `self + other`, broadcast.
    pub fn add(&self, other: &Tensor<T>) -> Tensor<T> {
        self.binary(other, BinaryKind::Add)
    }
    /// `self − other`, broadcast.
    pub fn sub(&self, other: &Tensor<T>) -> Tensor<T> {
        self.binary(other, BinaryKind::Sub)
    }
    /// `self · other` elementwise, broadcast.
    pub fn mul(&self, other: &Tensor<T>) -> Tensor<T> {
        self.binary(other, BinaryKind::Mul)
    }
    /// `self / other` elementwise, broadcast.
    pub fn div(&self, other: &Tensor<T>) -> Tensor<T> {
        self.binary(other, BinaryKind::Div)
    }
    /// `selfᵒᵗʰᵉʳ` elementwise, broadcast. The gradient with respect to the exponent needs
    /// `self > 0` (it contains `ln self`).
    pub fn pow(&self, exponent: &Tensor<T>) -> Tensor<T> {
        self.binary(exponent, BinaryKind::Pow)
    }
    /// Elementwise maximum, broadcast; a tie splits the gradient evenly between the two.
    pub fn maximum(&self, other: &Tensor<T>) -> Tensor<T> {
        self.binary(other, BinaryKind::Maximum)
    }
    /// Elementwise minimum, broadcast; a tie splits the gradient evenly between the two.
    pub fn minimum(&self, other: &Tensor<T>) -> Tensor<T> {
        self.binary(other, BinaryKind::Minimum)
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $kind:ident) => {
        impl<T: Element> ops::$trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                self.binary(rhs, BinaryKind::$kind)
            }
        }
        impl<T: Element> ops::$trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                self.binary(&rhs, BinaryKind::$kind)
            }
        }
        impl<T: Element> ops::$trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                self.binary(rhs, BinaryKind::$kind)
            }
        }
        impl<T: Element> ops::$trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                self.binary(&rhs, BinaryKind::$kind)
            }
        }
    };
}

operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);

impl<T: Element> ops::Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}

impl<T: Element> ops::Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(&self)
    }
}

impl<T: Element> ops::Mul<T> for &Tensor<T> {
    type Output = Tensor<T>;
    fn mul(self, c: T) -> Tensor<T> {
        self.mul_scalar(c)
    }
}

impl<T: Element> ops::Add<T> for &Tensor<T> {
    type Output = Tensor<T>;
    fn add(self, c: T) -> Tensor<T> {
        self.add_scalar(c)
    }
}
