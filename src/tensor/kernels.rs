//! Elementwise and reduction kernels (serial below a measured size, rayon-parallel above it),
//! and the one GEMM entry point, [`gemm_into`].
//!
//! Every reduction here splits its work into pieces whose boundaries depend only on the shape,
//! never on the number of threads, and combines the pieces in a fixed order. So a reduction
//! gives the same bits on every run, whatever the thread count.

use super::elem::Element;
use super::{pool, split};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Arrays with at least this many elements are processed in parallel by the cheap,
/// memory-bound kernels (add, mul, relu, sums).
///
/// Measured with `cargo bench --bench ops` on the 2-core development machine (README.md,
/// "Parallel threshold"): a rayon fork-join costs about 20 µs there, and a memory-bound kernel
/// only gains from a second core from about 2¹⁸ elements on.
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 1 << 18;

/// How much work a kernel does per element, which decides where parallelism starts to pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// A few instructions per element (add, mul, relu): memory-bound.
    Cheap,
    /// A transcendental function per element (exp, tanh, log, sin): ~10 ns each, so
    /// parallel from [`EXPENSIVE_DIVISOR`] times fewer elements.
    Expensive,
}

/// Transcendental kernels go parallel at `threshold / EXPENSIVE_DIVISOR` elements (2¹³ by
/// default: tanh on 128×128 takes 181 µs serial and 81 µs on two threads).
pub const EXPENSIVE_DIVISOR: usize = 32;

/// Fixed block size for full reductions, so that the partial sums do not depend on threads.
const REDUCTION_BLOCK: usize = 1 << 14;

static PARALLEL_THRESHOLD: AtomicUsize = AtomicUsize::new(DEFAULT_PARALLEL_THRESHOLD);

thread_local! {
    /// A threshold set for this thread only by [`with_parallel_threshold`].
    static THRESHOLD_OVERRIDE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The current parallel threshold in elements (this thread's override, if any).
pub fn parallel_threshold() -> usize {
    THRESHOLD_OVERRIDE
        .with(|o| o.get())
        .unwrap_or_else(|| PARALLEL_THRESHOLD.load(Ordering::Relaxed))
}

/// Runs `f` with the parallel threshold set to `elements` for decisions taken on this thread
/// only, restoring the previous one afterwards even if `f` panics: tests force the parallel
/// paths this way without changing what code running beside them does.
pub fn with_parallel_threshold<R>(elements: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THRESHOLD_OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(THRESHOLD_OVERRIDE.with(|o| o.replace(Some(elements))));
    f()
}

/// Sets the parallel threshold (elements); `usize::MAX` makes every kernel serial and `0`
/// makes every kernel parallel, for the whole process. Used by the benches to compare the two.
pub fn set_parallel_threshold(elements: usize) {
    PARALLEL_THRESHOLD.store(elements, Ordering::Relaxed);
}

#[inline]
fn parallel(len: usize) -> bool {
    len >= parallel_threshold() && rayon::current_num_threads() > 1
}

/// Whether a kernel of `cost` over `len` elements runs on rayon's pool.
#[inline]
pub fn is_parallel(cost: Cost, len: usize) -> bool {
    let threshold = match cost {
        Cost::Cheap => parallel_threshold(),
        Cost::Expensive => parallel_threshold() / EXPENSIVE_DIVISOR,
    };
    len >= threshold && rayon::current_num_threads() > 1
}

/// The NumPy broadcast of two shapes; panics naming the op and both shapes when they do not fit.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"),
        };
    }
    out
}

/// `f` applied to every element; the result is in standard (row-major) layout.
pub fn map<T: Element>(
    a: &ArrayViewD<T>,
    cost: Cost,
    f: impl Fn(T) -> T + Sync + Send,
) -> ArrayD<T> {
    if is_parallel(cost, a.len()) {
        let mut out = ArrayD::<T>::zeros(a.raw_dim());
        Zip::from(&mut out).and(a).par_for_each(|o, &x| *o = f(x));
        out
    } else {
        a.map(|&x| f(x))
    }
}

