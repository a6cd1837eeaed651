//! The GEMM floor of an epoch: the matrix products a training step makes, replayed as plain
//! row-major GEMMs of the same shapes on operands that stay in cache, through the engine's own
//! GEMM entry point ([`kernels::gemm_into`], so that the floor pays what the step's products
//! pay and no more — PERF.md, "Clearing GEMM's output"). No training step can be
//! faster than its GEMMs alone, so `epoch / floor` measures everything outside GEMM (batch
//! gathering, elementwise kernels, reductions, allocation, the graph) and a GEMM slowed by a
//! fallback kernel shows up as a low rate against the CPU's peak instead.
//!
//! At a batch of at most [`PRODUCT_UPDATE_MAX_BATCH`] rows a step computes its weight
//! gradients with ferrograd's own kernel instead, the SGD update fused in, on the calling
//! thread or split by rows over the GEMM library's threads
//! ([`sgd_product_update`](crate::optim::sgd_product_update)). So that the floor stays a
//! floor, a shape that kernel can take is replayed by whichever is fastest at it in this
//! process: the library GEMM, the own kernel storing the plain product on the calling thread,
//! or split the same way. (Before the step split the kernel, the floor did not consider it
//! with two OpenBLAS threads: on a host whose cores were shared, the one-thread kernel beat
//! OpenBLAS's two threads at these shapes and took the floor below anything the step's path
//! could then reach — PERF.md, "The weight gradient and its update in one pass".)

use crate::optim::{PRODUCT_SPLIT_ROWS, PRODUCT_UPDATE_MAX_BATCH};
use crate::profile;
use crate::tensor::{kernels, short_k, split};
use ndarray::Array2;
use std::collections::BTreeMap;
use std::time::Instant;

/// `m, k, n` of an `m×k · k×n` product.
pub type Shape = (usize, usize, usize);

/// `A`, `B` and `C` of a GEMM.
pub type Operands = (Array2<f32>, Array2<f32>, Array2<f32>);

/// Operands of a plain `m×k · k×n` GEMM: deterministic values, a zero output.
pub fn operands(m: usize, k: usize, n: usize) -> Operands {
    let a = Array2::<f32>::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.1);
    let b = Array2::<f32>::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.1);
    (a, b, Array2::zeros((m, n)))
}

/// The GEMMs of one training step for each batch length seen, and operands to replay them.
#[derive(Default)]
pub struct GemmFloor {
    /// Batch length → the step's `(shape, calls)`.
    steps: BTreeMap<usize, Vec<(Shape, u64)>>,
    /// One set of operands per shape, allocated once.
    operands: BTreeMap<Shape, Operands>,
    /// The shapes not replayed by the library GEMM (ferrograd's own kernel measured faster),
    /// and how they are.
    own: BTreeMap<Shape, Replay>,
}

/// How a recorded shape is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    /// The library GEMM, through the engine's entry point.
    Library,
    /// Ferrograd's own kernel, on the calling thread.
    Own,
    /// Ferrograd's own kernel, split by rows over the GEMM threads.
    OwnSplit,
}

/// `c = a·b` (`a`, `b` row-major) the way `how` says, the product the fused update computes.
fn replay(how: Replay, (a, b, c): &mut Operands) {
    if how == Replay::Library {
        return kernels::gemm_into(&a.view(), &b.view(), c);
    }
    let ((m, k), n) = (a.dim(), b.ncols());
    let (a, b) = (
        a.as_slice().expect("row-major"),
        b.as_slice().expect("row-major"),
    );
    let out = split::Disjoint::new(c.as_slice_mut().expect("row-major"));
    let lhs = short_k::Lhs::new(a, m, k, k, 1);
    let rows = |r: std::ops::Range<usize>| {
        // SAFETY: each piece takes its own rows of the output.
        let c = unsafe { out.range(r.start * n..r.end * n) };
        let a = lhs.rows(r.clone());
        short_k::product(a, b, n, (r.len(), k, n), short_k::Sink::Store(c));
    };
    if how == Replay::OwnSplit {
        split::on_gemm_threads(m, PRODUCT_SPLIT_ROWS, &rows);
    } else {
        rows(0..m);
    }
}

