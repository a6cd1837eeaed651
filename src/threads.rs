//! One thread setting for rayon and OpenBLAS, so that the two do not fight over the cores.

/// Sets the number of threads used by ferrograd's kernels (rayon's global pool) and by
/// OpenBLAS (with the `openblas` feature). Call it once, early: rayon's pool can be set up
/// only once per process, so a later call changes OpenBLAS only and returns an error saying so.
pub fn set_threads(threads: usize) -> Result<(), String> {
    let threads = threads.max(1);
    set_blas_threads(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("rayon's thread pool was already set up: {e}"))
}

/// The number of threads rayon uses.
pub fn current_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(feature = "openblas")]
extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

/// OpenBLAS's thread count (1 without the `openblas` feature: matrixmultiply runs on the
/// calling thread).
pub fn blas_threads() -> usize {
    crate::tensor::kernels::gemm_threads()
}

/// Sets OpenBLAS's thread count (a no-op without the `openblas` feature).
pub fn set_blas_threads(threads: usize) {
    #[cfg(feature = "openblas")]
    unsafe {
        // SAFETY: a plain setter in OpenBLAS, callable at any time from any thread.
        openblas_set_num_threads(threads as std::os::raw::c_int);
    }
    #[cfg(not(feature = "openblas"))]
    let _ = threads;
}

/// The GEMM backend compiled in: `"openblas"` or `"matrixmultiply"`.
pub fn blas_backend() -> &'static str {
    if cfg!(feature = "openblas") {
        "openblas"
    } else {
        "matrixmultiply"
    }
}
