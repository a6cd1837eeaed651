//! Curvature tracked by `train`: the last point is what `analyze hessian` finds on the saved
//! model, and a killed run resumes with its curvature history.

mod common;

use common::{bin, run, temp_dir};
use ferrograd::train::Checkpoint;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn lambdas(results: &Value) -> Vec<(u64, f64)> {
    results["curvature"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["step"].as_u64().unwrap(),
                p["lambda_max"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_last_tracked_point_is_what_analyze_hessian_finds_on_the_saved_model() {
    let out = temp_dir("curvature-last");
    let o = run(bin()
        .args(["train", "--dataset", "digits", "--epochs", "3"])
        .args([
            "--hidden",
            "32,32",
            "--curvature-every",
            "2",
            "--curvature-samples",
            "300",
            "--out",
        ])
        .arg(&out));
    let text = String::from_utf8_lossy(&o.stdout);
    // The start, epoch 2, and the end (epoch 3, not a multiple of 2).
    assert_eq!(text.matches("curvature at epoch").count(), 3, "{text}");
    let results = json(&out.join("results/results_relu_digits.json"));
    let points = lambdas(&results);
    assert_eq!(points.len(), 3, "{points:?}");
    let steps = points.iter().map(|p| p.0).collect::<Vec<_>>();
    assert!(steps[0] == 0 && steps[1] < steps[2], "{steps:?}");
    assert!(out.join("plots/sharpness_relu_digits.png").is_file());

    run(bin()
        .args([
            "analyze",
            "hessian",
            "--samples",
            "300",
            "--top-k",
            "1",
            "--out",
        ])
        .arg(&out));
    let h = json(&out.join("results/hessian_relu_digits.json"));
    let analysed = h["lanczos"]["largest"][0]["value"].as_f64().unwrap();
    let tracked = points[2].1;
    assert!(
        (tracked - analysed).abs() <= 1e-3 * analysed.abs(),
        "tracked {tracked}, analyze hessian {analysed}"
    );
}

#[test]
fn a_killed_run_resumes_with_its_curvature_history() {
    // Wide layers on digits: an epoch takes long enough to kill the run between two.
    let args = [
        "--threads",
        "1",
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "6",
        "--hidden",
        "1024,1024",
        "--curvature-every",
        "1",
        "--curvature-samples",
        "64",
        "--out",
    ];
    let reference = temp_dir("curvature-reference");
    run(bin().args(args).arg(&reference));
    let killed = temp_dir("curvature-killed");
    let mut child = bin()
        .args(args)
        .arg(&killed)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = killed.join("checkpoints/checkpoint_relu_digits.msgpack");
    let start = Instant::now();
    let mut kept = Vec::new();
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(c) = Checkpoint::load(&checkpoint) {
            if c.epochs_done >= 2 {
                child.kill().unwrap();
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!child.wait().unwrap().success(), "finished before the kill");
    let c = Checkpoint::load(&checkpoint).unwrap();
    assert_eq!(
        c.curvature.len(),
        c.epochs_done + 1,
        "start + one per epoch"
    );
    kept.extend(c.curvature.iter().map(|p| (p.step as u64, p.lambda_max)));

    run(bin().args(args).arg(&killed).arg("--resume"));
    let resumed = lambdas(&json(&killed.join("results/results_relu_digits.json")));
    let whole = lambdas(&json(&reference.join("results/results_relu_digits.json")));
    assert_eq!(resumed.len(), 7, "{resumed:?}");
    // The points measured before the kill come back from the checkpoint unchanged...
    assert_eq!(&resumed[..kept.len()], &kept[..]);
    for (r, w) in resumed.iter().zip(&whole) {
        assert_eq!(r.0, w.0, "same steps");
        // ...and every point agrees with the uninterrupted run's (the model is the same bits;
        // after the resume a Lanczos run starts cold, so only within its tolerance).
        assert!(
            (r.1 - w.1).abs() <= 3e-3 * w.1.abs(),
            "{resumed:?} vs {whole:?}"
        );
    }
}
