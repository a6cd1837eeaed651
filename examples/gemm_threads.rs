//! One thread or all of them for each GEMM of a training step (PERF.md, "Issue 14's targets"):
//! the step's products of the 784-128-128-128-10 network at batch 32 and 128, in the step's
//! own layouts (the weight gradient `Xᵀ·dZ` reads a transposed view, `dZ·Wᵀ` another), timed
//! as plain GEMMs on operands that stay in cache with OpenBLAS on one thread and on all
//! (medians of 7 × 200 calls, the two alternating), and whether the two give the same bits.
//!
//! ```bash
//! cargo run --release --features openblas --example gemm_threads
//! ```

use ndarray::{Array2, ArrayView2};
use std::time::Instant;

/// Median microseconds of one `a·b` over 7 runs of 200 calls with `threads` OpenBLAS threads.
fn time(threads: usize, a: ArrayView2<f32>, b: ArrayView2<f32>, c: &mut Array2<f32>) -> f64 {
    ferrograd::threads::set_blas_threads(threads);
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..200 {
                ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, c);
            }
            start.elapsed().as_secs_f64() / 200.0 * 1e6
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[3]
}

fn main() {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fill = |r: usize, c: usize| {
        Array2::<f32>::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.1 - 0.5)
    };
    println!(
        "OpenBLAS core {}, {all} threads",
        ferrograd::blas::loaded_core()
    );
    println!("| batch | product (layout) | 1 thread | {all} threads | same bits |");
    println!("|---|---|---|---|---|");
    for batch in [32, 128] {
        // (m, k, n, what, A stored transposed, B stored transposed)
        let products = [
            (batch, 784, 128, "X·W1 (forward)", false, false),
            (batch, 128, 128, "H·W (forward, layers 2-3)", false, false),
            (batch, 128, 10, "H·W4 (forward)", false, false),
            (batch, 10, 128, "dZ·W4ᵀ (backward)", false, true),
            (batch, 128, 128, "dZ·Wᵀ (backward, layers 2-3)", false, true),
            (784, batch, 128, "Xᵀ·dZ = dW1", true, false),
            (128, batch, 128, "Hᵀ·dZ = dW2, dW3", true, false),
            (128, batch, 10, "Hᵀ·dZ = dW4", true, false),
        ];
        for (m, k, n, what, ta, tb) in products {
            let a_store = if ta { fill(k, m) } else { fill(m, k) };
            let b_store = if tb { fill(n, k) } else { fill(k, n) };
            let a = if ta { a_store.t() } else { a_store.view() };
            let b = if tb { b_store.t() } else { b_store.view() };
            let (mut c1, mut c2) = (Array2::zeros((m, n)), Array2::zeros((m, n)));
            let (mut one, mut many) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                one.push(time(1, a, b, &mut c1));
                many.push(time(all, a, b, &mut c2));
            }
            one.sort_by(f64::total_cmp);
            many.sort_by(f64::total_cmp);
            let same = c1.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits());
            println!(
                "| {batch} | {m}×{k}·{k}×{n} {what} | {:.1} µs | {:.1} µs | {} |",
                one[1],
                many[1],
                if same { "yes" } else { "no" }
            );
        }
    }
    ferrograd::threads::set_blas_threads(all);
}
