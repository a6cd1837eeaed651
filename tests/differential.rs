//! Differential testing of the whole engine: random expression graphs, and every path to a
//! derivative must give the same answer.
//!
//! A program is a random sequence of ops over three inputs of broadcast-compatible shapes,
//! drawing its operands from everything computed so far — so subexpressions are shared, a
//! tensor is often used twice, and some branches are detached. For each program, in f64:
//! - `backward()`, `grad(create_graph = false)` and `grad(create_graph = true)` agree on the
//!   inputs, and with central differences;
//! - `grad` with respect to non-leaf intermediates (the inputs of a ReLU among them: the case
//!   that once came back masked in place) agrees between both `create_graph` settings and with
//!   central differences taken by perturbing that intermediate;
//! - `hvp` agrees with central differences of the gradient.
//!
//! Case count: `FERROGRAD_DIFFERENTIAL_CASES` (default 2,048, about a second in release mode;
//! `.ci/run` runs 50,000).

use ferrograd::tensor::ops::Activation;
use ferrograd::{grad, hvp, Tensor};
use proptest::prelude::*;
use std::collections::HashMap;

/// One step of a program; operands index earlier nodes (0..3 are the inputs).
#[derive(Clone, Debug)]
enum Step {
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    /// Sum over one axis, kept as length 1 (so the result broadcasts back).
    SumKeep(usize, usize),
    /// Max over one axis, kept.
    MaxKeep(usize, usize),
    Softmax(usize, usize),
    /// A constant: the operand's value, cut from the graph.
    Detach(usize),
}

#[derive(Clone, Copy, Debug)]
enum UnaryOp {
    Neg,
    /// Every activation the engine defines (ReLU, tanh, sigmoid, GELU, SiLU...).
    Act(Activation),
    Sin,
    Cos,
    Square,
    ExpOfTanh,
    Abs,
    /// `x·W + b` then the activation, fused (`linear_act`), with fixed W and b.
    LinearAct(Activation),
    /// Transpose, then the same linear map back to the original shape.
    TransposeTwice,
}

#[derive(Clone, Copy, Debug)]
enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// `a / (1.5 + sigmoid(b))`: a division whose denominator stays away from 0.
    DivSafe,
    Maximum,
    Minimum,
}

#[derive(Clone, Debug)]
struct Program {
    rows: usize,
    cols: usize,
    /// Shapes of the three inputs: full, a row vector and a column (broadcast on use).
    inputs: Vec<Vec<f64>>,
    steps: Vec<Step>,
    /// Fixed weights for the loss: Σ out ⊙ weights.
    weights: Vec<f64>,
    /// Which intermediate nodes to ask `grad` for.
    wanted: Vec<usize>,
    /// Direction for the Hessian-vector product, one value per input element.
    direction: Vec<Vec<f64>>,
}

fn input_shapes(rows: usize, cols: usize) -> Vec<Vec<usize>> {
    vec![vec![rows, cols], vec![1, cols], vec![rows, 1]]
}

fn unary_op() -> impl Strategy<Value = UnaryOp> {
    prop_oneof![
        1 => Just(UnaryOp::Neg),
        3 => prop::sample::select(Activation::ALL).prop_map(UnaryOp::Act),
        // ReLU's kink is where masks go wrong: drawn more often.
        1 => Just(UnaryOp::Act(Activation::Relu)),
        1 => Just(UnaryOp::Sin),
        1 => Just(UnaryOp::Cos),
        1 => Just(UnaryOp::Square),
        1 => Just(UnaryOp::ExpOfTanh),
        1 => Just(UnaryOp::Abs),
        2 => prop::sample::select(Activation::ALL).prop_map(UnaryOp::LinearAct),
        1 => Just(UnaryOp::TransposeTwice),
    ]
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop_oneof![
        Just(BinaryOp::Add),
        Just(BinaryOp::Sub),
        Just(BinaryOp::Mul),
        Just(BinaryOp::DivSafe),
        Just(BinaryOp::Maximum),
        Just(BinaryOp::Minimum),
    ]
}

