//! Why the SGD update streams its stores (PERF.md, "Issue 14's targets, and the SGD update's
//! stores"): the update of a 784×128 weight matrix timed right after this thread has read the
//! weights, and right after another thread has — as the forward GEMM's packing does on every
//! core — once with a plain store loop and once with ferrograd's kernel
//! (`optim::sgd_update_slices`). Medians of 400 updates each.
//!
//! ```bash
//! cargo run --release --example sgd_shared_lines
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Parameters of the first layer of the 784-128-128-128-10 network.
const N: usize = 784 * 128;

/// PyTorch's SGD step with ordinary stores, element by element.
fn plain_update(t: &mut [f32], v: &mut [f32], g: &[f32]) {
    for ((t, v), &g) in t.iter_mut().zip(v.iter_mut()).zip(g) {
        let g = g + 5e-4 * *t;
        *v = 0.9 * *v + g;
        *t -= 0.05 * *v;
    }
}

/// Reads every element (eight running sums, so the loads are not serialised).
fn read_all(w: &[f32]) -> [f32; 8] {
    let mut acc = [0f32; 8];
    for c in w.chunks_exact(8) {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc
}

/// A pointer the reader thread may use while the main thread waits for it.
struct Shared(*const f32);
// SAFETY: the main thread does not touch the buffer between asking the reader to start and
// seeing it finish (the `turn` counter), so there is never a concurrent write.
unsafe impl Send for Shared {}

fn main() {
    let mut w = vec![0.01f32; N];
    let mut v = vec![0.0f32; N];
    let g = vec![0.001f32; N];
    // The reader: on each odd turn, reads every weight (a sum the compiler cannot drop), then
    // hands the turn back.
    let turn = Arc::new(AtomicUsize::new(0));
    let (t2, p) = (turn.clone(), Shared(w.as_ptr()));
    std::thread::spawn(move || {
        let p = p;
        loop {
            let k = t2.load(Ordering::Acquire);
            if k % 2 == 1 {
                // SAFETY: see `Shared`.
                let w = unsafe { std::slice::from_raw_parts(p.0, N) };
                std::hint::black_box(read_all(w));
                t2.store(k + 1, Ordering::Release);
            } else {
                std::hint::spin_loop();
            }
        }
    });
    let mut median = |shared: bool, streaming: bool| {
        let mut times = Vec::new();
        for _ in 0..400 {
            if shared {
                let k = turn.fetch_add(1, Ordering::AcqRel) + 1;
                while turn.load(Ordering::Acquire) != k + 1 {
                    std::hint::spin_loop();
                }
            } else {
                std::hint::black_box(read_all(&w));
            }
            let start = Instant::now();
            if streaming {
                ferrograd::optim::sgd_update_slices(&mut w, &mut v, &g, 0.9, 5e-4, 0.05, false);
            } else {
                plain_update(&mut w, &mut v, &g);
            }
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let rows = [
        (
            "plain stores, weights just read by this thread",
            false,
            false,
        ),
        (
            "plain stores, weights just read by another thread",
            true,
            false,
        ),
        (
            "ferrograd (streaming), weights just read by this thread",
            false,
            true,
        ),
        (
            "ferrograd (streaming), weights just read by another thread",
            true,
            true,
        ),
    ];
    println!("SGD update of {N} f32 parameters, median of 400:");
    for (name, shared, streaming) in rows {
        println!("  {:>7.1} µs  {name}", median(shared, streaming));
    }
}
