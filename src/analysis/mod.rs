//! Analysis tools: speed against a hand-written baseline, scaling, and (later) the Hessian.

pub mod baseline;
pub mod performance;
