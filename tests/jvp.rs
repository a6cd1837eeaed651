//! Forward-mode products: `jvp` against central differences and against the Jacobian for every
//! op in the gradcheck catalogue (random shapes, values and tangents), and the
//! `JacobianOperator`'s two products against each other.

use ferrograd::tensor::check::{op_cases, OpCase, STEP};
use ferrograd::{jacobian, jvp, no_grad, JacobianOperator, Tensor};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn tangents(case: &OpCase, seed: u64) -> Vec<ArrayD<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    case.inputs
        .iter()
        .map(|a| ArrayD::from_shape_fn(a.raw_dim(), |_| rng.random_range(-1.0..1.0)))
        .collect()
}

fn tensors(arrays: &[ArrayD<f64>]) -> Vec<Tensor<f64>> {
    arrays
        .iter()
        .map(|a| Tensor::from_array(a.as_standard_layout().into_owned()))
        .collect()
}

/// `(f(x + h t) − f(x − h t)) / 2h`.
fn central_difference(case: &OpCase, t: &[ArrayD<f64>]) -> Vec<f64> {
    let _mode = no_grad();
    let at = |s: f64| {
        let xs: Vec<ArrayD<f64>> = case
            .inputs
            .iter()
            .zip(t)
            .map(|(x, t)| x + &(t * s))
            .collect();
        (case.f)(&tensors(&xs)).to_vec()
    };
    let (plus, minus) = (at(STEP), at(-STEP));
    plus.iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * STEP))
        .collect()
}

/// `max |a − b| / max(1, max |b|)`, as gradcheck measures.
fn error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let diff = a.iter().zip(b).fold(0.0f64, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    });
    diff / scale
}

/// `Σₖ Jₖ tₖ` with each `Jₖ` from `jacobian` (one backward pass per output element), the other
/// inputs held fixed.
fn jacobian_times(case: &OpCase, t: &[ArrayD<f64>]) -> Vec<f64> {
    let xs = tensors(&case.inputs);
    let mut total: Option<Vec<f64>> = None;
    for (k, tk) in t.iter().enumerate() {
        let j = jacobian(
            |xk| {
                let mut all = xs.clone();
                all[k] = xk.clone();
                (case.f)(&all)
            },
            &xs[k],
        );
        let n = tk.len();
        let rows = j.len() / n;
        let j = j.into_shape_with_order(IxDyn(&[rows, n])).unwrap();
        let tk = tk.as_standard_layout().into_owned();
        let jt: Vec<f64> = j
            .rows()
            .into_iter()
            .map(|row| row.iter().zip(tk.iter()).map(|(a, b)| a * b).sum())
            .collect();
        total = Some(match total {
            None => jt,
            Some(s) => s.iter().zip(&jt).map(|(a, b)| a + b).collect(),
        });
    }
    total.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn jvp_matches_central_differences_and_the_jacobian_for_every_op(
        shapes in any::<u64>(),
        directions in any::<u64>(),
    ) {
        for case in op_cases(shapes) {
            let t = tangents(&case, directions);
            let (y, jt) = jvp(|x| (case.f)(x), &tensors(&case.inputs), &tensors(&t));
            let value = {
                let _mode = no_grad();
                (case.f)(&tensors(&case.inputs))
            };
            prop_assert_eq!(y.shape(), value.shape(), "{}: output shape", &case.name);
            prop_assert_eq!(jt.shape(), value.shape(), "{}: jvp shape", &case.name);
            let jt = jt.to_vec();
            let fd_error = error(&jt, &central_difference(&case, &t));
            prop_assert!(fd_error <= 1e-6, "{}: jvp vs differences {:e}", &case.name, fd_error);
            let j_error = error(&jt, &jacobian_times(&case, &t));
            prop_assert!(j_error <= 1e-12, "{}: jvp vs jacobian·t {:e}", &case.name, j_error);
        }
    }
}

#[test]
fn the_operator_is_one_jacobian_forward_and_transposed() {
    // ⟨w, J t⟩ = ⟨Jᵀ w, t⟩ for random w and t: the forward and reverse products are the same
    // linear map, here through a two-layer network with a softmax.
    let w1 = Tensor::<f64>::rand_normal(&[4, 5], 0.0, 1.0, 1).with_grad();
    let w2 = Tensor::<f64>::rand_normal(&[5, 3], 0.0, 1.0, 2).with_grad();
    let x = Tensor::<f64>::rand_normal(&[6, 4], 0.0, 1.0, 3);
    let _mode = ferrograd::enable_grad();
    let y = x.linear(&w1, None).tanh().linear(&w2, None).softmax(1);
    let op = JacobianOperator::new(&y, &[w1.clone(), w2.clone()]);
    let t = [
        Tensor::rand_normal(&[4, 5], 0.0, 1.0, 4),
        Tensor::rand_normal(&[5, 3], 0.0, 1.0, 5),
    ];
    let w = Tensor::rand_normal(&[6, 3], 0.0, 1.0, 6);
    let forward: f64 = op
        .jvp(&t)
        .to_vec()
        .iter()
        .zip(w.to_vec())
        .map(|(a, b)| a * b)
        .sum();
    let reverse: f64 = op
        .vjp(&w)
        .iter()
        .zip(&t)
        .flat_map(|(g, t)| g.to_vec().into_iter().zip(t.to_vec()))
        .map(|(a, b)| a * b)
        .sum();
    assert!(
        (forward - reverse).abs() <= 1e-12 * forward.abs().max(1.0),
        "{forward} vs {reverse}"
    );
    // Repeated products on the same operator do not accumulate anything.
    assert_eq!(op.jvp(&t).to_vec(), op.jvp(&t).to_vec());
}

#[test]
fn a_function_that_ignores_its_input_has_a_zero_jvp() {
    let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]);
    let c = Tensor::<f64>::from_vec(vec![3.0, 4.0, 5.0], &[3]);
    let (y, jt) = jvp(|_| c.exp(), &[x], &[Tensor::ones(&[2])]);
    assert_eq!(y.shape(), vec![3]);
    assert_eq!(jt.to_vec(), vec![0.0; 3]);
}

#[test]
#[should_panic(expected = "jvp: one tangent per input")]
fn a_missing_tangent_is_refused() {
    let x = Tensor::<f64>::ones(&[2]);
    jvp(|p| p[0].exp(), &[x.clone(), x], &[Tensor::ones(&[2])]);
}

#[test]
#[should_panic(expected = "jvp: tangent shape differs")]
fn a_tangent_of_the_wrong_shape_is_refused() {
    jvp(
        |p| p[0].exp(),
        &[Tensor::<f64>::ones(&[2])],
        &[Tensor::ones(&[3])],
    );
}
