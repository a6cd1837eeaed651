//! Optimisers (SGD with momentum, Nesterov and weight decay; Adam), learning-rate schedules
//! and gradient clipping. Updates are done in place on the parameters' buffers, in one pass.

use crate::tensor::elem::Element;
use crate::tensor::kernels::{copy_streaming, streaming_fence};
use crate::tensor::split::{Disjoint, SplitChoice};
use crate::Tensor;
use ndarray::{ArrayD, ArrayView2, Zip};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// What an optimiser must remember between steps: how many steps it has taken (an integer,
/// exact for any run length; Adam's bias correction depends on it) and its buffers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState<T: Element> {
    /// Steps taken.
    pub steps: u64,
    /// Momentum (and, for Adam, second-moment) buffers, in the optimiser's own order.
    pub buffers: Vec<ArrayD<T>>,
}

/// Something that updates parameters from their gradients.
pub trait Optimizer<T: Element> {
    /// One update with learning rate `lr`; parameters without a gradient are left alone.
    ///
    /// Returns whether every value the update wrote is finite: `false` means the run has
    /// diverged (a NaN or an infinity in a gradient, a buffer or a parameter).
    fn step(&mut self, params: &[Tensor<T>], lr: f64) -> bool {
        self.begin_step();
        let mut finite = true;
        for (i, p) in params.iter().enumerate() {
            finite &= self.step_param(i, p, lr);
        }
        finite
    }
    /// Starts a step made of [`step_param`](Optimizer::step_param) calls (Adam counts steps).
    fn begin_step(&mut self) {}
    /// Updates parameter `index` (its position in the list `step` would be given) from its
    /// `.grad`, if it has one. Lets the update run inside the backward pass, as soon as the
    /// parameter's gradient is complete (`Tensor::backward_then`). Returns whether the
    /// updated parameter is finite (checked in the same pass, so it costs next to nothing).
    fn step_param(&mut self, index: usize, param: &Tensor<T>, lr: f64) -> bool;
    /// Updates parameter `index` with the gradient `xᵀ·dz` (a linear layer's weights: `x`
    /// its input batch, `dz` the gradient of its output) without forming that gradient, when
    /// this optimiser has a way to (`None` when it has not; the caller then forms it and
    /// calls [`step_param`](Optimizer::step_param)). `Some(finite)` as `step_param`.
    fn step_param_product(
        &mut self,
        _index: usize,
        _param: &Tensor<T>,
        _x: &ArrayView2<T>,
        _dz: &ArrayView2<T>,
        _lr: f64,
    ) -> Option<bool> {
        None
    }
    /// The optimiser's state (step count, momentum buffers and the like), for checkpoints.
    fn state(&self) -> OptimizerState<T>;
    /// Restores [`state`](Optimizer::state).
    fn set_state(&mut self, state: OptimizerState<T>);
}

/// Stochastic gradient descent with (heavy-ball or Nesterov) momentum and L2 weight decay,
/// PyTorch's formulation:
/// `g ← ∇θ + λθ;  v ← μv + g;  θ ← θ − η·(g + μv if nesterov else v)`.
///
/// ```
/// use ferrograd::optim::{Optimizer, Sgd};
/// use ferrograd::Tensor;
/// let w = Tensor::<f32>::from_vec(vec![1.0], &[1]).with_grad();
/// let mut sgd = Sgd::new(0.9);
/// for _ in 0..2 {
///     w.zero_grad();
///     (&w * &w).sum().backward(); // gradient 2w
///     sgd.step(&[w.clone()], 0.1);
/// }
/// // v₁ = 2, w₁ = 0.8; v₂ = 0.9·2 + 1.6 = 3.4, w₂ = 0.8 − 0.34 = 0.46
/// assert!((w.item() - 0.46).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Element = f32> {
    /// Momentum μ (0 for plain SGD).
    pub momentum: f64,
    /// Use Nesterov's look-ahead form.
    pub nesterov: bool,
    /// L2 penalty λ added to the gradient.
    pub weight_decay: f64,
    steps: u64,
    velocity: Vec<ArrayD<T>>,
    /// Whether this step's large updates run split over the GEMM threads.
    split: SplitChoice,
}