/// A step whose operands are drawn from `0..available` (`raw` values are reduced modulo it).
fn step() -> impl Strategy<Value = (u8, UnaryOp, BinaryOp, usize, usize, usize)> {
    (
        0u8..10,
        unary_op(),
        binary_op(),
        any::<usize>(),
        any::<usize>(),
        0usize..2,
    )
}

fn program() -> impl Strategy<Value = Program> {
    (1usize..=3, 1usize..=3, 2usize..=9).prop_flat_map(|(rows, cols, len)| {
        let shapes = input_shapes(rows, cols);
        let inputs: Vec<_> = shapes
            .iter()
            .map(|s| proptest::collection::vec(-1.5f64..1.5, s.iter().product::<usize>()))
            .collect();
        let direction: Vec<_> = shapes
            .iter()
            .map(|s| proptest::collection::vec(-1.0f64..1.0, s.iter().product::<usize>()))
            .collect();
        (
            Just((rows, cols)),
            inputs,
            proptest::collection::vec(step(), len),
            proptest::collection::vec(-1.0f64..1.0, rows * cols),
            proptest::collection::vec(any::<usize>(), 1..=3),
            direction,
        )
            .prop_map(
                |((rows, cols), inputs, raw, weights, wanted_raw, direction)| {
                    let mut steps = Vec::new();
                    for (i, (kind, u, b, x, y, axis)) in raw.into_iter().enumerate() {
                        let available = 3 + i;
                        let (x, y) = (x % available, y % available);
                        steps.push(match kind {
                            0..=3 => Step::Unary(u, x),
                            4..=6 => Step::Binary(b, x, y),
                            7 => Step::SumKeep(x, axis),
                            8 => Step::MaxKeep(x, axis),
                            _ if kind == 9 && i % 2 == 0 => Step::Softmax(x, axis),
                            _ => Step::Detach(x),
                        });
                    }
                    let nodes = 3 + steps.len();
                    // Intermediates only (the inputs are compared anyway); the last node is
                    // usually the output, so include it sometimes too.
                    let wanted = wanted_raw
                        .into_iter()
                        .map(|w| 3 + w % (nodes - 3))
                        .collect();
                    Program {
                        rows,
                        cols,
                        inputs,
                        steps,
                        weights,
                        wanted,
                        direction,
                    }
                },
            )
    })
}

/// The nodes of a program run on `inputs`. `overrides` replaces a node's value by a given
/// leaf (to differentiate with respect to an intermediate); `constants` gives the values of
/// detached nodes (so that finite differences treat them as constants, like autograd does).
fn run(
    p: &Program,
    inputs: &[Tensor<f64>],
    overrides: &HashMap<usize, Tensor<f64>>,
    constants: Option<&[Option<Tensor<f64>>]>,
) -> Vec<Tensor<f64>> {
    let mut nodes: Vec<Tensor<f64>> = inputs.to_vec();
    let full = [p.rows, p.cols];
    let (w, bias) = fixed_linear(p.cols);
    for (i, s) in p.steps.iter().enumerate() {
        let index = 3 + i;
        let value = if let Some(o) = overrides.get(&index) {
            o.clone()
        } else {
            let at = |k: usize| nodes[k].clone();
            let grow = |t: Tensor<f64>| {
                // Bring every operand to the full shape, so binary ops always broadcast.
                if t.shape() == full {
                    t
                } else {
                    t.broadcast_to(&full)
                }
            };
            match s {
                Step::Unary(op, x) => {
                    let x = grow(at(*x));
                    match op {
                        UnaryOp::Neg => x.neg(),
                        UnaryOp::Act(act) => x.activate(*act),
                        UnaryOp::Sin => x.sin(),
                        UnaryOp::Cos => x.cos(),
                        UnaryOp::Square => x.square(),
                        UnaryOp::ExpOfTanh => x.tanh().exp(),
                        UnaryOp::Abs => x.abs(),
                        UnaryOp::LinearAct(act) => x.linear_act(&w, Some(&bias), *act),
                        UnaryOp::TransposeTwice => x.t().t().matmul(&w),
                    }
                }
                Step::Binary(op, a, b) => {
                    // Operands of other shapes broadcast against each other.
                    let (a, b) = (at(*a), at(*b));
                    match op {
                        BinaryOp::Add => &a + &b,
                        BinaryOp::Sub => &a - &b,
                        BinaryOp::Mul => &a * &b,
                        BinaryOp::DivSafe => &a / &b.sigmoid().add_scalar(1.5),
                        BinaryOp::Maximum => a.maximum(&b),
                        BinaryOp::Minimum => a.minimum(&b),
                    }
                }
                Step::SumKeep(x, axis) => grow(at(*x)).sum_axes(&[*axis], true),
                Step::MaxKeep(x, axis) => grow(at(*x)).max_axes(&[*axis], true),
                Step::Softmax(x, axis) => grow(at(*x)).softmax(*axis),
                Step::Detach(x) => match constants.and_then(|c| c[index].clone()) {
                    Some(c) => c,
                    None => at(*x).detach(),
                },
            }
        };
        nodes.push(value);
    }
    nodes
}

