//! Buffer reuse across training steps.
//!
//! A training step allocates the same arrays every time: each layer's output, the gradients
//! of its input and weights. When a tensor is dropped and nothing else shares its buffer, the
//! buffer goes into a per-thread free list keyed by its length, and the next op that needs an
//! output of that length takes it back. After the first step no large buffer is allocated: no
//! trip through the allocator, and no fresh pages for the kernel to fault in (glibc returns
//! freed memory at the top of the heap to the system, which made every step of a small
//! program fault in its GEMM outputs again — measured in PERF.md).
//!
//! The lists are bounded (buffers per length and bytes in all), so the pool holds at most about
//! one step's working set; [`release`] empties them.

use super::elem::Element;
use super::Value;
use ndarray::{s, Array, Array1, Dimension};
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;

/// Buffers shorter than this go back to the allocator: its per-thread cache serves them as
/// fast as a pool would.
pub const MIN_POOLED_LEN: usize = 1024;
/// At most this many free buffers of one length are kept.
const MAX_PER_LEN: usize = 16;
/// At most this many bytes of free buffers are kept per element type and thread.
const MAX_BYTES: usize = 256 << 20;

/// Free buffers of one element type.
struct Pool<T> {
    free: HashMap<usize, Vec<Vec<T>>>,
    bytes: usize,
    stats: PoolStats,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            free: HashMap::new(),
            bytes: 0,
            stats: PoolStats::default(),
        }
    }
}

/// What the pool of the calling thread has done since it started (or since [`release`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Output buffers served from the free lists.
    pub reused: u64,
    /// Output buffers that had to be allocated.
    pub allocated: u64,
    /// Free buffers held now.
    pub held_buffers: usize,
    /// Bytes of free buffers held now.
    pub held_bytes: usize,
}

thread_local! {
    static POOLS: RefCell<(Pool<f32>, Pool<f64>)> = RefCell::new(Default::default());
}

/// Runs `f` on the calling thread's pool for `T`; `None` while the thread is being torn down.
fn with_pool<T: Element, R>(f: impl FnOnce(&mut Pool<T>) -> R) -> Option<R> {
    POOLS
        .try_with(|p| {
            let mut pools = p.try_borrow_mut().ok()?;
            let (a, b) = &mut *pools;
            let pool = (a as &mut dyn Any)
                .downcast_mut::<Pool<T>>()
                .or_else(|| (b as &mut dyn Any).downcast_mut::<Pool<T>>())?;
            Some(f(pool))
        })
        .ok()
        .flatten()
}

/// A buffer of exactly `len` elements from the free lists, or a new one; its contents are
/// unspecified (values left by an earlier tensor, or zeros).
fn take<T: Element>(len: usize) -> Vec<T> {
    let reused = with_pool::<T, _>(|p| {
        let v = p.free.get_mut(&len).and_then(|list| list.pop());
        match &v {
            Some(_) => {
                p.stats.reused += 1;
                p.bytes -= len * std::mem::size_of::<T>();
            }
            None => p.stats.allocated += 1,
        }
        v
    });
    reused.flatten().unwrap_or_else(|| vec![T::zero(); len])
}

/// Alignment of pooled arrays' first element, in bytes: a cache line.
const ALIGN: usize = 64;

/// An array of `shape` (row-major) on a pooled buffer, its first element on a cache-line
/// boundary; its contents are unspecified: the caller must overwrite every element.
///
/// A pooled buffer keeps its address for the whole run, so its alignment is not left to the
/// allocator's 16 bytes: aligned GEMM outputs measured about 1.5% faster steps (PERF.md).
pub(crate) fn array<T: Element, D: Dimension>(shape: D) -> Array<T, D> {
    let len = shape.size();
    if len < MIN_POOLED_LEN {
        return Array::from_shape_vec(shape, vec![T::zero(); len]).expect("the shape's size");
    }
    let size = std::mem::size_of::<T>();
    let v = take::<T>(len + ALIGN / size);
    let misalign = v.as_ptr() as usize % ALIGN;
    let skip = ((ALIGN - misalign) % ALIGN) / size;
    Array1::from_vec(v)
        .slice_move(s![skip..skip + len])
        .into_shape_with_order(shape)
        .expect("a contiguous run of the shape's size")
}

/// Hands a buffer back for reuse (or to the allocator when it is small or the pool is full).
pub(crate) fn give<T: Element>(v: Vec<T>) {
    let len = v.len();
    if len < MIN_POOLED_LEN || v.capacity() != len {
        return;
    }
    let bytes = len * std::mem::size_of::<T>();
    with_pool::<T, _>(move |p| {
        let list = p.free.entry(len).or_default();
        if list.len() < MAX_PER_LEN && p.bytes + bytes <= MAX_BYTES {
            list.push(v);
            p.bytes += bytes;
        }
    });
}

/// Hands an array's whole buffer back (for one from [`array`], the aligned slice's buffer).
pub(crate) fn give_array<T: Element, D: Dimension>(a: Array<T, D>) {
    give(a.into_raw_vec_and_offset().0);
}

/// Recycles a tensor's value when nothing else shares its buffer.
pub(crate) fn recycle<T: Element>(v: Value<T>) {
    if let Ok(owned) = v.try_into_owned_nocopy() {
        give_array(owned);
    }
}

/// The calling thread's pool statistics for element type `T`.
pub fn stats<T: Element>() -> PoolStats {
    with_pool::<T, _>(|p| PoolStats {
        held_buffers: p.free.values().map(Vec::len).sum(),
        held_bytes: p.bytes,
        ..p.stats
    })
    .unwrap_or_default()
}

/// Frees every buffer the calling thread's pools hold and resets their statistics (after
/// training, to give the memory back).
pub fn release() {
    let _ = POOLS.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            *p = Default::default();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_served_again_and_small_ones_are_not_kept() {
        release();
        let v: Vec<f32> = take(4096);
        let ptr = v.as_ptr();
        give(v);
        assert_eq!(stats::<f32>().held_buffers, 1);
        let again: Vec<f32> = take(4096);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(stats::<f32>().reused, 1);
        give(vec![0.0f32; 10]);
        give(vec![0.0f64; 4096]);
        assert_eq!(stats::<f32>().held_buffers, 0);
        assert_eq!(stats::<f64>().held_buffers, 1);
        release();
        assert_eq!(stats::<f64>(), PoolStats::default());
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_buffers_per_length() {
        release();
        for _ in 0..3 * MAX_PER_LEN {
            give(vec![0.0f32; 2048]);
        }
        assert_eq!(stats::<f32>().held_buffers, MAX_PER_LEN);
        assert_eq!(stats::<f32>().held_bytes, MAX_PER_LEN * 2048 * 4);
        release();
    }
}
