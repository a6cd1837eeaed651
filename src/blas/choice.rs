//! The decision, as pure functions of what the CPU reports and what OpenBLAS detected: is the
//! loaded core a generic fallback, and which core should replace it.
//!
//! The cores are those of Debian's OpenBLAS 0.3.21 `DYNAMIC_ARCH` build on x86-64, ranked by
//! the widest vector instructions their kernels use. A core is a *generic fallback* when the
//! CPU supports a wider rank than the core's: OpenBLAS did not recognise the CPU model and
//! picked kernels for an older one (issue 14: an AVX-512 Xeon got the SSE3 `Prescott` kernels).

use crate::cpu::CpuFeatures;

/// The vector instructions a core's kernels use, in increasing width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// SSE2/SSE3 kernels.
    Sse,
    /// AVX (256-bit, no FMA) kernels.
    Avx,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 (F, CD, BW, DQ, VL).
    Avx512,
}

/// Every x86-64 core name of OpenBLAS 0.3.21 (`openblas_get_corename()`) and its rank.
const CORES: [(&str, Rank); 27] = [
    ("Katmai", Rank::Sse),
    ("Coppermine", Rank::Sse),
    ("Northwood", Rank::Sse),
    ("Prescott", Rank::Sse),
    ("Banias", Rank::Sse),
    ("Atom", Rank::Sse),
    ("Core2", Rank::Sse),
    ("Penryn", Rank::Sse),
    ("Dunnington", Rank::Sse),
    ("Nehalem", Rank::Sse),
    ("Athlon", Rank::Sse),
    ("Opteron", Rank::Sse),
    ("Opteron_SSE3", Rank::Sse),
    ("Barcelona", Rank::Sse),
    ("Nano", Rank::Sse),
    ("Bobcat", Rank::Sse),
    ("Sandybridge", Rank::Avx),
    ("Bulldozer", Rank::Avx),
    ("Piledriver", Rank::Avx),
    ("Steamroller", Rank::Avx),
    ("Excavator", Rank::Avx),
    ("Haswell", Rank::Avx2),
    ("Zen", Rank::Avx2),
    ("Dhyana", Rank::Avx2),
    ("SkylakeX", Rank::Avx512),
    ("Cooperlake", Rank::Avx512),
    ("SapphireRapids", Rank::Avx512),
];

/// The AVX-512 subsets OpenBLAS's `SkylakeX` kernels use.
const AVX512: [&str; 5] = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"];

/// The rank of an OpenBLAS core name (case-insensitive, as `OPENBLAS_CORETYPE` is read);
/// `None` for a name this table does not know (a newer OpenBLAS, another architecture).
pub fn core_rank(core: &str) -> Option<Rank> {
    CORES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(core))
        .map(|&(_, rank)| rank)
}

/// The widest rank whose instructions the CPU reports.
pub fn cpu_rank(cpu: &CpuFeatures) -> Rank {
    if cpu.has_all(&AVX512) {
        Rank::Avx512
    } else if cpu.has_all(&["avx2", "fma"]) {
        Rank::Avx2
    } else if cpu.has_all(&["avx"]) {
        Rank::Avx
    } else {
        Rank::Sse
    }
}

/// The fastest core of Debian's OpenBLAS 0.3.21 whose instructions the CPU reports. Not
/// `SapphireRapids`: that build does not contain it, and its extra kernels need AMX, which
/// Linux grants a process only on request.
pub fn best_core(cpu: &CpuFeatures) -> &'static str {
    let amd = matches!(cpu.vendor.as_str(), "AuthenticAMD" | "HygonGenuine");
    match cpu_rank(cpu) {
        Rank::Avx512 if cpu.has_all(&["avx512_bf16"]) => "Cooperlake",
        Rank::Avx512 => "SkylakeX",
        // The Zen core is the Haswell kernels with block sizes for AMD's caches.
        Rank::Avx2 if amd => "Zen",
        Rank::Avx2 => "Haswell",
        Rank::Avx => "Sandybridge",
        Rank::Sse => "Prescott",
    }
}

/// Whether `core` is a generic fallback on this CPU: a known core of narrower rank than the
/// CPU supports. An unknown name is not (ferrograd does not second-guess what it cannot rank).
pub fn is_generic_fallback(core: &str, cpu: &CpuFeatures) -> bool {
    core_rank(core).is_some_and(|rank| rank < cpu_rank(cpu))
}

/// Whether `core` uses instructions the CPU does not report (only a user's
/// `OPENBLAS_CORETYPE` can load one: OpenBLAS accepts any name it knows, and the first GEMM
/// then stops the process with an illegal instruction).
pub fn needs_missing_instructions(core: &str, cpu: &CpuFeatures) -> bool {
    core_rank(core).is_some_and(|rank| rank > cpu_rank(cpu))
}

/// What to do with the core OpenBLAS detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep it: it is as wide as the CPU allows (or unknown).
    Keep,
    /// Replace it with this core.
    Choose(&'static str),
}

/// Keep OpenBLAS's `detected` core unless it is a generic fallback on `cpu`.
pub fn decide(detected: &str, cpu: &CpuFeatures) -> Decision {
    if is_generic_fallback(detected, cpu) {
        Decision::Choose(best_core(cpu))
    } else {
        Decision::Keep
    }
}

#[cfg(test)]
pub(crate) mod recorded {
    //! `lscpu` flag lines of three CPUs, standing in for them in tests.
    use crate::cpu::CpuFeatures;

    /// The development machine: AMD EPYC, family 25 (Zen 3), AVX2, no AVX-512 (KVM guest).
    pub fn amd_epyc_zen3() -> CpuFeatures {
        CpuFeatures::from_flags(
            "AuthenticAMD",
            "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx \
             fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good \
             nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma \
             cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c \
             rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch \
             osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx \
             smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr arat \
             umip vaes vpclmulqdq rdpid fsrm",
        )
    }

