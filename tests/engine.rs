//! Known answers for the engine, beside the central-difference checks of `tests/gradcheck.rs`.
// `&[x.clone()]` reads like the math; `std::slice::from_ref(&x)` does not.
#![allow(clippy::cloned_ref_to_slice_refs)]

use ferrograd::{grad, hessian, hvp, no_grad, Tensor};
use ndarray::{array, Array2};

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn gradient_of_sum_of_squares_is_two_x() {
    let x = Tensor::<f64>::from_vec(vec![-1.5, 0.0, 2.0, 3.25], &[2, 2]).with_grad();
    x.square().sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![-3.0, 0.0, 4.0, 6.5]);
}

#[test]
fn hessian_of_quadratic_form_is_a_plus_a_transpose() {
    let a = array![[1.0, 2.0, -1.0], [0.5, -3.0, 4.0], [2.0, 0.0, 1.5]];
    let at = Tensor::<f64>::from_array(a.clone());
    let x = Tensor::<f64>::from_vec(vec![0.3, -0.7, 1.1], &[3]).with_grad();
    // Column j of H is H·e_j, each from one Hessian-vector product.
    let mut h = Array2::<f64>::zeros((3, 3));
    for j in 0..3 {
        let mut e = vec![0.0; 3];
        e[j] = 1.0;
        let f = |p: &[Tensor<f64>]| p[0].matmul(&at.matmul(&p[0]));
        let col = hvp(f, &[x.clone()], &[Tensor::from_vec(e, &[3])]);
        for (i, v) in col[0].to_vec().into_iter().enumerate() {
            h[[i, j]] = v;
        }
    }
    let expected = &a + &a.t();
    assert!(h
        .iter()
        .zip(expected.iter())
        .all(|(x, y)| (x - y).abs() < 1e-12));
    // The functional `hessian` assembles the same matrix.
    let full = hessian(|x| x.matmul(&at.matmul(x)), &x);
    assert!(full
        .iter()
        .zip(expected.iter())
        .all(|(x, y)| (x - y).abs() < 1e-12));
}

#[test]
fn gradient_of_mean_cross_entropy_is_softmax_minus_one_hot_over_n() {
    let logits = array![
        [2.0, -1.0, 0.5],
        [0.1, 0.2, 0.3],
        [-3.0, 5.0, 1.0],
        [1.0, 1.0, 1.0]
    ];
    let labels = [0usize, 2, 1, 1];
    let x = Tensor::<f64>::from_array(logits.clone()).with_grad();
    let loss = x.cross_entropy(&labels);
    loss.backward();
    let n = labels.len() as f64;
    let mut expected = Vec::new();
    let mut expected_loss = 0.0;
    for (i, row) in logits.rows().into_iter().enumerate() {
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        expected_loss += z.ln() - row[labels[i]];
        for (j, v) in row.iter().enumerate() {
            let one_hot = if j == labels[i] { 1.0 } else { 0.0 };
            expected.push((v.exp() / z - one_hot) / n);
        }
    }
    assert!((loss.item() - expected_loss / n).abs() < 1e-12);
    assert!(close(&x.grad().unwrap().to_vec(), &expected, 1e-12));
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let x = Tensor::<f32>::from_vec(vec![1000.0, 0.0, -1000.0, 0.0], &[2, 2]).with_grad();
    let loss = x.cross_entropy(&[0, 0]);
    loss.backward();
    // Row 0: label 0 wins by 1000 → loss 0; row 1: label 0 loses by 1000 → loss 1000.
    assert!((loss.item() - 500.0).abs() < 1e-3, "loss {}", loss.item());
    assert!(x.grad().unwrap().to_vec().iter().all(|g| g.is_finite()));
}

