//! `analyze performance`: the training loop's epoch time (batch gather, forward, backward,
//! update) against the hand-written baseline in the same process, interleaved; where the time
//! goes (phases and ops); and the GEMM rate achieved against a plain sgemm of the same shapes.

use super::baseline::HandwrittenMlp;
use super::gemm_floor::{self, GemmFloor};
use super::median;
use crate::blas::BlasCore;
use crate::build_info::BuildInfo;
use crate::cpu::CpuPeak;
use crate::data::{self, Dataset, DatasetName};
use crate::nn::{Activation, Init, Mlp};
use crate::optim::Sgd;
use crate::profile;
use crate::train::{Phases, Trainer};
use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct PerfOptions {
    /// The dataset (its whole training file is one epoch).
    pub dataset: DatasetName,
    /// Where its files are.
    pub data_dir: Option<PathBuf>,
    /// Images per step.
    pub batch_size: usize,
    /// Timed epochs of each system (after one warm-up epoch each).
    pub epochs: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// The nonlinearity.
    pub activation: Activation,
    /// Learning rate of the (real) SGD updates.
    pub lr: f64,
    /// Seed of the weights and batch order.
    pub seed: u64,
}

impl Default for PerfOptions {
    fn default() -> Self {
        PerfOptions {
            dataset: DatasetName::Fashion,
            data_dir: None,
            batch_size: 128,
            epochs: 20,
            hidden: vec![128, 128, 128],
            activation: Activation::Relu,
            lr: 0.01,
            seed: 0,
        }
    }
}

/// Images each system trains on before the other takes its turn in [`measure`].
pub const INTERLEAVE_IMAGES: usize = 8192;

/// One op's share of a profiled epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpTime {
    /// Op name (forward and backward calls together).
    pub op: String,
    /// Calls in the epoch.
    pub calls: u64,
    /// Seconds in the epoch.
    pub seconds: f64,
}

/// A GEMM shape's rate in the training loop against a plain GEMM of the same shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GemmRate {
    /// `m × k · k × n`.
    pub shape: [usize; 3],
    /// Calls in the epoch.
    pub calls: u64,
    /// GFLOP/s inside the training loop (2mkn per call).
    pub gflops_in_training: f64,
    /// GFLOP/s of a plain row-major GEMM of the same shape, measured alone.
    pub gflops_plain_gemm: f64,
}

