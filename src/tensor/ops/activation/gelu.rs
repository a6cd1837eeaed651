//! GELU in the tanh approximation, as PyTorch's `gelu(approximate="tanh")`.

use super::{input, Function};
use crate::tensor::elem::Element;
use crate::tensor::kernels::Cost;
use crate::tensor::Tensor;

/// `½x(1 + tanh u)` with `u = √(2/π)(x + 0.044715x³)` (Hendrycks & Gimpel, 2016).
#[derive(Clone, Copy, Debug)]
pub struct Gelu;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;

impl Function for Gelu {
    const NAME: &'static str = "gelu";
    const COST: Cost = Cost::Expensive;
    const FROM_OUTPUT: bool = false;
    #[inline]
    fn value<T: Element>(x: T) -> T {
        let u = T::of(SQRT_2_OVER_PI) * (x + T::of(CUBIC) * x * x * x);
        T::of(0.5) * x * (T::one() + u.tanh())
    }
    /// `½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)` with `t = tanh u`.
    #[inline]
    fn derivative<T: Element>(x: T, _y: T) -> T {
        let c = T::of(SQRT_2_OVER_PI);
        let t = (c * (x + T::of(CUBIC) * x * x * x)).tanh();
        let half = T::of(0.5);
        half * (T::one() + t) + half * x * (T::one() - t * t) * c * (T::one() + T::of(3.0 * CUBIC) * x * x)
    }
    fn backward<T: Element>(x: Option<&Tensor<T>>, _y: &Tensor<T>, g: Tensor<T>) -> Tensor<T> {
        let x = input(x, Self::NAME);
        let x2 = x * x;
        let t = (x * &x2.mul_scalar(T::of(CUBIC)).add_scalar(T::one()))
            .mul_scalar(T::of(SQRT_2_OVER_PI))
            .tanh();
        let slope = x2
            .mul_scalar(T::of(3.0 * CUBIC))
            .add_scalar(T::one())
            .mul_scalar(T::of(SQRT_2_OVER_PI));
        let d = &t.add_scalar(T::one()) + &(&(x * &(&t * &t).rsub_scalar(T::one())) * &slope);
        &g * &d.mul_scalar(T::of(0.5))
    }
}

impl<T: Element> Tensor<T> {
    /// GELU (tanh approximation), elementwise: `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    pub fn gelu(&self) -> Tensor<T> {
        self.activate(super::Activation::Gelu)
    }
}