#[test]
fn broadcast_add_reduces_gradients_to_each_input_shape() {
    let a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3, 1]).with_grad();
    let b = Tensor::<f64>::from_vec(vec![10.0, 20.0, 30.0, 40.0], &[1, 4]).with_grad();
    let y = &a + &b;
    assert_eq!(y.shape(), vec![3, 4]);
    // Weight each output element differently so the sums are distinguishable.
    let w = Tensor::from_vec((0..12).map(|i| i as f64).collect(), &[3, 4]);
    (&y * &w).sum().backward();
    let ga = a.grad().unwrap();
    let gb = b.grad().unwrap();
    assert_eq!(ga.shape(), vec![3, 1]);
    assert_eq!(gb.shape(), vec![1, 4]);
    assert_eq!(ga.to_vec(), vec![6.0, 22.0, 38.0]); // row sums of w
    assert_eq!(gb.to_vec(), vec![12.0, 15.0, 18.0, 21.0]); // column sums of w
}

#[test]
fn gradients_accumulate_over_two_backward_calls_until_zero_grad() {
    let x = Tensor::<f64>::from_vec(vec![1.0, -2.0], &[2]).with_grad();
    let y = (&x * &x).sum();
    y.backward();
    y.backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![4.0, -8.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    (&x * 3.0).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![3.0, 3.0]);
}

#[test]
fn accumulation_does_not_write_through_shared_gradients() {
    // `a + b` hands the same gradient tensor to both inputs; accumulating into one must not
    // change the other.
    let a = Tensor::<f64>::scalar(1.0).with_grad();
    let b = Tensor::<f64>::scalar(2.0).with_grad();
    let y = &a + &b;
    y.backward();
    y.backward();
    (&a * 5.0).backward();
    assert_eq!(a.grad().unwrap().item(), 7.0);
    assert_eq!(b.grad().unwrap().item(), 2.0);
}

#[test]
fn grad_leaves_dot_grad_alone_and_gives_zero_for_unused_inputs() {
    let x = Tensor::<f64>::scalar(2.0).with_grad();
    let unused = Tensor::<f64>::ones(&[2]).with_grad();
    let y = x.powf(3.0);
    let g = grad(&[y], &[x.clone(), unused], None, false);
    assert_eq!(g[0].item(), 12.0);
    assert_eq!(g[1].to_vec(), vec![0.0, 0.0]);
    assert!(x.grad().is_none());
}

#[test]
fn third_derivative_through_repeated_create_graph() {
    let x = Tensor::<f64>::scalar(0.7).with_grad();
    let y = x.sin();
    let d1 = grad(&[y], &[x.clone()], None, true).remove(0);
    let d2 = grad(&[d1.clone()], &[x.clone()], None, true).remove(0);
    let d3 = grad(&[d2.clone()], &[x.clone()], None, false).remove(0);
    assert!((d1.item() - 0.7f64.cos()).abs() < 1e-15);
    assert!((d2.item() + 0.7f64.sin()).abs() < 1e-15);
    assert!((d3.item() + 0.7f64.cos()).abs() < 1e-15);
}

#[test]
fn max_splits_the_gradient_evenly_between_ties() {
    let x = Tensor::<f64>::from_vec(vec![1.0, 3.0, 3.0, 2.0, 3.0, 0.0], &[2, 3]).with_grad();
    x.max().backward();
    assert!(close(
        &x.grad().unwrap().to_vec(),
        &[0.0, 1.0 / 3.0, 1.0 / 3.0, 0.0, 1.0 / 3.0, 0.0],
        1e-15
    ));
    let y = Tensor::<f64>::from_vec(vec![5.0, 5.0, 1.0, 4.0], &[2, 2]).with_grad();
    y.max_axes(&[1], false).sum().backward();
    assert_eq!(y.grad().unwrap().to_vec(), vec![0.5, 0.5, 0.0, 1.0]);
    // maximum(x, x) has derivative 1, like x.
    let z = Tensor::<f64>::from_vec(vec![1.0, -1.0], &[2]).with_grad();
    z.maximum(&z).sum().backward();
    assert_eq!(z.grad().unwrap().to_vec(), vec![1.0, 1.0]);
}

