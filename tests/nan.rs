//! NaN and infinity propagate as in PyTorch: forward through every op of `ferrograd
//! gradcheck`'s list, and backward through each rule where PyTorch has a rule of its own
//! (ReLU's threshold, clamp's mask, max's and maximum's masks, the fused kernels).

use ferrograd::tensor::check::op_cases;
use ferrograd::tensor::ops::Activation;
use ferrograd::{grad, Tensor};
use ndarray::ArrayD;

fn nan_mask(t: &Tensor<f64>) -> Vec<bool> {
    t.to_vec().iter().map(|v| v.is_nan()).collect()
}

/// Which outputs depend on element `k` of input `i`: those that change when it is set to any
/// of a few far-apart values (one inside every bound an op of the catalogue uses).
fn dependents(
    f: &dyn Fn(&[Tensor<f64>]) -> Tensor<f64>,
    inputs: &[ArrayD<f64>],
    i: usize,
    k: usize,
) -> Vec<bool> {
    let run = |xs: &[ArrayD<f64>]| {
        let ts: Vec<Tensor<f64>> = xs.iter().map(|a| Tensor::from_array(a.clone())).collect();
        f(&ts).to_vec()
    };
    let base = run(inputs);
    let mut changed = vec![false; base.len()];
    for probe in [1e3, -1e3, 0.123, -0.321, 0.0, 7.5] {
        let mut xs = inputs.to_vec();
        xs[i].as_slice_mut().unwrap()[k] = probe;
        for (c, (a, b)) in changed.iter_mut().zip(base.iter().zip(run(&xs))) {
            // NaN ≠ NaN, so an output already NaN for the probe counts as changed too.
            *c |= a.to_bits() != b.to_bits();
        }
    }
    changed
}

#[test]
fn a_nan_input_gives_nan_exactly_in_the_outputs_that_depend_on_it_for_every_op() {
    for seed in 0..3 {
        for case in op_cases(seed) {
            for i in 0..case.inputs.len() {
                let n = case.inputs[i].len();
                for k in [0, n / 2, n - 1] {
                    let expected = dependents(&*case.f, &case.inputs, i, k);
                    let mut xs = case.inputs.clone();
                    xs[i].as_slice_mut().unwrap()[k] = f64::NAN;
                    let ts: Vec<Tensor<f64>> =
                        xs.iter().map(|a| Tensor::from_array(a.clone())).collect();
                    let got = nan_mask(&(case.f)(&ts));
                    assert_eq!(
                        got, expected,
                        "{} (seed {seed}): NaN in input {i} element {k}: NaN outputs {got:?}, dependent outputs {expected:?}",
                        case.name
                    );
                }
            }
        }
    }
}

/// The gradient of `Σ f(x)` with respect to `x`.
fn gradient(x: &[f64], shape: &[usize], f: impl Fn(&Tensor<f64>) -> Tensor<f64>) -> Vec<f64> {
    let x = Tensor::from_vec(x.to_vec(), shape).with_grad();
    let loss = f(&x).sum();
    grad(&[loss], &[x], None, false)[0].to_vec()
}

fn nan_pattern(v: &[f64]) -> Vec<bool> {
    v.iter().map(|x| x.is_nan()).collect()
}

const NAN: f64 = f64::NAN;

