//! What the CPU reports about itself: its instruction sets (from `cpuid`, as `lscpu` names
//! them), its model name and clock (from `/proc/cpuinfo`), and the single-precision peak those
//! imply. The BLAS core choice ([`crate::blas`]) and the GEMM rate of `analyze performance`
//! read them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The CPU's vendor and instruction-set flags, named as `lscpu` and `/proc/cpuinfo` name them
/// (`avx2`, `avx512f`, `avx512_bf16`, …), so that a recorded `lscpu` line can stand in for a
/// CPU in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// `cpuid` leaf 0's vendor string (`GenuineIntel`, `AuthenticAMD`, …).
    pub vendor: String,
    /// The flags that are set.
    pub flags: BTreeSet<String>,
}

impl CpuFeatures {
    /// A feature set from a vendor and a space-separated `lscpu` flags line.
    pub fn from_flags(vendor: &str, flags: &str) -> CpuFeatures {
        CpuFeatures {
            vendor: vendor.to_string(),
            flags: flags.split_whitespace().map(str::to_string).collect(),
        }
    }

    /// Whether every named flag is set.
    pub fn has_all(&self, flags: &[&str]) -> bool {
        flags.iter().all(|f| self.flags.contains(*f))
    }

    /// This machine's features: `cpuid`, with the vector extensions counted only when the OS
    /// saves their registers (`xgetbv`), as the kernel's own flags are.
    pub fn detect() -> CpuFeatures {
        #[cfg(target_arch = "x86_64")]
        {
            x86::detect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        CpuFeatures::default()
    }

    /// Single-precision FLOPs per cycle and core of the widest vector unit: lanes × 2 (a fused
    /// multiply-add is two FLOPs) × 2 units. Two FMA units per core is what Haswell and later
    /// Intel cores, Zen 2 and later, and the AVX-512 Xeons with two FMA ports have; the CPU
    /// does not report the number of units, so this is an upper bound for one-unit parts.
    /// Without FMA, SSE issues one multiply and one add of 4 lanes per cycle: 8.
    pub fn f32_flops_per_cycle(&self) -> f64 {
        if self.has_all(&["avx512f"]) {
            64.0
        } else if self.has_all(&["avx2", "fma"]) {
            32.0
        } else if self.has_all(&["avx"]) {
            16.0
        } else {
            8.0
        }
    }
}

/// Model, clock and core count as the machine reports them, and the peak they imply.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuPeak {
    /// `model name` of `/proc/cpuinfo` (what `lscpu` shows).
    pub model: String,
    /// The clock in MHz: `cpuinfo_max_freq` when cpufreq exposes it, else `cpu MHz` of
    /// `/proc/cpuinfo` (the current clock, which a VM reports as its nominal one).
    pub mhz: f64,
    /// Cores counted: the threads the computation uses, at most the logical CPUs.
    pub cores: usize,
    /// Single-precision FLOPs per cycle and core ([`CpuFeatures::f32_flops_per_cycle`]).
    pub flops_per_cycle: f64,
    /// cores × clock × FLOPs per cycle, in GFLOP/s.
    pub gflops: f64,
}

impl CpuPeak {
    /// The peak of `cores` cores at `mhz` with `features`.
    pub fn new(model: &str, mhz: f64, cores: usize, features: &CpuFeatures) -> CpuPeak {
        let flops_per_cycle = features.f32_flops_per_cycle();
        CpuPeak {
            model: model.to_string(),
            mhz,
            cores,
            flops_per_cycle,
            gflops: cores as f64 * mhz * 1e-3 * flops_per_cycle,
        }
    }

    /// This machine's peak for `threads` threads (0 MHz, hence 0 GFLOP/s, when the machine
    /// reports no clock).
    pub fn detect(threads: usize) -> CpuPeak {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let max_khz =
            std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok());
        let mhz = max_khz
            .map(|k| k / 1e3)
            .or_else(|| cpuinfo_field(&cpuinfo, "cpu MHz").and_then(|s| s.parse().ok()))
            .unwrap_or(0.0);
        let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
        CpuPeak::new(
            &model_name(),
            mhz,
            threads.clamp(1, logical),
            &CpuFeatures::detect(),
        )
    }
}

/// The CPU's model name as `lscpu` shows it (`unknown` when the machine does not say).
pub fn model_name() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".to_string())
}