#[test]
fn no_grad_records_nothing_and_backward_without_graph_builds_none() {
    let w = Tensor::<f32>::ones(&[3]).with_grad();
    {
        let _g = no_grad();
        let y = &w * &w;
        assert!(!y.requires_grad() && y.is_leaf());
    }
    let y = (&w * &w).sum();
    assert!(y.requires_grad() && !y.is_leaf());
    y.backward();
    let g = w.grad().unwrap();
    assert!(g.is_leaf() && !g.requires_grad());
}

#[test]
fn matmul_follows_numpy_for_one_dimensional_operands() {
    let m = Tensor::<f64>::from_array(array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    let v2 = Tensor::from_vec(vec![1.0, -1.0], &[2]);
    let v3 = Tensor::from_vec(vec![1.0, 0.0, 2.0], &[3]);
    assert_eq!(m.matmul(&v2).to_vec(), vec![-1.0, -1.0, -1.0]);
    assert_eq!(v3.matmul(&m).to_vec(), vec![11.0, 14.0]);
    let d = v3.matmul(&v3);
    assert_eq!((d.shape().to_vec(), d.item()), (vec![], 5.0));
}

#[test]
fn transposes_are_views_and_feed_gemm_without_copies() {
    let a = Tensor::<f32>::rand_normal(&[4, 3], 0.0, 1.0, 1);
    let at = a.t();
    // The transpose shares the buffer: same pointer, swapped strides.
    assert_eq!(a.value().as_ptr(), at.value().as_ptr());
    assert_eq!(at.value().strides(), &[1, 3]);
    let p = at.matmul(&a);
    let expected = a
        .value()
        .t()
        .to_owned()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .dot(
            &a.value()
                .view()
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap(),
        );
    assert!(p
        .to_vec()
        .iter()
        .zip(expected.iter())
        .all(|(x, y)| (x - y).abs() < 1e-5));
}

#[test]
fn updating_a_value_in_place_leaves_views_of_the_old_buffer_alone() {
    // Copy-on-write: a transpose shares the buffer; updating the original copies first.
    let w = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let wt = w.t();
    w.update(|mut v| v.fill(0.0));
    assert_eq!(w.to_vec(), vec![0.0; 4]);
    assert_eq!(wt.to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn cast_between_f32_and_f64_detaches_and_rounds() {
    let x = Tensor::<f64>::from_vec(vec![0.1, 1e40], &[2]).with_grad();
    let y: Tensor<f32> = x.cast();
    assert!(!y.requires_grad());
    assert_eq!(y.to_vec()[0], 0.1f32);
    assert!(y.to_vec()[1].is_infinite());
    let back: Tensor<f64> = y.cast();
    assert_eq!(back.to_vec()[0], 0.1f32 as f64);
}

#[test]
fn seeded_random_tensors_are_reproducible_and_have_the_asked_moments() {
    let a = Tensor::<f64>::rand_normal(&[200, 100], 1.0, 2.0, 42);
    let b = Tensor::<f64>::rand_normal(&[200, 100], 1.0, 2.0, 42);
    assert_eq!(a.to_vec(), b.to_vec());
    let v = a.to_vec();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert!((mean - 1.0).abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05);
    let u = Tensor::<f32>::rand_uniform(&[1000], -0.5, 0.25, 3).to_vec();
    assert!(u.iter().all(|&x| (-0.5..0.25).contains(&x)));
}

#[test]
fn slicing_concat_and_gather_have_the_right_values() {
    let x = Tensor::<f64>::from_vec((0..12).map(f64::from).collect(), &[3, 4]);
    assert_eq!(
        x.slice(1, 1, 3).to_vec(),
        vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]
    );
    assert_eq!(
        x.index_select(&[2, 0, 2]).slice(1, 0, 1).to_vec(),
        vec![8.0, 0.0, 8.0]
    );
    let c = Tensor::concat(&[x.slice(0, 0, 1), x.slice(0, 2, 3)], 0);
    assert_eq!(c.shape(), vec![2, 4]);
    assert_eq!(c.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 8.0, 9.0, 10.0, 11.0]);
    // Gather's gradient adds up repeated rows.
    let w = x.detach().with_grad();
    w.index_select(&[1, 1, 0]).sum().backward();
    assert_eq!(
        w.grad().unwrap().sum_axes(&[1], false).to_vec(),
        vec![4.0, 8.0, 0.0]
    );
}

#[test]
fn softmax_rows_sum_to_one_and_log_softmax_matches_its_log() {
    let x = Tensor::<f64>::rand_normal(&[5, 7], 0.0, 3.0, 9);
    let p = x.softmax(1);
    for s in p.sum_axes(&[1], false).to_vec() {
        assert!((s - 1.0).abs() < 1e-12);
    }
    let lp = x.log_softmax(1);
    assert!(close(&lp.to_vec(), &p.log().to_vec(), 1e-12));
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
fn broadcast_mismatch_panics_with_op_and_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 3]) + Tensor::zeros(&[4]);
}

