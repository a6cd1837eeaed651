//! Ops at the sizes that matter: matmul at the MLP's shapes and at 1024², and the elementwise
//! and reduction kernels serial versus parallel, across sizes, to place the parallel threshold.
//!
//! `cargo bench --bench ops` (add `--features openblas` for OpenBLAS's GEMM).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::tensor::kernels::{self, Reduce};
use ferrograd::{no_grad, Tensor};
use std::hint::black_box;
use std::time::Duration;

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    g.measurement_time(Duration::from_secs(3));
    for &(m, k, n) in &[(128usize, 784usize, 128usize), (1024, 1024, 1024)] {
        let a = Tensor::<f32>::rand_normal(&[m, k], 0.0, 1.0, 1);
        let b = Tensor::<f32>::rand_normal(&[k, n], 0.0, 1.0, 2);
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        g.bench_function(
            BenchmarkId::from_parameter(format!("{m}x{k}x{n}")),
            |bench| {
                let _ng = no_grad();
                bench.iter(|| black_box(a.matmul(&b)))
            },
        );
        // The backward's transposed operand: a strided view handed straight to GEMM.
        g.bench_function(
            BenchmarkId::from_parameter(format!("{m}x{k}x{n}_transposed")),
            |bench| {
                let _ng = no_grad();
                let bt = b.t();
                bench.iter(|| black_box(a.matmul(&bt.t())))
            },
        );
    }
    g.finish();
}

/// Serial versus parallel for one kernel at sizes around the threshold.
fn kernels_serial_vs_parallel(c: &mut Criterion) {
    let sizes = [(128usize, 128usize), (256, 256), (512, 512), (1024, 1024)];
    let mut g = c.benchmark_group("kernels");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    for &(r, cols) in &sizes {
        let x = Tensor::<f32>::rand_normal(&[r, cols], 0.0, 1.0, 3);
        let y = Tensor::<f32>::rand_normal(&[r, cols], 0.0, 1.0, 4);
        g.throughput(Throughput::Elements((r * cols) as u64));
        for (mode, threshold) in [("serial", usize::MAX), ("parallel", 0)] {
            let id = |name: &str| BenchmarkId::new(format!("{name}_{mode}"), format!("{r}x{cols}"));
            g.bench_function(id("tanh"), |b| {
                kernels::set_parallel_threshold(threshold);
                let _ng = no_grad();
                b.iter(|| black_box(x.tanh()))
            });
            g.bench_function(id("relu"), |b| {
                kernels::set_parallel_threshold(threshold);
                let _ng = no_grad();
                b.iter(|| black_box(x.relu()))
            });
            g.bench_function(id("mul"), |b| {
                kernels::set_parallel_threshold(threshold);
                let _ng = no_grad();
                b.iter(|| black_box(&x * &y))
            });
            g.bench_function(id("sum_all"), |b| {
                kernels::set_parallel_threshold(threshold);
                let v = x.value().clone();
                b.iter(|| black_box(kernels::reduce_all(Reduce::Sum, &v.view())))
            });
            g.bench_function(id("sum_axis0"), |b| {
                kernels::set_parallel_threshold(threshold);
                let v = x.value().clone();
                b.iter(|| black_box(kernels::reduce_axis(Reduce::Sum, &v.view(), 0)))
            });
            g.bench_function(id("max_axis1"), |b| {
                kernels::set_parallel_threshold(threshold);
                let v = x.value().clone();
                b.iter(|| black_box(kernels::reduce_axis(Reduce::Max, &v.view(), 1)))
            });
        }
    }
    kernels::set_parallel_threshold(kernels::DEFAULT_PARALLEL_THRESHOLD);
    g.finish();
}

criterion_group!(benches, matmul, kernels_serial_vs_parallel);
criterion_main!(benches);
