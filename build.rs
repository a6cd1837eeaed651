//! Embeds what a results file needs to say how it was built: git commit, rustc version,
//! enabled features, GEMM backend and the target's CPU features.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit =
        output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase()))
        .collect();
    features.sort();
    let backend = if features.iter().any(|f| f == "openblas") {
        "openblas"
    } else {
        "matrixmultiply"
    };
    let cpu = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    println!(
        "cargo:rustc-env=FERROGRAD_GIT_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
    println!("cargo:rustc-env=FERROGRAD_RUSTC={rustc_version}");
    println!("cargo:rustc-env=FERROGRAD_FEATURES={}", features.join(","));
    println!("cargo:rustc-env=FERROGRAD_BLAS={backend}");
    println!("cargo:rustc-env=FERROGRAD_TARGET_FEATURES={cpu}");
    println!("cargo:rustc-env=FERROGRAD_PROFILE={profile}");
    println!("cargo:rustc-env=FERROGRAD_TARGET={target}");
    // A commit moves the branch's ref, not .git/HEAD: watch both, and the index for edits.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Some(head_ref) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed=.git/{head_ref}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
