//! Analysis tools: speed against a hand-written baseline, scaling, and (later) the Hessian.

pub mod baseline;
pub mod eigen;
pub mod hessian;
pub mod lanczos;
pub mod performance;
pub mod scaling;