#[test]
#[should_panic(expected = "matmul: inner dimensions differ for shapes [2, 3] and [4, 5]")]
fn matmul_mismatch_panics_with_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
}

#[test]
#[should_panic(expected = "reshape: cannot reshape shape [2, 3]")]
fn reshape_mismatch_panics() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).reshape(&[4]);
}

#[test]
#[should_panic(
    expected = "backward: a gradient can be created implicitly only for a one-element output"
)]
fn backward_of_non_scalar_without_seed_panics() {
    let x = Tensor::<f32>::ones(&[3]).with_grad();
    (&x * &x).backward();
}

#[test]
#[should_panic(expected = "cross_entropy: label 3 out of range for 3 classes")]
fn cross_entropy_rejects_out_of_range_labels() {
    let _ = Tensor::<f32>::zeros(&[1, 3]).cross_entropy(&[3]);
}

#[test]
fn parallel_reductions_give_the_same_bits_on_every_run_and_thread_count() {
    use ferrograd::tensor::kernels::{self, Reduce};
    let x = Tensor::<f32>::rand_normal(&[1024, 700], 0.0, 1.0, 5);
    let v = x.value().clone();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        // Force the parallel paths, on this pool's thread only (sibling tests run beside us).
        pool.install(|| {
            kernels::with_parallel_threshold(0, || {
                let all = kernels::reduce_all(Reduce::Sum, &v.view());
                let rows = kernels::reduce_axis(Reduce::Sum, &v.view(), 0);
                let cols = kernels::reduce_axis(Reduce::Sum, &v.view(), 1);
                (
                    all.to_bits(),
                    rows.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
                    cols.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
                )
            })
        })
    };
    let first = run(2);
    assert!(first == run(2), "two runs on two threads differ");
    assert!(first == run(1), "one thread differs from two");
    assert!(first == run(3), "three threads differ from two");
    // And they are sums: compare with an f64 reference.
    let exact: f64 = v.iter().map(|&f| f as f64).sum();
    assert!((f32::from_bits(first.0) as f64 - exact).abs() < 1e-2);
}

