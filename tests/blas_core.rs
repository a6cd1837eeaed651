//! The OpenBLAS core choice seen from outside: `info` names the kernels, and the re-execution
//! that replaces a generic core keeps the arguments, the output and the exit code. A CPU that
//! OpenBLAS recognises is made to look unrecognised with `FERROGRAD_BLAS_SIMULATE`; the
//! environment's own `OPENBLAS_CORETYPE` is left as it is (a machine may set it).

mod common;

use common::{bin, one_line_error};
use serde_json::Value;
use std::process::Output;

const SIMULATE: &str = "FERROGRAD_BLAS_SIMULATE";

fn info(simulate: Option<&str>) -> (Value, Output) {
    let mut cmd = bin();
    cmd.args(["info", "--json"])
        .env_remove("FERROGRAD_BLAS_CORE");
    if let Some(s) = simulate {
        cmd.env(SIMULATE, s);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    (json["blas_core"].clone(), out)
}

fn user_forced() -> bool {
    std::env::var_os("OPENBLAS_CORETYPE").is_some()
}

#[test]
fn info_names_backend_core_and_source() {
    let (core, _) = info(None);
    let backend = if cfg!(feature = "openblas") {
        "openblas"
    } else {
        "matrixmultiply"
    };
    assert_eq!(core["backend"], backend);
    assert!(!core["core"].as_str().unwrap().is_empty());
    let expected = match (cfg!(feature = "openblas"), user_forced()) {
        (false, _) => "not_openblas",
        (true, true) => "forced_by_user",
        (true, false) => "detected",
    };
    // On a CPU OpenBLAS recognises (as the CI machine) nothing is chosen for it.
    if !(cfg!(feature = "openblas") && core["source"] == "chosen_by_ferrograd") {
        assert_eq!(core["source"], expected, "{core}");
    }
    if !user_forced() {
        assert_eq!(core["generic_fallback"], false, "{core}");
    }
    let text = bin().arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!(
        "blas core        {}",
        core["core"].as_str().unwrap()
    )));
}

#[cfg(feature = "openblas")]
#[test]
fn a_generic_core_is_replaced_after_one_reexecution() {
    if user_forced() {
        return;
    }
    let (detected, _) = info(None);
    let (core, out) = info(Some("generic"));
    assert_eq!(core["source"], "chosen_by_ferrograd", "{core}");
    assert_eq!(core["generic_fallback"], false);
    // The best core for a CPU OpenBLAS recognises is (at least) what OpenBLAS picks itself.
    assert_eq!(core["core"], detected["core"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "openblas")]
#[test]
fn a_core_failing_its_self_check_is_dropped_with_one_warning() {
    if user_forced() {
        return;
    }
    let (core, out) = info(Some("generic-bad-check"));
    assert_eq!(core["source"], "detected", "{core}");
    assert!(core["note"].as_str().unwrap().contains("failed"), "{core}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("warning: OpenBLAS core") && err.contains("self-check"));
}

#[test]
fn reexecution_keeps_arguments_and_the_exit_code() {
    for simulate in [None, Some("generic"), Some("generic-bad-check")] {
        let mut cmd = bin();
        cmd.args(["predict", "--model", "/nonexistent/model.bin"]);
        if let Some(s) = simulate {
            cmd.env(SIMULATE, s);
        }
        let out = cmd.output().unwrap();
        if simulate == Some("generic-bad-check") && cfg!(feature = "openblas") && !user_forced() {
            // The warning, then the error: two lines, exit code 1.
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.lines().count(), 2, "{err}");
            assert!(err
                .lines()
                .nth(1)
                .unwrap()
                .contains("/nonexistent/model.bin"));
        } else {
            assert!(one_line_error(&out).contains("/nonexistent/model.bin"));
        }
    }
}
