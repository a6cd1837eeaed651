//! The Gauss–Newton operator: against `Jᵀ H_ℓ J` assembled densely from the logits' Jacobian,
//! positive semi-definite and symmetric, equal to the Hessian when the logits are affine in the
//! parameters (and not otherwise), and its Lanczos extremes against the dense eigenvalues.

use ferrograd::analysis::eigen::symmetric_eigen;
use ferrograd::analysis::flat;
use ferrograd::analysis::ggn::GgnOperator;
use ferrograd::analysis::hessian::HessianOperator;
use ferrograd::analysis::lanczos::lanczos_extremes;
use ferrograd::nn::{Activation, Init, Mlp, Module};
use ferrograd::{jacobian, Tensor};
use ndarray::{Array2, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SAMPLES: usize = 12;

fn problem(sizes: &[usize], act: Activation, seed: u64) -> (Mlp<f64>, Array2<f64>, Vec<usize>) {
    let model = Mlp::<f64>::new(sizes, act, Init::Xavier, seed);
    let mut rng = StdRng::seed_from_u64(seed + 100);
    let x = Array2::from_shape_fn((SAMPLES, sizes[0]), |_| rng.random_range(-2.0..2.0));
    let classes = *sizes.last().unwrap();
    let y = (0..SAMPLES).map(|_| rng.random_range(0..classes)).collect();
    (model, x, y)
}

/// The model's logits as a function of one flat parameter vector (the layout `flat` uses),
/// written with plain ops so that its Jacobian comes from `jacobian`, not from the operator.
fn logits_of_flat(theta: &Tensor<f64>, model: &Mlp<f64>, x: &Array2<f64>) -> Tensor<f64> {
    let mut h = Tensor::from_array(x.clone());
    let mut offset = 0;
    let mut take = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let t = theta.slice(0, offset, offset + n).reshape(shape);
        offset += n;
        t
    };
    let last = model.layers.len() - 1;
    for (i, l) in model.layers.iter().enumerate() {
        let w = take(&l.weight.shape());
        let b = take(&l.bias.shape());
        h = h.linear(&w, Some(&b));
        if i < last {
            h = h.activate(model.activation);
        }
    }
    h
}

/// `Jᵀ H_ℓ J` with `J` from `jacobian` and `H_ℓ` block diagonal, `(diag(p) − ppᵀ)/N` per sample.
fn dense_ggn(model: &Mlp<f64>, x: &Array2<f64>) -> Array2<f64> {
    let theta = Tensor::from_vec(flat::join(&model.parameters()), &[dim(model)]);
    let p = theta.len();
    let j = jacobian(|t| logits_of_flat(t, model, x), &theta);
    let (n, c) = (j.shape()[0], j.shape()[1]);
    let j = j.into_shape_with_order(IxDyn(&[n * c, p])).unwrap();
    let j: Array2<f64> = j.into_dimensionality().unwrap();
    let probs = logits_of_flat(&theta, model, x).softmax(1).to_array();
    let mut h = Array2::<f64>::zeros((n * c, n * c));
    for s in 0..n {
        for a in 0..c {
            for b in 0..c {
                let (pa, pb) = (probs[[s, a]], probs[[s, b]]);
                let diag = if a == b { pa } else { 0.0 };
                h[[s * c + a, s * c + b]] = (diag - pa * pb) / n as f64;
            }
        }
    }
    j.t().dot(&h).dot(&j)
}

fn dim(model: &Mlp<f64>) -> usize {
    model.parameters().iter().map(|p| p.len()).sum()
}

/// `max |a − b| / max(1, max |b|)`.
fn error(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    (a - b).iter().fold(0.0f64, |m, d| m.max(d.abs())) / scale
}

#[test]
fn gauss_newton_products_assemble_to_jt_h_j_which_is_symmetric_and_semidefinite() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid] {
        let (model, x, _) = problem(&[4, 6, 5, 3], act, 1);
        let g = GgnOperator::new(&model, &x).dense();
        let reference = dense_ggn(&model, &x);
        let e = error(&g, &reference);
        assert!(e <= 1e-10, "{act}: G from products vs Jᵀ H_ℓ J: {e:e}");
        let asym = error(&g, &g.t().to_owned());
        assert!(asym <= 1e-10, "{act}: asymmetry {asym:e}");
        let eig = symmetric_eigen(&g).values;
        let lowest = eig.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(lowest >= -1e-10, "{act}: eigenvalue {lowest:e} < 0");
        // Not vacuous: the matrix has real curvature in it.
        assert!(eig.iter().copied().fold(0.0, f64::max) > 1e-3, "{act}");
    }
}

#[test]
fn without_a_hidden_layer_the_gauss_newton_matrix_is_the_hessian_and_not_otherwise() {
    let (linear, x, y) = problem(&[5, 4], Activation::Tanh, 2);
    let g = GgnOperator::new(&linear, &x).dense();
    let h = HessianOperator::new(&linear, &x, &y).dense();
    let e = error(&g, &h);
    assert!(e <= 1e-10, "no hidden layer: G vs H {e:e}");
    // With a hidden layer the network's own curvature makes them differ.
    let (deep, x, y) = problem(&[5, 6, 4], Activation::Tanh, 2);
    let g = GgnOperator::new(&deep, &x).dense();
    let h = HessianOperator::new(&deep, &x, &y).dense();
    assert!(error(&g, &h) > 1e-4, "hidden layer: G and H should differ");
}

#[test]
fn lanczos_on_the_gauss_newton_operator_finds_its_dense_top_eigenvalues() {
    let (model, x, _) = problem(&[4, 8, 6, 3], Activation::Tanh, 3);
    let op = GgnOperator::new(&model, &x);
    let n = op.dim();
    let exact = symmetric_eigen(&op.dense()).values;
    let mut apply = |v: &[f64]| op.apply(v);
    let l = lanczos_extremes(&mut apply, n, 5, n, 1e-10, false, 4);
    assert!(l.converged);
    for (i, r) in l.largest.iter().enumerate() {
        let e = exact[n - 1 - i];
        assert!(
            (r.value - e).abs() <= 1e-8 * e.abs(),
            "#{i}: {} vs {e}",
            r.value
        );
        assert!(r.residual <= 1e-10 * e.abs());
    }
}

#[test]
#[should_panic(expected = "GgnOperator::apply: vector of the wrong length")]
fn a_vector_of_the_wrong_length_is_refused() {
    let (model, x, _) = problem(&[3, 2], Activation::Relu, 4);
    GgnOperator::new(&model, &x).apply(&[1.0; 3]);
}