impl<T: Element> Sgd<T> {
    /// SGD with momentum `momentum`, no Nesterov, no weight decay.
    pub fn new(momentum: f64) -> Self {
        Sgd {
            momentum,
            nesterov: false,
            weight_decay: 0.0,
            steps: 0,
            velocity: Vec::new(),
            split: SplitChoice::default(),
        }
    }
}

/// The optimiser buffer for parameter `index`, created (zeros) on first use.
fn slot<'a, T: Element>(
    buffers: &'a mut Vec<ArrayD<T>>,
    index: usize,
    param: &Tensor<T>,
) -> &'a mut ArrayD<T> {
    if buffers.len() <= index {
        buffers.resize(index + 1, ArrayD::zeros(ndarray::IxDyn(&[0])));
    }
    let shape = param.value().raw_dim();
    if buffers[index].raw_dim() != shape {
        buffers[index] = ArrayD::zeros(shape);
    }
    &mut buffers[index]
}

/// Momentum, weight decay and learning rate of one SGD step, in the parameters' type.
#[derive(Clone, Copy)]
struct SgdCoefficients<T> {
    mu: T,
    wd: T,
    lr: T,
}

impl<T: Element> SgdCoefficients<T> {
    /// The coefficients in `T` (the optimiser keeps them in `f64`).
    fn new(momentum: f64, weight_decay: f64, lr: f64) -> Self {
        SgdCoefficients {
            mu: T::of(momentum),
            wd: T::of(weight_decay),
            lr: T::of(lr),
        }
    }
}

/// One parameter's SGD update, PyTorch's order of operations; whether the new value is finite.
#[inline(always)]
fn sgd_element<T: Element>(
    t: &mut T,
    v: &mut T,
    g: T,
    c: SgdCoefficients<T>,
    nesterov: bool,
) -> bool {
    let g = g + c.wd * *t;
    *v = c.mu * *v + g;
    *t = *t - c.lr * if nesterov { g + c.mu * *v } else { *v };
    t.is_finite()
}

/// The SGD update over flat slices. The Nesterov choice is a constant and the finiteness a
/// local AND, so the loop body has no branch and no store but the two results: LLVM
/// vectorises it (an earlier closure that captured the flag and the finiteness by reference
/// ran scalar: 5% of the samples of a profiled `analyze performance` at batch 128).
/// The velocity feeds the parameter, so a non-finite gradient or buffer shows up in it too.
fn sgd_kernel<T: Element, const NESTEROV: bool>(
    theta: &mut [T],
    v: &mut [T],
    g: &[T],
    c: SgdCoefficients<T>,
) -> bool {
    let mut finite = true;
    for ((t, v), &g) in theta.iter_mut().zip(v.iter_mut()).zip(g) {
        finite &= sgd_element(t, v, g, c, NESTEROV);
    }
    finite
}

/// The largest batch whose weight gradients [`Sgd`] applies straight from the product
/// ([`Optimizer::step_param_product`], [`sgd_product_update`]). Measured here (Fashion-MNIST,
/// alternating processes; PERF.md, "The weight gradient and its update in one pass" and "The
/// weight gradients' fused update on OpenBLAS's threads"): at batch 32 the epoch was 9–13%
/// shorter than the library's product and the update pass with matrixmultiply, 12–16% with
/// OpenBLAS on one thread, and with OpenBLAS on two threads, the kernel split by rows over
/// OpenBLAS's own threads, about 15% shorter (medians) when the host shared the cores and not
/// measurably different with both cores ours. At batch 64 it gained nothing (one thread) or
/// did not win (two); at 128 it lost with every GEMM, where the library's packed kernels win
/// on the longer inner dimension.
pub const PRODUCT_UPDATE_MAX_BATCH: usize = 32;