/// The result of `analyze performance`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PerfReport {
    /// Median autograd epoch, seconds.
    pub epoch_seconds_median: f64,
    /// Median hand-written epoch, seconds.
    pub handwritten_epoch_seconds_median: f64,
    /// Median over interleaved pairs of (autograd epoch / hand-written epoch).
    pub ratio: f64,
    /// Every timed autograd epoch.
    pub epoch_seconds: Vec<f64>,
    /// Every timed hand-written epoch.
    pub handwritten_epoch_seconds: Vec<f64>,
    /// Images per step.
    pub batch_size: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Images per epoch.
    pub images: usize,
    /// Threads of ferrograd's own kernels (rayon).
    pub threads: usize,
    /// Threads of the GEMM: OpenBLAS's count, which `--threads` sets with rayon's but
    /// `OPENBLAS_NUM_THREADS` can set alone; 1 for matrixmultiply, which runs on the calling
    /// thread.
    #[serde(default)]
    pub blas_threads: usize,
    /// GEMM backend.
    pub blas: String,
    /// The dataset.
    pub dataset: String,
    /// Layer sizes.
    pub architecture: Vec<usize>,
    /// Median phase split of the autograd epochs.
    pub phases: Phases,
    /// Per-op times of one profiled autograd epoch.
    pub ops: Vec<OpTime>,
    /// GEMM rates by shape.
    pub gemm: Vec<GemmRate>,
    /// FLOPs of the matrix products of one epoch (forward and backward).
    pub epoch_matmul_gflop: f64,
    /// Median GEMM floor of an epoch: its GEMM calls replayed as plain GEMMs of the same
    /// shapes, in turns interleaved with the two systems.
    pub gemm_floor_seconds: f64,
    /// Every timed floor, in the order of `epoch_seconds`.
    pub gemm_floor_epoch_seconds: Vec<f64>,
    /// Median over epochs of (autograd epoch / its GEMM floor).
    pub floor_ratio: f64,
    /// The floor's GEMM rate: `epoch_matmul_gflop / gemm_floor_seconds`.
    pub floor_gflops: f64,
    /// The CPU's single-precision peak for the GEMM's threads, `blas_threads` (cores × clock
    /// × FLOPs/cycle).
    pub cpu_peak: CpuPeak,
    /// `floor_gflops / cpu_peak.gflops`: the share of the peak the plain GEMMs reach (a
    /// fallback kernel shows here; NaN when the machine reports no clock).
    pub floor_fraction_of_peak: f64,
    /// The host's state: a [`SPEEDUP_SHAPE`] product (the default model's first layer at
    /// batch 128, whatever model is measured, so that OpenBLAS always splits it) timed on all
    /// of OpenBLAS's threads against one: time on one thread / time on all, medians of
    /// alternating rounds ([`gemm_thread_speedup`]). Close to the thread count when the cores
    /// are the process's own; close to 1 when other work on the host shares them, and then
    /// timings move and a floor whose products run on all threads is not a lower bound
    /// (PERF.md). Measured after every timed epoch; this is the median. `None` with one
    /// thread or without OpenBLAS.
    #[serde(default)]
    pub gemm_thread_speedup: Option<f64>,
    /// Each timed epoch's [`gemm_thread_speedup`](PerfReport::gemm_thread_speedup), in the
    /// order of `epoch_seconds` (empty when there is none): the host's state can change
    /// within a run, and this says which epochs ran on shared cores.
    #[serde(default)]
    pub gemm_thread_speedups: Vec<f64>,
    /// The GEMM kernels in use.
    pub blas_core: BlasCore,
    /// How the binary was built.
    pub build: BuildInfo,
}

/// Autograd training steps over `batches` (an epoch, or one turn of it): the trainer's own
/// step, timed per phase.
pub fn autograd_epoch(
    trainer: &mut Trainer,
    train: &Dataset,
    batches: &[Vec<usize>],
) -> Result<Phases> {
    let mut p = Phases::default();
    trainer.steps(train, batches, |_, _, outcome| match outcome {
        Ok(step) => {
            p.add(&step.phases);
            Ok(())
        }
        Err(d) => bail!("analyze performance: training diverged ({d:?}); lower --lr"),
    })?;
    Ok(p)
}

/// Hand-written training steps over `batches` (an epoch, or one turn of it); returns seconds.
pub fn handwritten_epoch(
    mlp: &mut HandwrittenMlp,
    train: &Dataset,
    batches: &[Vec<usize>],
    lr: f64,
    momentum: f64,
) -> f64 {
    let start = Instant::now();
    // The same loader thread and row copies as the autograd side's batches.
    let done: Result<(), std::convert::Infallible> =
        data::for_each_batch(train, batches, |b, x, _| {
            let labels = train.labels_of(&batches[b]);
            mlp.step(x.view(), &labels, lr as f32, momentum as f32, 0.0);
            crate::tensor::pool::give_array(x);
            Ok(())
        });
    let Ok(()) = done;
    start.elapsed().as_secs_f64()
}

