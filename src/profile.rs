//! A per-op profiler for `analyze performance`: off by default (one thread-local flag check
//! per op), on, it adds up wall time and calls by op name and GEMM shape on this thread.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

/// `m, k, n` of a GEMM.
type Shape = (usize, usize, usize);
/// Calls and seconds.
type Total = (u64, f64);

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static OPS: RefCell<BTreeMap<&'static str, Total>> = const { RefCell::new(BTreeMap::new()) };
    static GEMMS: RefCell<BTreeMap<Shape, Total>> = const { RefCell::new(BTreeMap::new()) };
}

/// Times the enclosing scope under `name` while profiling is on.
pub struct Scope {
    name: &'static str,
    gemm: Option<(usize, usize, usize)>,
    start: Option<Instant>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            let s = start.elapsed().as_secs_f64();
            OPS.with(|o| {
                let mut o = o.borrow_mut();
                let e = o.entry(self.name).or_insert((0, 0.0));
                e.0 += 1;
                e.1 += s;
            });
            if let Some(shape) = self.gemm {
                GEMMS.with(|g| {
                    let mut g = g.borrow_mut();
                    let e = g.entry(shape).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += s;
                });
            }
        }
    }
}

/// Starts timing `name` (a no-op unless profiling is on).
#[inline]
pub fn scope(name: &'static str) -> Scope {
    let on = ENABLED.with(|e| e.get());
    Scope {
        name,
        gemm: None,
        start: on.then(Instant::now),
    }
}

/// Starts timing a GEMM of `m×k · k×n` under `name`.
#[inline]
pub fn gemm_scope(name: &'static str, m: usize, k: usize, n: usize) -> Scope {
    let mut s = scope(name);
    if s.start.is_some() {
        s.gemm = Some((m, k, n));
    }
    s
}

/// Turns profiling on (clearing earlier totals) or off.
pub fn set_enabled(on: bool) {
    if on {
        OPS.with(|o| o.borrow_mut().clear());
        GEMMS.with(|g| g.borrow_mut().clear());
    }
    ENABLED.with(|e| e.set(on));
}

/// Totals per op name: `(name, calls, seconds)`, largest time first.
pub fn op_totals() -> Vec<(&'static str, u64, f64)> {
    let mut v: Vec<_> = OPS.with(|o| o.borrow().iter().map(|(k, (c, s))| (*k, *c, *s)).collect());
    v.sort_by(|a, b| b.2.total_cmp(&a.2));
    v
}

/// Totals per GEMM shape: `((m, k, n), calls, seconds)`.
pub fn gemm_totals() -> Vec<((usize, usize, usize), u64, f64)> {
    GEMMS.with(|g| g.borrow().iter().map(|(k, (c, s))| (*k, *c, *s)).collect())
}
