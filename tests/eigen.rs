//! The pure-Rust Jacobi eigensolver held to LAPACK's `dsyev` (the openblas build's solver) on
//! random symmetric matrices: dense, with repeated eigenvalues, tridiagonal like Lanczos', and
//! Wilkinson's matrices with their nearly equal pairs, over sizes and scales. Eigenvalues agree
//! to 1e-10 of the matrix's norm; eigenvectors up to sign, or for a cluster of (nearly) equal
//! eigenvalues as a subspace, to the accuracy the gap to the other eigenvalues allows.
#![cfg(feature = "openblas")]

use ferrograd::analysis::eigen::{jacobi_eigen, lapack_eigen, SymmetricEigen};
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random orthogonal matrix: the product of `n` Householder reflections (so that neither
/// solver under test is used to make it).
fn orthogonal(n: usize, rng: &mut StdRng) -> Array2<f64> {
    let mut q = Array2::<f64>::eye(n);
    for _ in 0..n {
        let u = Array1::from_shape_fn(n, |_| rng.random_range(-1.0..1.0));
        let uu = u.dot(&u);
        if uu > 0.0 {
            // q ← q (I − 2uuᵀ/uᵀu)
            let qu = q.dot(&u);
            for i in 0..n {
                for j in 0..n {
                    q[[i, j]] -= 2.0 * qu[i] * u[j] / uu;
                }
            }
        }
    }
    q
}

/// The kinds of matrix Lanczos and the tests hand the solver.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Entries uniform in (−1, 1), symmetrised.
    Dense,
    /// Q diag(λ) Qᵀ with λ drawn from five values, so most eigenvalues are repeated.
    Repeated,
    /// Random α, β; some β exactly zero or tiny, splitting the matrix into (nearly) decoupled
    /// blocks whose spectra may coincide.
    Tridiagonal,
    /// Wilkinson's W⁺: tridiag(1, |n/2 − i|, 1), with pairs of eigenvalues that agree to many
    /// digits.
    Wilkinson,
}

fn matrix(kind: Kind, n: usize, seed: u64, scale: f64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let a = match kind {
        Kind::Dense => {
            let b = Array2::from_shape_fn((n, n), |_| rng.random_range(-1.0..1.0));
            &b + &b.t()
        }
        Kind::Repeated => {
            let lambdas =
                Array1::from_shape_fn(n, |_| [-2.0, -0.5, 0.0, 1.0, 3.0][rng.random_range(0..5)]);
            let q = orthogonal(n, &mut rng);
            q.dot(&Array2::from_diag(&lambdas)).dot(&q.t())
        }
        Kind::Tridiagonal => {
            let mut t = Array2::zeros((n, n));
            for i in 0..n {
                t[[i, i]] = rng.random_range(-1.0..1.0);
                if i + 1 < n {
                    let b = match rng.random_range(0..8) {
                        0 => 0.0,
                        1 => 1e-13 * rng.random_range(0.0..1.0),
                        _ => rng.random_range(0.0..1.0),
                    };
                    t[[i, i + 1]] = b;
                    t[[i + 1, i]] = b;
                }
            }
            t
        }
        Kind::Wilkinson => Array2::from_shape_fn((n, n), |(i, j)| match i.abs_diff(j) {
            0 => (n as f64 / 2.0 - i as f64).abs(),
            1 => 1.0,
            _ => 0.0,
        }),
    };
    a * scale
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// `‖AV − VΛ‖` and `‖VᵀV − I‖` (largest entries): is it an eigendecomposition at all?
fn defects(a: &Array2<f64>, e: &SymmetricEigen) -> (f64, f64) {
    let n = a.nrows();
    let lambda = Array2::from_diag(&Array1::from(e.values.clone()));
    let residual = max_abs(&(a.dot(&e.vectors) - e.vectors.dot(&lambda)));
    let orthogonality = max_abs(&(e.vectors.t().dot(&e.vectors) - Array2::<f64>::eye(n)));
    (residual, orthogonality)
}

/// The projector onto the span of columns `range` of `v`.
fn projector(v: &Array2<f64>, range: std::ops::Range<usize>) -> Array2<f64> {
    let block = v.slice(ndarray::s![.., range]);
    block.dot(&block.t())
}

/// Checks Jacobi against LAPACK on `a`; returns the largest eigenvalue difference relative to
/// the norm, for the report.
fn agree(a: &Array2<f64>) -> f64 {
    let n = a.nrows();
    let (j, l) = (jacobi_eigen(a), lapack_eigen(a));
    let norm = l.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = norm.max(f64::MIN_POSITIVE);
    let value_error = j
        .values
        .iter()
        .zip(&l.values)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale;
    assert!(
        value_error <= 1e-10,
        "eigenvalues differ by {value_error:e} of the norm"
    );
    for (name, e) in [("jacobi", &j), ("lapack", &l)] {
        let (residual, orthogonality) = defects(a, e);
        assert!(
            residual <= 1e-12 * n as f64 * scale,
            "{name}: ‖AV − VΛ‖ = {residual:e}"
        );
        assert!(
            orthogonality <= 1e-12 * n as f64,
            "{name}: ‖VᵀV − I‖ = {orthogonality:e}"
        );
    }
    // Clusters: runs of eigenvalues closer than 1e-8 of the norm, compared as subspaces; the
    // Davis–Kahan bound makes the error of each solver at most its backward error over the gap.
    let mut start = 0;
    for end in 1..=n {
        if end < n && l.values[end] - l.values[end - 1] <= 1e-8 * scale {
            continue;
        }
        let below = (start > 0).then(|| l.values[start] - l.values[start - 1]);
        let above = (end < n).then(|| l.values[end] - l.values[end - 1]);
        let gap = below.into_iter().chain(above).fold(f64::INFINITY, f64::min);
        let error =
            max_abs(&(projector(&j.vectors, start..end) - projector(&l.vectors, start..end)));
        assert!(
            error <= 1e-12 * n as f64 * (scale / gap).max(1.0),
            "eigenvectors {start}..{end} (gap {gap:e}) differ by {error:e}"
        );
        start = end;
    }
    value_error
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Dense),
        Just(Kind::Repeated),
        Just(Kind::Tridiagonal),
        Just(Kind::Wilkinson)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn jacobi_agrees_with_lapack(kind in kind(), n in 1usize..=60, seed in any::<u64>(), exponent in -8i32..=8) {
        agree(&matrix(kind, n, seed, 10f64.powi(exponent)));
    }
}

