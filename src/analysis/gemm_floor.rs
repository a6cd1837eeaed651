//! The GEMM floor of an epoch: the matrix products a training step makes, replayed as plain
//! row-major GEMMs of the same shapes on operands that stay in cache, through the engine's own
//! GEMM entry point ([`kernels::gemm_into`], so that the floor pays what the step's products
//! pay and no more — PERF.md, "Clearing GEMM's output"). No training step can be
//! faster than its GEMMs alone, so `epoch / floor` measures everything outside GEMM (batch
//! gathering, elementwise kernels, reductions, allocation, the graph) and a GEMM slowed by a
//! fallback kernel shows up as a low rate against the CPU's peak instead.
//!
//! With a one-thread library GEMM a step may compute a weight gradient with ferrograd's own
//! kernel instead, the SGD update fused in ([`crate::optim::PRODUCT_UPDATE_MAX_BATCH`]). So
//! that the floor stays a floor, a shape that kernel can take is then replayed by whichever of
//! the two is faster at it in this process — the library GEMM or the own kernel storing the
//! plain product. With more GEMM threads the step never uses the kernel, and neither does the
//! floor: on a host whose cores were shared, the one-thread kernel beat OpenBLAS's two threads
//! at replaying these shapes and took the floor below anything the step's own path could reach
//! (batch 32: floor 0.509 s, ratio 2.12, where that state gave 1.5–1.6 before).

use crate::optim::PRODUCT_UPDATE_MAX_BATCH;
use crate::profile;
use crate::tensor::{kernels, short_k};
use ndarray::Array2;
use std::collections::{BTreeMap, BTreeSet};
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
    /// The shapes replayed by ferrograd's own kernel (measured faster than the library's).
    own: BTreeSet<Shape>,
}

/// `c = a·b` by ferrograd's own kernel (`a`, `b` row-major), the product the fused update
/// computes, stored.
fn own_product((a, b, c): &mut Operands) {
    let ((m, k), n) = (a.dim(), b.ncols());
    let lhs = short_k::Lhs::new(a.as_slice().expect("row-major"), m, k, k, 1);
    let out = c.as_slice_mut().expect("row-major");
    short_k::product(
        lhs,
        b.as_slice().expect("row-major"),
        n,
        (m, k, n),
        short_k::Sink::Store(out),
    );
}

/// Whether the own kernel computes `ops`' product faster than the library GEMM: the median
/// of five alternating rounds of twenty calls each, after one untimed call of each.
fn own_is_faster(ops: &mut Operands) -> bool {
    let mut time = |own: bool, calls: usize| {
        let start = Instant::now();
        for _ in 0..calls {
            if own {
                own_product(ops);
            } else {
                let (a, b, c) = &mut *ops;
                kernels::gemm_into(&a.view(), &b.view(), c);
            }
        }
        start.elapsed().as_secs_f64()
    };
    time(true, 1);
    time(false, 1);
    let (mut own, mut library) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        own.push(time(true, 20));
        library.push(time(false, 20));
    }
    crate::analysis::median(&own) < crate::analysis::median(&library)
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
            if k <= PRODUCT_UPDATE_MAX_BATCH
                && short_k::available()
                && kernels::gemm_threads() == 1
                && own_is_faster(&mut ops)
            {
                self.own.insert((m, k, n));
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
                if self.own.contains(&shape) {
                    for _ in 0..calls {
                        own_product(ops);
                    }
                } else {
                    let (a, bm, c) = ops;
                    for _ in 0..calls {
                        kernels::gemm_into(&a.view(), &bm.view(), c);
                    }
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
