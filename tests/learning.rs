//! Learning on real data against stated accuracies. The real files live outside the repo:
//! MNIST in `../shared/data/mnist/` (or `FERROGRAD_MNIST_DIR`), Fashion-MNIST in
//! `/usr/share/datasets/fashion-mnist/` (`apt-get install -y dataset-fashion-mnist`). The tests
//! that need them are `#[ignore]`d, so a plain `cargo test` says "ignored" rather than "ok" for
//! learning it never checked; `cargo test --release --test learning -- --include-ignored` runs
//! them (`.ci/run` does, with both data sets present) and fails if the data is missing.

use ferrograd::data::DatasetName;
use ferrograd::train::{train, TrainConfig};
use std::path::PathBuf;

fn mnist_dir() -> PathBuf {
    let dir = std::env::var_os("FERROGRAD_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data/mnist"));
    assert!(
        dir.join("train-images-idx3-ubyte.gz").is_file(),
        "MNIST not found in {} (set FERROGRAD_MNIST_DIR)",
        dir.display()
    );
    dir
}

#[test]
fn digits_reach_96_percent_with_the_defaults() {
    let report = train(&TrainConfig::default()).unwrap();
    let acc = report.results.final_metrics.test_accuracy;
    assert!(acc >= 0.96, "digits test accuracy {acc}");
}

#[test]
#[ignore = "needs the real MNIST files (FERROGRAD_MNIST_DIR)"]
fn mnist_reaches_97_percent_in_three_epochs() {
    let dir = mnist_dir();
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
#[ignore = "needs Fashion-MNIST (apt-get install -y dataset-fashion-mnist)"]
fn fashion_mnist_reaches_85_percent_in_three_epochs() {
    assert!(
        PathBuf::from("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)"
    );
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
