//! The layering ARCHITECTURE.md states, checked: the engine (`src/tensor/`) uses nothing of the
//! crate above it, and `nn` and `optim` use only the engine. A `crate::` path outside what a
//! layer may use fails here with the file and the path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The first segment of every `crate::` path in `source` (`crate::tensor::Tensor` → `tensor`;
/// each entry of `crate::{a::b, c}` → `a`, `c`).
fn crate_paths(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for entry in group[..end].split(',') {
                found.push(first_segment(entry.trim()));
            }
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names `src/lib.rs` re-exports from the engine (`pub use tensor::…::{a, b}`): a path
/// `crate::Tensor` is the engine's own.
fn engine_reexports() -> BTreeSet<String> {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mut names = BTreeSet::new();
    for line in lib.lines().filter(|l| l.starts_with("pub use tensor::")) {
        let items = line.trim_end_matches(';');
        let items = match items.split_once('{') {
            Some((_, group)) => group.trim_end_matches('}').to_string(),
            None => items.rsplit("::").next().unwrap().to_string(),
        };
        names.extend(items.split(',').map(|s| s.trim().to_string()));
    }
    names
}

/// Every `crate::` path in the `.rs` files under `src/<dir>` whose first segment is not in
/// `allowed`, as `file: crate::segment`.
fn violations(dir: &str, allowed: &BTreeSet<String>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir),
        &mut files,
    );
    assert!(!files.is_empty(), "src/{dir}: no Rust files found");
    let mut bad = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for segment in crate_paths(&source) {
            if !allowed.contains(&segment) {
                bad.push(format!("{}: crate::{segment}", file.display()));
            }
        }
    }
    bad
}

fn allowed(modules: &[&str]) -> BTreeSet<String> {
    let mut set = engine_reexports();
    set.extend(modules.iter().map(|m| m.to_string()));
    set
}

#[test]
fn the_engine_uses_nothing_above_it() {
    // `profile` is the engine's timing counters (no dependencies of its own).
    let bad = violations("tensor", &allowed(&["tensor", "profile"]));
    assert!(
        bad.is_empty(),
        "the engine reaches above itself:\n{}",
        bad.join("\n")
    );
}

#[test]
fn nn_and_optim_use_only_the_engine() {
    for dir in ["nn", "optim"] {
        let bad = violations(dir, &allowed(&["tensor", "profile", "nn"]));
        assert!(
            bad.is_empty(),
            "{dir} reaches above the engine:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let source = "use crate::tensor::Tensor;\nuse crate::{data::Dataset, nn};\nlet x = crate::train::train(c);";
    assert_eq!(crate_paths(source), ["tensor", "data", "nn", "train"]);
    let engine = engine_reexports();
    assert!(
        engine.contains("Tensor") && engine.contains("is_grad_enabled"),
        "{engine:?}"
    );
    assert!(!engine.contains("train"), "{engine:?}");
}
