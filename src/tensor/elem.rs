//! The element trait: what a tensor can hold (`f32` for training, `f64` for exact checks).

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive};
use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A floating-point element type usable in a [`Tensor`](crate::Tensor): `f32` or `f64`.
///
/// The bounds are what the kernels need: arithmetic and transcendental functions (`Float`),
/// GEMM (`LinalgScalar`), scalar broadcasting in ndarray (`ScalarOperand`) and sharing across
/// rayon's threads (`Send + Sync`).
pub trait Element:
    Float
    + FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + Sum
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + serde::Serialize
    + for<'de> serde::Deserialize<'de>
    + 'static
{
    /// The type's name as users write it (`"f32"`, `"f64"`).
    const NAME: &'static str;

    /// Converts from `f64`, rounding to the nearest representable value.
    fn of(x: f64) -> Self;

    /// Widens to `f64` exactly.
    fn to_f64_lossless(self) -> f64;
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self as f64
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