/// `f` applied to the pairs of `a` and `b` broadcast to `shape`.
pub fn zip_map<T: Element>(
    a: &ArrayViewD<T>,
    b: &ArrayViewD<T>,
    shape: &[usize],
    cost: Cost,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> ArrayD<T> {
    let dim = IxDyn(shape);
    let par = is_parallel(cost, shape.iter().product());
    if a.shape() == shape && b.shape() == shape && !par {
        // Same shapes, serial: Zip over two inputs and an uninitialised output in one pass.
        return Zip::from(a).and(b).map_collect(|&x, &y| f(x, y));
    }
    let av = a.broadcast(dim.clone()).expect("zip_map: broadcast of a");
    let bv = b.broadcast(dim.clone()).expect("zip_map: broadcast of b");
    if par {
        Zip::from(&av).and(&bv).par_map_collect(|&x, &y| f(x, y))
    } else {
        Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y))
    }
}

/// In place: `acc += x`, with `x` broadcast to `acc`'s shape.
pub fn add_assign<T: Element>(mut acc: ArrayViewMutD<T>, x: &ArrayViewD<T>) {
    let xv = x
        .broadcast(acc.raw_dim())
        .unwrap_or_else(|| panic!("add_assign: shape {:?} into {:?}", x.shape(), acc.shape()));
    if parallel(acc.len()) {
        Zip::from(&mut acc)
            .and(&xv)
            .par_for_each(|a, &b| *a = *a + b);
    } else {
        Zip::from(&mut acc).and(&xv).for_each(|a, &b| *a = *a + b);
    }
}

/// Which reduction a kernel performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Sum of the elements.
    Sum,
    /// Largest element.
    Max,
}

impl Reduce {
    pub(crate) fn identity<T: Element>(self) -> T {
        match self {
            Reduce::Sum => T::zero(),
            Reduce::Max => T::neg_infinity(),
        }
    }
    /// Combines two partial results; `Max` propagates NaN (like NumPy's and PyTorch's max).
    #[inline]
    pub(crate) fn combine<T: Element>(self, a: T, b: T) -> T {
        match self {
            Reduce::Sum => a + b,
            // NaN propagates like NumPy's max.
            Reduce::Max => {
                if a.is_nan() || a > b {
                    a
                } else {
                    b
                }
            }
        }
    }
}

/// Reduces a contiguous slice in fixed blocks combined in order.
fn reduce_slice<T: Element>(kind: Reduce, xs: &[T]) -> T {
    let fold = |chunk: &[T]| {
        // Eight independent accumulators: lets the compiler vectorise the sum, and they are
        // combined in a fixed order so the result does not depend on anything but the data.
        let mut acc = [kind.identity::<T>(); 8];
        let mut it = chunk.chunks_exact(8);
        for c in &mut it {
            for k in 0..8 {
                acc[k] = kind.combine(acc[k], c[k]);
            }
        }
        let mut r = kind.identity::<T>();
        for &x in it.remainder() {
            r = kind.combine(r, x);
        }
        for a in acc {
            r = kind.combine(r, a);
        }
        r
    };
    if xs.len() <= REDUCTION_BLOCK {
        return fold(xs);
    }
    let partials: Vec<T> = if parallel(xs.len()) {
        xs.par_chunks(REDUCTION_BLOCK).map(fold).collect()
    } else {
        xs.chunks(REDUCTION_BLOCK).map(fold).collect()
    };
    partials
        .into_iter()
        .fold(kind.identity::<T>(), |a, b| kind.combine(a, b))
}

/// Reduces every element to one value.
pub fn reduce_all<T: Element>(kind: Reduce, a: &ArrayViewD<T>) -> T {
    match a.as_slice_memory_order() {
        Some(s) => reduce_slice(kind, s),
        None => reduce_slice(kind, a.as_standard_layout().as_slice().unwrap()),
    }
}

/// Reduces along one axis, keeping it with length 1.
pub fn reduce_axis<T: Element>(kind: Reduce, a: &ArrayViewD<T>, axis: usize) -> ArrayD<T> {
    let shape = a.shape();
    let n = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape[axis] = 1;
    let contiguous = a.as_standard_layout();
    let x = contiguous.as_slice().unwrap();
    let mut out = vec![kind.identity::<T>(); outer * inner];
    if inner == 1 {
        // Reducing the last (contiguous) axis: one slice reduction per output element.
        let row = |(o, r): (usize, &mut T)| *r = reduce_slice(kind, &x[o * n..(o + 1) * n]);
        if parallel(x.len()) && outer > 1 {
            out.par_iter_mut().enumerate().for_each(row);
        } else {
            out.iter_mut().enumerate().for_each(row);
        }
    } else {
        // Reducing a middle or leading axis: add whole rows of length `inner`, which is
        // cache-friendly; every output element still sums its inputs in index order.
        let block = |o: usize, dst: &mut [T]| {
            for i in 0..n {
                let src = &x[(o * n + i) * inner..(o * n + i + 1) * inner];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = kind.combine(*d, s);
                }
            }
        };
        if outer > 1 {
            if parallel(x.len()) {
                out.par_chunks_mut(inner)
                    .enumerate()
                    .for_each(|(o, dst)| block(o, dst));
            } else {
                for (o, dst) in out.chunks_mut(inner).enumerate() {
                    block(o, dst);
                }
            }
        } else {
            combine_rows(kind, x, inner, &mut out);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).unwrap()
}