/// Rows of a weight matrix in a piece of a split [`sgd_product_update`]: eight rows of any
/// width start on a 32-byte boundary of a row-major matrix whose rows do.
pub const PRODUCT_SPLIT_ROWS: usize = 8;

/// One SGD step of a layer's weights `theta` (m×n, row-major, momentum `velocity`) with the
/// gradient `xᵀ·dz`, `x` the layer's input (batch×m) and `dz` its output's gradient
/// (batch×n), both row-major, the gradient never formed: ferrograd's own kernel
/// ([`short_k`](crate::tensor::short_k)) applies each block of it from the registers that
/// summed it. Matrices of at least [`SPLIT_MIN_LEN`] elements are split by rows over the GEMM
/// library's waiting threads as the step's `choice` says; each row is computed by the same
/// code wherever it runs, so the bits do not depend on the choice. Returns whether every
/// updated weight is finite.
///
/// # Panics
/// When the kernel is not available here or the slices do not hold the shapes.
pub fn sgd_product_update(
    x: &[f32],
    dz: &[f32],
    (batch, m, n): (usize, usize, usize),
    theta: &mut [f32],
    velocity: &mut [f32],
    step: crate::tensor::short_k::SgdStep,
    choice: &SplitChoice,
) -> bool {
    use crate::tensor::short_k::{self, Lhs, Sink};
    assert!(
        x.len() == batch * m && dz.len() == batch * n,
        "sgd_product_update: inputs of {} and {} elements for batch {batch}, {m}×{n} weights",
        x.len(),
        dz.len()
    );
    assert!(
        theta.len() == m * n && velocity.len() == m * n,
        "sgd_product_update: parameters of {} and {} elements for {m}×{n} weights",
        theta.len(),
        velocity.len()
    );
    let _p = crate::profile::gemm_scope("linear_sgd", m, batch, n);
    let finite = AtomicBool::new(true);
    let (theta, velocity) = (Disjoint::new(theta), Disjoint::new(velocity));
    // `xᵀ` by strides: element (i, l) of the m×batch operand is x[l, i].
    let xt = Lhs::new(x, m, batch, 1, m);
    let rows = |r: std::ops::Range<usize>| {
        let cells = r.start * n..r.end * n;
        // SAFETY: each piece takes its own rows of the weights and their momentum.
        let (t, v) = unsafe { (theta.range(cells.clone()), velocity.range(cells)) };
        let a = xt.rows(r.clone());
        let sink = Sink::Sgd {
            theta: t,
            velocity: v,
            step,
        };
        if !short_k::product(a, dz, n, (r.len(), batch, n), sink) {
            finite.store(false, Ordering::Relaxed);
        }
    };
    if m * n >= SPLIT_MIN_LEN {
        choice.run(m, PRODUCT_SPLIT_ROWS, &rows);
    } else {
        rows(0..m);
    }
    finite.into_inner()
}

/// Whether the weight gradient of a layer of `outputs` units at a batch of `batch` rows is
/// applied straight from the product ([`sgd_product_update`]) in `f32`: the kernel runs here,
/// the batch is not empty and at most [`PRODUCT_UPDATE_MAX_BATCH`], and the layer's width is
/// a whole number of the kernel's 16-column panels — the columns past them are summed one
/// element at a time (measured: the 128×10 last layer's fused update took about 34 µs, the
/// library's product and the update about 4).
pub fn product_update_applies(batch: usize, outputs: usize) -> bool {
    use crate::tensor::short_k;
    short_k::available()
        && (1..=PRODUCT_UPDATE_MAX_BATCH).contains(&batch)
        && outputs % short_k::COLS == 0
}

/// Parameters of at least this many elements are written with streaming stores
/// ([`sgd_update_slices`]); smaller ones (biases) stay in the cache.
const STREAMING_MIN_LEN: usize = 4096;

