//! Memory-bound work split over the GEMM library's own threads, where that is faster.
//!
//! Between two products OpenBLAS's worker threads wait for the next one by spinning on their
//! core. Work the calling thread does in that gap — the SGD update of a weight matrix is the
//! largest, a fifth of the calling thread's time in a batch-32 epoch — leaves the other core
//! idle. A thread of ferrograd's own cannot take half of it: two waiting threads then share the
//! second core, and waking a sleeping pool thread costs more than the half it saves (PERF.md,
//! "Work split by a waiting thread of ferrograd's own"). OpenBLAS's workers can, through
//! `blas_level1_thread`, the entry its own threaded level-1 routines (`saxpy`, `sscal`) use:
//! it cuts a range into pieces and runs one on the calling thread, the others on the workers
//! that are already spinning, so handing them work costs no wake-up.
//!
//! Whether that pays depends on the host (PERF.md, "The update and the clear on OpenBLAS's
//! threads"). With both cores ours, splitting the update and the clear of GEMM's outputs made
//! batch-32 epochs 13–17% shorter. When the host shared the second core, a split update made
//! the epoch longer although the update itself finished sooner: the steps after it paid, for
//! cache lines passed between cores that the host had made dear. A split changes where each
//! element is computed, never how, so the choice can follow the clock without changing a bit:
//! [`SplitChoice`] times whole steps both ways and keeps the faster.
//!
//! `blas_level1_thread` is not a documented interface. Its signature is GotoBLAS's and has not
//! changed, but the `mode` code for single-precision reals has (0 before OpenBLAS's bfloat16
//! support, 2 after, when 0 became an integer type that no routine handles). So the entry is
//! looked up at run time (a library without threads lacks it) and probed once with a job that
//! only records where its pieces land: a mode is used only when its pieces cover the range
//! exactly once and the pieces' addresses follow a single scale, which then decodes each
//! piece's start. Otherwise everything runs on the calling thread.

use std::ops::Range;
use std::time::Instant;

/// A job over `0..len`, called once a piece with the piece's range.
pub type Job<'a> = &'a (dyn Fn(Range<usize>) + Sync);

/// Runs `f` over `0..len` cut into one contiguous range a GEMM thread, each start a multiple
/// of `grain`: the calling thread takes the first range, OpenBLAS's workers the others. On one
/// thread, without the `openblas` feature, or when OpenBLAS's entry is missing or failed its
/// probe, `f(0..len)` on the calling thread. Returns once every range is done; a panic in `f`
/// is raised again on the calling thread.
pub fn on_gemm_threads(len: usize, grain: usize, f: Job) {
    #[cfg(feature = "openblas")]
    if splits(len, grain) {
        return blas::run(len, grain.max(1), super::kernels::gemm_threads(), f);
    }
    let _ = grain;
    f(0..len)
}

/// Whether [`on_gemm_threads`] would cut `0..len` into more than one range here.
pub fn splits(len: usize, grain: usize) -> bool {
    #[cfg(feature = "openblas")]
    {
        len > grain.max(1) && super::kernels::gemm_threads() > 1 && blas::entry().is_some()
    }
    #[cfg(not(feature = "openblas"))]
    {
        let _ = (len, grain);
        false
    }
}

/// A mutable slice lent to the pieces of a split job, each of which takes its own range.
pub struct Disjoint<'a, T> {
    start: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: pieces reach the elements only through `range`, whose contract keeps their ranges
// apart, so sharing the lender between threads is sharing `&mut [T]` pieces of it.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    /// Lends `slice` until the lender is dropped.
    pub fn new(slice: &'a mut [T]) -> Self {
        Disjoint {
            start: slice.as_mut_ptr(),
            len: slice.len(),
            _slice: std::marker::PhantomData,
        }
    }

    /// The elements in `r`.
    ///
    /// # Safety
    /// No two calls that are alive at once may have overlapping ranges: each piece of
    /// [`on_gemm_threads`] asks for its own range only.
    ///
    /// # Panics
    /// When `r` reaches past the slice.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, r: Range<usize>) -> &mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "Disjoint::range: {r:?} of {}",
            self.len
        );
        // SAFETY: inside the lent slice (checked); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.start.add(r.start), r.len()) }
    }
}

/// Every this many cycles [`SplitChoice`] runs [`PROBE_LEN`] cycles the way it currently finds
/// slower, so that a change in the host (the second core shared or freed) is noticed within a
/// few hundred cycles.
const PROBE_EVERY: u64 = 64;

/// Cycles in a probe. The first cycle after a change of way is never timed: it pays for moving
/// the data the other way left in the other core's cache, which a way that stays does not pay
/// (timing single-cycle probes favoured whichever way was in place).
const PROBE_LEN: u64 = 4;

