//! A matrix product of ferrograd's own for `f32` with a short inner dimension — a layer's
//! weight gradient `xᵀ·dz`, whose inner dimension is the batch — with the SGD update as an
//! optional last stage.
//!
//! Why: the update stage. The block of the gradient the registers have just summed is applied
//! to the weights and their momentum there and then, so the gradient is never written to
//! memory and read back, and the update's pass over the weights is the product's own. A
//! library GEMM cannot do that: it must write `C`, and the update must then read it (PERF.md,
//! "The weight gradient and its update in one pass", has what it saves and where it loses).
//!
//! How: no packing — `A` and `B` are read where they lie, `A` by any strides (so `xᵀ` is `x`
//! read down its columns); each 4×16 block of `C` stays in eight AVX registers over the whole
//! of `k`, so each element of `C` is finished and stored once. One
//! call runs on one thread; the optimiser splits a large weight matrix by rows over the GEMM
//! library's own threads (`optim::sgd_product_update`) — on a thread of ferrograd's own the
//! second half shared its core with OpenBLAS's waiting thread and lost.
//!
//! Each element is `Σ a·b` accumulated with fused multiply-adds in the order of `k`, starting
//! from zero, in the vector lanes and in the scalar edges alike, so its bits do not depend on
//! where it lies nor on whether the update stage follows. Only x86-64 CPUs with AVX2 and FMA
//! take this path ([`available`]).

/// Rows of `C` a register block holds.
const ROWS: usize = 4;

/// Columns of `C` a register block holds (two AVX registers of eight `f32`). Columns past
/// the last whole panel of this many are summed one element at a time, several times slower.
pub const COLS: usize = 16;

/// Whether this CPU (and OS) runs the kernel: x86-64 with AVX2 and FMA.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The left operand `A` (m×k) by strides: `A[i, l]` is at `ptr + i·row + l·col` (elements).
/// A transposed row-major `x` (the weight gradient's `xᵀ`) has `row = 1`, `col = m`.
#[derive(Clone, Copy)]
pub struct Lhs<'a> {
    data: &'a [f32],
    m: usize,
    row: usize,
    col: usize,
}

impl<'a> Lhs<'a> {
    /// `A` of `m` rows and `k` columns over `data`, element `(i, l)` at `i·row + l·col`.
    ///
    /// # Panics
    /// When an element would lie outside `data`.
    pub fn new(data: &'a [f32], m: usize, k: usize, row: usize, col: usize) -> Self {
        assert!(
            m == 0 || k == 0 || (m - 1) * row + (k - 1) * col < data.len(),
            "short_k: a {m}×{k} operand with strides ({row}, {col}) does not fit {} elements",
            data.len()
        );
        Lhs { data, m, row, col }
    }

    /// Rows `r` of `A`, for a product split by rows: the same strides, the data from row
    /// `r.start` on.
    ///
    /// # Panics
    /// When `r` reaches past `A`'s rows.
    pub fn rows(self, r: std::ops::Range<usize>) -> Self {
        assert!(
            r.start <= r.end && r.end <= self.m,
            "short_k: rows {r:?} of a {}-row operand",
            self.m
        );
        let start = (r.start * self.row).min(self.data.len());
        Lhs {
            data: &self.data[start..],
            m: r.len(),
            ..self
        }
    }
}

/// PyTorch's SGD step (`g ← g + λθ; v ← μv + g; θ ← θ − η·(g + μv if nesterov else v)`) in
/// `f32`, as the optimiser's `sgd_update_slices` computes it: the same operations in the same
/// order, none of them fused, so both give the same bits for the same gradient.
#[derive(Clone, Copy, Debug)]
pub struct SgdStep {
    /// Momentum μ.
    pub momentum: f32,
    /// Weight decay λ.
    pub weight_decay: f32,
    /// Learning rate η.
    pub lr: f32,
    /// Nesterov's form.
    pub nesterov: bool,
}