/// Seconds per call of `gemm_into(a, b, c)`, repeated for at least `min_seconds` (and 3 calls).
fn seconds_per_gemm(ops: &mut gemm_floor::Operands, min_seconds: f64) -> f64 {
    let (a, b, c) = ops;
    let (mut reps, start) = (0u32, Instant::now());
    while start.elapsed().as_secs_f64() < min_seconds || reps < 3 {
        crate::tensor::kernels::gemm_into(&a.view(), &b.view(), c);
        reps += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(reps)
}

/// GFLOP/s of a plain row-major `m×k · k×n` GEMM, timed for at least 50 ms.
pub fn plain_gemm_gflops(m: usize, k: usize, n: usize) -> f64 {
    let seconds = seconds_per_gemm(&mut gemm_floor::operands(m, k, n), 0.05);
    2.0 * (m * k * n) as f64 / seconds / 1e9
}

/// Rounds of [`gemm_thread_speedup`], each timing both thread counts.
const SPEEDUP_ROUNDS: usize = 3;

/// `m, k, n` of the product [`PerfReport::gemm_thread_speedup`] times: large enough that
/// OpenBLAS runs it on all its threads (a small model's own products may run on one, and
/// would report shared cores on an idle machine), small enough to take well under a
/// millisecond.
pub const SPEEDUP_SHAPE: (usize, usize, usize) = (128, 784, 128);

/// How much faster a plain `m×k · k×n` GEMM runs on all of OpenBLAS's threads than on one:
/// after 10 ms of each untimed, the median time on one thread over the median on all,
/// alternating three times (each at least 10 ms), so that both see the same state of a
/// shared machine. OpenBLAS's thread count is put back before it returns. `None` when
/// OpenBLAS has one thread or the build has no OpenBLAS (whose GEMM has one).
pub fn gemm_thread_speedup(m: usize, k: usize, n: usize) -> Option<f64> {
    speedup_after_warming(m, k, n, 0.01)
}

/// [`gemm_thread_speedup`] after `warm` seconds of the product on all threads, untimed.
fn speedup_after_warming(m: usize, k: usize, n: usize, warm: f64) -> Option<f64> {
    let threads = crate::threads::blas_threads();
    if threads < 2 {
        return None;
    }
    let mut ops = gemm_floor::operands(m, k, n);
    let mut time = |blas_threads: usize, seconds: f64| {
        crate::threads::set_blas_threads(blas_threads);
        seconds_per_gemm(&mut ops, seconds)
    };
    // Untimed first, so that the rounds start with both thread counts running.
    time(threads, warm);
    time(1, 0.01);
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for _ in 0..SPEEDUP_ROUNDS {
        one.push(time(1, 0.01));
        all.push(time(threads, 0.01));
    }
    // The last round ran on all threads; said again so the contract does not hang on the order.
    crate::threads::set_blas_threads(threads);
    Some(median(&one) / median(&all))
}

/// Runs the measurement (see the module's documentation).
pub fn measure(opts: &PerfOptions) -> Result<PerfReport> {
    let (train, _) = data::load_dataset(opts.dataset, opts.data_dir.as_deref())?;
    let mut sizes = vec![train.dim()];
    sizes.extend(&opts.hidden);
    sizes.push(train.classes.len());
    crate::limits::check_parameters(&sizes)?;
    let model = Mlp::<f32>::new(&sizes, opts.activation, Init::Xavier, opts.seed);
    let mut hand = HandwrittenMlp::from_mlp(&model);
    let mut trainer = Trainer::new(model, Box::new(Sgd::new(0.9)), opts.lr);
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut epoch_batches = || data::shuffled_batches(train.len(), opts.batch_size, &mut rng);

    // Warm-up: caches, allocator, thread pools; and the GEMMs of a step of each batch length
    // (the last batch of an epoch may be shorter), recorded for the floor.
    let mut floor = GemmFloor::default();
    let b = epoch_batches();
    for step in b.chunks(1) {
        let mut run = || autograd_epoch(&mut trainer, &train, step);
        if floor.knows(step[0].len()) {
            run()?;
        } else {
            let mut result = Ok(Phases::default());
            floor.record(step[0].len(), || result = run());
            result?;
        }
    }
    handwritten_epoch(&mut hand, &train, &b, opts.lr, 0.9);
    floor.run(&b);

    let (mut auto, mut handt, mut floors, mut phases, mut speedups) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // OpenBLAS's second thread may not have run since start-up (a small model's products are
    // too small for it), and its first tenths of a second there were measured slow (0.1–0.9×
    // after the first epoch of `--dataset digits --hidden 8` on an idle machine): one
    // measurement after 0.2 s of warming, thrown away.
    let (m, k, n) = SPEEDUP_SHAPE;
    speedup_after_warming(m, k, n, 0.2);
    // The three take turns every few steps (about 8,192 images, some tens of milliseconds),
    // and which goes first rotates: on a shared machine whose speed drifts over seconds, all
    // see the same conditions. Each system still trains on every batch of the epoch in order.
    let chunk = (INTERLEAVE_IMAGES / opts.batch_size).max(1);
    let bar = crate::progress::bar(
        opts.epochs,
        "timed epoch {pos}/{len} (each system) {bar:30} eta {eta}",
    );
    for _ in 0..opts.epochs {
        bar.inc(1);
        let b = epoch_batches();
        let (mut p, mut h, mut f) = (Phases::default(), 0.0, 0.0);
        for (i, part) in b.chunks(chunk).enumerate() {
            for turn in 0..3 {
                match (i + turn) % 3 {
                    0 => p.add(&autograd_epoch(&mut trainer, &train, part)?),
                    1 => h += handwritten_epoch(&mut hand, &train, part, opts.lr, 0.9),
                    _ => f += floor.run(part),
                }
            }
        }
        // Between epochs, so that each epoch's state is known and no epoch pays for it.
        speedups.extend(gemm_thread_speedup(m, k, n));
        auto.push(p.total());
        phases.push(p);
        handt.push(h);
        floors.push(f);
    }
    bar.finish_and_clear();
    let ratios: Vec<f64> = auto.iter().zip(&handt).map(|(a, h)| a / h).collect();
    let floor_ratios: Vec<f64> = auto.iter().zip(&floors).map(|(a, f)| a / f).collect();

    // One profiled epoch for the per-op table and GEMM shapes.
    profile::set_enabled(true);
    let b = epoch_batches();
    autograd_epoch(&mut trainer, &train, &b)?;
    profile::set_enabled(false);
    let ops = profile::op_totals()
        .into_iter()
        .map(|(op, calls, seconds)| OpTime {
            op: op.to_string(),
            calls,
            seconds,
        })
        .collect();
    let mut epoch_flop = 0.0;
    let gemm = profile::gemm_totals()
        .into_iter()
        .map(|((m, k, n), calls, seconds)| {
            let flop = 2.0 * (m * k * n) as f64 * calls as f64;
            epoch_flop += flop;
            GemmRate {
                shape: [m, k, n],
                calls,
                gflops_in_training: flop / seconds / 1e9,
                gflops_plain_gemm: plain_gemm_gflops(m, k, n),
            }
        })
        .collect();
    let pick = |f: fn(&Phases) -> f64| median(&phases.iter().map(f).collect::<Vec<_>>());
    let threads = crate::threads::current_threads();
    let gemm_floor_seconds = median(&floors);
    let floor_gflops = floor.flop(&b) / gemm_floor_seconds / 1e9;
    let blas_threads = crate::threads::blas_threads();
    let cpu_peak = CpuPeak::detect(blas_threads);
    Ok(PerfReport {
        epoch_seconds_median: median(&auto),
        handwritten_epoch_seconds_median: median(&handt),
        ratio: median(&ratios),
        epoch_seconds: auto,
        handwritten_epoch_seconds: handt,
        batch_size: opts.batch_size,
        steps_per_epoch: train.len().div_ceil(opts.batch_size),
        images: train.len(),
        threads,
        blas_threads,
        blas: crate::threads::blas_backend().to_string(),
        dataset: opts.dataset.to_string(),
        architecture: sizes,
        phases: Phases {
            data: pick(|p| p.data),
            forward: pick(|p| p.forward),
            backward: pick(|p| p.backward),
            optimizer: pick(|p| p.optimizer),
        },
        ops,
        gemm,
        epoch_matmul_gflop: epoch_flop / 1e9,
        gemm_floor_seconds,
        gemm_floor_epoch_seconds: floors,
        floor_ratio: median(&floor_ratios),
        floor_gflops,
        floor_fraction_of_peak: floor_gflops / cpu_peak.gflops,
        cpu_peak,
        gemm_thread_speedup: (!speedups.is_empty()).then(|| median(&speedups)),
        gemm_thread_speedups: speedups,
        blas_core: crate::blas::current().clone(),
        build: BuildInfo::current(),
    })
}
