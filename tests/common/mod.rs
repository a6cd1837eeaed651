//! Fixtures shared by the integration tests.

// Each test crate uses some of these.
#![allow(dead_code)]

use ferrograd::artifacts::{LayerFile, ModelFile};
use std::path::PathBuf;
use std::process::{Command, Output};

/// The `ferrograd` binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrograd"))
}

/// A fresh, empty folder under the system's temporary folder, named after the test crate,
/// `name` and the process, so that test binaries running side by side do not share one.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ferrograd-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The error of a run that must fail as the CLI promises: exit code 1 and a message on one
/// line. Standard error may also hold the one informational line that says where a dataset
/// was taken from (`data: <name> from <folder>`); nothing else.
pub fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1));
    let all = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = all.lines().filter(|l| !l.starts_with("data: ")).collect();
    assert_eq!(lines.len(), 1, "{all}");
    assert!(lines[0].starts_with("error: "), "{all}");
    format!("{}\n", lines[0])
}

/// A valid two-layer model file (4 → 3 → 2) small enough to damage by hand.
pub fn small_model() -> ModelFile {
    ModelFile {
        format: "ferrograd-mlp".into(),
        format_version: 1,
        architecture: vec![4, 3, 2],
        activation: "tanh".into(),
        dataset: "digits".into(),
        input_shape: vec![2, 2],
        classes: vec!["a".into(), "b".into()],
        // What a digits model records, so that pairing it with digits fails only where a
        // test damaged it.
        normalisation: ferrograd::data::DatasetName::Digits
            .spec()
            .scaling
            .to_file(),
        layers: vec![
            LayerFile {
                weight_shape: vec![4, 3],
                weight: vec![0.5; 12],
                bias: vec![0.0; 3],
            },
            LayerFile {
                weight_shape: vec![3, 2],
                weight: vec![-0.5; 6],
                bias: vec![1.0; 2],
            },
        ],
    }
}

/// Runs `cmd` and asserts that it succeeded, showing both outputs if it did not.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
