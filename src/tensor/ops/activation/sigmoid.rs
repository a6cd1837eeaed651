//! The logistic sigmoid.

use super::Function;
use crate::tensor::elem::Element;
use crate::tensor::kernels::Cost;
use crate::tensor::Tensor;

/// `1 / (1 + e⁻ˣ)`, computed without overflow for large |x|.
#[derive(Clone, Copy, Debug)]
pub struct Sigmoid;

impl Function for Sigmoid {
    const NAME: &'static str = "sigmoid";
    const COST: Cost = Cost::Expensive;
    const FROM_OUTPUT: bool = true;
    /// `e⁻ˣ` only for `x ≥ 0` and `eˣ` otherwise, so neither overflows.
    #[inline]
    fn value<T: Element>(x: T) -> T {
        if x >= T::zero() {
            T::one() / (T::one() + (-x).exp())
        } else {
            let e = x.exp();
            e / (T::one() + e)
        }
    }
    /// `σ(1 − σ)`
    #[inline]
    fn derivative<T: Element>(_x: T, y: T) -> T {
        y * (T::one() - y)
    }
    fn backward<T: Element>(_x: Option<&Tensor<T>>, y: &Tensor<T>, g: Tensor<T>) -> Tensor<T> {
        &g * &(y * &y.rsub_scalar(T::one()))
    }
}