/// Weight of the newest cycle in each way's moving average.
const NEWEST_WEIGHT: f64 = 0.25;

/// A cycle longer than this many times its way's average (an evaluation between epochs, a
/// pause) counts as this many times the average.
const OUTLIER: f64 = 2.0;

/// Whether a recurring cycle of work — a training step — runs its splittable jobs on the
/// calling thread or split by [`on_gemm_threads`], chosen by the cycle's own duration: the
/// way with the shorter moving average, the other tried for four cycles in every 64 (the
/// first cycle after a change of way not timed).
///
/// The whole cycle is timed, not the split job alone: when the host shares the second core,
/// a split update finishes sooner yet the step takes longer (measured here: the 784×128
/// update 40–65 µs split against 96–126 µs, the batch-32 epoch 5–13% longer), as the work
/// handed to the second core is missed by the products after it. The choice changes which
/// thread computes an element, never how, so results do not depend on it.
#[derive(Clone, Debug, Default)]
pub struct SplitChoice {
    /// Set by [`SplitChoice::fixed`]: `split_now` never changes, nothing is timed.
    fixed: bool,
    cycles: u64,
    split_now: bool,
    started: Option<Instant>,
    /// Moving averages of a cycle's seconds: on the calling thread, split.
    serial: Option<f64>,
    split: Option<f64>,
}

impl SplitChoice {
    /// A choice that always splits (`true`: the settled way, so split updates store plainly)
    /// or never (`false`), where splitting is possible: for comparing the two ways.
    pub fn fixed(split: bool) -> Self {
        SplitChoice {
            fixed: true,
            split_now: split && splits(usize::MAX, 1),
            ..SplitChoice::default()
        }
    }

    /// Ends the last cycle (timing it) and starts the next, choosing its way.
    pub fn begin_cycle(&mut self) {
        if self.fixed {
            return;
        }
        let now = Instant::now();
        if let Some(started) = self.started.take() {
            let seconds = now.duration_since(started).as_secs_f64();
            let average = if self.split_now {
                &mut self.split
            } else {
                &mut self.serial
            };
            *average = Some(match *average {
                None => seconds,
                Some(a) => a + NEWEST_WEIGHT * (seconds.min(OUTLIER * a) - a),
            });
        }
        if !splits(usize::MAX, 1) {
            self.split_now = false;
            return;
        }
        self.cycles += 1;
        let way = match (self.serial, self.split) {
            (None, _) => false,
            (_, None) => true,
            (Some(serial), Some(split)) => {
                (split < serial) != (self.cycles % PROBE_EVERY < PROBE_LEN)
            }
        };
        // Timed only when the last cycle went the same way (see `PROBE_LEN`).
        let steady = way == self.split_now && self.cycles > 1;
        self.split_now = way;
        self.started = steady.then_some(now);
    }

    /// Runs `f` over `0..len` the way this cycle chose ([`on_gemm_threads`] or the calling
    /// thread).
    pub fn run(&self, len: usize, grain: usize, f: Job) {
        if self.split_now {
            on_gemm_threads(len, grain, f);
        } else {
            f(0..len);
        }
    }

    /// Whether this cycle splits its jobs.
    pub fn splitting(&self) -> bool {
        self.split_now
    }

    /// Whether the cycles that are not probes now split (for tests and reports).
    pub fn prefers_split(&self) -> bool {
        if self.fixed {
            return self.split_now;
        }
        matches!((self.serial, self.split), (Some(s), Some(p)) if p < s)
    }
}

#[cfg(feature = "openblas")]
mod blas {
    use super::Job;
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// `blas_level1_thread(mode, m, n, k, alpha, a, lda, b, ldb, c, ldc, function, nthreads)`:
    /// cuts `0..m` into up to `nthreads` pieces and calls `function(m', n, k, alpha[0], a', lda,
    /// b', ldb, c, ldc, sb)` once a piece, `a'` being `a` advanced by the piece's start times
    /// `lda` times the mode's element size.
    type Level1Thread = unsafe extern "C" fn(
        c_int,
        isize,
        isize,
        isize,
        *mut c_void,
        *mut c_void,
        isize,
        *mut c_void,
        isize,
        *mut c_void,
        isize,
        *const c_void,
        c_int,
    ) -> c_int;

    /// The piece function's signature for a single-precision real mode.
    type Piece = extern "C" fn(
        isize,
        isize,
        isize,
        f32,
        *mut c_void,
        isize,
        *mut c_void,
        isize,
        *mut c_void,
        isize,
        *mut c_void,
    ) -> c_int;