#[test]
fn training_twice_with_the_same_seed_gives_identical_weights_and_metrics() {
    use ferrograd::train::{train, TrainConfig};
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let a = train(&config).unwrap();
    let b = train(&config).unwrap();
    for (x, y) in a.model.layers.iter().zip(&b.model.layers) {
        assert_eq!(x.weight.to_vec(), y.weight.to_vec());
        assert_eq!(x.bias.to_vec(), y.bias.to_vec());
    }
    let metrics = |r: &ferrograd::train::TrainReport| {
        r.results
            .epochs
            .iter()
            .map(|e| {
                (
                    e.train_loss.to_bits(),
                    e.val_loss.to_bits(),
                    e.test_accuracy.to_bits(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics(&a), metrics(&b));
}

#[test]
fn updating_inside_backward_gives_the_same_bits_as_after_it() {
    use ferrograd::nn::{Activation, Init, Mlp, Module};
    use ferrograd::optim::{backward_and_step, Optimizer, Sgd};
    let x = Tensor::<f32>::rand_uniform(&[16, 12], 0.0, 1.0, 3);
    let y: Vec<usize> = (0..16).map(|i| i % 4).collect();
    let a = Mlp::<f32>::new(&[12, 9, 7, 4], Activation::Tanh, Init::Xavier, 5);
    let b = Mlp::<f32>::new(&[12, 9, 7, 4], Activation::Tanh, Init::Xavier, 5);
    let (pa, pb) = (a.parameters(), b.parameters());
    let (mut sa, mut sb) = (Sgd::new(0.9), Sgd::new(0.9));
    sa.weight_decay = 1e-3;
    sb.weight_decay = 1e-3;
    for _ in 0..3 {
        backward_and_step(&a.loss(&x, &y), &pa, &mut sa, 0.1);
        b.loss(&x, &y).backward();
        sb.step(&pb, 0.1);
        for p in &pb {
            p.zero_grad();
        }
    }
    for (p, q) in pa.iter().zip(&pb) {
        let bits = |t: &Tensor<f32>| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(p), bits(q));
        assert!(p.grad().is_none(), "the fused step drops each gradient");
    }
}

#[test]
fn linear_backward_without_a_graph_gives_the_same_bits_as_with_one() {
    use ferrograd::tensor::ops::Activation;
    // 100 × 300 rows span two blocks of the bias gradient's blocked sum.
    let x = Tensor::<f32>::rand_normal(&[100, 300], 0.0, 1.0, 1).with_grad();
    let w = Tensor::<f32>::rand_normal(&[300, 50], 0.0, 0.1, 2).with_grad();
    let b = Tensor::<f32>::rand_normal(&[50], 0.0, 0.1, 3).with_grad();
    let g = Tensor::<f32>::rand_normal(&[100, 50], 0.0, 1.0, 4);
    for act in [None]
        .into_iter()
        .chain(Activation::ALL.iter().copied().map(Some))
    {
        let out = match act {
            Some(act) => x.linear_act(&w, Some(&b), act),
            None => x.linear(&w, Some(&b)),
        };
        let inputs = [x.clone(), w.clone(), b.clone()];
        // Without a graph of the gradient the arrays are used directly; with one, tensor ops.
        let fast = grad(&[out.clone()], &inputs, Some(&[g.clone()]), false);
        let taped = grad(&[out], &inputs, Some(&[g.clone()]), true);
        assert!(taped[1].requires_grad() && fast.iter().all(|t| !t.requires_grad()));
        for (f, t) in fast.iter().zip(&taped) {
            let bits = |t: &Tensor<f32>| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(f.shape(), t.shape());
            assert_eq!(bits(f), bits(t), "{act:?}");
        }
    }
}

#[test]
fn training_steps_reuse_their_buffers_and_memory_does_not_grow() {
    use ferrograd::nn::{Activation, Init, Mlp, Module};
    use ferrograd::optim::{backward_and_step, Sgd};
    use ferrograd::tensor::pool;
    pool::release();
    let x = Tensor::<f32>::rand_uniform(&[64, 100], 0.0, 1.0, 7);
    let y: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let model = Mlp::<f32>::new(&[100, 64, 64, 10], Activation::Relu, Init::Xavier, 1);
    let params = model.parameters();
    let mut sgd = Sgd::new(0.9);
    let mut after = Vec::new();
    for _ in 0..20 {
        backward_and_step(&model.loss(&x, &y), &params, &mut sgd, 0.01);
        after.push(pool::stats::<f32>());
    }
    // The first step allocates its working set; every later step is served from it.
    let first = after[0];
    assert!(first.allocated > 0 && first.held_buffers > 0, "{first:?}");
    for s in &after[1..] {
        assert_eq!(
            s.allocated, first.allocated,
            "a later step allocated: {s:?}"
        );
        assert_eq!(
            (s.held_buffers, s.held_bytes),
            (first.held_buffers, first.held_bytes)
        );
    }
    assert!(after[19].reused >= 19 * 4, "{:?}", after[19]);
    pool::release();
    assert_eq!(pool::stats::<f32>().held_bytes, 0);
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(300))]
    /// The optimiser's vectorised update against a scalar loop of PyTorch's formula: the same
    /// bits for every element at every length (the vector body and the remainder), both
    /// momentum forms; and a NaN or an infinity placed anywhere in the gradient is reported.
    #[test]
    fn sgd_update_matches_a_scalar_loop_and_finds_any_non_finite_value(
        len in 1usize..300,
        seed in 0u64..1000,
        mu in 0.0f64..0.99,
        wd in proptest::sample::select(vec![0.0, 5e-4, 0.1]),
        lr in 1e-3f64..1.0,
        nesterov: bool,
        bad in proptest::option::of((0usize..300, proptest::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]))),
    ) {
        use ferrograd::optim::{Optimizer, Sgd};
        let theta = Tensor::<f32>::rand_normal(&[len], 0.0, 1.0, seed).with_grad();
        let grads = [
            Tensor::<f32>::rand_normal(&[len], 0.0, 1.0, seed + 1).to_vec(),
            Tensor::<f32>::rand_normal(&[len], 0.0, 1.0, seed + 2).to_vec(),
        ];
        let mut sgd = Sgd::new(mu);
        sgd.nesterov = nesterov;
        sgd.weight_decay = wd;
        let (mut t, mut v) = (theta.to_vec(), vec![0.0f32; len]);
        let (mu, wd, lr) = (mu as f32, wd as f32, lr as f32);
        for (step, g) in grads.iter().enumerate() {
            let mut g = g.clone();
            let poisoned = step == 1 && bad.is_some_and(|(at, _)| at < len);
            if let (true, Some((at, value))) = (poisoned, bad) {
                g[at] = value;
            }
            theta.set_grad(Some(Tensor::from_vec(g.clone(), &[len])));
            let finite = sgd.step(&[theta.clone()], lr as f64);
            sgd_scalar_reference(&mut t, &mut v, &g, (mu, wd, lr), nesterov);
            proptest::prop_assert_eq!(finite, !poisoned);
            proptest::prop_assert_eq!(finite, t.iter().all(|x| x.is_finite()));
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            proptest::prop_assert_eq!(bits(&theta.to_vec()), bits(&t));
        }
    }
}