/// Elements updated per block before they are streamed out: 1 KiB of `f32`, 2 KiB of `f64`,
/// small enough to stay in L1 between the update and the stores.
const STREAM_BLOCK: usize = 256;

/// A block of parameters on its way out, aligned to a cache line so that it leaves in whole
/// lines.
#[repr(C, align(64))]
struct LineAligned<T>([T; STREAM_BLOCK]);

/// The SGD update of `theta`, its velocity `v` and gradient `g` (flat, same length), PyTorch's
/// formula in PyTorch's order; whether every new parameter is finite.
///
/// The parameters are written back with streaming (non-temporal) stores on x86-64. A weight
/// matrix was read by the forward GEMM on every core, so the cache lines of `theta` are shared
/// with the other cores when the update writes them, and each ordinary store must first take
/// its line back: measured here (AMD EPYC, 2 cores), that made the update of the 784×128
/// weights take 135–500 µs instead of about 34 µs, a third of an epoch at batch 32 (PERF.md,
/// "Issue 14's targets, and the SGD update's stores"; `examples/sgd_shared_lines.rs`). A
/// streaming store needs no ownership and writes whole lines; the next forward reads the
/// weights from memory, which costs less. The values are computed by the same scalar code
/// whichever way they are stored, so the bits do not depend on the path.
pub fn sgd_update_slices<T: Element>(
    theta: &mut [T],
    v: &mut [T],
    g: &[T],
    momentum: f64,
    weight_decay: f64,
    lr: f64,
    nesterov: bool,
) -> bool {
    assert!(
        theta.len() == v.len() && v.len() == g.len(),
        "sgd_update_slices: lengths {}, {}, {} differ",
        theta.len(),
        v.len(),
        g.len()
    );
    let c = SgdCoefficients::new(momentum, weight_decay, lr);
    if nesterov {
        sgd_streaming::<T, true>(theta, v, g, c)
    } else {
        sgd_streaming::<T, false>(theta, v, g, c)
    }
}

/// Elements in a piece of a split update: a cache line of `f32`, so that two threads never
/// write one line.
const SPLIT_GRAIN: usize = 16;

/// Parameters shorter than this are updated on the calling thread whatever the step chose:
/// handing a piece to another thread costs a few microseconds, as much as updating a few
/// thousand elements.
pub const SPLIT_MIN_LEN: usize = 8192;

/// [`sgd_update_slices`], run on the calling thread or, for a parameter of at least
/// [`SPLIT_MIN_LEN`] elements, split over the GEMM library's waiting threads as the step's
/// `choice` says ([`SplitChoice`]): the same arithmetic on every element either way, so the
/// same bits.
#[allow(clippy::too_many_arguments)]
pub fn sgd_update_split<T: Element>(
    theta: &mut [T],
    v: &mut [T],
    g: &[T],
    momentum: f64,
    weight_decay: f64,
    lr: f64,
    nesterov: bool,
    choice: &SplitChoice,
) -> bool {
    let len = theta.len();
    if len < SPLIT_MIN_LEN {
        return sgd_update_slices(theta, v, g, momentum, weight_decay, lr, nesterov);
    }
    assert!(
        v.len() == len && g.len() == len,
        "sgd_update_split: lengths {len}, {}, {} differ",
        v.len(),
        g.len()
    );
    let finite = AtomicBool::new(true);
    let (theta, v) = (Disjoint::new(theta), Disjoint::new(v));
    let c = SgdCoefficients::new(momentum, weight_decay, lr);
    // Plain stores only when splitting is the settled way, not in a probe of it: where the
    // probe loses, the host makes lines passed between the cores dear, and lines left in the
    // other core's cache by plain stores would have to come back after the probe.
    let split = choice.splitting() && choice.prefers_split();
    choice.run(len, SPLIT_GRAIN, &|r| {
        // SAFETY: each piece takes its own range of the parameter and its velocity.
        let (t, v) = unsafe { (theta.range(r.clone()), v.range(r.clone())) };
        // Split, each core writes its half with plain stores and keeps it in its cache for
        // the next forward product (measured faster than streaming it out: PERF.md, "The
        // update and the clear on OpenBLAS's threads"); whole, the streaming kernel.
        let ok = match (split, nesterov) {
            (true, true) => sgd_kernel::<T, true>(t, v, &g[r], c),
            (true, false) => sgd_kernel::<T, false>(t, v, &g[r], c),
            (false, _) => sgd_update_slices(t, v, &g[r], momentum, weight_decay, lr, nesterov),
        };
        if !ok {
            finite.store(false, Ordering::Relaxed);
        }
    });
    finite.into_inner()
}

