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
    /// Seconds spent in the nested scopes of each open scope, innermost last.
    static NESTED: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
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
            let elapsed = start.elapsed().as_secs_f64();
            // Each op's own time: what its nested scopes took is theirs, so the shares of
            // the table add up to at most the whole (an `add` inside `accumulate` once).
            let nested = NESTED.with(|n| {
                let mut n = n.borrow_mut();
                let mine = n.pop().unwrap_or(0.0);
                if let Some(parent) = n.last_mut() {
                    *parent += elapsed;
                }
                mine
            });
            let s = (elapsed - nested).max(0.0);
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
    if on {
        NESTED.with(|n| n.borrow_mut().push(0.0));
    }
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
        NESTED.with(|n| n.borrow_mut().clear());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_scopes_are_counted_once() {
        set_enabled(true);
        {
            let _outer = scope("outer");
            std::thread::sleep(std::time::Duration::from_millis(20));
            let _inner = scope("inner");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        set_enabled(false);
        let totals = op_totals();
        let get = |name| totals.iter().find(|t| t.0 == name).unwrap().2;
        let (outer, inner) = (get("outer"), get("inner"));
        assert!(inner >= 0.019, "inner {inner}");
        // The outer scope's own time excludes the inner one's 20 ms.
        assert!(
            outer >= 0.019 && outer < inner + 0.015,
            "outer {outer}, inner {inner}"
        );
    }
}