#[test]
fn jacobi_agrees_with_lapack_on_lanczos_sized_tridiagonals() {
    // `analyze hessian` runs up to a few hundred Lanczos steps.
    for (n, seed) in [(150, 1), (300, 2)] {
        let error = agree(&matrix(Kind::Tridiagonal, n, seed, 1.0));
        println!("{n}×{n} tridiagonal: eigenvalues differ by {error:e} of the norm");
    }
}

#[test]
fn exactly_repeated_and_degenerate_spectra() {
    for a in [
        Array2::<f64>::zeros((0, 0)),
        Array2::from_elem((1, 1), -3.5),
        Array2::<f64>::zeros((7, 7)),
        Array2::<f64>::eye(9) * 2.0,
        Array2::from_diag(&Array1::from(vec![1.0, -1.0, 1.0, -1.0, 1.0])),
        Array2::from_elem((6, 6), 1.0), // rank one: 0 five times and 6 once
    ] {
        agree(&a);
    }
    let ones = lapack_eigen(&Array2::from_elem((6, 6), 1.0)).values;
    assert!((ones[5] - 6.0).abs() < 1e-14 && ones[..5].iter().all(|v| v.abs() < 1e-14));
}

#[test]
fn both_solvers_read_both_triangles() {
    // Only the upper triangle is set: both see (A + Aᵀ)/2, not A's upper or lower half.
    let a = ndarray::array![[2.0, 2.0], [0.0, 2.0]];
    for e in [jacobi_eigen(&a), lapack_eigen(&a)] {
        assert!((e.values[0] - 1.0).abs() < 1e-14 && (e.values[1] - 3.0).abs() < 1e-14);
    }
}

#[test]
fn non_finite_input_gives_nan_from_both() {
    for bad in [f64::NAN, f64::INFINITY] {
        let mut a = Array2::<f64>::eye(4);
        a[[1, 2]] = bad;
        for (name, e) in [("jacobi", jacobi_eigen(&a)), ("lapack", lapack_eigen(&a))] {
            assert!(
                e.values.iter().all(|v| v.is_nan()),
                "{name} on {bad}: {:?}",
                e.values
            );
        }
    }
}

#[test]
#[should_panic(expected = "lapack_eigen: matrix of shape [2, 3] is not square")]
fn lapack_refuses_a_non_square_matrix() {
    lapack_eigen(&Array2::zeros((2, 3)));
}

#[test]
#[should_panic(expected = "jacobi_eigen: matrix of shape [2, 3] is not square")]
fn jacobi_refuses_a_non_square_matrix() {
    jacobi_eigen(&Array2::zeros((2, 3)));
}
