//! The training step: autograd against the hand-written baseline at batch 32, 128 and 512, a
//! small scaling grid (width, depth), and allocations per step counted by a wrapping allocator.
//!
//! `cargo bench --bench training` (add `--features openblas` for OpenBLAS).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ferrograd::analysis::baseline::HandwrittenMlp;
use ferrograd::nn::{Activation, Init, Mlp};
use ferrograd::optim::Sgd;
use ferrograd::train::Trainer;
use ferrograd::Tensor;
use ndarray::Array2;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts allocations and bytes, to show what one training step allocates.
struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn batch(n: usize, d: usize) -> (Array2<f32>, Vec<usize>) {
    let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) % 255) as f32 / 255.0);
    let y = (0..n).map(|i| i % 10).collect();
    (x, y)
}

/// A trainer of the default model shape with `sizes`, SGD with momentum 0.9 at lr 0.01.
fn trainer(sizes: &[usize]) -> Trainer {
    let model = Mlp::<f32>::new(sizes, Activation::Relu, Init::Xavier, 0);
    Trainer::new(model, Box::new(Sgd::new(0.9)), 0.01)
}

/// The trainer's own step (what `train` runs), on a fresh copy of the batch.
fn autograd_step(trainer: &mut Trainer, x: &Array2<f32>, y: &[usize]) {
    let outcome = trainer.step(&Tensor::from_array(x.clone()), y);
    black_box(outcome.expect("a bench step at lr 0.01 does not diverge"));
}

fn steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    g.measurement_time(Duration::from_secs(3));
    for &n in &[32usize, 128, 512] {
        let (x, y) = batch(n, 784);
        let mut t = trainer(&[784, 128, 128, 128, 10]);
        let mut hand = HandwrittenMlp::from_mlp(&t.model);
        g.bench_function(BenchmarkId::new("autograd", n), |b| {
            b.iter(|| autograd_step(&mut t, &x, &y))
        });
        g.bench_function(BenchmarkId::new("handwritten", n), |b| {
            b.iter(|| black_box(hand.step(x.view(), &y, 0.01, 0.9, 0.0)))
        });
    }
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    let (x, y) = batch(128, 784);
    for &width in &[32usize, 128, 512] {
        let mut t = trainer(&[784, width, width, width, 10]);
        g.bench_function(BenchmarkId::new("width", width), |b| {
            b.iter(|| autograd_step(&mut t, &x, &y))
        });
    }
    for &depth in &[1usize, 3, 6] {
        let mut sizes = vec![784];
        sizes.extend(std::iter::repeat_n(128, depth));
        sizes.push(10);
        let mut t = trainer(&sizes);
        g.bench_function(BenchmarkId::new("depth", depth), |b| {
            b.iter(|| autograd_step(&mut t, &x, &y))
        });
    }
    g.finish();
}

/// Not a timing: prints allocations and bytes per step (after warm-up), for PERF.md.
fn allocations(_: &mut Criterion) {
    let (x, y) = batch(128, 784);
    let mut t = trainer(&[784, 128, 128, 128, 10]);
    let mut hand = HandwrittenMlp::from_mlp(&t.model);
    for _ in 0..3 {
        autograd_step(&mut t, &x, &y);
        hand.step(x.view(), &y, 0.01, 0.9, 0.0);
    }
    let count = |f: &mut dyn FnMut()| {
        let (a0, b0) = (
            ALLOCATIONS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        for _ in 0..100 {
            f();
        }
        (
            (ALLOCATIONS.load(Ordering::Relaxed) - a0) / 100,
            (BYTES.load(Ordering::Relaxed) - b0) / 100,
        )
    };
    let (a, b) = count(&mut || autograd_step(&mut t, &x, &y));
    let (ha, hb) = count(&mut || {
        hand.step(x.view(), &y, 0.01, 0.9, 0.0);
    });
    println!("allocations per step at batch 128 (784-128-128-128-10, ReLU):");
    println!("  autograd     {a:>6} allocations {b:>10} bytes (the batch copy included)");
    println!(
        "  hand-written {ha:>6} allocations {hb:>10} bytes (the same batch copy not included)"
    );
}

criterion_group!(benches, allocations, steps, scaling);
criterion_main!(benches);
