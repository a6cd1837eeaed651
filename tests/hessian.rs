//! Exact Hessians: Hessian-vector products against central differences of the gradient, the
//! dense Hessian's symmetry, Lanczos against a dense eigendecomposition and a known spectrum,
//! and Hutchinson's trace against the exact trace.

use ferrograd::analysis::eigen::symmetric_eigen;
use ferrograd::analysis::hessian::HessianOperator;
use ferrograd::analysis::lanczos::{hutchinson, lanczos_extremes, slq_density};
use ferrograd::nn::{Activation, Init, Linear, Mlp, Module};
use ferrograd::{hvp, Tensor};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A 4 → 8 → 6 → 3 MLP (115 parameters) and 20 random labelled inputs.
fn small_problem(act: Activation, seed: u64) -> (Mlp<f64>, Array2<f64>, Vec<usize>) {
    let model = Mlp::<f64>::new(&[4, 8, 6, 3], act, Init::Xavier, seed);
    let mut rng = StdRng::seed_from_u64(seed + 100);
    let x = Array2::from_shape_fn((20, 4), |_| rng.random_range(-2.0..2.0));
    let y = (0..20).map(|_| rng.random_range(0..3)).collect();
    (model, x, y)
}

/// The same architecture with parameters θ + s·v.
fn shifted(model: &Mlp<f64>, v: &[f64], s: f64) -> Mlp<f64> {
    let mut offset = 0;
    let mut take = |t: &Tensor<f64>| {
        let n = t.len();
        let vals: Vec<f64> = t
            .to_vec()
            .iter()
            .zip(&v[offset..offset + n])
            .map(|(a, b)| a + s * b)
            .collect();
        offset += n;
        Tensor::from_vec(vals, &t.shape())
    };
    Mlp {
        layers: model
            .layers
            .iter()
            .map(|l| {
                let w = take(&l.weight);
                let b = take(&l.bias);
                Linear::from_parts(w, b)
            })
            .collect(),
        activation: model.activation,
    }
}

#[test]
fn hessian_vector_products_match_central_differences_of_the_gradient() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid] {
        let (model, x, y) = small_problem(act, 1);
        let op = HessianOperator::new(&model, &x, &y);
        let mut rng = StdRng::seed_from_u64(5);
        let v: Vec<f64> = (0..op.dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let hv = op.apply(&v);
        let eps = 1e-5;
        let plus = HessianOperator::new(&shifted(&model, &v, eps), &x, &y).gradient();
        let minus = HessianOperator::new(&shifted(&model, &v, -eps), &x, &y).gradient();
        let fd: Vec<f64> = plus
            .iter()
            .zip(&minus)
            .map(|(p, m)| (p - m) / (2.0 * eps))
            .collect();
        let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = hv
            .iter()
            .zip(&fd)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        assert!(err <= 1e-6, "{act}: relative error {err:e}");
        // The same product through the functional `hvp` (forward and graph rebuilt).
        let params = model.parameters();
        let mut offset = 0;
        let vs: Vec<Tensor<f64>> = params
            .iter()
            .map(|p| {
                let t = Tensor::from_vec(v[offset..offset + p.len()].to_vec(), &p.shape());
                offset += p.len();
                t
            })
            .collect();
        let again: Vec<f64> = hvp(
            |_| model.loss(&Tensor::from_array(x.clone()), &y),
            &params,
            &vs,
        )
        .iter()
        .flat_map(|t| t.to_vec())
        .collect();
        assert!(again
            .iter()
            .zip(&hv)
            .all(|(a, b)| (a - b).abs() <= 1e-12 * scale.max(1.0)));
    }
}

#[test]
fn dense_hessian_is_symmetric_and_lanczos_matches_its_eigendecomposition() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid] {
        let (model, x, y) = small_problem(act, 2);
        let op = HessianOperator::new(&model, &x, &y);
        let h = op.dense();
        let n = h.nrows();
        assert_eq!(n, 115);
        let asym = (&h - &h.t()).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(asym <= 1e-10, "{act}: asymmetry {asym:e}");
        let exact = symmetric_eigen(&h).values;
        let mut apply = |v: &[f64]| op.apply(v);
        let l = lanczos_extremes(&mut apply, n, 5, n, 1e-12, true, 3);
        assert_eq!((l.largest.len(), l.smallest.len()), (5, 5), "{act}");
        for (i, r) in l.largest.iter().enumerate() {
            let e = exact[n - 1 - i];
            assert!(
                (r.value - e).abs() <= 1e-8 * e.abs(),
                "{act}: largest #{i}: {} vs {e}",
                r.value
            );
        }
        for (i, r) in l.smallest.iter().enumerate() {
            let e = exact[i];
            assert!(
                (r.value - e).abs() <= 1e-8 * e.abs().max(1e-3),
                "{act}: smallest #{i}: {} vs {e}",
                r.value
            );
        }
        // And the trace: Hutchinson within three standard errors of the exact one.
        let t = hutchinson(&mut apply, n, 400, 9);
        let exact_trace: f64 = (0..n).map(|i| h[[i, i]]).sum();
        assert!(
            (t.trace - exact_trace).abs() <= 3.0 * t.standard_error,
            "{act}: Hutchinson {} ± {} vs exact {exact_trace}",
            t.trace,
            t.standard_error
        );
    }
}

