//! Property-based fuzzing of everything that reads bytes from outside: the IDX parser, the
//! CIFAR parser and the model loader must return `Ok` or an error naming the file — never
//! panic — on random bytes and on valid files with random damage.
//!
//! CI runs the default number of cases; a long run: `PROPTEST_CASES=200000 cargo test --release
//! --test fuzz` (see the issue notes for how long each ran and what it found).

mod common;

use ferrograd::artifacts::ModelFile;
use ferrograd::data::{cifar, idx};
use proptest::prelude::*;
use std::path::Path;

fn origin() -> &'static Path {
    Path::new("fuzzed.bin")
}

fn valid_images() -> Vec<u8> {
    idx::encode(&[3, 5, 4], &(0..60u8).collect::<Vec<_>>())
}

fn valid_model() -> Vec<u8> {
    common::small_model().to_bytes().unwrap()
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
        prop_assert!(names_the_file(idx::parse_images_bytes(&bytes, origin())));
        prop_assert!(names_the_file(idx::parse_labels_bytes(&bytes, 10, origin())));
    }

    #[test]
    fn idx_parser_on_damaged_files(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
        compressed in any::<bool>(),
    ) {
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
        prop_assert!(names_the_file(cifar::parse(&bytes, origin())));
        let valid = cifar::encode(&[(1, vec![9; 3072]), (2, vec![200; 3072])]);
        prop_assert!(names_the_file(cifar::parse(&damaged(valid, edits, cut), origin())));
    }

    #[test]
    fn model_loader_on_random_and_damaged_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
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
}