    /// An AVX-512 Xeon of the Sapphire Rapids generation, the CPU class of issue 14
    /// (avx512f/bw/dq/vl, avx512_bf16, avx512_fp16), which OpenBLAS 0.3.21 does not recognise.
    pub fn intel_xeon_avx512() -> CpuFeatures {
        CpuFeatures::from_flags(
            "GenuineIntel",
            "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx \
             fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl \
             xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 \
             sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm \
             3dnowprefetch fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f \
             avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw \
             avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip \
             pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg \
             avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm md_clear serialize \
             tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities",
        )
    }

    /// An SSE-only CPU (Intel Core 2 "Penryn": SSE4.1, no AVX).
    pub fn intel_core2_sse() -> CpuFeatures {
        CpuFeatures::from_flags(
            "GenuineIntel",
            "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts \
             acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx lm constant_tsc arch_perfmon pebs bts \
             rep_good nopl aperfmperf pni dtes64 monitor ds_cpl vmx est tm2 ssse3 cx16 xtpr pdcm \
             sse4_1 lahf_lm",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::recorded::*;
    use super::*;

    #[test]
    fn gemm_output_is_cleared_by_ferrograd_only_with_openblas_on_a_cpu_without_avx512() {
        use crate::tensor::kernels::clears_output_on;
        let avx512 = |cpu: CpuFeatures| cpu.has_all(&["avx512f"]);
        assert!(clears_output_on(true, avx512(amd_epyc_zen3())));
        assert!(clears_output_on(true, avx512(intel_core2_sse())));
        assert!(!clears_output_on(true, avx512(intel_xeon_avx512())));
        assert!(!clears_output_on(false, avx512(amd_epyc_zen3())));
    }

    #[test]
    fn amd_avx2_keeps_zen_and_replaces_generic_cores() {
        let cpu = amd_epyc_zen3();
        assert_eq!(cpu_rank(&cpu), Rank::Avx2);
        assert_eq!(decide("Zen", &cpu), Decision::Keep);
        assert_eq!(decide("Haswell", &cpu), Decision::Keep);
        assert_eq!(decide("Prescott", &cpu), Decision::Choose("Zen"));
        assert_eq!(decide("Sandybridge", &cpu), Decision::Choose("Zen"));
        // Never an AVX-512 core on a CPU without AVX-512; a user's is flagged.
        assert_eq!(decide("SkylakeX", &cpu), Decision::Keep);
        assert_ne!(best_core(&cpu), "SkylakeX");
        assert!(needs_missing_instructions("SkylakeX", &cpu));
        assert!(!needs_missing_instructions("Zen", &cpu));
        assert!(!needs_missing_instructions("Prescott", &cpu));
    }

    #[test]
    fn avx512_intel_gets_cooperlake_instead_of_prescott() {
        let cpu = intel_xeon_avx512();
        assert_eq!(cpu_rank(&cpu), Rank::Avx512);
        assert_eq!(decide("Prescott", &cpu), Decision::Choose("Cooperlake"));
        assert_eq!(decide("Haswell", &cpu), Decision::Choose("Cooperlake"));
        assert_eq!(decide("SkylakeX", &cpu), Decision::Keep);
        assert!(is_generic_fallback("Prescott", &cpu));
        // Without BF16 (a Skylake-SP), SkylakeX.
        let mut skx = cpu.clone();
        skx.flags.remove("avx512_bf16");
        assert_eq!(decide("Prescott", &skx), Decision::Choose("SkylakeX"));
        // Missing one AVX-512 subset: AVX2 only, so Haswell on Intel.
        let mut partial = cpu;
        partial.flags.remove("avx512vl");
        assert_eq!(decide("Prescott", &partial), Decision::Choose("Haswell"));
    }

    #[test]
    fn sse_only_cpu_keeps_its_sse_core() {
        let cpu = intel_core2_sse();
        assert_eq!(cpu_rank(&cpu), Rank::Sse);
        for core in ["Prescott", "Core2", "Penryn"] {
            assert_eq!(decide(core, &cpu), Decision::Keep, "{core}");
            assert!(!is_generic_fallback(core, &cpu));
        }
        assert_eq!(best_core(&cpu), "Prescott");
    }

    #[test]
    fn unknown_names_are_kept_and_case_is_ignored() {
        let cpu = intel_xeon_avx512();
        assert_eq!(decide("NeoverseN1", &cpu), Decision::Keep);
        assert_eq!(decide("", &cpu), Decision::Keep);
        assert_eq!(decide("prescott", &cpu), Decision::Choose("Cooperlake"));
    }

    /// Whatever the flags, the chosen core's rank never exceeds what the CPU reports.
    #[test]
    fn chosen_core_never_needs_missing_instructions() {
        let all = [
            "avx",
            "fma",
            "avx2",
            "avx512f",
            "avx512cd",
            "avx512bw",
            "avx512dq",
            "avx512vl",
            "avx512_bf16",
        ];
        for mask in 0u32..(1 << all.len()) {
            let flags: Vec<&str> = (0..all.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| all[i])
                .collect();
            for vendor in ["GenuineIntel", "AuthenticAMD"] {
                let cpu = CpuFeatures::from_flags(vendor, &flags.join(" "));
                let rank = core_rank(best_core(&cpu)).unwrap();
                assert!(rank <= cpu_rank(&cpu), "{flags:?}");
                if let Decision::Choose(core) = decide("Prescott", &cpu) {
                    assert!(core_rank(core).unwrap() > Rank::Sse);
                }
            }
        }
    }
}
