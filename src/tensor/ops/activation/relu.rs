//! ReLU: `max(x, 0)`.

use super::Function;
use crate::tensor::elem::Element;
use crate::tensor::kernels::Cost;
use crate::tensor::Tensor;

/// `max(x, 0)`; its derivative at 0 is taken as 0.
#[derive(Clone, Copy, Debug)]
pub struct Relu;

impl Function for Relu {
    const NAME: &'static str = "relu";
    const COST: Cost = Cost::Cheap;
    const FROM_OUTPUT: bool = true;
    /// NaN is kept (PyTorch's `relu(NaN)` is NaN): every comparison with NaN is false, so it
    /// falls through to `x`.
    #[inline]
    fn value<T: Element>(x: T) -> T {
        if x <= T::zero() {
            T::zero()
        } else {
            x
        }
    }
    /// `[x > 0]`, read from the output: `y > 0` exactly when `x > 0`.
    #[inline]
    fn derivative<T: Element>(_x: T, y: T) -> T {
        if y <= T::zero() {
            T::zero()
        } else {
            T::one()
        }
    }
    /// The mask as one fused, differentiable op that reuses `g`'s buffer when it may.
    fn backward<T: Element>(_x: Option<&Tensor<T>>, y: &Tensor<T>, g: Tensor<T>) -> Tensor<T> {
        g.into_relu_grad(y)
    }
}
