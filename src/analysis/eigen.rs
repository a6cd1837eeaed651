//! Eigenvalues and eigenvectors of small dense symmetric matrices by the cyclic Jacobi method:
//! simple, and accurate to a few units of machine precision relative to the matrix's norm.
//! Used for Lanczos' tridiagonal matrices (up to a few hundred rows) and for exact checks.

use ndarray::Array2;

/// Eigenvalues (ascending) and the matching unit eigenvectors (as columns).
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// Eigenvalues, smallest first.
    pub values: Vec<f64>,
    /// Column `i` is the eigenvector of `values[i]`.
    pub vectors: Array2<f64>,
}

/// The eigendecomposition of a symmetric matrix (only its upper triangle is read... and its
/// lower one: the matrix is symmetrised as (A + Aᵀ)/2 first).
///
/// # Panics
/// When `a` is not square.
pub fn symmetric_eigen(a: &Array2<f64>) -> SymmetricEigen {
    let n = a.nrows();
    assert_eq!(
        n,
        a.ncols(),
        "symmetric_eigen: matrix of shape {:?} is not square",
        a.shape()
    );
    let mut m = (a + &a.t()) * 0.5;
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
        let e = symmetric_eigen(&a);
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
        let e = symmetric_eigen(&a);
        for (k, v) in e.values.iter().enumerate() {
            let exact = 2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((v - exact).abs() < 1e-13, "{k}: {v} vs {exact}");
        }
    }
}
