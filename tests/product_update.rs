//! The weight gradient's own kernel and the SGD update fused into it (`tensor::short_k`,
//! `Optimizer::step_param_product`): the product against an f64 reference, the fused update
//! against the product stored and then `sgd_update_slices` (bit for bit), and training steps
//! that take the fused path against `backward()` then `step()`, which does not.
//! The kernel needs x86-64 with AVX2 and FMA; elsewhere these tests check that it is not used.
//! With OpenBLAS on two threads the fused update is split by rows over OpenBLAS's threads, so
//! the tests that train or split set OpenBLAS's thread count (a no-op for matrixmultiply)
//! under one lock, and the split is checked against the calling thread alone, bit for bit.

use ferrograd::nn::{Activation, Init, Mlp, Module};
use ferrograd::optim::{backward_and_step, sgd_product_update, sgd_update_slices, Optimizer, Sgd};
use ferrograd::profile;
use ferrograd::tensor::short_k::{self, Lhs, SgdStep, Sink};
use ferrograd::tensor::split::SplitChoice;
use ferrograd::Tensor;
use proptest::prelude::*;

/// `m·k` values of `A` laid out row-major (`transposed` false) or as the transpose of a
/// row-major k×m array (the weight gradient's `xᵀ`), with the strides to read them.
fn lhs(values: &[f32], m: usize, k: usize, transposed: bool) -> (Vec<f32>, usize, usize) {
    if transposed {
        let mut data = vec![0.0; m * k];
        for i in 0..m {
            for l in 0..k {
                data[l * m + i] = values[i * k + l];
            }
        }
        (data, 1, m)
    } else {
        (values.to_vec(), k, 1)
    }
}

fn values(len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-2.0f32..2.0, len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every element within f32 rounding of the f64 sum, whatever the shape (edges of the
    /// 4×16 register blocks included), the layout of `A` and the gap between `B`'s rows.
    #[test]
    fn the_product_matches_an_f64_reference(
        (m, k, n) in (1usize..40, 1usize..40, 1usize..50),
        transposed in any::<bool>(),
        gap in 0usize..3,
        a_vals in values(40 * 40),
        b in values(40 * 52),
    ) {
        prop_assume!(short_k::available());
        let a_vals = &a_vals[..m * k];
        let b_row = n + gap;
        let b = &b[..k * b_row];
        let (a, row, col) = lhs(a_vals, m, k, transposed);
        let mut c = vec![f32::NAN; m * n];
        short_k::product(Lhs::new(&a, m, k, row, col), b, b_row, (m, k, n), Sink::Store(&mut c));
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut size) = (0.0f64, 0.0f64);
                for l in 0..k {
                    let p = a_vals[i * k + l] as f64 * b[l * b_row + j] as f64;
                    exact += p;
                    size += p.abs();
                }
                let got = c[i * n + j] as f64;
                prop_assert!(
                    (got - exact).abs() <= 2.0 * k as f64 * f32::EPSILON as f64 * size + 1e-30,
                    "({i}, {j}) of {m}×{k}·{k}×{n}: {got} vs {exact}"
                );
            }
        }
    }

    /// The update stage gives the bits of the product stored and then `sgd_update_slices`,
    /// for every coefficient combination, and the same verdict on finiteness.
    #[test]
    fn the_fused_update_equals_the_product_then_the_update_bit_for_bit(
        (m, k, n) in (1usize..24, 1usize..33, 1usize..40),
        transposed in any::<bool>(),
        (momentum, weight_decay, lr) in (0.0f64..0.99, prop_oneof![Just(0.0), 0.0f64..0.01], 1e-4f64..0.5),
        nesterov in any::<bool>(),
        a_vals in values(24 * 33),
        b in values(33 * 40),
        theta0 in values(24 * 40),
        v0 in values(24 * 40),
    ) {
        prop_assume!(short_k::available());
        let (a, row, col) = lhs(&a_vals[..m * k], m, k, transposed);
        let b = &b[..k * n];
        let mut g = vec![0.0; m * n];
        short_k::product(Lhs::new(&a, m, k, row, col), b, n, (m, k, n), Sink::Store(&mut g));
        let (mut t1, mut v1) = (theta0[..m * n].to_vec(), v0[..m * n].to_vec());
        let f1 = sgd_update_slices(&mut t1, &mut v1, &g, momentum, weight_decay, lr, nesterov);
        let (mut t2, mut v2) = (theta0[..m * n].to_vec(), v0[..m * n].to_vec());
        let step = SgdStep {
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
            lr: lr as f32,
            nesterov,
        };
        let f2 = short_k::product(
            Lhs::new(&a, m, k, row, col),
            b,
            n,
            (m, k, n),
            Sink::Sgd { theta: &mut t2, velocity: &mut v2, step },
        );
        prop_assert_eq!(f1, f2);
        for i in 0..m * n {
            prop_assert_eq!(t1[i].to_bits(), t2[i].to_bits(), "θ[{}]: {} vs {}", i, t1[i], t2[i]);
            prop_assert_eq!(v1[i].to_bits(), v2[i].to_bits(), "v[{}]: {} vs {}", i, v1[i], v2[i]);
        }
    }
}

