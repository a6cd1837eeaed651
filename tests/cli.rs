//! The real binary end to end on the embedded digits: every artifact, its format, and
//! `predict` reproducing the accuracy the training run recorded.

mod common;

use common::{bin, one_line_error, run, temp_dir};

use std::path::Path;

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn train_on_digits_writes_every_artifact_and_predict_reproduces_its_accuracy() {
    let out = temp_dir("train");
    let stdout = run(bin()
        .args(["train", "--dataset", "digits", "--epochs", "2", "--out"])
        .arg(&out));
    let text = String::from_utf8_lossy(&stdout.stdout);
    assert!(text.contains("42634 parameters"), "{text}"); // 64-128-128-128-10
    assert_eq!(
        text.lines().filter(|l| l.starts_with("epoch")).count(),
        2,
        "{text}"
    );

    let tag = "relu_digits";
    for p in [
        "loss_curves",
        "accuracy_curves",
        "test_loss",
        "test_accuracy",
        "lr_schedule",
    ] {
        assert_eq!(
            png_size(&out.join(format!("plots/{p}_{tag}.png"))),
            (900, 600),
            "{p}"
        );
    }
    // Accuracy and loss gaps in two panels, each with its own axis and unit.
    assert_eq!(
        png_size(&out.join(format!("plots/overfitting_gap_{tag}.png"))),
        (900, 600 + 450)
    );
    let grid = png_size(&out.join(format!("predicted_images/sample_predictions_{tag}.png")));
    assert!(grid.0 >= 400 && grid.1 >= 400, "{grid:?}");

    let results: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join(format!("results/results_{tag}.json"))).unwrap(),
    )
    .unwrap();
    for key in [
        "dataset",
        "activation",
        "epochs",
        "batch_size",
        "lr",
        "momentum",
        "seed",
        "hidden",
        "schedule",
    ] {
        assert!(results["config"].get(key).is_some(), "config.{key}");
    }
    let epochs = results["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for e in epochs {
        for key in [
            "epoch",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "test_loss",
            "test_accuracy",
            "lr",
            "seconds",
        ] {
            assert!(e[key].is_number(), "epochs[].{key}");
        }
        for key in ["train_accuracy", "val_accuracy", "test_accuracy"] {
            let v = e[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
    }
    let recorded = results["final"]["test_accuracy"].as_f64().unwrap();
    assert!(
        results["final"]["test_loss"].is_number() && results["final"]["train_seconds"].is_number()
    );
    assert!(results["build"]["blas"].is_string() && results["build"]["threads"].is_number());
    assert!(
        recorded > 0.5,
        "2 epochs on digits should pass 50%: {recorded}"
    );

    // predict (newest model by default) reproduces the recorded accuracy exactly.
    let p = run(bin().args(["predict", "--json", "--out"]).arg(&out));
    let scores: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(scores["accuracy"].as_f64().unwrap(), recorded);
    let confusion = scores["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, 359);

    // And so does the library API.
    let loaded = ferrograd::load_model(&out.join(format!("models/model_{tag}.msgpack"))).unwrap();
    let (_, test) = ferrograd::load_dataset(ferrograd::data::DatasetName::Digits, None).unwrap();
    let pred = ferrograd::predict(&loaded.mlp, &test.features);
    let acc = pred
        .labels
        .iter()
        .zip(&test.labels)
        .filter(|(a, b)| a == b)
        .count() as f64
        / test.len() as f64;
    assert_eq!(acc, recorded);
    for row in pred.probabilities.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn a_saved_model_decodes_as_generic_messagepack_with_every_documented_field() {
    let out = temp_dir("msgpack");
    run(bin()
        .args([
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--hidden",
            "16,8",
            "--out",
        ])
        .arg(&out));
    let bytes = std::fs::read(out.join("models/model_relu_digits.msgpack")).unwrap();
    // Decode without ferrograd's types: any MessagePack reader sees the same map.
    let v: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(v["format"], "ferrograd-mlp");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["architecture"], serde_json::json!([64, 16, 8, 10]));
    assert_eq!(v["activation"], "relu");
    assert_eq!(v["dataset"], "digits");
    assert_eq!(v["input_shape"], serde_json::json!([8, 8]));
    assert_eq!(v["classes"].as_array().unwrap().len(), 10);
    assert_eq!(v["normalisation"]["divisor"], 16.0);
    assert!(v["normalisation"]["kind"].is_string());
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (l, (i, o)) in layers.iter().zip([(64, 16), (16, 8), (8, 10)]) {
        assert_eq!(l["weight_shape"], serde_json::json!([i, o]));
        assert_eq!(l["weight"].as_array().unwrap().len(), i * o);
        assert_eq!(l["bias"].as_array().unwrap().len(), o);
    }
}

#[test]
fn compare_trains_both_activations_and_draws_comparison_plots() {
    let out = temp_dir("compare");
    let o = run(bin()
        .args(["compare", "--dataset", "digits", "--epochs", "2", "--out"])
        .arg(&out));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("relu "))
            && text.lines().any(|l| l.starts_with("tanh ")),
        "{text}"
    );
    for m in [
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "test_accuracy",
    ] {
        assert_eq!(
            png_size(&out.join(format!("plots/compare_{m}_digits.png"))),
            (900, 600)
        );
    }
    assert!(out.join("models/model_tanh_digits.msgpack").is_file());
    assert!(out.join("models/model_relu_digits.msgpack").is_file());
}

#[test]
fn without_dataset_and_terminal_train_lists_the_choices() {
    let o = bin()
        .args(["train"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mnist, fashion, cifar10, digits"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_arguments_are_rejected_by_the_parser() {
    for args in [
        &["train", "--dataset", "digits", "--epochs", "0"][..],
        &["train", "--dataset", "digits", "--epochs", "-3"],
        &["train", "--dataset", "digits", "--batch-size", "0"],
        &["train", "--dataset", "digits", "--lr", "0"],
        &["train", "--dataset", "digits", "--lr", "-0.1"],
        &["train", "--dataset", "digits", "--hidden", ""],
        &["train", "--dataset", "digits", "--hidden", "128,0"],
        &["train", "--dataset", "imagenet"],
        &["train", "--dataset", "digits", "--activation", "softplus"],
        &["train", "--dataset", "digits", "--warmup", "4294967295"],
        &[
            "train",
            "--dataset",
            "digits",
            "--hidden",
            "8,8,8",
            "--val-fraction",
            "1",
        ],
    ] {
        let o = bin().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?} should be a usage error");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn predict_without_models_is_a_one_line_error() {
    let out = temp_dir("nomodel");
    let o = bin().args(["predict", "--out"]).arg(&out).output().unwrap();
    let err = one_line_error(&o);
    assert!(err.contains("models"), "{err}");
}

/// `ferrograd train | head -1`: the reader goes away and the run ends as `cat` would, killed
/// by SIGPIPE, with no panic or backtrace on standard error.
#[cfg(unix)]
#[test]
fn a_closed_pipe_on_stdout_ends_the_run_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = temp_dir("closed-pipe");
    let mut child = bin()
        .args(["train", "--dataset", "digits", "--epochs", "2", "--out"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the first line is written, so that line meets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A standard output that cannot take the lines (a full disk) is one error line, exit 1.
#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_is_one_error_line() {
    let dir = temp_dir("full-stdout");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = bin()
        .args(["train", "--dataset", "digits", "--epochs", "2", "--out"])
        .arg(&dir)
        .stdout(full)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(
        err.contains("cannot write to standard output") && err.contains("No space left"),
        "{err}"
    );
}