/// Combines the rows of the row-major `x` (rows of length `cols`) into `out` (one row, holding
/// the identity): partial results over fixed blocks of rows, combined in block order, serial
/// or parallel alike, so the bits depend on neither the thread count nor the threshold. A bias
/// gradient is this sum over the batch.
pub fn combine_rows<T: Element>(kind: Reduce, x: &[T], cols: usize, out: &mut [T]) {
    let rows_per_block = (REDUCTION_BLOCK / cols.max(1)).max(1);
    let partial = |rows: &[T], acc: &mut [T]| {
        acc.fill(kind.identity::<T>());
        for src in rows.chunks(cols) {
            for (d, &s) in acc.iter_mut().zip(src) {
                *d = kind.combine(*d, s);
            }
        }
    };
    let mut add = |p: &[T]| {
        for (d, &s) in out.iter_mut().zip(p) {
            *d = kind.combine(*d, s);
        }
    };
    if parallel(x.len()) {
        let partials: Vec<Vec<T>> = x
            .par_chunks(rows_per_block * cols)
            .map(|rows| {
                let mut acc = vec![kind.identity::<T>(); cols];
                partial(rows, &mut acc);
                acc
            })
            .collect();
        partials.iter().for_each(|p| add(p));
    } else {
        // One scratch row reused for every block: the same sums in the same order.
        let mut acc = vec![kind.identity::<T>(); cols];
        for rows in x.chunks(rows_per_block * cols) {
            partial(rows, &mut acc);
            add(&acc);
        }
    }
}

/// The column sums of a 2-D array (its sum over axis 0), as [`combine_rows`] computes them.
pub fn column_sums<T: Element>(a: &ArrayView2<T>) -> Array1<T> {
    let contiguous = a.as_standard_layout();
    let mut out = Array1::from_elem(a.ncols(), T::zero());
    combine_rows(
        Reduce::Sum,
        contiguous.as_slice().expect("standard layout"),
        a.ncols(),
        out.as_slice_mut().expect("a fresh array"),
    );
    out
}

/// Reduces along several axes (each kept with length 1).
pub fn reduce_axes<T: Element>(kind: Reduce, a: &ArrayViewD<T>, axes: &[usize]) -> ArrayD<T> {
    if axes.len() == a.ndim() && !axes.is_empty() {
        let v = reduce_all(kind, a);
        return ArrayD::from_elem(IxDyn(&vec![1; a.ndim()]), v);
    }
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let mut cur: Option<ArrayD<T>> = None;
    for &ax in sorted.iter().rev() {
        let next = match &cur {
            None => reduce_axis(kind, a, ax),
            Some(c) => reduce_axis(kind, &c.view(), ax),
        };
        cur = Some(next);
    }
    cur.unwrap_or_else(|| a.to_owned())
}

/// Sums `a` down to `shape`, the inverse of broadcasting `shape` up to `a`'s shape.
pub fn sum_to_shape<T: Element>(a: &ArrayViewD<T>, shape: &[usize]) -> ArrayD<T> {
    let lead = a.ndim() - shape.len();
    let mut axes: Vec<usize> = (0..lead).collect();
    for (i, &s) in shape.iter().enumerate() {
        if s == 1 && a.shape()[lead + i] != 1 {
            axes.push(lead + i);
        }
    }
    let reduced = reduce_axes(Reduce::Sum, a, &axes);
    reduced
        .into_shape_with_order(IxDyn(shape))
        .expect("sum_to_shape: reshape of the reduced array")
}