    extern "C" {
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }

    /// What the probe found: the entry, the mode code for single-precision reals and the
    /// bytes a piece's `a` advances per unit of its start.
    #[derive(Clone, Copy)]
    pub(super) struct Entry {
        call: Level1Thread,
        mode: c_int,
        scale: usize,
    }

    /// OpenBLAS's entry, looked up and probed once a process.
    pub(super) fn entry() -> Option<Entry> {
        static ENTRY: OnceLock<Option<Entry>> = OnceLock::new();
        *ENTRY.get_or_init(|| {
            // SAFETY: RTLD_DEFAULT (a null handle) searches every loaded object.
            let p = unsafe { dlsym(std::ptr::null_mut(), c"blas_level1_thread".as_ptr()) };
            if p.is_null() {
                return None;
            }
            // SAFETY: the symbol is OpenBLAS's function of GotoBLAS's signature above.
            let call = unsafe { std::mem::transmute::<*mut c_void, Level1Thread>(p) };
            // Newer OpenBLAS first: there 0 is an integer mode that calls nothing, while in
            // older ones 2 is extended double only in x87 builds (EXPRECISION), which
            // ferrograd's targets are not.
            [2, 0].into_iter().find_map(|mode| probe(call, mode))
        })
    }

    /// Pieces seen by the probe: the address each piece's `a` pointed at and its length.
    static PROBE_SEEN: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    /// Non-zero while the probe runs: the `c` argument it passes (a piece that sees another
    /// did not get the arguments where this signature puts them, and must touch nothing).
    static PROBE_TOKEN: AtomicUsize = AtomicUsize::new(0);

    /// Runs a job of `UNITS` units on two threads in `mode` and checks that its pieces cover
    /// the units once, at addresses one scale apart; `Some` with that scale if they do.
    fn probe(call: Level1Thread, mode: c_int) -> Option<Entry> {
        const UNITS: usize = 6;
        let token = &PROBE_TOKEN as *const AtomicUsize as usize;
        PROBE_TOKEN.store(token, Ordering::SeqCst);
        PROBE_SEEN.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut alpha = [0.0f64; 2];
        // SAFETY: `a` and `b` are never dereferenced; `c` is only compared with the token.
        unsafe {
            call(
                mode,
                UNITS as isize,
                1,
                0,
                alpha.as_mut_ptr().cast(),
                std::ptr::null_mut(),
                1,
                std::ptr::null_mut(),
                1,
                token as *mut c_void,
                0,
                piece as Piece as *const c_void,
                2,
            );
        }
        PROBE_TOKEN.store(0, Ordering::SeqCst);
        let mut seen = std::mem::take(&mut *PROBE_SEEN.lock().unwrap_or_else(|e| e.into_inner()));
        seen.sort_unstable();
        let (first_len, second_at) = match seen[..] {
            [(0, l0), (a1, l1)] if l0 > 0 && l0 + l1 == UNITS && a1 % l0 == 0 => (l0, a1),
            _ => return None,
        };
        let scale = second_at / first_len;
        (scale > 0).then_some(Entry { call, mode, scale })
    }