/// The first value of `key` in `/proc/cpuinfo`'s `key : value` lines.
fn cpuinfo_field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CpuFeatures;
    use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};

    /// `(leaf, subleaf, register, bit, flag)`: where `cpuid` keeps each flag ferrograd reads.
    /// Registers: 0 = EAX, 1 = EBX, 2 = ECX, 3 = EDX.
    const BITS: [(u32, u32, usize, u32, &str); 15] = [
        (1, 0, 3, 26, "sse2"),
        (1, 0, 2, 0, "pni"),
        (1, 0, 2, 9, "ssse3"),
        (1, 0, 2, 12, "fma"),
        (1, 0, 2, 19, "sse4_1"),
        (1, 0, 2, 20, "sse4_2"),
        (1, 0, 2, 28, "avx"),
        (7, 0, 1, 5, "avx2"),
        (7, 0, 1, 16, "avx512f"),
        (7, 0, 1, 17, "avx512dq"),
        (7, 0, 1, 28, "avx512cd"),
        (7, 0, 1, 30, "avx512bw"),
        (7, 0, 1, 31, "avx512vl"),
        (7, 0, 3, 23, "avx512_fp16"),
        (7, 1, 0, 5, "avx512_bf16"),
    ];

    /// Flags that need the OS to save the YMM (AVX) or ZMM (AVX-512) state.
    fn needs_ymm(flag: &str) -> bool {
        matches!(flag, "fma" | "avx" | "avx2") || needs_zmm(flag)
    }

    fn needs_zmm(flag: &str) -> bool {
        flag.starts_with("avx512")
    }

    // cpuid became safe to call in Rust 1.87; the crate's minimum is 1.85.
    #[allow(unused_unsafe)]
    pub(super) fn detect() -> CpuFeatures {
        // SAFETY: cpuid exists on every x86_64 CPU; leaves above the maximum are not read.
        let leaf0 = unsafe { __cpuid(0) };
        let mut vendor = Vec::with_capacity(12);
        for r in [leaf0.ebx, leaf0.edx, leaf0.ecx] {
            vendor.extend_from_slice(&r.to_le_bytes());
        }
        let max_leaf = leaf0.eax;
        let read = |leaf: u32, sub: u32| -> [u32; 4] {
            if leaf > max_leaf {
                return [0; 4];
            }
            // SAFETY: as above, and `leaf` is at most the maximum leaf.
            let r = unsafe { __cpuid_count(leaf, sub) };
            [r.eax, r.ebx, r.ecx, r.edx]
        };
        let osxsave = read(1, 0)[2] & (1 << 27) != 0;
        // SAFETY: xgetbv exists when the OS enabled XSAVE (OSXSAVE set).
        let xcr0 = if osxsave { unsafe { _xgetbv(0) } } else { 0 };
        let ymm = xcr0 & 0b110 == 0b110;
        let zmm = ymm && xcr0 & 0b1110_0000 == 0b1110_0000;
        // Leaf 7's subleaf 1 exists only when subleaf 0 says so (EAX = highest subleaf).
        let leaf7_subleaves = read(7, 0)[0];
        let flags = BITS
            .iter()
            .filter(|&&(leaf, sub, reg, bit, flag)| {
                let present =
                    (leaf != 7 || sub <= leaf7_subleaves) && read(leaf, sub)[reg] & (1 << bit) != 0;
                present && (!needs_ymm(flag) || ymm) && (!needs_zmm(flag) || zmm)
            })
            .map(|&(.., flag)| flag.to_string())
            .collect();
        CpuFeatures {
            vendor: String::from_utf8_lossy(&vendor).into_owned(),
            flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn detect_agrees_with_std() {
        let f = CpuFeatures::detect();
        for (flag, std) in [
            ("sse2", is_x86_feature_detected!("sse2")),
            ("pni", is_x86_feature_detected!("sse3")),
            ("fma", is_x86_feature_detected!("fma")),
            ("avx", is_x86_feature_detected!("avx")),
            ("avx2", is_x86_feature_detected!("avx2")),
            ("avx512f", is_x86_feature_detected!("avx512f")),
        ] {
            assert_eq!(f.flags.contains(flag), std, "{flag}");
        }
        assert_eq!(f.vendor.len(), 12, "vendor {:?}", f.vendor);
    }

    #[test]
    fn peak_is_cores_times_clock_times_width() {
        let avx2 = CpuFeatures::from_flags("AuthenticAMD", "sse2 pni avx fma avx2");
        let p = CpuPeak::new("AMD EPYC", 2600.0, 2, &avx2);
        assert_eq!(p.flops_per_cycle, 32.0);
        assert!((p.gflops - 166.4).abs() < 1e-9);
        let sse = CpuFeatures::from_flags("GenuineIntel", "sse2 pni");
        assert_eq!(CpuPeak::new("x", 3000.0, 4, &sse).gflops, 96.0);
        let avx512 = CpuFeatures::from_flags("GenuineIntel", "avx avx2 fma avx512f");
        assert_eq!(avx512.f32_flops_per_cycle(), 64.0);
    }

    #[test]
    fn cpuinfo_fields_are_found_by_key() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.134\n";
        assert_eq!(
            cpuinfo_field(text, "model name").as_deref(),
            Some("AMD EPYC")
        );
        assert_eq!(cpuinfo_field(text, "cpu MHz").as_deref(), Some("2596.134"));
        assert_eq!(cpuinfo_field(text, "flags"), None);
    }
}
