//! The hyperbolic tangent.

use super::Function;
use crate::tensor::elem::Element;
use crate::tensor::kernels::Cost;
use crate::tensor::Tensor;

/// `tanh x`.
#[derive(Clone, Copy, Debug)]
pub struct Tanh;

impl Function for Tanh {
    const NAME: &'static str = "tanh";
    const COST: Cost = Cost::Expensive;
    const FROM_OUTPUT: bool = true;
    #[inline]
    fn value<T: Element>(x: T) -> T {
        x.tanh()
    }
    /// `1 − tanh²x`
    #[inline]
    fn derivative<T: Element>(_x: T, y: T) -> T {
        T::one() - y * y
    }
    fn backward<T: Element>(_x: Option<&Tensor<T>>, y: &Tensor<T>, g: Tensor<T>) -> Tensor<T> {
        &g * &(y * y).rsub_scalar(T::one())
    }
}