/// [`sgd_kernel`] with the parameters streamed out block by block ([`copy_streaming`]; short
/// slices by the plain kernel).
fn sgd_streaming<T: Element, const NESTEROV: bool>(
    theta: &mut [T],
    v: &mut [T],
    g: &[T],
    c: SgdCoefficients<T>,
) -> bool {
    if theta.len() < STREAMING_MIN_LEN {
        return sgd_kernel::<T, NESTEROV>(theta, v, g, c);
    }
    // The elements before the first cache-line boundary by the plain kernel, so that every
    // block after it leaves in whole lines; the last partial block too.
    let head = theta.as_ptr().align_offset(64).min(theta.len());
    let (t_head, theta) = theta.split_at_mut(head);
    let (v_head, v) = v.split_at_mut(head);
    let (g_head, g) = g.split_at(head);
    let mut finite = sgd_kernel::<T, NESTEROV>(t_head, v_head, g_head, c);
    let mut block = LineAligned([T::zero(); STREAM_BLOCK]);
    for ((t, v), g) in theta
        .chunks_exact_mut(STREAM_BLOCK)
        .zip(v.chunks_exact_mut(STREAM_BLOCK))
        .zip(g.chunks_exact(STREAM_BLOCK))
    {
        block.0.copy_from_slice(t);
        finite &= sgd_kernel::<T, NESTEROV>(&mut block.0, v, g, c);
        copy_streaming(t, &block.0);
    }
    streaming_fence();
    let tail = theta.len() / STREAM_BLOCK * STREAM_BLOCK;
    finite & sgd_kernel::<T, NESTEROV>(&mut theta[tail..], &mut v[tail..], &g[tail..], c)
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn begin_step(&mut self) {
        self.steps += 1;
        self.split.begin_cycle();
    }
    fn step_param(&mut self, index: usize, p: &Tensor<T>, lr: f64) -> bool {
        let Some(g) = p.grad() else { return true };
        let (momentum, weight_decay, nesterov) = (self.momentum, self.weight_decay, self.nesterov);
        let v = slot(&mut self.velocity, index, p);
        let choice = &self.split;
        let g = g.value();
        let mut finite = true;
        p.update(|mut theta| {
            // One pass over three flat slices when all are contiguous in the same order
            // (always, for parameters), in the streaming kernel.
            finite = match (theta.as_slice_mut(), v.as_slice_mut(), g.as_slice()) {
                (Some(t), Some(v), Some(g)) => {
                    sgd_update_split(t, v, g, momentum, weight_decay, lr, nesterov, choice)
                }
                _ => {
                    let c = SgdCoefficients::new(momentum, weight_decay, lr);
                    let mut finite = true;
                    Zip::from(&mut theta)
                        .and(&mut *v)
                        .and(&*g)
                        .for_each(|t, v, &g| {
                            finite &= sgd_element(t, v, g, c, nesterov);
                        });
                    finite
                }
            };
        });
        finite
    }
    /// By ferrograd's own kernel ([`sgd_product_update`]) where it runs and pays
    /// ([`product_update_applies`]: `f32`, a batch of at most [`PRODUCT_UPDATE_MAX_BATCH`]
    /// rows), contiguous arrays. Each block of the gradient is applied from the registers that
    /// summed it — the same update arithmetic as forming it and calling `step_param`, so the
    /// same bits for the same gradient — and the gradient is never written to memory nor read
    /// back.
    fn step_param_product(
        &mut self,
        index: usize,
        p: &Tensor<T>,
        x: &ArrayView2<T>,
        dz: &ArrayView2<T>,
        lr: f64,
    ) -> Option<bool> {
        let ((batch, m), n) = (x.dim(), dz.ncols());
        if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>()
            || !product_update_applies(batch, n)
            || dz.nrows() != batch
            || !x.is_standard_layout()
            || !dz.is_standard_layout()
            || p.shape() != [m, n]
        {
            return None;
        }
        let step = crate::tensor::short_k::SgdStep {
            momentum: self.momentum as f32,
            weight_decay: self.weight_decay as f32,
            lr: lr as f32,
            nesterov: self.nesterov,
        };
        let v = slot(&mut self.velocity, index, p);
        let choice = &self.split;
        let mut finite = None;
        p.update(|mut theta| {
            let (Some(t), Some(v)) = (theta.as_slice_mut(), v.as_slice_mut()) else {
                return;
            };
            // SAFETY: `T` is `f32` (checked above); the slices are the arrays' own elements.
            let (x, dz, t, v) = unsafe {
                (
                    std::slice::from_raw_parts(x.as_ptr() as *const f32, batch * m),
                    std::slice::from_raw_parts(dz.as_ptr() as *const f32, batch * n),
                    std::slice::from_raw_parts_mut(t.as_mut_ptr() as *mut f32, m * n),
                    std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, m * n),
                )
            };
            finite = Some(sgd_product_update(x, dz, (batch, m, n), t, v, step, choice));
        });
        finite
    }
    fn state(&self) -> OptimizerState<T> {
        OptimizerState {
            steps: self.steps,
            buffers: self.velocity.clone(),
        }
    }
    fn set_state(&mut self, state: OptimizerState<T>) {
        self.steps = state.steps;
        self.velocity = state.buffers;
    }
}

