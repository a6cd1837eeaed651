//! A model's parameters as one flat vector, the form the Lanczos routines work in: parameters
//! in `Module::parameters` order, each row-major.

use crate::Tensor;
use ndarray::{Array2, ArrayD, IxDyn};

/// Splits the flat `v` into tensors shaped like `params`.
///
/// # Panics
/// When `v`'s length is not the parameters' total size (`what` names the caller).
pub fn split(params: &[Tensor<f64>], v: &[f64], what: &str) -> Vec<Tensor<f64>> {
    let n: usize = params.iter().map(|p| p.len()).sum();
    assert_eq!(v.len(), n, "{what}: vector of the wrong length");
    let mut offset = 0;
    params
        .iter()
        .map(|p| {
            let len = p.len();
            let t = Tensor::from_array(
                ArrayD::from_shape_vec(IxDyn(&p.shape()), v[offset..offset + len].to_vec())
                    .expect("sizes match"),
            );
            offset += len;
            t
        })
        .collect()
}

/// Concatenates tensors into one flat vector.
pub fn join(ts: &[Tensor<f64>]) -> Vec<f64> {
    ts.iter().flat_map(|t| t.to_vec()).collect()
}

/// The `n × n` matrix of a linear operator, one product per column (small operators only).
pub fn dense(n: usize, apply: impl Fn(&[f64]) -> Vec<f64>) -> Array2<f64> {
    let mut m = Array2::zeros((n, n));
    let mut e = vec![0.0; n];
    for j in 0..n {
        e[j] = 1.0;
        for (i, v) in apply(&e).into_iter().enumerate() {
            m[[i, j]] = v;
        }
        e[j] = 0.0;
    }
    m
}
