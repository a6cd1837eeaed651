//! Learning on real data against stated accuracies. The real files live outside the repo:
//! MNIST in `../shared/data/mnist/` (or `FERROGRAD_MNIST_DIR`), Fashion-MNIST in
//! `/usr/share/datasets/fashion-mnist/` (`apt-get install -y dataset-fashion-mnist`). A test
//! whose data is absent says so and passes without checking anything; `.ci/run` provides both.

use ferrograd::data::DatasetName;
use ferrograd::train::{train, TrainConfig};
use std::path::PathBuf;

fn mnist_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FERROGRAD_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data/mnist"));
    dir.join("train-images-idx3-ubyte.gz")
        .is_file()
        .then_some(dir)
}

#[test]
fn digits_reach_96_percent_with_the_defaults() {
    let report = train(&TrainConfig::default()).unwrap();
    let acc = report.results.final_metrics.test_accuracy;
    assert!(acc >= 0.96, "digits test accuracy {acc}");
}

#[test]
fn mnist_reaches_97_percent_in_three_epochs() {
    let Some(dir) = mnist_dir() else {
        eprintln!("SKIPPED: MNIST not found in ../shared/data/mnist (set FERROGRAD_MNIST_DIR)");
        return;
    };
    let config = TrainConfig {
        dataset: DatasetName::Mnist,
        data_dir: Some(dir),
        epochs: 3,
        ..TrainConfig::default()
    };
    let report = train(&config).unwrap();
    let acc = report.results.final_metrics.test_accuracy;
    assert_eq!(report.results.parameters, 134_794);
    assert!(acc >= 0.97, "MNIST test accuracy after 3 epochs: {acc}");
    // The loss went down epoch after epoch on the training set.
    let losses: Vec<f64> = report.results.epochs.iter().map(|e| e.train_loss).collect();
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
}

#[test]
fn fashion_mnist_reaches_85_percent_in_three_epochs() {
    if !PathBuf::from("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file() {
        eprintln!(
            "SKIPPED: Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)"
        );
        return;
    }
    let config = TrainConfig {
        dataset: DatasetName::Fashion,
        epochs: 3,
        ..TrainConfig::default()
    };
    let acc = train(&config).unwrap().results.final_metrics.test_accuracy;
    assert!(
        acc >= 0.85,
        "Fashion-MNIST test accuracy after 3 epochs: {acc}"
    );
}