/// PyTorch's SGD formula element by element, in `T`: the reference for the optimiser's kernels.
fn sgd_scalar_reference<T: ferrograd::Element>(
    t: &mut [T],
    v: &mut [T],
    g: &[T],
    (mu, wd, lr): (T, T, T),
    nesterov: bool,
) {
    for i in 0..t.len() {
        let gi = g[i] + wd * t[i];
        v[i] = mu * v[i] + gi;
        t[i] = t[i] - lr * if nesterov { gi + mu * v[i] } else { v[i] };
    }
}

/// `sgd_update_slices` — or, with `split`, `sgd_update_split` always split over the GEMM
/// threads (where there are two) — on a window of a longer buffer, against the scalar
/// reference: same bits for θ and v, the same finiteness, and nothing outside the window
/// written.
#[allow(clippy::too_many_arguments)]
fn check_sgd_slices<T: ferrograd::Element>(
    len: usize,
    offset: usize,
    seed: u64,
    (mu, wd, lr): (f64, f64, f64),
    nesterov: bool,
    bad: Option<(usize, f64)>,
    split: bool,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let total = offset + len + 7;
    let fill = |s: u64| Tensor::<T>::rand_normal(&[total], 0.0, 1.0, s).to_vec();
    let (mut theta, mut v, mut g) = (fill(seed), fill(seed + 1), fill(seed + 2));
    let poisoned = bad.is_some_and(|(at, _)| at < len);
    if let (true, Some((at, value))) = (poisoned, bad) {
        g[offset + at] = T::of(value);
    }
    let (mut t_ref, mut v_ref) = (theta.clone(), v.clone());
    let w = offset..offset + len;
    let (t_w, v_w, g_w) = (&mut theta[w.clone()], &mut v[w.clone()], &g[w.clone()]);
    let finite = if split {
        let choice = ferrograd::tensor::split::SplitChoice::fixed(true);
        ferrograd::optim::sgd_update_split(t_w, v_w, g_w, mu, wd, lr, nesterov, &choice)
    } else {
        ferrograd::optim::sgd_update_slices(t_w, v_w, g_w, mu, wd, lr, nesterov)
    };
    let c = (T::of(mu), T::of(wd), T::of(lr));
    sgd_scalar_reference(
        &mut t_ref[w.clone()],
        &mut v_ref[w.clone()],
        &g[w.clone()],
        c,
        nesterov,
    );
    let bits = |x: &[T]| {
        x.iter()
            .map(|v| v.to_f64_lossless().to_bits())
            .collect::<Vec<_>>()
    };
    proptest::prop_assert_eq!(finite, !poisoned);
    proptest::prop_assert_eq!(finite, t_ref[w].iter().all(|x| x.is_finite()));
    proptest::prop_assert_eq!(bits(&theta), bits(&t_ref));
    proptest::prop_assert_eq!(bits(&v), bits(&v_ref));
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(120))]
    /// The parameter update at the lengths of weight matrices, where it streams its stores
    /// (x86-64): every start alignment (the window's offset), lengths that end mid-block,
    /// f32 and f64, both momentum forms; a NaN or an infinity anywhere is reported.
    #[test]
    fn streamed_sgd_update_matches_the_scalar_formula_bit_for_bit(
        len in proptest::sample::select(vec![0usize, 1, 255, 4095, 4096, 4097, 5000, 8191, 20_000]),
        extra in 0usize..300,
        offset in 0usize..40,
        seed in 0u64..1000,
        mu in 0.0f64..0.99,
        wd in proptest::sample::select(vec![0.0, 5e-4, 0.1]),
        lr in 1e-3f64..1.0,
        nesterov: bool,
        double: bool,
        bad in proptest::option::of((0usize..20_300, proptest::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]))),
    ) {
        let len = len + extra;
        if double {
            check_sgd_slices::<f64>(len, offset, seed, (mu, wd, lr), nesterov, bad, false)?;
        } else {
            check_sgd_slices::<f32>(len, offset, seed, (mu, wd, lr), nesterov, bad, false)?;
        }
    }

    /// The update split over OpenBLAS's threads (`sgd_update_split`, always splitting, each
    /// piece with plain stores as when splitting is settled; on one thread or without
    /// OpenBLAS it runs whole): the same bits as the scalar formula at the lengths of weight
    /// matrices, whatever the split points, a bad value in either piece reported.
    #[test]
    fn split_sgd_update_matches_the_scalar_formula_bit_for_bit(
        len in proptest::sample::select(vec![8191usize, 8192, 16_384, 100_352]),
        extra in 0usize..40,
        offset in 0usize..40,
        seed in 0u64..1000,
        mu in 0.0f64..0.99,
        wd in proptest::sample::select(vec![0.0, 5e-4]),
        nesterov: bool,
        double: bool,
        bad in proptest::option::of((0usize..100_400, proptest::sample::select(vec![f64::NAN, f64::INFINITY]))),
    ) {
        let (len, c) = (len + extra, (mu, wd, 0.05));
        if double {
            check_sgd_slices::<f64>(len, offset, seed, c, nesterov, bad, true)?;
        } else {
            check_sgd_slices::<f32>(len, offset, seed, c, nesterov, bad, true)?;
        }
    }
}

