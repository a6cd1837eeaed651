//! Interruption and divergence: a real training process killed with SIGKILL mid-run and
//! resumed gives bit-for-bit the weights and metrics of an uninterrupted run; a diverging run
//! stops with the epoch and batch and leaves the last good model alone.

mod common;

use common::{bin, one_line_error, temp_dir};

use ferrograd::artifacts::ModelFile;
use ferrograd::train::Checkpoint;
use std::path::Path;
use std::time::{Duration, Instant};

/// Wide enough that an epoch of digits takes a few hundred milliseconds: time to kill.
const ARGS: [&str; 10] = [
    "--threads",
    "1",
    "train",
    "--dataset",
    "digits",
    "--epochs",
    "8",
    "--hidden",
    "1536,1536",
    "--out",
];

fn metrics_without_time(results: &Path) -> Vec<serde_json::Value> {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    let mut epochs: Vec<serde_json::Value> = r["epochs"].as_array().unwrap().clone();
    for e in &mut epochs {
        e.as_object_mut().unwrap().remove("seconds");
    }
    epochs.push(r["final"]["test_accuracy"].clone());
    epochs.push(r["final"]["test_loss"].clone());
    epochs
}

#[test]
fn a_killed_run_resumes_to_the_same_bits_as_an_uninterrupted_one() {
    let reference = temp_dir("reference");
    let out = bin().args(ARGS).arg(&reference).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let killed = temp_dir("killed");
    let mut child = bin()
        .args(ARGS)
        .arg(&killed)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = killed.join("checkpoints/checkpoint_relu_digits.msgpack");
    let start = Instant::now();
    let mut done_at_kill = 0;
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(c) = Checkpoint::load(&checkpoint) {
            if c.epochs_done >= 2 {
                child.kill().unwrap(); // SIGKILL
                done_at_kill = c.epochs_done;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before it could be killed"
    );
    assert!(
        (2..8).contains(&done_at_kill),
        "killed after epoch {done_at_kill}"
    );
    // The checkpoint is whole (atomic writes): it loads, and no final model was written.
    let c = Checkpoint::load(&checkpoint).unwrap();
    assert!(c.epochs_done >= done_at_kill && c.epochs_done < 8);
    assert!(!killed.join("models/model_relu_digits.msgpack").exists());

    let out = bin()
        .args(ARGS)
        .arg(&killed)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming after epoch"));

    let a = ModelFile::load(&reference.join("models/model_relu_digits.msgpack")).unwrap();
    let b = ModelFile::load(&killed.join("models/model_relu_digits.msgpack")).unwrap();
    for (x, y) in a.layers.iter().zip(&b.layers) {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&x.weight) == bits(&y.weight),
            "weights differ after resuming"
        );
        assert!(
            bits(&x.bias) == bits(&y.bias),
            "biases differ after resuming"
        );
    }
    assert_eq!(
        metrics_without_time(&reference.join("results/results_relu_digits.json")),
        metrics_without_time(&killed.join("results/results_relu_digits.json"))
    );
}