/// Fixed weights and bias for the fused linear layer: cols → cols.
fn fixed_linear(cols: usize) -> (Tensor<f64>, Tensor<f64>) {
    let w = Tensor::<f64>::from_vec(
        (0..cols * cols)
            .map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.4)
            .collect(),
        &[cols, cols],
    );
    let bias = Tensor::<f64>::from_vec((0..cols).map(|i| 0.1 * i as f64 - 0.05).collect(), &[cols]);
    (w, bias)
}

fn loss_of(p: &Program, nodes: &[Tensor<f64>]) -> Tensor<f64> {
    let out = nodes.last().unwrap();
    let out = if out.shape() == [p.rows, p.cols] {
        out.clone()
    } else {
        out.broadcast_to(&[p.rows, p.cols])
    };
    let w = Tensor::from_vec(p.weights.clone(), &[p.rows, p.cols]);
    (&out * &w).sum()
}

fn leaves(p: &Program) -> Vec<Tensor<f64>> {
    input_shapes(p.rows, p.cols)
        .iter()
        .zip(&p.inputs)
        .map(|(s, v)| Tensor::from_vec(v.clone(), s).with_grad())
        .collect()
}

/// Central differences of the loss with respect to every element of `target` (an input, or
/// an intermediate replaced through `overrides`).
fn numeric_gradient(
    p: &Program,
    constants: &[Option<Tensor<f64>>],
    base_inputs: &[Tensor<f64>],
    target: Target,
    base_value: &Tensor<f64>,
) -> Vec<f64> {
    let h = 1e-6;
    let values = base_value.to_vec();
    let shape = base_value.shape();
    (0..values.len())
        .map(|k| {
            let at = |delta: f64| {
                let mut v = values.clone();
                v[k] += delta;
                let t = Tensor::from_vec(v, &shape);
                let mut inputs: Vec<Tensor<f64>> = base_inputs.iter().map(|x| x.detach()).collect();
                let mut overrides = HashMap::new();
                match target {
                    Target::Input(i) => inputs[i] = t,
                    Target::Node(n) => {
                        overrides.insert(n, t);
                    }
                }
                loss_of(p, &run(p, &inputs, &overrides, Some(constants))).item()
            };
            (at(h) - at(-h)) / (2.0 * h)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Target {
    Input(usize),
    Node(usize),
}

/// Agreement to `rel` relative to each element's size (absolute below 1).
fn within(a: &[f64], b: &[f64], rel: f64, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = rel * (1.0 + x.abs().max(y.abs()));
        prop_assert!(
            (x - y).abs() <= tol,
            "{}: element {} differs: {} vs {}",
            what,
            k,
            x,
            y
        );
    }
    Ok(())
}

/// Agreement with central differences.
fn close(a: &[f64], b: &[f64], what: &str) -> Result<(), TestCaseError> {
    within(a, b, 1e-5, what)
}

/// Agreement between exact paths: different paths may sum in another order, so to rounding.
fn same(a: &[f64], b: &[f64], what: &str) -> Result<(), TestCaseError> {
    within(a, b, 1e-12, what)
}

/// Whether some element of an intermediate sits within `margin` of a kink (relu/abs at 0, a
/// near-tie in max/maximum/minimum): central differences are not the derivative there.
fn near_kink(p: &Program, nodes: &[Tensor<f64>]) -> bool {
    let margin = 1e-4;
    // Exact zeros count: relu(x − detach(x)) sits on the kink whatever x is.
    let near_zero = |t: &Tensor<f64>| t.to_vec().iter().any(|v| v.abs() < margin);
    let full = [p.rows, p.cols];
    let grown = |t: &Tensor<f64>| t.broadcast_to(&full).to_vec();
    let (w, bias) = fixed_linear(p.cols);
    p.steps.iter().any(|s| match s {
        Step::Unary(UnaryOp::Act(Activation::Relu) | UnaryOp::Abs, x) => near_zero(&nodes[*x]),
        Step::Unary(UnaryOp::LinearAct(Activation::Relu), x) => {
            let z = nodes[*x].detach().broadcast_to(&full).matmul(&w) + bias.clone();
            near_zero(&z)
        }
        // A tie between two nodes (not a node and itself) is a kink, exact ones included:
        // each side can move without the other.
        Step::Binary(BinaryOp::Maximum | BinaryOp::Minimum, a, b) if a != b => {
            let (a, b) = (grown(&nodes[*a]), grown(&nodes[*b]));
            a.iter().zip(&b).any(|(x, y)| (x - y).abs() < margin)
        }
        // Along an axis the node was broadcast on, the lane holds copies of one element,
        // which move together; along a real axis, a (near-)tie is a kink.
        Step::MaxKeep(x, axis) if nodes[*x].shape()[*axis] > 1 => {
            let v = nodes[*x].to_array();
            v.lanes(ndarray::Axis(*axis)).into_iter().any(|lane| {
                let mut l: Vec<f64> = lane.to_vec();
                l.sort_by(|a, b| b.partial_cmp(a).unwrap());
                (l[0] - l[1]).abs() < margin
            })
        }
        _ => false,
    })
}

fn check_program(p: &Program) -> Result<(), TestCaseError> {
    let xs = leaves(p);
    let nodes = run(p, &xs, &HashMap::new(), None);
    let loss = loss_of(p, &nodes);
    let constants: Vec<Option<Tensor<f64>>> = (0..nodes.len())
        .map(|i| match i.checked_sub(3).map(|s| &p.steps[s]) {
            Some(Step::Detach(_)) => Some(nodes[i].clone()),
            _ => None,
        })
        .collect();
    let wanted: Vec<usize> = p
        .wanted
        .iter()
        .copied()
        .filter(|&n| nodes[n].requires_grad())
        .collect();
    let mut targets: Vec<Tensor<f64>> = xs.clone();
    targets.extend(wanted.iter().map(|&n| nodes[n].clone()));

    // Four paths.
    let plain = grad(std::slice::from_ref(&loss), &targets, None, false);
    let graphed = grad(std::slice::from_ref(&loss), &targets, None, true);
    loss.backward();
    for i in 0..targets.len() {
        same(
            &plain[i].to_vec(),
            &graphed[i].to_vec(),
            &format!("grad(create_graph=false) vs (=true), target {i}"),
        )?;
    }
    for (i, x) in xs.iter().enumerate() {
        let accumulated = x.grad().map(|g| g.to_vec()).unwrap_or(vec![0.0; x.len()]);
        same(
            &accumulated,
            &plain[i].to_vec(),
            &format!("backward() vs grad(), input {i}"),
        )?;
    }
    // The user's handles to intermediates keep their values (nothing was overwritten).
    let again = run(p, &xs, &HashMap::new(), Some(&constants));
    for (n, (a, b)) in nodes.iter().zip(&again).enumerate() {
        same(
            &a.to_vec(),
            &b.to_vec(),
            &format!("value of node {n} after backward"),
        )?;
    }
    if near_kink(p, &nodes) {
        return Ok(());
    }
    for (i, x) in xs.iter().enumerate() {
        let numeric = numeric_gradient(p, &constants, &xs, Target::Input(i), x);
        close(
            &plain[i].to_vec(),
            &numeric,
            &format!("grad vs central differences, input {i}"),
        )?;
    }
    for (j, &n) in wanted.iter().enumerate() {
        let numeric = numeric_gradient(p, &constants, &xs, Target::Node(n), &nodes[n]);
        close(
            &plain[3 + j].to_vec(),
            &numeric,
            &format!("grad vs central differences, intermediate node {n}"),
        )?;
    }
    // H·v against differences of the gradient along v.
    let v: Vec<Tensor<f64>> = input_shapes(p.rows, p.cols)
        .iter()
        .zip(&p.direction)
        .map(|(s, d)| Tensor::from_vec(d.clone(), s))
        .collect();
    let f = |params: &[Tensor<f64>]| loss_of(p, &run(p, params, &HashMap::new(), Some(&constants)));
    let hv = hvp(f, &xs, &v);
    let h = 1e-5;
    let gradient_at = |t: f64| {
        let moved: Vec<Tensor<f64>> = xs
            .iter()
            .zip(&v)
            .map(|(x, d)| (x.detach() + d.mul_scalar(t)).detach().with_grad())
            .collect();
        let l = loss_of(p, &run(p, &moved, &HashMap::new(), Some(&constants)));
        grad(&[l], &moved, None, false)
    };
    let (up, down) = (gradient_at(h), gradient_at(-h));
    for i in 0..3 {
        let numeric: Vec<f64> = up[i]
            .to_vec()
            .iter()
            .zip(down[i].to_vec())
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect();
        close(
            &hv[i].to_vec(),
            &numeric,
            &format!("hvp vs differences of the gradient, input {i}"),
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FERROGRAD_DIFFERENTIAL_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2048),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_path_to_a_gradient_agrees_on_random_graphs(p in program()) {
        check_program(&p)?;
    }
}

/// The reproduction of the bug that started this test: `grad()` without a graph, asked for a
/// non-leaf that feeds a ReLU, gave the masked gradient.
#[test]
fn grad_of_a_non_leaf_feeding_a_relu_is_not_masked() {
    let x = Tensor::<f64>::from_vec(vec![-1.0, 2.0, -3.0, 4.0], &[4]).with_grad();
    let c = Tensor::<f64>::from_vec(vec![10.0, 20.0, 30.0, 40.0], &[4]);
    let h = x.relu();
    let loss = (&h * &c).sum();
    for create_graph in [false, true] {
        let g = grad(
            std::slice::from_ref(&loss),
            std::slice::from_ref(&h),
            None,
            create_graph,
        );
        assert_eq!(g[0].to_vec(), vec![10.0, 20.0, 30.0, 40.0]);
    }
    // And with the input asked for too: the masked gradient there, the unmasked one at h.
    let g = grad(&[loss], &[h, x], None, false);
    assert_eq!(g[0].to_vec(), vec![10.0, 20.0, 30.0, 40.0]);
    assert_eq!(g[1].to_vec(), vec![0.0, 20.0, 0.0, 40.0]);
}

/// The same through the fused linear + ReLU, where the mask is applied in backward too.
#[test]
fn grad_of_a_fused_relu_layer_output_is_not_masked() {
    let x = Tensor::<f64>::from_vec(vec![1.0, -2.0, 0.5, 3.0], &[2, 2]).with_grad();
    let w = Tensor::<f64>::from_vec(vec![1.0, -1.0, 0.5, 2.0], &[2, 2]).with_grad();
    let hidden = x.linear_act(&w, None, Activation::Relu);
    let out = hidden.linear_act(&w, None, Activation::Relu);
    let c = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let loss = (&out * &c).sum();
    let with_graph = grad(
        std::slice::from_ref(&loss),
        &[out.clone(), hidden.clone()],
        None,
        true,
    );
    let without = grad(&[loss], &[out, hidden], None, false);
    assert_eq!(with_graph[0].to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    for (a, b) in with_graph.iter().zip(&without) {
        assert_eq!(a.to_vec(), b.to_vec());
    }
}

/// A gradient the user holds is not changed by a later `backward()` that accumulates.
#[test]
fn a_held_gradient_is_not_changed_by_accumulation() {
    let x = Tensor::<f64>::from_vec(vec![1.0, -2.0], &[2]).with_grad();
    (&x * &x).sum().backward();
    let first = x.grad().unwrap();
    (&x * &x).sum().backward();
    assert_eq!(first.to_vec(), vec![2.0, -4.0]);
    assert_eq!(x.grad().unwrap().to_vec(), vec![4.0, -8.0]);
}