/// Where the product goes: stored as `C`, or applied as a gradient to parameters `theta` and
/// their momentum `velocity` (both m×n, row-major).
pub enum Sink<'a> {
    /// `C ← A·B`.
    Store(&'a mut [f32]),
    /// One SGD step of `theta` with gradient `A·B`.
    Sgd {
        /// The parameters.
        theta: &'a mut [f32],
        /// Their momentum buffer.
        velocity: &'a mut [f32],
        /// The step's coefficients.
        step: SgdStep,
    },
}

/// Raw pointers to the outputs (the parameters' and the momentum's for the update).
#[derive(Clone, Copy)]
struct Out {
    c: *mut f32,
    v: *mut f32,
}

/// `A·B` with `A` m×k (any strides), `B` k×n row-major with rows `b_row` apart, into `sink`.
/// Returns whether every parameter the update wrote is finite (`true` for [`Sink::Store`]).
///
/// # Panics
/// When the kernel is not [`available`] or a slice is too short.
pub fn product(
    a: Lhs,
    b: &[f32],
    b_row: usize,
    (m, k, n): (usize, usize, usize),
    sink: Sink,
) -> bool {
    assert!(available(), "short_k: needs x86-64 with AVX2 and FMA");
    assert!(
        k == 0 || n == 0 || (k - 1) * b_row + n <= b.len(),
        "short_k: a {k}×{n} operand with rows {b_row} apart does not fit {} elements",
        b.len()
    );
    let (out, step) = match sink {
        Sink::Store(c) => {
            assert_eq!(c.len(), m * n, "short_k: output of {} elements", c.len());
            (
                Out {
                    c: c.as_mut_ptr(),
                    v: std::ptr::null_mut(),
                },
                None,
            )
        }
        Sink::Sgd {
            theta,
            velocity,
            step,
        } => {
            assert!(
                theta.len() == m * n && velocity.len() == m * n,
                "short_k: parameters of {} and {} elements for a {m}×{n} gradient",
                theta.len(),
                velocity.len()
            );
            (
                Out {
                    c: theta.as_mut_ptr(),
                    v: velocity.as_mut_ptr(),
                },
                Some(step),
            )
        }
    };
    // SAFETY: `available()` was checked above; the operands were checked to hold every
    // element of the product, and the outputs are borrowed mutably for the call.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        avx2::product(a, b, b_row, (m, k, n), out, step)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (out, step);
        unreachable!("short_k: checked by available()")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Lhs, Out, SgdStep, COLS, ROWS};
    use std::arch::x86_64::*;

    /// The update of one element, scalar (the edges) — the same operations as the vector
    /// lanes and as `optim::sgd_update_slices`.
    #[inline(always)]
    fn sgd_scalar(t: &mut f32, v: &mut f32, g: f32, s: SgdStep) -> bool {
        let g = g + s.weight_decay * *t;
        *v = s.momentum * *v + g;
        *t -= s.lr * if s.nesterov { g + s.momentum * *v } else { *v };
        t.is_finite()
    }

    /// The product into `out`: for each block of `ROWS` rows, register blocks across every
    /// whole panel of 16 columns, so that each row of `A` is read once and `C` (the weights
    /// and their momentum) is written in order; the columns past the last whole panel one
    /// element at a time. Rows outside, panels inside: the other order read all of `A` once
    /// a panel, and measured slower (`examples/weight_gradient_kernel.rs`; `784×32·32×128`
    /// with the update: 112–136 µs against
    /// 145–169 µs, alternating; `1024×32·32×1024`: 2.8–2.9 ms against 6.1–6.7 ms). `B`'s
    /// rows are 16 KiB at `k` = 32 and `n` = 128, so they stay in L1 across a row block.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `a`, `b` hold every element of the product; `out` points to
    /// m×n elements (two arrays for the update) that no one else touches meanwhile.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product(
        a: Lhs,
        b: &[f32],
        b_row: usize,
        (m, k, n): (usize, usize, usize),
        out: Out,
        step: Option<SgdStep>,
    ) -> bool {
        let mut bad = _mm256_setzero_ps();
        let panels = n / COLS * COLS;
        let mut i = 0;
        while i + ROWS <= m {
            let mut j = 0;
            while j < panels {
                bad = _mm256_or_ps(bad, tile::<ROWS>(a, b, b_row, k, n, i, j, out, step));
                j += COLS;
            }
            i += ROWS;
        }
        while i < m {
            let mut j = 0;
            while j < panels {
                bad = _mm256_or_ps(bad, tile::<1>(a, b, b_row, k, n, i, j, out, step));
                j += COLS;
            }
            i += 1;
        }
        let j = panels;
        let mut finite = _mm256_movemask_ps(bad) == 0;
        let (ap, bp) = (a.data.as_ptr(), b.as_ptr());
        for i in 0..m {
            for j in j..n {
                let mut g = 0.0f32;
                for l in 0..k {
                    g = (*ap.add(i * a.row + l * a.col)).mul_add(*bp.add(l * b_row + j), g);
                }
                let at = i * n + j;
                match step {
                    None => *out.c.add(at) = g,
                    Some(s) => finite &= sgd_scalar(&mut *out.c.add(at), &mut *out.v.add(at), g, s),
                }
            }
        }
        finite
    }

    /// The block of rows `i..i + R`, columns `j..j + 16`; lanes set where an updated
    /// parameter is not finite.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize>(
        a: Lhs,
        b: &[f32],
        b_row: usize,
        k: usize,
        n: usize,
        i: usize,
        j: usize,
        out: Out,
        step: Option<SgdStep>,
    ) -> __m256 {
        let (ap, bp) = (a.data.as_ptr().add(i * a.row), b.as_ptr().add(j));
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for l in 0..k {
            let b0 = _mm256_loadu_ps(bp.add(l * b_row));
            let b1 = _mm256_loadu_ps(bp.add(l * b_row + 8));
            let al = ap.add(l * a.col);
            for (r, acc) in acc.iter_mut().enumerate() {
                let s = _mm256_broadcast_ss(&*al.add(r * a.row));
                acc[0] = _mm256_fmadd_ps(s, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(s, b1, acc[1]);
            }
        }
        let mut bad = _mm256_setzero_ps();
        for (r, acc) in acc.iter().enumerate() {
            for (h, &g) in acc.iter().enumerate() {
                let at = (i + r) * n + j + 8 * h;
                match step {
                    None => _mm256_storeu_ps(out.c.add(at), g),
                    Some(s) => bad = _mm256_or_ps(bad, sgd_lanes(out, at, g, s)),
                }
            }
        }
        bad
    }

    /// The update of eight parameters at `at` with gradient `g`; a lane is set in the result
    /// where the new parameter is not finite (`θ − θ` is NaN exactly for ±∞ and NaN).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sgd_lanes(out: Out, at: usize, g: __m256, s: SgdStep) -> __m256 {
        let (mu, wd, lr) = (
            _mm256_set1_ps(s.momentum),
            _mm256_set1_ps(s.weight_decay),
            _mm256_set1_ps(s.lr),
        );
        let t = _mm256_loadu_ps(out.c.add(at));
        let v = _mm256_loadu_ps(out.v.add(at));
        let g = _mm256_add_ps(g, _mm256_mul_ps(wd, t));
        let v = _mm256_add_ps(_mm256_mul_ps(mu, v), g);
        let d = if s.nesterov {
            _mm256_add_ps(g, _mm256_mul_ps(mu, v))
        } else {
            v
        };
        let t = _mm256_sub_ps(t, _mm256_mul_ps(lr, d));
        _mm256_storeu_ps(out.v.add(at), v);
        _mm256_storeu_ps(out.c.add(at), t);
        let z = _mm256_sub_ps(t, t);
        _mm256_cmp_ps::<_CMP_UNORD_Q>(z, z)
    }
}
