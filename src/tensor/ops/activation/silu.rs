//! SiLU (swish): `x·σ(x)`.

use super::Sigmoid;
use super::{input, Function};
use crate::tensor::elem::Element;
use crate::tensor::kernels::Cost;
use crate::tensor::Tensor;

/// `x·σ(x)` (Elfwing et al., 2018; Ramachandran et al.'s swish with β = 1).
#[derive(Clone, Copy, Debug)]
pub struct Silu;

impl Function for Silu {
    const NAME: &'static str = "silu";
    const COST: Cost = Cost::Expensive;
    const FROM_OUTPUT: bool = false;
    #[inline]
    fn value<T: Element>(x: T) -> T {
        x * Sigmoid::value(x)
    }
    /// `σ(x)(1 + x(1 − σ(x)))`
    #[inline]
    fn derivative<T: Element>(x: T, _y: T) -> T {
        let s = Sigmoid::value(x);
        s * (T::one() + x * (T::one() - s))
    }
    fn backward<T: Element>(x: Option<&Tensor<T>>, _y: &Tensor<T>, g: Tensor<T>) -> Tensor<T> {
        let x = input(x, Self::NAME);
        let s = x.sigmoid();
        &g * &(&s * &(x * &s.rsub_scalar(T::one())).add_scalar(T::one()))
    }
}

impl<T: Element> Tensor<T> {
    /// SiLU (swish), elementwise: `x·σ(x)`.
    pub fn silu(&self) -> Tensor<T> {
        self.activate(super::Activation::Silu)
    }
}