/// The fastest way to replay `ops`' product among `ways`: the median of five alternating
/// rounds of twenty calls each, after one untimed call of each.
fn fastest(ways: &[Replay], ops: &mut Operands) -> Replay {
    let mut time = |how: Replay, calls: usize| {
        let start = Instant::now();
        for _ in 0..calls {
            replay(how, ops);
        }
        start.elapsed().as_secs_f64()
    };
    for &how in ways {
        time(how, 1);
    }
    let mut rounds = vec![Vec::new(); ways.len()];
    for _ in 0..5 {
        for (&how, times) in ways.iter().zip(&mut rounds) {
            times.push(time(how, 20));
        }
    }
    let medians: Vec<f64> = rounds.iter().map(|t| crate::analysis::median(t)).collect();
    let best = (0..ways.len())
        .min_by(|&i, &j| medians[i].total_cmp(&medians[j]))
        .expect("at least one way");
    ways[best]
}

impl GemmFloor {
    /// Whether the GEMMs of a step of `rows` images are known.
    pub fn knows(&self, rows: usize) -> bool {
        self.steps.contains_key(&rows)
    }

    /// Runs `step` (one training step of `rows` images) under the profiler and records the
    /// GEMMs it made.
    pub fn record(&mut self, rows: usize, step: impl FnOnce()) {
        profile::set_enabled(true);
        step();
        profile::set_enabled(false);
        let gemms: Vec<(Shape, u64)> = profile::gemm_totals()
            .into_iter()
            .map(|(shape, calls, _)| (shape, calls))
            .collect();
        for &((m, k, n), _) in &gemms {
            if self.operands.contains_key(&(m, k, n)) {
                continue;
            }
            let mut ops = operands(m, k, n);
            if k <= PRODUCT_UPDATE_MAX_BATCH && short_k::available() {
                let mut ways = vec![Replay::Library, Replay::Own];
                if split::splits(m, PRODUCT_SPLIT_ROWS) {
                    ways.push(Replay::OwnSplit);
                }
                let how = fastest(&ways, &mut ops);
                if how != Replay::Library {
                    self.own.insert((m, k, n), how);
                }
            }
            self.operands.insert((m, k, n), ops);
        }
        self.steps.insert(rows, gemms);
    }

    /// FLOPs of the GEMMs of `batches` (2mkn a product).
    pub fn flop(&self, batches: &[Vec<usize>]) -> f64 {
        batches
            .iter()
            .flat_map(|b| self.step(b.len()))
            .map(|&((m, k, n), calls)| 2.0 * (m * k * n) as f64 * calls as f64)
            .sum()
    }

    /// Seconds the GEMMs of `batches` take as plain GEMMs, in the steps' order.
    pub fn run(&mut self, batches: &[Vec<usize>]) -> f64 {
        let start = Instant::now();
        for b in batches {
            for &(shape, calls) in self.steps.get(&b.len()).map_or(&[][..], |v| v) {
                let ops = self.operands.get_mut(&shape).expect("recorded shape");
                let how = self.own.get(&shape).copied().unwrap_or(Replay::Library);
                for _ in 0..calls {
                    replay(how, ops);
                }
            }
        }
        start.elapsed().as_secs_f64()
    }

    fn step(&self, rows: usize) -> &[(Shape, u64)] {
        self.steps.get(&rows).map_or(&[], |v| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    #[test]
    fn records_the_products_a_step_makes_and_replays_them() {
        let mut floor = GemmFloor::default();
        assert!(!floor.knows(4));
        let x = Tensor::<f32>::from_vec(vec![0.5; 4 * 3], &[4, 3]);
        let w = Tensor::<f32>::from_vec(vec![0.25; 3 * 2], &[3, 2]).with_grad();
        floor.record(4, || {
            let y = x.matmul(&w).sum();
            y.backward();
        });
        assert!(floor.knows(4));
        // Forward 4×3·3×2 and the weight gradient 3×4·4×2 (x needs no gradient).
        let batches = vec![vec![0, 1, 2, 3]; 5];
        let expected = 5.0 * 2.0 * (4.0 * 3.0 * 2.0 + 3.0 * 4.0 * 2.0);
        assert_eq!(floor.flop(&batches), expected);
        assert!(floor.run(&batches) > 0.0);
        // A batch length never recorded costs nothing (it is not silently guessed).
        assert_eq!(floor.flop(&[vec![0; 7]]), 0.0);
    }
}