/// Held while a test counts fused calls: OpenBLAS's thread count is global to the process.
static BLAS_THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether the fused path is expected at this batch for a layer of `outputs` units (whatever
/// the GEMM's thread count).
fn fuses(batch: usize, outputs: usize) -> bool {
    short_k::available()
        && (1..=ferrograd::optim::PRODUCT_UPDATE_MAX_BATCH).contains(&batch)
        && outputs % short_k::COLS == 0
}

/// Calls of the fused update made by `f` (the profiler's `linear_sgd` scope), run with
/// OpenBLAS on `blas_threads` threads.
fn fused_calls(blas_threads: usize, f: impl FnOnce()) -> u64 {
    let _lock = BLAS_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    ferrograd::threads::set_blas_threads(blas_threads);
    profile::set_enabled(true);
    f();
    profile::set_enabled(false);
    profile::op_totals()
        .into_iter()
        .find(|(name, _, _)| *name == "linear_sgd")
        .map_or(0, |(_, calls, _)| calls)
}

/// Steps of `backward_and_step` (which fuses the weights' updates at batch ≤ 32) against
/// `backward()` then `step()` (which never does): the same parameters to f32 rounding after
/// several steps, for plain, Nesterov and weight-decayed SGD — and the fused path really
/// taken, once per layer and step (with one OpenBLAS thread or two), or not at all at batch
/// 33.
#[test]
fn training_steps_with_the_fused_update_equal_backward_then_step() {
    for (nesterov, weight_decay, batch, blas) in [
        (false, 0.0, 32, 1),
        (true, 1e-3, 17, 1),
        (false, 5e-4, 33, 1),
        (false, 0.0, 32, 2),
        (true, 5e-4, 9, 2),
    ] {
        let fused_model = Mlp::<f32>::new(&[20, 16, 32, 3], Activation::Tanh, Init::Xavier, 5);
        let plain_model = fused_model.clone();
        // `clone` shares the tensors; give the second model weights of its own.
        let plain_model = Mlp {
            layers: plain_model
                .layers
                .iter()
                .map(|l| ferrograd::nn::Linear {
                    weight: Tensor::from_array(l.weight.to_array()).with_grad(),
                    bias: Tensor::from_array(l.bias.to_array()).with_grad(),
                })
                .collect(),
            ..plain_model
        };
        let make = || {
            let mut s = Sgd::<f32>::new(0.9);
            s.nesterov = nesterov;
            s.weight_decay = weight_decay;
            s
        };
        let (mut fused_sgd, mut plain_sgd) = (make(), make());
        let (fused_params, plain_params) = (fused_model.parameters(), plain_model.parameters());
        let steps = 5;
        let calls = fused_calls(blas, || {
            for step in 0..steps {
                let x = Tensor::<f32>::rand_normal(&[batch, 20], 0.0, 1.0, 40 + step);
                let labels: Vec<usize> = (0..batch).map(|i| (i + step as usize) % 3).collect();
                assert!(backward_and_step(
                    &fused_model.loss(&x, &labels),
                    &fused_params,
                    &mut fused_sgd,
                    0.1
                ));
                for p in &plain_params {
                    p.zero_grad();
                }
                plain_model.loss(&x, &labels).backward();
                assert!(plain_sgd.step(&plain_params, 0.1));
            }
        });
        // The layers 16 and 32 wide are fused; the 3-wide one never is (`fuses`).
        let widths = [16, 32, 3];
        let expected = steps * widths.iter().filter(|&&w| fuses(batch, w)).count() as u64;
        assert_eq!(
            calls, expected,
            "batch {batch}, {blas} BLAS threads: fused updates"
        );
        for (f, p) in fused_params.iter().zip(&plain_params) {
            assert!(f.grad().is_none(), "a fused step leaves no gradient behind");
            let (f, p) = (f.to_vec(), p.to_vec());
            let scale = p.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in f.iter().zip(&p) {
                assert!(
                    (a - b).abs() <= 1e-5 * scale,
                    "batch {batch}, nesterov {nesterov}: {a} vs {b}"
                );
            }
        }
        // The momentum buffers too: the next steps depend on them.
        for (a, b) in fused_sgd
            .state()
            .buffers
            .iter()
            .zip(&plain_sgd.state().buffers)
        {
            let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in a.iter().zip(b.iter()) {
                assert!(
                    (a - b).abs() <= 1e-5 * scale.max(1e-6),
                    "velocity {a} vs {b}"
                );
            }
        }
    }
}

/// A weight used by two layers (tied) has two shares of gradient: it must not be updated from
/// the first share alone. Nor may a gradient the user already accumulated in `.grad` be
/// dropped. Both cases equal `backward()` then `step()`.
#[test]
fn a_weight_with_more_than_one_share_of_gradient_is_not_updated_from_one() {
    let w0: Vec<f32> = (0..256)
        .map(|i| ((i * 7) % 13) as f32 * 0.05 - 0.3)
        .collect();
    let x = Tensor::<f32>::rand_normal(&[8, 16], 0.0, 1.0, 3);
    let run = |fused: bool, pre_grad: bool, tied: bool| {
        let w = Tensor::<f32>::from_vec(w0.clone(), &[16, 16]).with_grad();
        if pre_grad {
            w.set_grad(Some(Tensor::ones(&[16, 16])));
        }
        let h = x.linear(&w, None).tanh();
        let out = if tied { h.linear(&w, None) } else { h };
        let loss = out.cross_entropy(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let mut sgd = Sgd::<f32>::new(0.9);
        let calls = fused_calls(1, || {
            if fused {
                assert!(backward_and_step(
                    &loss,
                    std::slice::from_ref(&w),
                    &mut sgd,
                    0.5
                ));
            } else {
                loss.backward();
                assert!(sgd.step(std::slice::from_ref(&w), 0.5));
            }
        });
        (w.to_vec(), calls)
    };
    for (pre_grad, tied) in [(false, true), (true, false)] {
        let (fused, calls) = run(true, pre_grad, tied);
        let (plain, _) = run(false, pre_grad, tied);
        assert_eq!(calls, 0, "pre_grad {pre_grad}, tied {tied}: not fused");
        for (a, b) in fused.iter().zip(&plain) {
            assert!(
                (a - b).abs() <= 1e-6,
                "pre_grad {pre_grad}, tied {tied}: {a} vs {b}"
            );
        }
    }
    // The control: alone and with no earlier gradient, the same weight is fused.
    let (_, calls) = run(true, false, false);
    assert_eq!(calls, u64::from(fuses(8, 16)));
}

/// A weight the fused update sends to infinity is reported as divergence, as the unfused
/// update reports it: inputs of 1e30 through ReLU make a finite loss and weight gradients of about 1e29,
/// which a learning rate of 1e10 takes past `f32::MAX`.
#[test]
fn an_update_that_overflows_is_reported_by_the_fused_path_too() {
    let x = Tensor::<f32>::from_vec(vec![1e30; 4 * 6], &[4, 6]);
    let labels = [0, 1, 2, 0];
    for fused in [true, false] {
        let model = Mlp::<f32>::new(&[6, 16, 3], Activation::Relu, Init::He, 2);
        let params = model.parameters();
        let mut sgd = Sgd::<f32>::new(0.9);
        let loss = model.loss(&x, &labels);
        assert!(loss.item().is_finite(), "the loss itself stays finite");
        let (finite, calls) = {
            let mut finite = true;
            let calls = fused_calls(1, || {
                finite = if fused {
                    backward_and_step(&loss, &params, &mut sgd, 1e10)
                } else {
                    loss.backward();
                    sgd.step(&params, 1e10)
                };
            });
            (finite, calls)
        };
        assert!(!finite, "fused {fused}: the overflow is reported");
        assert!(model.layers[0]
            .weight
            .to_vec()
            .iter()
            .any(|w| !w.is_finite()));
        assert_eq!(calls > 0, fused && fuses(4, 16));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `sgd_product_update` split by rows over OpenBLAS's two threads, on the calling thread
    /// alone, and the product stored then `sgd_update_slices`: the same bits and the same
    /// verdict, for weight matrices on both sides of the split threshold, with a non-finite
    /// input planted in some rows (which piece meets it must not matter).
    #[test]
    fn the_split_fused_update_equals_the_unsplit_one_and_the_product_then_the_update(
        (batch, m, n) in (1usize..=32, 1usize..300, prop_oneof![Just(128usize), 1usize..70]),
        (momentum, weight_decay, lr) in (0.0f64..0.99, prop_oneof![Just(0.0), 0.0f64..0.01], 1e-4f64..0.5),
        nesterov in any::<bool>(),
        poison in prop::option::of((0usize..300, prop_oneof![Just(f32::NAN), Just(f32::INFINITY)])),
        seed in any::<u64>(),
    ) {
        prop_assume!(short_k::available());
        let noise = |len: usize, salt: u64| -> Vec<f32> {
            (0..len as u64)
                .map(|i| {
                    let h = (i ^ seed.rotate_left(salt as u32))
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add(salt);
                    ((h >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect()
        };
        let mut x = noise(batch * m, 1);
        if let Some((row, bad)) = poison {
            x[row % m] = bad;
        }
        let dz = noise(batch * n, 2);
        let (theta0, v0) = (noise(m * n, 3), noise(m * n, 4));
        let step = SgdStep {
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
            lr: lr as f32,
            nesterov,
        };
        let run = |split: bool| {
            let (mut t, mut v) = (theta0.clone(), v0.clone());
            let _lock = BLAS_THREADS.lock().unwrap_or_else(|e| e.into_inner());
            ferrograd::threads::set_blas_threads(2);
            let choice = SplitChoice::fixed(split);
            let finite = sgd_product_update(&x, &dz, (batch, m, n), &mut t, &mut v, step, &choice);
            (t, v, finite)
        };
        let (t1, v1, f1) = run(true);
        let (t2, v2, f2) = run(false);
        let mut g = vec![0.0; m * n];
        short_k::product(Lhs::new(&x, m, batch, 1, m), &dz, n, (m, batch, n), Sink::Store(&mut g));
        let (mut t3, mut v3) = (theta0.clone(), v0.clone());
        let f3 = sgd_update_slices(&mut t3, &mut v3, &g, momentum, weight_decay, lr, nesterov);
        prop_assert_eq!(f1, f2);
        prop_assert_eq!(f1, f3);
        prop_assert_eq!(f1, poison.is_none());
        for i in 0..m * n {
            prop_assert_eq!(t1[i].to_bits(), t2[i].to_bits(), "θ[{}] split vs not", i);
            prop_assert_eq!(v1[i].to_bits(), v2[i].to_bits(), "v[{}] split vs not", i);
            prop_assert_eq!(t1[i].to_bits(), t3[i].to_bits(), "θ[{}] fused vs formed", i);
            prop_assert_eq!(v1[i].to_bits(), v3[i].to_bits(), "v[{}] fused vs formed", i);
        }
    }
}
