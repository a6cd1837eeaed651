//! Eigenvalues and eigenvectors of small dense symmetric matrices: Lanczos' tridiagonal
//! matrices (up to a few hundred rows) and the exact checks of the tests.
//!
//! [`symmetric_eigen`] is LAPACK's `dsyev` (through ndarray-linalg) in the `openblas` build and
//! the in-crate cyclic Jacobi method ([`jacobi_eigen`]) in the pure-Rust build, which has no
//! LAPACK. Both are accurate to a few units of machine precision relative to the matrix's
//! norm; the Jacobi method is kept in every build so that the tests can hold it to LAPACK.

use ndarray::Array2;

/// Eigenvalues (ascending) and the matching unit eigenvectors (as columns).
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// Eigenvalues, smallest first.
    pub values: Vec<f64>,
    /// Column `i` is the eigenvector of `values[i]` (its sign depends on the solver).
    pub vectors: Array2<f64>,
}

/// The eigendecomposition of a symmetric matrix, by the build's solver (see the module docs).
/// The matrix is symmetrised as (A + Aᵀ)/2 first, so both triangles are read; a matrix with a
/// NaN or infinite entry gives NaN eigenvalues and vectors.
///
/// # Panics
/// When `a` is not square.
pub fn symmetric_eigen(a: &Array2<f64>) -> SymmetricEigen {
    #[cfg(feature = "openblas")]
    return lapack_eigen(a);
    #[cfg(not(feature = "openblas"))]
    return jacobi_eigen(a);
}

/// (A + Aᵀ)/2, after checking that `a` is square.
fn symmetrised(a: &Array2<f64>, solver: &str) -> Array2<f64> {
    assert_eq!(
        a.nrows(),
        a.ncols(),
        "{solver}: matrix of shape {:?} is not square",
        a.shape()
    );
    (a + &a.t()) * 0.5
}

/// The answers that need no solver: nothing for an empty matrix (the LAPACK binding asserts a
/// nonzero size), and all NaN when `m` has a NaN or infinite entry — no eigendecomposition means
/// anything then, and neither solver should return finite-looking numbers (Jacobi's stopping
/// test passes at once on an infinite norm) or fail (LAPACK may not converge).
fn without_solving(m: &Array2<f64>) -> Option<SymmetricEigen> {
    let n = m.nrows();
    let fill = if n == 0 {
        0.0
    } else if m.iter().all(|x| x.is_finite()) {
        return None;
    } else {
        f64::NAN
    };
    Some(SymmetricEigen {
        values: vec![fill; n],
        vectors: Array2::from_elem((n, n), fill),
    })
}

/// [`symmetric_eigen`] by LAPACK's `dsyev` (implicit QL/QR on the tridiagonal reduction).
///
/// # Panics
/// When `a` is not square.
#[cfg(feature = "openblas")]
pub fn lapack_eigen(a: &Array2<f64>) -> SymmetricEigen {
    use ndarray_linalg::{Eigh, UPLO};
    let m = symmetrised(a, "lapack_eigen");
    if let Some(known) = without_solving(&m) {
        return known;
    }
    let n = m.nrows();
    // dsyev fails only when its QL/QR iteration does not converge, which does not happen on
    // finite symmetric input in practice; a failure there is a bug in the library.
    let (values, vectors) = m
        .eigh(UPLO::Upper)
        .unwrap_or_else(|e| panic!("lapack_eigen: dsyev failed on a finite {n}×{n} matrix: {e}"));
    SymmetricEigen {
        values: values.to_vec(),
        vectors,
    }
}

/// [`symmetric_eigen`] by the cyclic Jacobi method: simple, needs no LAPACK.
///
/// # Panics
/// When `a` is not square.
pub fn jacobi_eigen(a: &Array2<f64>) -> SymmetricEigen {
    let mut m = symmetrised(a, "jacobi_eigen");
    if let Some(known) = without_solving(&m) {
        return known;
    }
    let n = m.nrows();
    let mut v = Array2::<f64>::eye(n);
    let norm = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[[i, j]] * m[[i, j]])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * norm.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[[p, q]];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                // The rotation that zeroes m[p][q] (Golub & Van Loan, Algorithm 8.4.1).
                let theta = (m[[q, q]] - m[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[[k, p]], m[[k, q]]);
                    m[[k, p]] = c * mkp - s * mkq;
                    m[[k, q]] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[[p, k]], m[[q, k]]);
                    m[[p, k]] = c * mpk - s * mqk;
                    m[[q, k]] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[[i, i]].total_cmp(&m[[j, j]]));
    let values = order.iter().map(|&i| m[[i, i]]).collect();
    let vectors = Array2::from_shape_fn((n, n), |(r, c)| v[[r, order[c]]]);
    SymmetricEigen { values, vectors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstructs_a_random_symmetric_matrix() {
        let n = 12;
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5);
        let a = &b + &b.t();
        let e = jacobi_eigen(&a);
        let d = Array2::from_diag(&ndarray::Array1::from(e.values.clone()));
        let back = e.vectors.dot(&d).dot(&e.vectors.t());
        let err = (&back - &a).iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(err < 1e-12, "reconstruction error {err}");
        let orth = e.vectors.t().dot(&e.vectors) - Array2::<f64>::eye(n);
        assert!(orth.iter().all(|x| x.abs() < 1e-12));
        assert!(e.values.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn known_spectrum_of_the_second_difference_matrix() {
        // tridiag(−1, 2, −1) of size n has eigenvalues 2 − 2cos(kπ/(n+1)).
        let n = 20;
        let a = Array2::from_shape_fn((n, n), |(i, j)| match i.abs_diff(j) {
            0 => 2.0,
            1 => -1.0,
            _ => 0.0,
        });
        let e = jacobi_eigen(&a);
        for (k, v) in e.values.iter().enumerate() {
            let exact = 2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((v - exact).abs() < 1e-13, "{k}: {v} vs {exact}");
        }
    }
}