#[test]
fn resuming_with_other_settings_is_refused_in_one_line() {
    let dir = temp_dir("mismatch");
    let ok = bin()
        .args(["train", "--dataset", "digits", "--epochs", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let out = bin()
        .args([
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--resume",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("other settings"), "{err}");
}

/// Trains a good digits model into a fresh folder, then runs `train` with `args` there, which
/// must fail in one line and leave the good model's bytes; returns the error line.
fn diverging_run_keeps_the_good_model(name: &str, args: &[&str]) -> String {
    let dir = temp_dir(name);
    let good = bin()
        .args(["train", "--dataset", "digits", "--epochs", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(good.status.success());
    let model = dir.join("models/model_relu_digits.msgpack");
    let before = std::fs::read(&model).unwrap();
    let out = bin()
        .args(["train", "--dataset", "digits"])
        .args(args)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("diverged"), "{err}");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the good model was overwritten"
    );
    err
}

#[test]
fn a_diverging_run_stops_with_epoch_and_batch_and_keeps_the_last_good_model() {
    let err = diverging_run_keeps_the_good_model(
        "diverge",
        &["--epochs", "2", "--lr", "1e6", "--momentum", "0"],
    );
    assert!(err.contains("epoch 1 batch"), "{err}");
}

/// All weights finite, the outputs overflowing: one image, batch 1, learning rate 10⁶ drove
/// the validation loss to NaN while the training loss stayed finite, and the run used to exit
/// 0 and replace the good model.
#[test]
fn a_run_whose_outputs_overflow_with_finite_weights_is_a_divergence() {
    let args = ["--epochs", "3", "--train-samples", "1", "--batch-size", "1"];
    diverging_run_keeps_the_good_model("overflow", &[&args[..], &["--lr", "1e6"]].concat());
}

/// The same without a validation set (`--val-fraction 0`): the test loss decides. Found from
/// outside: a weight decay of 10³⁸ left finite weights of about ±1.5·10³⁸ whose outputs
/// overflow, and the run exited 0 and replaced the good model.
#[test]
fn without_a_validation_set_outputs_that_overflow_are_a_divergence_too() {
    let args = [
        "--epochs",
        "1",
        "--val-fraction",
        "0",
        "--train-samples",
        "32",
        "--batch-size",
        "32",
        "--weight-decay",
        "1e38",
        "--lr",
        "10",
    ];
    let err = diverging_run_keeps_the_good_model("overflow-no-val", &args);
    assert!(err.contains("the test loss is NaN"), "{err}");
}

/// Whatever the learning rate and seed, a run either finishes with a model that `predict`
/// loads, or fails in one line and leaves the previous model byte for byte — including the
/// runs whose weights blow up while the loss stays finite (a saturated tanh or sigmoid turns
/// infinite weights into finite outputs; a ReLU used to turn NaN into 0).
#[test]
fn no_learning_rate_or_seed_replaces_a_good_model_with_a_broken_one() {
    let dir = temp_dir("diverge-scan");
    let mut diverged = 0;
    let mut finished = 0;
    for activation in ["relu", "tanh", "sigmoid"] {
        let good = bin()
            .args(["train", "--dataset", "digits", "--epochs", "1"])
            .args(["--activation", activation, "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(good.status.success(), "{good:?}");
        let model = dir.join(format!("models/model_{activation}_digits.msgpack"));
        for lr in ["0.5", "3", "30", "1e3", "1e6", "1e12", "1e30"] {
            for seed in ["1", "2"] {
                let before = std::fs::read(&model).unwrap();
                let out = bin()
                    .args(["train", "--dataset", "digits", "--epochs", "2"])
                    .args(["--activation", activation, "--lr", lr, "--seed", seed])
                    .args(["--schedule", "constant", "--out"])
                    .arg(&dir)
                    .output()
                    .unwrap();
                let what = format!("{activation}, lr {lr}, seed {seed}");
                if out.status.success() {
                    finished += 1;
                    let predict = bin()
                        .arg("predict")
                        .arg("--model")
                        .arg(&model)
                        .output()
                        .unwrap();
                    assert!(
                        predict.status.success(),
                        "{what}: training exited 0 but predict cannot load the model: {}",
                        String::from_utf8_lossy(&predict.stderr)
                    );
                } else {
                    diverged += 1;
                    let err = one_line_error(&out);
                    assert!(
                        err.contains("diverged") && err.contains("epoch"),
                        "{what}: {err}"
                    );
                    assert_eq!(
                        std::fs::read(&model).unwrap(),
                        before,
                        "{what}: the good model was overwritten"
                    );
                    let checkpoint = dir.join(format!(
                        "checkpoints/checkpoint_{activation}_digits.msgpack"
                    ));
                    if checkpoint.exists() {
                        ferrograd::train::Checkpoint::load(&checkpoint)
                            .unwrap_or_else(|e| panic!("{what}: checkpoint left unreadable: {e}"));
                    }
                }
            }
        }
    }
    // The scan covers both outcomes, so both branches above were exercised.
    assert!(
        diverged > 0 && finished > 0,
        "diverged {diverged}, finished {finished}"
    );
}

/// Version 1 checkpoints kept Adam's step count as an f32 among the buffers; version 2 keeps
/// an integer. An old file is named as such, not reported as a missing field.
#[test]
fn a_checkpoint_of_the_previous_format_version_is_refused_by_name() {
    #[derive(serde::Serialize)]
    struct OldHeader {
        format: &'static str,
        format_version: u32,
        epochs_done: usize,
    }
    let dir = temp_dir("old-checkpoint");
    let path = dir.join("checkpoint_relu_digits.msgpack");
    let bytes = rmp_serde::to_vec_named(&OldHeader {
        format: "ferrograd-checkpoint",
        format_version: 1,
        epochs_done: 3,
    })
    .unwrap();
    std::fs::write(&path, bytes).unwrap();
    let err = format!(
        "{:#}",
        ferrograd::train::Checkpoint::load(&path).unwrap_err()
    );
    assert!(
        err.contains("version 1") && err.contains("version 2") && err.contains("afresh"),
        "{err}"
    );
}

/// Adam's step count survives a checkpoint exactly, far beyond what an f32 holds (2²⁴).
#[test]
fn adam_keeps_an_exact_integer_step_count_in_its_state() {
    use ferrograd::optim::{Adam, Optimizer, OptimizerState};
    let mut adam = Adam::<f32>::default();
    let steps = (1u64 << 24) + 1;
    adam.set_state(OptimizerState {
        steps,
        buffers: vec![],
    });
    adam.begin_step();
    assert_eq!(adam.state().steps, steps + 1);
}