/// An `rows×cols` operand in one of the layouts the engine hands to GEMM: row-major (0), a
/// transposed view of a column-major copy (1), or every second column of a wider array (2,
/// which ndarray does not give to BLAS). About one value in five is an exact zero of either
/// sign, so that many products are exact zeros (whose sign a β = 1 path could change).
fn gemm_operand<T: ferrograd::Element>(
    rows: usize,
    cols: usize,
    layout: usize,
    seed: u64,
) -> ndarray::Array2<T> {
    let draw = |low, high, seed| {
        Tensor::<T>::rand_uniform(&[rows, cols], low, high, seed)
            .value()
            .to_owned()
            .into_dimensionality::<ndarray::Ix2>()
            .expect("2-D")
    };
    let mut values = draw(-1.5, 1.5, seed);
    values.zip_mut_with(&draw(0.0, 1.0, seed ^ 0x5eed), |v, &u| {
        if u < T::of(0.1) {
            *v = T::zero();
        } else if u < T::of(0.2) {
            *v = -T::zero();
        }
    });
    match layout {
        0 => values,
        1 => values
            .reversed_axes()
            .as_standard_layout()
            .to_owned()
            .reversed_axes(),
        _ => {
            let mut wide = ndarray::Array2::from_elem((rows, 2 * cols), T::of(f64::NAN));
            wide.slice_mut(ndarray::s![.., ..;2]).assign(&values);
            wide
        }
    }
}