/// Copies `src` into `dst` with streaming (non-temporal) stores where the target allows them
/// (x86-64: 16 bytes at a time from the first 16-byte boundary of `dst`; the ends, and other
/// targets, by ordinary stores). Call [`streaming_fence`] after the last copy, before another
/// thread may read `dst`.
///
/// For a buffer every core has read since this one last wrote it (a weight matrix: the
/// forward GEMM packs it on every core). An ordinary store to a line another core holds waits
/// for that core to give it up, one line after another; a streaming store writes the whole
/// line without asking for it. The cost is that the next reader fetches the data from memory:
/// a gathered batch streamed this way made the epoch slower, not faster (PERF.md, "Issue 14's
/// targets, and the SGD update's stores").
///
/// The elements are moved as raw bytes, which is why `T` is an [`Element`] (`f32`, `f64`: no
/// padding bytes to read).
///
/// # Panics
/// When the lengths differ.
pub fn copy_streaming<T: Element>(dst: &mut [T], src: &[T]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "copy_streaming: destination of {} elements, source of {}",
        dst.len(),
        src.len()
    );
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let size = std::mem::size_of::<T>();
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        if 16 % size == 0 {
            let per = 16 / size;
            let body = (dst.len() - head) / per * per;
            let (d_head, rest) = dst.split_at_mut(head);
            let (d_body, d_tail) = rest.split_at_mut(body);
            let (s_head, rest) = src.split_at(head);
            let (s_body, s_tail) = rest.split_at(body);
            d_head.copy_from_slice(s_head);
            let (to, from) = (d_body.as_mut_ptr() as *mut __m128i, s_body.as_ptr());
            for i in 0..body / per {
                // SAFETY: `d_body` starts on a 16-byte boundary (`head`) and holds `body`
                // elements, a whole number of 16-byte units, as does `s_body`; the load is
                // unaligned. SSE2 is part of x86-64.
                unsafe {
                    let x = _mm_loadu_si128(from.add(i * per) as *const __m128i);
                    _mm_stream_si128(to.add(i), x);
                }
            }
            d_tail.copy_from_slice(s_tail);
            return;
        }
    }
    dst.copy_from_slice(src);
}

/// Orders every streaming store before the stores that follow it (a no-op where
/// [`copy_streaming`] has none): the thread that reads the data next is started by an
/// ordinary store, which must not overtake them.
pub fn streaming_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a fence instruction; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// Outputs of at least this many elements are cleared by [`gemm_into`] itself before OpenBLAS
/// adds the product to them (where it does: [`gemm_clears_output`]). Below it OpenBLAS's own
/// clearing costs little (PERF.md, "Clearing GEMM's output").
pub const GEMM_CLEAR_MIN_LEN: usize = 128 * 128;

/// Whether [`gemm_into`] clears large outputs itself: with OpenBLAS, on an x86-64 CPU without
/// AVX-512 — where it was measured, faster and bit-identical. On an AVX-512 CPU OpenBLAS 0.3.21
/// has paths taken only for β = 0 (`sgemm_direct` for row-major products, small-matrix kernels
/// that write A·B directly, an AVX-512 `sgemm_beta` on the SkylakeX cores) whose bits and speed
/// could not be measured here, so products are handed to it with β = 0 there, as before; the
/// same on other architectures.
pub fn gemm_clears_output() -> bool {
    static CLEARS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CLEARS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let avx512f = std::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512f = false;
        clears_output_on(
            cfg!(all(feature = "openblas", target_arch = "x86_64")),
            avx512f,
        )
    })
}

/// [`gemm_clears_output`]'s rule for a build (OpenBLAS on x86-64 or not) and whether the CPU
/// (and the OS) supports AVX-512F.
pub(crate) fn clears_output_on(openblas_x86_64: bool, avx512f: bool) -> bool {
    openblas_x86_64 && !avx512f
}

