//! Every op's first and second derivatives against central differences in f64, on several
//! random draws of shapes and values; and proof that the checks can fail.

use ferrograd::tensor::check::{check_all, op_cases, TOLERANCE};
use ferrograd::{gradcheck, gradgradcheck, Tensor};
use ndarray::ArrayD;

#[test]
fn every_op_passes_first_and_second_order_checks_on_several_draws() {
    for seed in 0..4 {
        for r in check_all(seed) {
            assert!(
                r.pass,
                "seed {seed}: {} first order {:e}, second order {:e} (tolerance {TOLERANCE:e})",
                r.op, r.first_order, r.second_order
            );
        }
    }
}

#[test]
fn the_catalogue_covers_every_op_the_issue_names() {
    let names: Vec<String> = op_cases(0).into_iter().map(|c| c.name).collect();
    for op in [
        "add",
        "sub",
        "mul",
        "div",
        "neg",
        "pow",
        "exp",
        "log",
        "sin",
        "cos",
        "tanh",
        "relu",
        "sigmoid",
        "sqrt",
        "abs",
        "maximum",
        "minimum",
        "clamp",
        "matmul",
        "transpose",
        "permute",
        "reshape",
        "broadcast_to",
        "sum",
        "mean",
        "max",
        "softmax",
        "log_softmax",
        "logsumexp",
        "cross_entropy",
        "gather",
        "concat",
        "slice",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n == op || n.starts_with(&format!("{op}_"))),
            "no gradcheck case for {op}"
        );
    }
}

fn input() -> Vec<ArrayD<f64>> {
    vec![ArrayD::from_shape_vec(vec![3], vec![0.5, -1.0, 2.0]).unwrap()]
}

#[test]
fn gradcheck_detects_a_wrong_first_derivative() {
    // x · detach(x) has value x² but a graph whose derivative is x, not 2x.
    let wrong = |x: &[Tensor<f64>]| &x[0] * &x[0].detach();
    assert!(gradcheck(&wrong, &input()) > 0.1);
    let right = |x: &[Tensor<f64>]| &x[0] * &x[0];
    assert!(gradcheck(&right, &input()) < 1e-8);
}

#[test]
fn gradgradcheck_detects_a_wrong_second_derivative() {
    // x·d(x) + d(x)·x − d(x)·d(x) is x² with the right first derivative (2x), but the graph
    // of that derivative is constant, so the second derivative comes out 0 instead of 2.
    let wrong = |x: &[Tensor<f64>]| {
        let d = x[0].detach();
        &x[0] * &d + &d * &x[0] - &d * &d
    };
    assert!(gradcheck(&wrong, &input()) < 1e-8);
    let e = gradgradcheck(&wrong, &input());
    assert!(e > 0.1, "second-order error {e}");
}
