//! The dataset registry from outside: the prompt and `--help` list what it holds, and a model's
//! recorded normalisation is what `predict` applies (or refuses, naming the file).

mod common;

use common::{bin, one_line_error, run, temp_dir};
use ferrograd::artifacts::{LayerFile, ModelFile, Normalisation};
use ferrograd::data::{self, DatasetName};
use std::io::Cursor;
use std::path::Path;

/// A linear digits model (64 → 10) that predicts class 0 while the pixel sum stays below
/// `threshold` and class 1 above it: its answers show which divisor its inputs went through.
fn threshold_model(threshold: f32, normalisation: Normalisation) -> ModelFile {
    let mut weight = vec![0.0; 64 * 10];
    for i in 0..64 {
        weight[i * 10 + 1] = 1.0;
    }
    let mut bias = vec![-1e6; 10];
    bias[0] = threshold;
    bias[1] = 0.0;
    ModelFile {
        format: "ferrograd-mlp".into(),
        format_version: 1,
        architecture: vec![64, 10],
        activation: "relu".into(),
        dataset: "digits".into(),
        input_shape: vec![8, 8],
        classes: (0..10).map(|c| c.to_string()).collect(),
        normalisation,
        layers: vec![LayerFile {
            weight_shape: vec![64, 10],
            weight,
            bias,
        }],
    }
}

/// The columns of `predict --json`'s confusion matrix that hold any prediction.
fn predicted_columns(out: &Path, model: &Path) -> Vec<usize> {
    let p = run(bin()
        .args(["predict", "--json", "--show-examples", "1", "--model"])
        .arg(model)
        .arg("--out")
        .arg(out));
    let v: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    let confusion = v["confusion"].as_array().unwrap();
    (0..10)
        .filter(|&c| confusion.iter().any(|row| row[c].as_u64().unwrap() > 0))
        .collect()
}

#[test]
fn predict_applies_the_divisor_the_model_records() {
    let out = temp_dir("divisor");
    // Every test digit has a raw pixel sum between 100 and 1024: over 16 it stays below 64,
    // over 1 it passes 64.
    let (_, test) = data::load_digits().unwrap();
    let sums: Vec<f32> = test.features.rows().into_iter().map(|r| r.sum()).collect();
    assert!(
        sums.iter().all(|&s| s * 16.0 > 100.0 && s < 64.0),
        "{sums:?}"
    );
    for (divisor, expected) in [(16.0, vec![0]), (1.0, vec![1])] {
        let path = out.join(format!("model_{divisor}.msgpack"));
        let norm = Normalisation {
            kind: "digits 0..16".into(),
            divisor,
        };
        threshold_model(64.0, norm).save(&path).unwrap();
        assert_eq!(
            predicted_columns(&out, &path),
            expected,
            "divisor {divisor}"
        );
    }
}

#[test]
fn predict_refuses_a_model_of_another_kind_of_pixel_naming_the_file() {
    let out = temp_dir("kind");
    let path = out.join("u8.msgpack");
    let norm = DatasetName::Mnist.spec().scaling.to_file();
    threshold_model(64.0, norm).save(&path).unwrap();
    let o = bin()
        .args(["predict", "--model"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let e = one_line_error(&o);
    assert!(
        e.contains(&path.display().to_string()) && e.contains("u8 pixels"),
        "{e}"
    );
    // Nothing was drawn for a model that was refused.
    assert!(!out.join("predicted_images").exists());
}

#[test]
fn loading_for_a_model_divides_by_its_divisor_exactly() {
    let own = DatasetName::Digits.spec().scaling.to_file();
    let (a, _) = data::load_for_model(DatasetName::Digits, None, &own, Path::new("m")).unwrap();
    let (b, _) = data::load_dataset(DatasetName::Digits, None).unwrap();
    assert_eq!(a.features, b.features);
    let halved = Normalisation {
        divisor: 8.0,
        ..own
    };
    let (c, _) = data::load_for_model(DatasetName::Digits, None, &halved, Path::new("m")).unwrap();
    // v / 8 and 2 · (v / 16) are both exact for the digits' 0..16.
    assert_eq!(c.features, b.features.mapv(|v| 2.0 * v));
}

#[test]
fn the_prompt_lists_every_registered_dataset_with_its_description() {
    let mut out = Vec::new();
    let chosen = ferrograd::prompt::ask_dataset(&mut Cursor::new("3\n"), &mut out, |d| {
        format!("status of {d}")
    })
    .unwrap();
    assert_eq!(chosen, DatasetName::ALL[2]);
    let text = String::from_utf8(out).unwrap();
    for (i, d) in DatasetName::ALL.iter().enumerate() {
        let spec = d.spec();
        let line = format!(
            "  {}) {:<8} {} (status of {d})",
            i + 1,
            spec.id,
            spec.description
        );
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
}

#[test]
fn help_lists_every_registered_dataset_and_alias() {
    let o = run(bin().args(["train", "--help"]));
    let help = String::from_utf8(o.stdout).unwrap();
    for d in DatasetName::ALL {
        let spec = d.spec();
        assert!(help.contains(&format!("{}:", spec.id)), "{help}");
        assert!(help.contains(spec.description), "{help}");
    }
    // An alias is accepted where the name is: the parser goes on to the next argument.
    let o = bin()
        .args(["train", "--dataset", "fashion-mnist", "--epochs", "0"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("--epochs") && !e.contains("fashion-mnist"),
        "{e}"
    );
}