/// `out = a·b`: the one way ferrograd calls GEMM — the engine's products, the GEMM floor and
/// the hand-written baseline of `analyze performance` all come here, so they share its cost.
/// `out`'s old values are never used (NaN included).
///
/// With OpenBLAS, a GEMM with β = 0 first clears C with a scalar loop (`sgemm_beta`, about one
/// element a cycle; 12% of a one-thread epoch at batch 32, where the 784×128 weight gradient is
/// cleared every step) and then adds A·B to it. On the CPUs of [`gemm_clears_output`], C is
/// cleared here instead (a `memset`) and OpenBLAS asked for C + A·B (β = 1): the same
/// arithmetic in less time — OpenBLAS adds A·B to a cleared C either way, so the bits are those
/// of β = 0 (PERF.md, "Clearing GEMM's output"). A product ndarray does not hand to BLAS (a
/// strided operand) goes to matrixmultiply with β = 1 then, which also gives β = 0's bits: its
/// sums start from +0 as well. matrixmultiply writes A·B directly when β = 0, so the default
/// build calls it as it is.
///
/// # Panics
/// When the shapes do not fit (`a` m×k, `b` k×n, `out` m×n).
pub fn gemm_into<T: Element>(a: &ArrayView2<T>, b: &ArrayView2<T>, out: &mut Array2<T>) {
    assert!(
        a.ncols() == b.nrows() && out.dim() == (a.nrows(), b.ncols()),
        "gemm: shapes {:?} · {:?} into {:?}",
        a.shape(),
        b.shape(),
        out.shape()
    );
    if out.len() >= GEMM_CLEAR_MIN_LEN && gemm_clears_output() {
        clear(out);
        general_mat_mul(T::one(), a, b, T::one(), out);
    } else {
        general_mat_mul(T::one(), a, b, T::zero(), out);
    }
}

#[cfg(feature = "openblas")]
extern "C" {
    fn openblas_get_num_threads() -> std::os::raw::c_int;
}

/// The threads [`gemm_into`]'s library runs a product on: OpenBLAS's thread count, 1 without
/// the `openblas` feature (matrixmultiply runs on the calling thread).
pub fn gemm_threads() -> usize {
    #[cfg(feature = "openblas")]
    {
        // SAFETY: a plain getter in OpenBLAS, callable at any time from any thread.
        let n = unsafe { openblas_get_num_threads() };
        n.max(1) as usize
    }
    #[cfg(not(feature = "openblas"))]
    1
}

/// Zeroes `out` before a product adds into it, split over the GEMM threads
/// ([`split::on_gemm_threads`]): the buffer was last written by the previous step's product on
/// those threads and read by the update, so its lines sit in both cores' caches; cleared from
/// one core, each line must first be taken from the other. Split, each core clears half.
/// Measured (PERF.md, "The update and the clear on OpenBLAS's threads"): batch-32 epochs 4–6%
/// shorter with the cores to ourselves, 10–12% when the host shared them.
fn clear<T: Element>(out: &mut Array2<T>) {
    match out.as_slice_mut() {
        Some(s) => {
            let len = s.len();
            let s = split::Disjoint::new(s);
            // SAFETY: each piece clears its own range.
            split::on_gemm_threads(len, CLEAR_GRAIN, &|r| unsafe { s.range(r) }.fill(T::zero()));
        }
        None => out.fill(T::zero()),
    }
}

/// Elements in a piece of a split clear: a cache line of `f32`.
const CLEAR_GRAIN: usize = 16;

/// `a·b` by [`gemm_into`], in a new array on a buffer from the calling thread's pool (the
/// engine's tensors hand theirs back when dropped, so a step's products reuse the last step's
/// memory).
///
/// # Panics
/// When the inner dimensions differ.
pub fn gemm<T: Element>(a: &ArrayView2<T>, b: &ArrayView2<T>) -> Array2<T> {
    let mut out = pool::array(ndarray::Ix2(a.nrows(), b.ncols()));
    // `gemm_into` never uses the old values, so stale pooled ones do not matter.
    gemm_into(a, b, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element lands, nothing beside the window is written, for every start alignment
    /// of source and destination and lengths around the 16-byte unit.
    fn check<T: Element>(make: impl Fn(usize) -> T, fill: T) {
        for len in [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000] {
            for d_off in 0..5 {
                for s_off in 0..3 {
                    let src: Vec<T> = (0..len + s_off).map(&make).collect();
                    let mut dst = vec![fill; len + d_off + 3];
                    copy_streaming(&mut dst[d_off..d_off + len], &src[s_off..]);
                    streaming_fence();
                    assert!(dst[..d_off].iter().all(|&x| x == fill), "before the window");
                    assert_eq!(&dst[d_off..d_off + len], &src[s_off..], "len {len}");
                    assert!(
                        dst[d_off + len..].iter().all(|&x| x == fill),
                        "after the window"
                    );
                }
            }
        }
    }

    #[test]
    fn a_streaming_copy_equals_the_source_at_every_alignment() {
        check(|i| i as f32 + 0.5, -1.0f32);
        check(|i| i as f64 * 1.25, -1.0f64);
    }
}
