//! Gathering the next batch on a second thread while the current one trains.
//!
//! A batch is `batch × 784` pixels copied from rows all over a 188 MB array: for each step the
//! rows come from memory, not cache, and at batch 128 that was 9–11% of the epoch on the
//! critical path (PERF.md). The copy does not depend on the step, so a loader thread does it
//! for batch `b + 1` while batch `b` trains, as PyTorch's `DataLoader` prefetches; the step
//! only waits when the loader is behind.

use super::{gather_rows, Dataset};
use ndarray::{Array2, Ix2};
use std::sync::mpsc;
use std::time::Instant;

/// Runs `f(b, x, waited)` for every batch `b` of `batches` in order, where `x` holds the rows
/// `batches[b]` of `data` (on a pooled buffer of the calling thread: the step that drops it
/// hands it back for the batch after next) and `waited` is the seconds the call waited for
/// them. When the run uses more than one thread, batch `b + 1` is gathered on a loader thread
/// while `f` runs on batch `b`; with one (`--threads 1`), each batch is gathered in turn on
/// the calling thread. Stops at the first error `f` returns, and returns it.
///
/// # Panics
/// When an index is out of range (the loader's panic is raised here).
pub fn for_each_batch<E>(
    data: &Dataset,
    batches: &[Vec<usize>],
    f: impl FnMut(usize, Array2<f32>, f64) -> Result<(), E>,
) -> Result<(), E> {
    for_each_batch_on(data, batches, crate::threads::current_threads() > 1, f)
}

/// [`for_each_batch`] with the choice made by the caller: a loader thread or not.
pub fn for_each_batch_on<E>(
    data: &Dataset,
    batches: &[Vec<usize>],
    loader: bool,
    mut f: impl FnMut(usize, Array2<f32>, f64) -> Result<(), E>,
) -> Result<(), E> {
    if loader && !batches.is_empty() {
        if let Some(done) = with_loader(data, batches, &mut f) {
            return done;
        }
        // No thread could be started (a process or memory limit): gather in turn instead.
    }
    for (b, idx) in batches.iter().enumerate() {
        let start = Instant::now();
        let x = data.batch_array(idx);
        f(b, x, start.elapsed().as_secs_f64())?;
    }
    Ok(())
}

/// [`for_each_batch`] with a loader thread; `None` when the thread cannot be started.
fn with_loader<E>(
    data: &Dataset,
    batches: &[Vec<usize>],
    f: &mut impl FnMut(usize, Array2<f32>, f64) -> Result<(), E>,
) -> Option<Result<(), E>> {
    std::thread::scope(|s| {
        // One batch in flight each way: the loader never runs more than a step ahead.
        let (to_loader, requests) = mpsc::sync_channel::<(usize, Array2<f32>)>(1);
        let (to_main, filled) = mpsc::sync_channel::<Array2<f32>>(1);
        let loader = std::thread::Builder::new()
            .name("ferrograd-loader".into())
            .spawn_scoped(s, move || {
                for (b, mut x) in requests {
                    gather_rows(&data.features, &batches[b], &mut x);
                    if to_main.send(x).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        let request = |b: usize| {
            // The buffer comes from this thread's pool; the loader only fills it. A closed
            // channel means the loader panicked; the join below raises its panic.
            let x = crate::tensor::pool::array(Ix2(batches[b].len(), data.dim()));
            let _ = to_loader.send((b, x));
        };
        request(0);
        let mut result = Ok(());
        for b in 0..batches.len() {
            let start = Instant::now();
            let Ok(x) = filled.recv() else { break };
            let waited = start.elapsed().as_secs_f64();
            if b + 1 < batches.len() {
                request(b + 1);
            }
            result = f(b, x, waited);
            if result.is_err() {
                break;
            }
        }
        drop(to_loader);
        drop(filled);
        if let Err(panic) = loader.join() {
            std::panic::resume_unwind(panic);
        }
        Some(result)
    })
}