/// Adam (Kingma & Ba, 2015) with bias correction; weight decay added to the gradient.
#[derive(Clone, Debug)]
pub struct Adam<T: Element = f32> {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    steps: u64,
    m: Vec<ArrayD<T>>,
    v: Vec<ArrayD<T>>,
}

impl<T: Element> Default for Adam<T> {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            steps: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn begin_step(&mut self) {
        self.steps += 1;
    }
    fn step_param(&mut self, index: usize, p: &Tensor<T>, lr: f64) -> bool {
        let Some(g) = p.grad() else { return true };
        // βᵗ is 0 in f64 long before t leaves i32's range.
        let t = self.steps.clamp(1, i32::MAX as u64) as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let step = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        let (b1, b2, eps, wd, step) = (
            T::of(b1),
            T::of(b2),
            T::of(self.eps),
            T::of(self.weight_decay),
            T::of(step),
        );
        let one = T::one();
        slot(&mut self.m, index, p);
        slot(&mut self.v, index, p);
        let (m, v) = (&mut self.m[index], &mut self.v[index]);
        let g = g.value();
        let mut finite = true;
        p.update(|theta| {
            Zip::from(theta)
                .and(m)
                .and(v)
                .and(&*g)
                .for_each(|t, m, v, &g| {
                    let g = g + wd * *t;
                    *m = b1 * *m + (one - b1) * g;
                    *v = b2 * *v + (one - b2) * g * g;
                    *t = *t - step * *m / (v.sqrt() + eps);
                    finite &= t.is_finite();
                });
        });
        finite
    }
    fn state(&self) -> OptimizerState<T> {
        let mut buffers = self.m.clone();
        buffers.extend(self.v.iter().cloned());
        OptimizerState {
            steps: self.steps,
            buffers,
        }
    }
    fn set_state(&mut self, state: OptimizerState<T>) {
        self.steps = state.steps;
        let mut m = state.buffers;
        self.v = m.split_off(m.len() / 2);
        self.m = m;
    }
}