#[test]
fn lanczos_recovers_the_known_spectrum_of_a_quadratic() {
    // f(x) = ½ xᵀAx with A = Q diag(λ) Qᵀ: its Hessian is A, whose spectrum we chose.
    let n = 60;
    let lambdas: Vec<f64> = (0..n)
        .map(|i| {
            if i < 10 {
                -(i as f64) - 1.0
            } else {
                0.5 * i as f64
            }
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(4);
    let b = Array2::from_shape_fn((n, n), |_| rng.random_range(-1.0..1.0));
    let q = symmetric_eigen(&(&b + &b.t())).vectors; // a random orthogonal matrix
    let a = q
        .dot(&Array2::from_diag(&Array1::from(lambdas.clone())))
        .dot(&q.t());
    let at = Tensor::<f64>::from_array(a);
    let x = Tensor::<f64>::rand_normal(&[n], 0.0, 1.0, 1).with_grad();
    let mut apply = |v: &[f64]| {
        let f = |p: &[Tensor<f64>]| p[0].matmul(&at.matmul(&p[0])).mul_scalar(0.5);
        hvp(
            f,
            std::slice::from_ref(&x),
            &[Tensor::from_vec(v.to_vec(), &[n])],
        )[0]
        .to_vec()
    };
    let l = lanczos_extremes(&mut apply, n, 5, n, 1e-10, true, 7);
    assert!(l.converged);
    assert_eq!((l.largest.len(), l.smallest.len()), (5, 5));
    let mut sorted = lambdas.clone();
    sorted.sort_by(f64::total_cmp);
    for i in 0..5 {
        assert!(
            (l.largest[i].value - sorted[n - 1 - i]).abs() < 1e-8,
            "{:?}",
            l.largest
        );
        assert!(
            (l.smallest[i].value - sorted[i]).abs() < 1e-8,
            "{:?}",
            l.smallest
        );
        assert!(l.largest[i].residual <= 1e-10 * sorted[n - 1 - i].abs());
    }
}

#[test]
fn slq_density_reproduces_the_moments_of_a_known_spectrum() {
    // A diagonal operator with 60 distinct eigenvalues λᵢ = i/10 − 1: with Rademacher starts
    // zᵢ² = 1, so zᵀf(A)z/n = (1/n) Σ f(λᵢ) exactly, and a 60-step Lanczos quadrature is
    // exact for polynomials of degree < 120. The quadrature's moments must be the spectrum's.
    let n = 60;
    let lambdas: Vec<f64> = (0..n).map(|i| i as f64 / 10.0 - 1.0).collect();
    let mut apply = |v: &[f64]| {
        v.iter()
            .zip(&lambdas)
            .map(|(x, l)| x * l)
            .collect::<Vec<_>>()
    };
    let d = slq_density(&mut apply, n, 3, n, 0.01, 2001, 5);
    for p in 0..4 {
        let quadrature: f64 = d
            .nodes
            .iter()
            .zip(&d.weights)
            .map(|(x, w)| w * x.powi(p))
            .sum();
        let exact: f64 = lambdas.iter().map(|l| l.powi(p)).sum::<f64>() / n as f64;
        assert!(
            (quadrature - exact).abs() <= 1e-8 * (1.0 + exact.abs()),
            "moment {p}: SLQ {quadrature} vs exact {exact}"
        );
    }
    // The broadened density integrates to one and puts the right mass below zero
    // (10 of 60 eigenvalues are negative; the one at 0 straddles the cut).
    let step = d.grid[1] - d.grid[0];
    let total: f64 = d.density.iter().sum::<f64>() * step;
    assert!((total - 1.0).abs() < 1e-3, "density integrates to {total}");
    let below: f64 = d
        .grid
        .iter()
        .zip(&d.density)
        .filter(|(t, _)| **t < 0.0)
        .map(|(_, p)| p * step)
        .sum();
    let expected = (10.0 + 0.5) / n as f64;
    assert!(
        (below - expected).abs() < 0.01,
        "mass below 0: {below} vs {expected}"
    );
}
