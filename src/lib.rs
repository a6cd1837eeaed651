//! # ferrograd
//!
//! A reverse-mode automatic-differentiation engine written from scratch on `ndarray`, with
//! exact double backward for every op (so Hessian-vector products are exact), and the tools
//! built on it.
//!
//! ```
//! use ferrograd::Tensor;
//! // y = Σ (w·x + b)², differentiated with respect to w and b.
//! let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
//! let w = Tensor::scalar(0.5).with_grad();
//! let b = Tensor::scalar(-1.0).with_grad();
//! let y = (&(&x * &w) + &b).square().sum();
//! y.backward();
//! // dy/dw = Σ 2(wx + b)x = 2(−0.5·1 + 0·2 + 0.5·3) = 2
//! assert_eq!(w.grad().unwrap().item(), 2.0);
//! // dy/db = Σ 2(wx + b) = 0
//! assert_eq!(b.grad().unwrap().item(), 0.0);
//! ```

#![warn(missing_docs)]

#[cfg(feature = "openblas")]
extern crate blas_src;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod build_info;
pub mod tensor;

pub use data::load_dataset;
pub use predict::{load_model, predict};
pub use tensor::check::{gradcheck, gradgradcheck};
pub use tensor::elem::Element;
pub use tensor::functional::{hessian, hvp, jacobian, jvp, JacobianOperator};
pub use tensor::graph::{enable_grad, grad, is_grad_enabled, no_grad};
pub use tensor::Tensor;
pub use train::{train, TrainConfig};

/// The names most programs need: `use ferrograd::prelude::*;`.
pub mod prelude {
    pub use crate::tensor::elem::Element;
    pub use crate::tensor::graph::{grad, no_grad};
    pub use crate::tensor::Tensor;
    pub use crate::{hvp, threads};
}

pub mod analysis;
pub mod artifacts;
pub mod blas;
pub mod checkpoint;
pub mod cpu;
pub mod data;
#[cfg(feature = "cli")]
pub mod figures;
pub mod files;
pub mod limits;
pub mod lock;
pub mod nn;
pub mod optim;
#[cfg(feature = "cli")]
pub mod plot;
pub mod predict;
pub mod profile;
pub mod progress;
#[cfg(feature = "cli")]
pub mod prompt;
pub mod threads;
pub mod train;
pub mod validate;