/// [`gemm_operand`]'s array as the view GEMM sees (layout 2: the strided columns).
fn gemm_view<T>(a: &ndarray::Array2<T>, layout: usize) -> ndarray::ArrayView2<'_, T> {
    if layout == 2 {
        a.slice(ndarray::s![.., ..;2])
    } else {
        a.view()
    }
}

/// `kernels::gemm_into` against a plain β = 0 GEMM into a fresh output: the same bits.
fn gemm_into_matches_plain<T: ferrograd::Element>(
    (m, k, n): (usize, usize, usize),
    (la, lb): (usize, usize),
    seed: u64,
    stale: f64,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let (a, b) = (
        gemm_operand::<T>(m, k, la, seed),
        gemm_operand::<T>(k, n, lb, seed + 1),
    );
    let (av, bv) = (gemm_view(&a, la), gemm_view(&b, lb));
    let mut reference = ndarray::Array2::<T>::zeros((m, n));
    ndarray::linalg::general_mat_mul(T::one(), &av, &bv, T::zero(), &mut reference);
    let mut out = ndarray::Array2::from_elem((m, n), T::of(stale));
    ferrograd::tensor::kernels::gemm_into(&av, &bv, &mut out);
    let bits = |x: &ndarray::Array2<T>| {
        x.iter()
            .map(|v| v.to_f64_lossless().to_bits())
            .collect::<Vec<_>>()
    };
    proptest::prop_assert!(
        bits(&out) == bits(&reference),
        "{m}×{k}·{k}×{n}, layouts {la}/{lb}"
    );
    let via_pool = ferrograd::tensor::kernels::gemm(&av, &bv);
    proptest::prop_assert!(bits(&via_pool) == bits(&reference));
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(150))]
    /// The one GEMM entry point (which, with OpenBLAS, clears a large output itself and asks
    /// for C + A·B) gives the bits of a plain β = 0 GEMM — the signs of exact zeros included —
    /// whatever the output held before (NaN, 1, 0), in f32 and f64, for row-major, transposed
    /// and strided operands, on both sides of the size from which it clears. Inner dimensions
    /// of 1 and 2 are frequent: there a product is often an exact −0.
    #[test]
    fn gemm_into_gives_the_bits_of_a_plain_gemm(
        m in 1usize..260,
        k in proptest::prop_oneof![1usize..3, 1usize..70],
        n in 1usize..260,
        la in 0usize..3,
        lb in 0usize..3,
        seed in 0u64..1_000_000,
        stale in proptest::sample::select(vec![f64::NAN, 1.0, 0.0]),
        double: bool,
    ) {
        if double {
            gemm_into_matches_plain::<f64>((m, k, n), (la, lb), seed, stale)?;
        } else {
            gemm_into_matches_plain::<f32>((m, k, n), (la, lb), seed, stale)?;
        }
    }
}
