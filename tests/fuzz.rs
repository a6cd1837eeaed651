//! Property-based fuzzing of everything that reads bytes from outside: the IDX parser, the
//! CIFAR parser and the model loader must return `Ok` or an error naming the file — never
//! panic — on random bytes and on valid files with random damage.
//!
//! CI runs the default number of cases; a long run of one parser for 5 minutes:
//! `PROPTEST_CASES=1000000000 timeout 300 cargo test --release --test fuzz -- NAME --nocapture`
//! (README.md, "Tests", gives the counts of the last such runs).

mod common;

use ferrograd::artifacts::ModelFile;
use ferrograd::data::{cifar, idx};
use ferrograd::train::{Checkpoint, EpochMetrics, TrainConfig};
use proptest::prelude::*;
use std::path::Path;

static CASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a case; with `FUZZ_REPORT` set, a thread prints the count every 5 s, so a run cut off
/// by `timeout` still tells how many cases it tried (run one test per process for exact counts).
fn count_case() {
    static REPORTER: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("FUZZ_REPORT").is_some() {
        REPORTER.call_once(|| {
            let start = std::time::Instant::now();
            std::thread::spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                eprintln!(
                    "fuzz: {} cases in {:.0} s",
                    CASES.load(std::sync::atomic::Ordering::Relaxed),
                    start.elapsed().as_secs_f64()
                );
            });
        });
    }
    CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn origin() -> &'static Path {
    Path::new("fuzzed.bin")
}

fn valid_images() -> Vec<u8> {
    idx::encode(&[3, 5, 4], &(0..60u8).collect::<Vec<_>>())
}

fn valid_model() -> Vec<u8> {
    common::small_model().to_bytes().unwrap()
}

/// A valid checkpoint of the small model (4 → 3 → 2, tanh, SGD) after 1 of 2 epochs.
fn valid_checkpoint() -> Vec<u8> {
    let model = common::small_model();
    let config = TrainConfig {
        hidden: vec![3],
        epochs: 2,
        activation: ferrograd::nn::Activation::Tanh,
        threads: 1,
        ..TrainConfig::default()
    };
    let history = vec![EpochMetrics {
        epoch: 1,
        train_loss: 1.0,
        train_accuracy: 0.5,
        val_loss: 1.0,
        val_accuracy: 0.5,
        test_loss: 1.0,
        test_accuracy: 0.5,
        lr: 0.03,
        seconds: 0.1,
    }];
    let optimizer_state = model
        .layers
        .iter()
        .flat_map(|l| {
            [
                (l.weight_shape.clone(), l.weight.clone()),
                (vec![l.bias.len()], l.bias.clone()),
            ]
        })
        .collect();
    let c = Checkpoint {
        format: ferrograd::train::CHECKPOINT_FORMAT.into(),
        format_version: ferrograd::train::CHECKPOINT_FORMAT_VERSION,
        config,
        epochs_done: 1,
        model,
        optimizer_steps: 3,
        optimizer_state,
        history,
        train_seconds: 0.1,
        curvature: Vec::new(),
    };
    rmp_serde::to_vec_named(&c).unwrap()
}

/// A valid file with `edits` bytes overwritten and optionally cut short.
fn damaged(base: Vec<u8>, edits: Vec<(usize, u8)>, cut: Option<usize>) -> Vec<u8> {
    let mut b = base;
    for (i, v) in edits {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] = v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn names_the_file<T>(r: anyhow::Result<T>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => format!("{e:#}").contains("fuzzed.bin"),
    }
}

proptest! {
    #[test]
    fn idx_parser_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        count_case();
        prop_assert!(names_the_file(idx::parse_images_bytes(&bytes, origin())));
        prop_assert!(names_the_file(idx::parse_labels_bytes(&bytes, 10, origin())));
    }

    #[test]
    fn idx_parser_on_damaged_files(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
        compressed in any::<bool>(),
    ) {
        count_case();
        // Compressed: the edits damage the payload before compression and the gzip stream
        // after it, so both the decoder and the parser see damage.
        let b = if compressed {
            damaged(gzip(&damaged(valid_images(), edits.clone(), None)), edits, cut)
        } else {
            damaged(valid_images(), edits, cut)
        };
        prop_assert!(names_the_file(idx::parse_images_bytes(&b, origin())));
    }

    #[test]
    fn cifar_parser_on_random_and_damaged_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..8000),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        count_case();
        prop_assert!(names_the_file(cifar::parse(&bytes, origin(), 255.0)));
        let valid = cifar::encode(&[(1, vec![9; 3072]), (2, vec![200; 3072])]);
        prop_assert!(names_the_file(cifar::parse(&damaged(valid, edits, cut), origin(), 255.0)));
    }

    #[test]
    fn model_loader_on_random_and_damaged_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        count_case();
        prop_assert!(names_the_file(ModelFile::from_bytes(&bytes, origin())));
        let b = damaged(valid_model(), edits, cut);
        match ModelFile::from_bytes(&b, origin()) {
            // Whatever loads has passed every check, so it must build and run.
            Ok(m) => {
                let mlp = m.to_mlp();
                let x = ndarray::Array2::<f32>::zeros((1, m.architecture[0]));
                let p = ferrograd::predict(&mlp, &x);
                prop_assert_eq!(p.labels.len(), 1);
            }
            Err(e) => {
                let message = format!("{e:#}");
                prop_assert!(message.contains("fuzzed.bin"), "{}", message);
            }
        }
    }

    #[test]
    fn checkpoint_loader_on_random_and_damaged_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        count_case();
        prop_assert!(names_the_file(Checkpoint::from_bytes(&bytes, origin())));
        let b = damaged(valid_checkpoint(), edits, cut);
        match Checkpoint::from_bytes(&b, origin()) {
            // Whatever loads has passed every check, so resuming from it must either be
            // refused by name or restore without a panic.
            Ok(c) => {
                let sizes = c.model.architecture.clone();
                if c.check_resume(&c.config.clone(), &sizes, 45, origin()).is_ok() {
                    let m = c.model.to_mlp();
                    let mut sgd = ferrograd::optim::Sgd::new(0.9);
                    let mut adam = ferrograd::optim::Adam::default();
                    prop_assert!(c.restore(&m, &mut sgd).is_ok());
                    prop_assert!(c.restore(&m, &mut adam).is_ok());
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                prop_assert!(message.contains("fuzzed.bin"), "{}", message);
            }
        }
    }

    #[test]
    fn multi_member_gzip_idx_on_random_cuts(cut in 0usize..80, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3)) {
        count_case();
        let images = valid_images();
        let cut = cut % (images.len() + 1);
        let mut b = gzip(&images[..cut]);
        b.extend(gzip(&images[cut..]));
        if edits.is_empty() {
            prop_assert_eq!(idx::parse_images_bytes(&b, origin()).unwrap().pixels.len(), 60);
        } else {
            prop_assert!(names_the_file(idx::parse_images_bytes(&damaged(b, edits, None), origin())));
        }
    }
}