/// A learning-rate schedule, evaluated per epoch (epoch 0 is the first).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// `η₀` throughout.
    Constant,
    /// `η₀ · γ^⌊epoch / every⌋`.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor at each decay.
        gamma: f64,
    },
    /// `η₀ · γ^epoch`.
    Exponential {
        /// Factor per epoch.
        gamma: f64,
    },
    /// `η_min + (η₀ − η_min)(1 + cos(π t / T)) / 2` over the `T` epochs after warm-up.
    Cosine {
        /// The final learning rate.
        min_lr: f64,
    },
}

/// A schedule with an optional linear warm-up: the learning rate of every epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The peak (initial) learning rate η₀.
    pub base_lr: f64,
    /// The decay after warm-up.
    pub schedule: Schedule,
    /// Epochs of linear warm-up from `base_lr / (warmup + 1)` up to `base_lr`.
    pub warmup_epochs: usize,
    /// Total epochs (cosine decays over `epochs − warmup_epochs`).
    pub epochs: usize,
}

impl LrSchedule {
    /// The learning rate during `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f64 {
        if epoch < self.warmup_epochs {
            return self.base_lr * (epoch + 1) as f64 / (self.warmup_epochs + 1) as f64;
        }
        let t = epoch - self.warmup_epochs;
        match self.schedule {
            Schedule::Constant => self.base_lr,
            Schedule::Step { every, gamma } => self.base_lr * gamma.powi((t / every.max(1)) as i32),
            Schedule::Exponential { gamma } => self.base_lr * gamma.powi(t as i32),
            Schedule::Cosine { min_lr } => {
                let total = self.epochs.saturating_sub(self.warmup_epochs).max(1) as f64;
                min_lr
                    + (self.base_lr - min_lr)
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * t as f64 / total).cos())
            }
        }
    }
}

/// Backward of the scalar `loss`, updating each parameter (and dropping its gradient) as soon
/// as its gradient is complete, inside the backward pass: the gradient is used while it is
/// still in the cache, and its buffer is free for the next layer's. The result is the same as
/// `loss.backward()` then `optimizer.step(params, lr)`, bit for bit, and so is the returned
/// flag (whether every updated parameter is finite).
pub fn backward_and_step<T: Element>(
    loss: &Tensor<T>,
    params: &[Tensor<T>],
    optimizer: &mut dyn Optimizer<T>,
    lr: f64,
) -> bool {
    optimizer.begin_step();
    let seed = Tensor::ones(&loss.shape());
    // Shared by the two handlers below, which the backward pass never runs at once.
    let state = std::cell::RefCell::new((optimizer, true));
    loss.backward_applying(
        &seed,
        false,
        &mut |leaf| {
            if let Some(i) = params.iter().position(|p| p.same_node(leaf)) {
                let (optimizer, finite) = &mut *state.borrow_mut();
                *finite &= optimizer.step_param(i, leaf, lr);
                leaf.zero_grad();
            }
        },
        Some(&mut |leaf, x, dz| {
            let Some(i) = params.iter().position(|p| p.same_node(leaf)) else {
                return false;
            };
            let (optimizer, finite) = &mut *state.borrow_mut();
            match optimizer.step_param_product(i, leaf, x, dz, lr) {
                Some(f) => {
                    *finite &= f;
                    true
                }
                None => false,
            }
        }),
    );
    let (_, finite) = state.into_inner();
    finite
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm<T: Element>(params: &[Tensor<T>], max_norm: f64) -> f64 {
    let total: f64 = params
        .iter()
        .filter_map(|p| p.grad())
        .map(|g| {
            g.value()
                .iter()
                .map(|&x| x.to_f64_lossless().powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        .sqrt();
    if total > max_norm && total > 0.0 {
        let scale = T::of(max_norm / total);
        for p in params {
            if let Some(g) = p.grad() {
                g.update(|mut v| v.mapv_inplace(|x| x * scale));
            }
        }
    }
    total
}
