//! ferrograd's own weight-gradient kernel with the SGD update fused in (`tensor::short_k`), on
//! one thread, for the default network's weight gradients at batch 32 and a wide layer: the
//! best of 30 rounds of 50 calls each, in microseconds and GFLOP/s. PERF.md and the kernel's
//! loop order cite it (run at a commit before and after, the two binaries alternating).
//!
//! ```bash
//! cargo run --release --example weight_gradient_kernel
//! ```

use ferrograd::tensor::short_k::{self, Lhs, SgdStep, Sink};
use std::time::Instant;

fn main() {
    if !short_k::available() {
        println!("the kernel needs x86-64 with AVX2 and FMA");
        return;
    }
    for (m, k, n) in [
        (784usize, 32usize, 128usize),
        (128, 32, 128),
        (1024, 32, 1024),
    ] {
        // The weight gradient xᵀ·dz: x is batch×m row-major, read down its columns.
        let x: Vec<f32> = (0..k * m).map(|i| (i % 17) as f32 * 0.01).collect();
        let dz: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01).collect();
        let (mut theta, mut velocity) = (vec![0.1f32; m * n], vec![0.0f32; m * n]);
        let step = SgdStep {
            momentum: 0.9,
            weight_decay: 0.0,
            lr: 1e-6,
            nesterov: false,
        };
        let mut best = f64::MAX;
        for _ in 0..30 {
            let start = Instant::now();
            for _ in 0..50 {
                let sink = Sink::Sgd {
                    theta: &mut theta,
                    velocity: &mut velocity,
                    step,
                };
                short_k::product(Lhs::new(&x, m, k, 1, m), &dz, n, (m, k, n), sink);
            }
            best = best.min(start.elapsed().as_secs_f64() / 50.0);
        }
        let gflops = 2.0 * (m * k * n) as f64 / best / 1e9;
        println!(
            "{m}×{k}·{k}×{n} with the update: {:.1} µs, {gflops:.1} GFLOP/s",
            best * 1e6
        );
    }
}
