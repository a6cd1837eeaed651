//! `analyze performance`'s `gemm_thread_speedup`: a number only where OpenBLAS has threads to
//! compare, and OpenBLAS's thread count as it was afterwards (the products that follow keep
//! their bits). Its own process: it changes OpenBLAS's thread count while it runs.

use ferrograd::analysis::performance::gemm_thread_speedup;
use ferrograd::threads::{blas_threads, set_blas_threads};

#[test]
fn the_speedup_is_measured_only_with_threads_and_puts_the_thread_count_back() {
    set_blas_threads(1);
    assert_eq!(gemm_thread_speedup(64, 256, 64), None);
    set_blas_threads(3);
    let speedup = gemm_thread_speedup(64, 256, 64);
    if cfg!(feature = "openblas") {
        assert_eq!(blas_threads(), 3, "the thread count is put back");
        let s = speedup.expect("a speedup with three OpenBLAS threads");
        // Three threads on any machine: more than a tenth of one thread's speed, at most a
        // little above three times it.
        assert!(s.is_finite() && s > 0.1 && s < 3.5, "{s}");
    } else {
        assert_eq!(speedup, None, "matrixmultiply has no threads to compare");
    }
}