#[test]
fn relu_forward_keeps_nan_and_its_backward_passes_the_gradient_there() {
    let x = [NAN, -1.0, 2.0, 0.0];
    let y = Tensor::from_vec(x.to_vec(), &[4]).relu().to_vec();
    assert!(y[0].is_nan());
    assert_eq!(&y[1..], &[0.0, 2.0, 0.0]);
    // PyTorch's threshold_backward: x <= 0 ? 0 : g — NaN is not <= 0, so g passes.
    assert_eq!(gradient(&x, &[4], |t| t.relu()), vec![1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn fused_linear_relu_keeps_nan_like_the_unfused_layer() {
    for act in Activation::ALL.iter().copied().map(Some).chain([None]) {
        let x = Tensor::<f64>::from_vec(vec![1.0, NAN, 0.5, -2.0], &[2, 2]);
        let w = Tensor::<f64>::from_vec(vec![-1.0, 0.5, -2.0, 1.0], &[2, 2]);
        let b = Tensor::<f64>::from_vec(vec![-10.0, -10.0], &[2]);
        let fused = match act {
            Some(act) => x.linear_act(&w, Some(&b), act),
            None => x.linear(&w, Some(&b)),
        }
        .to_vec();
        let z = x.matmul(&w) + b.clone();
        let unfused = act.map_or(z.clone(), |act| z.activate(act)).to_vec();
        // Row 0 has the NaN: both outputs NaN although the bias drives them far below 0.
        assert!(fused[0].is_nan() && fused[1].is_nan(), "{act:?}: {fused:?}");
        assert_eq!(nan_pattern(&fused), nan_pattern(&unfused), "{act:?}");
        for (a, b) in fused.iter().zip(&unfused) {
            assert!(a.is_nan() || a == b, "{act:?}: fused {a} unfused {b}");
        }
    }
}

#[test]
fn sigmoid_fused_and_unfused_are_one_overflow_safe_formula() {
    let zs = [-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0];
    let z = Tensor::<f32>::from_vec(zs.iter().map(|&v| v as f32).collect(), &[1, zs.len()]);
    let eye = Tensor::<f32>::from_vec(
        (0..zs.len() * zs.len())
            .map(|i| if i % (zs.len() + 1) == 0 { 1.0 } else { 0.0 })
            .collect(),
        &[zs.len(), zs.len()],
    );
    let fused = z.linear_act(&eye, None, Activation::Sigmoid).to_vec();
    let plain = z.sigmoid().to_vec();
    assert_eq!(fused, plain);
    assert!(plain
        .iter()
        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    assert!(plain[0] < 1e-30 && plain[0] >= 0.0);
    assert_eq!(plain[8], 1.0);
}

#[test]
fn maximum_and_minimum_propagate_nan_and_pass_the_gradient_to_both_sides() {
    let a = Tensor::<f64>::from_vec(vec![NAN, 1.0, 3.0, 2.0], &[4]).with_grad();
    let b = Tensor::<f64>::from_vec(vec![0.0, NAN, 1.0, 2.0], &[4]).with_grad();
    for (name, out) in [("maximum", a.maximum(&b)), ("minimum", a.minimum(&b))] {
        let v = out.to_vec();
        assert!(v[0].is_nan() && v[1].is_nan(), "{name}: {v:?}");
        let g = grad(&[out.sum()], &[a.clone(), b.clone()], None, false);
        let (ga, gb) = (g[0].to_vec(), g[1].to_vec());
        // PyTorch: where(a == b, g/2, g).masked_fill_(a < b, 0) (for maximum): with a NaN
        // neither comparison holds, so both sides get g; a tie splits it.
        assert_eq!(&ga[..2], &[1.0, 1.0], "{name}");
        assert_eq!(&gb[..2], &[1.0, 1.0], "{name}");
        assert_eq!(ga[3], 0.5);
        assert_eq!(gb[3], 0.5);
        let a_wins = name == "maximum";
        assert_eq!(ga[2], if a_wins { 1.0 } else { 0.0 }, "{name}");
        assert_eq!(gb[2], if a_wins { 0.0 } else { 1.0 }, "{name}");
    }
}

#[test]
fn clamp_keeps_nan_and_its_gradient_there_is_zero_as_in_pytorch() {
    let x = [NAN, -2.0, 0.25, 2.0];
    let y = Tensor::from_vec(x.to_vec(), &[4]).clamp(-1.0, 1.0).to_vec();
    assert!(y[0].is_nan());
    assert_eq!(&y[1..], &[-1.0, 0.25, 1.0]);
    // PyTorch's clamp_backward: where(min <= x <= max, g, 0); false for NaN.
    assert_eq!(
        gradient(&x, &[4], |t| t.clamp(-1.0, 1.0)),
        vec![0.0, 0.0, 1.0, 0.0]
    );
}

#[test]
fn max_propagates_nan_and_sends_the_gradient_to_the_nan_elements() {
    let x = [1.0, NAN, 3.0, NAN];
    let m = Tensor::from_vec(x.to_vec(), &[4]).max();
    assert!(m.item().is_nan());
    // PyTorch's max(): evenly_distribute_backward, the mask being isnan(x) when the
    // maximum is NaN.
    assert_eq!(gradient(&x, &[4], |t| t.max()), vec![0.0, 0.5, 0.0, 0.5]);
    // Along an axis: each row separately.
    let rows = [1.0, NAN, 3.0, 4.0];
    let out = Tensor::from_vec(rows.to_vec(), &[2, 2]).max_axes(&[1], false);
    let v = out.to_vec();
    assert!(v[0].is_nan());
    assert_eq!(v[1], 4.0);
    assert_eq!(
        gradient(&rows, &[2, 2], |t| t.max_axes(&[1], false)),
        vec![0.0, 1.0, 0.0, 1.0]
    );
}

#[test]
fn softmax_and_cross_entropy_make_the_row_with_a_nan_nan_and_leave_other_rows_alone() {
    let logits = [1.0, NAN, 0.5, 0.2, -1.0, 2.0];
    let p = Tensor::from_vec(logits.to_vec(), &[2, 3])
        .softmax(1)
        .to_vec();
    assert_eq!(nan_pattern(&p), vec![true, true, true, false, false, false]);
    let g = gradient(&logits, &[2, 3], |t| t.softmax(1).square());
    assert_eq!(nan_pattern(&g), vec![true, true, true, false, false, false]);
    let loss = Tensor::from_vec(logits.to_vec(), &[2, 3]).cross_entropy(&[0, 2]);
    assert!(loss.item().is_nan());
    let x = Tensor::from_vec(logits.to_vec(), &[2, 3]).with_grad();
    let g = grad(&[x.cross_entropy(&[0, 2])], &[x], None, false)[0].to_vec();
    assert_eq!(nan_pattern(&g), vec![true, true, true, false, false, false]);
}

#[test]
fn smooth_ops_give_a_nan_gradient_exactly_where_their_input_is_nan() {
    let x = [NAN, 0.5, 1.5];
    type Op = fn(&Tensor<f64>) -> Tensor<f64>;
    let ops: [(&str, Op); 9] = [
        ("exp", |t| t.exp()),
        ("log", |t| t.log()),
        ("sin", |t| t.sin()),
        ("cos", |t| t.cos()),
        ("tanh", |t| t.tanh()),
        ("sigmoid", |t| t.sigmoid()),
        ("sqrt", |t| t.sqrt()),
        ("pow", |t| t.powf(2.5)),
        ("square", |t| t.square()),
    ];
    for (name, op) in ops {
        let g = gradient(&x, &[3], op);
        assert_eq!(nan_pattern(&g), vec![true, false, false], "{name}: {g:?}");
    }
    // Linear ops: the gradient does not read x, so it stays finite (as in PyTorch).
    let linear: [(&str, Op); 4] = [
        ("neg", |t| t.neg()),
        ("add_scalar", |t| t.add_scalar(2.0)),
        ("mul_scalar", |t| t.mul_scalar(3.0)),
        ("sum", |t| t.sum()),
    ];
    for (name, op) in linear {
        let g = gradient(&x, &[3], op);
        assert!(g.iter().all(|v| v.is_finite()), "{name}: {g:?}");
    }
    // abs: PyTorch's g·sgn(x) with sgn(NaN) = 0.
    assert_eq!(gradient(&x, &[3], |t| t.abs()), vec![0.0, 1.0, 1.0]);
}

#[test]
fn products_send_nan_to_the_gradient_of_the_other_operand() {
    let a = Tensor::<f64>::from_vec(vec![NAN, 2.0, 1.0, 3.0], &[2, 2]).with_grad();
    let b = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).with_grad();
    // mul: ∂/∂a = b (finite), ∂/∂b = a (NaN where a is).
    let g = grad(&[(&a * &b).sum()], &[a.clone(), b.clone()], None, false);
    assert_eq!(nan_pattern(&g[0].to_vec()), vec![false; 4]);
    assert_eq!(nan_pattern(&g[1].to_vec()), vec![true, false, false, false]);
    // matmul: ∂/∂A = G·Bᵀ (finite), ∂/∂B = Aᵀ·G (row 0 of Aᵀ holds the NaN).
    let g = grad(&[a.matmul(&b).sum()], &[a.clone(), b.clone()], None, false);
    assert_eq!(nan_pattern(&g[0].to_vec()), vec![false; 4]);
    assert_eq!(nan_pattern(&g[1].to_vec()), vec![true, true, false, false]);
    // div: ∂/∂a = 1/b (finite), ∂/∂b = −a/b² (NaN where a is).
    let g = grad(&[(&a / &b).sum()], &[a, b], None, false);
    assert_eq!(nan_pattern(&g[0].to_vec()), vec![false; 4]);
    assert_eq!(nan_pattern(&g[1].to_vec()), vec![true, false, false, false]);
}

#[test]
fn infinities_follow_ieee_arithmetic() {
    let x = Tensor::<f64>::from_vec(vec![f64::INFINITY, f64::NEG_INFINITY, 1.0], &[3]);
    assert_eq!(x.relu().to_vec(), vec![f64::INFINITY, 0.0, 1.0]);
    assert_eq!(x.tanh().to_vec(), vec![1.0, -1.0, 1f64.tanh()]);
    assert_eq!(x.sigmoid().to_vec()[..2], [1.0, 0.0]);
    assert_eq!(x.max().item(), f64::INFINITY);
    assert_eq!(x.clamp(-2.0, 2.0).to_vec(), vec![2.0, -2.0, 1.0]);
    let row = Tensor::<f64>::from_vec(vec![f64::INFINITY, 1.0], &[1, 2]);
    // inf − inf: NaN, as torch.softmax gives.
    assert!(row.softmax(1).to_vec()[0].is_nan());
}