    struct Shared<'a> {
        f: Job<'a>,
        len: usize,
        grain: usize,
        scale: usize,
        panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    }

    /// Called by OpenBLAS once a piece, for the probe (`c` is the probe's token: only
    /// recorded) and for jobs (`c` is a `Shared`).
    extern "C" fn piece(
        m: isize,
        _n: isize,
        _k: isize,
        _alpha: f32,
        a: *mut c_void,
        _lda: isize,
        _b: *mut c_void,
        _ldb: isize,
        c: *mut c_void,
        _ldc: isize,
        _sb: *mut c_void,
    ) -> c_int {
        let (at, units) = (a as usize, m.max(0) as usize);
        let token = PROBE_TOKEN.load(Ordering::SeqCst);
        if token != 0 {
            // A piece of the probe (which runs before any job can: jobs wait for `entry`):
            // record what arrived — another `c` means arguments not where this signature
            // puts them — and touch nothing.
            let seen = if c as usize == token {
                (at, units)
            } else {
                (usize::MAX, 0)
            };
            PROBE_SEEN
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(seen);
            return 0;
        }
        // SAFETY: outside the probe `c` is the `Shared` that `run` keeps alive until every
        // piece has returned.
        let job = unsafe { &*(c as *const Shared) };
        let first = at / job.scale;
        let range = (first * job.grain).min(job.len)..((first + units) * job.grain).min(job.len);
        let run = std::panic::AssertUnwindSafe(|| (job.f)(range));
        if let Err(p) = std::panic::catch_unwind(run) {
            *job.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
        0
    }

    /// [`on_gemm_threads`](super::on_gemm_threads) once [`splits`](super::splits) said yes.
    pub(super) fn run(len: usize, grain: usize, threads: usize, f: Job) {
        let Some(entry) = entry() else {
            return f(0..len);
        };
        let shared = Shared {
            f,
            len,
            grain,
            scale: entry.scale,
            panic: Mutex::new(None),
        };
        let mut alpha = [0.0f64; 2];
        // SAFETY: `a` and `b` are never dereferenced (a piece only reads the address); `c`
        // points to `shared`, alive until the call returns after every piece.
        unsafe {
            (entry.call)(
                entry.mode,
                len.div_ceil(grain) as isize,
                1,
                0,
                alpha.as_mut_ptr().cast(),
                std::ptr::null_mut(),
                1,
                std::ptr::null_mut(),
                1,
                (&shared as *const Shared).cast_mut().cast(),
                0,
                piece as Piece as *const c_void,
                threads.min(c_int::MAX as usize) as c_int,
            );
        }
        if let Some(p) = shared.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
            std::panic::resume_unwind(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Every index in `0..len` is visited exactly once, ranges start on the grain, for lengths
    /// around the grain and thread counts from one to four.
    #[test]
    fn every_index_is_visited_once() {
        for len in [0usize, 1, 15, 16, 17, 100, 1000, 4099] {
            for grain in [1usize, 16, 64] {
                let hits: Vec<AtomicU32> = (0..len).map(|_| AtomicU32::new(0)).collect();
                let starts = Mutex::new(Vec::new());
                on_gemm_threads(len, grain, &|r: Range<usize>| {
                    starts.lock().unwrap().push(r.start);
                    for i in r {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "{len} {grain}"
                );
                assert!(starts.lock().unwrap().iter().all(|s| s % grain == 0));
            }
        }
    }

    #[test]
    fn a_panic_in_a_piece_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            on_gemm_threads(1000, 16, &|r: Range<usize>| {
                if r.contains(&999) {
                    panic!("piece failed");
                }
            })
        });
        assert!(caught.is_err());
    }

    /// Runs `cycles` cycles of `choice`, each sleeping `cost(way, previous way)` µs;
    /// returns the ways taken.
    fn drive(
        choice: &mut SplitChoice,
        cycles: usize,
        cost: impl Fn(bool, bool) -> u64,
    ) -> Vec<bool> {
        let mut ways = Vec::new();
        let mut previous = false;
        for _ in 0..cycles {
            choice.begin_cycle();
            let way = choice.split_now;
            ways.push(way);
            std::thread::sleep(std::time::Duration::from_micros(cost(way, previous)));
            previous = way;
        }
        ways
    }

    /// Both ways are timed, the faster kept, the slower still tried four cycles in 64; with
    /// no second GEMM thread, never split.
    #[test]
    fn the_choice_follows_the_faster_way_and_keeps_probing() {
        let mut choice = SplitChoice::default();
        let ways = drive(&mut choice, 320, |split, _| if split { 600 } else { 100 });
        if splits(usize::MAX, 1) {
            assert!(!choice.prefers_split());
            let split_late = ways[64..].iter().filter(|&&s| s).count();
            assert!((14..=20).contains(&split_late), "{split_late} of 256 split");
        } else {
            assert!(ways.iter().all(|&s| !s));
        }
    }

    /// A change of way that makes the next cycle slow (data left in the other core's cache)
    /// does not keep the choice on the slower way it started with.
    #[test]
    fn the_cost_of_changing_ways_does_not_decide() {
        let mut choice = SplitChoice::default();
        let cost = |split: bool, previous: bool| {
            let steady = if split { 100 } else { 400 };
            steady + if split != previous { 3000 } else { 0 }
        };
        let ways = drive(&mut choice, 200, cost);
        if splits(usize::MAX, 1) {
            assert!(choice.prefers_split());
            assert!(ways[100..].iter().filter(|&&s| s).count() >= 90);
        }
    }

    /// Debian's OpenBLAS (the one CI and PERF.md use) passes the probe, so the split is not
    /// silently lost there: with two cores and no thread count forced, OpenBLAS runs two
    /// threads and its entry is taken.
    #[cfg(feature = "openblas")]
    #[test]
    fn this_openblas_passes_the_probe() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores >= 2 && std::env::var_os("OPENBLAS_NUM_THREADS").is_none() {
            assert!(super::super::kernels::gemm_threads() >= 2);
            assert!(
                blas::entry().is_some(),
                "blas_level1_thread missing or refused"
            );
            assert!(splits(100, 16));
        }
    }
}
