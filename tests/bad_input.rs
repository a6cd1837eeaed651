//! Bad input from outside: every case gives an error naming the file and the problem, never a
//! panic, and nothing large is allocated on a header's word alone.

mod common;

use common::{bin, one_line_error, small_model, temp_dir};
use ferrograd::artifacts::ModelFile;
use ferrograd::data::{cifar, idx, parse_digits_csv};
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;

fn origin() -> &'static Path {
    Path::new("some/file.bin")
}

fn err_of<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.unwrap_err())
}

fn images(n: usize) -> Vec<u8> {
    idx::encode(&[n, 28, 28], &vec![7u8; n * 784])
}

#[test]
fn idx_wrong_magic() {
    let mut b = images(2);
    b[2] = 0x0d; // a float type code
    let e = err_of(idx::parse_images_bytes(&b, origin()));
    assert!(e.contains("some/file.bin") && e.contains("magic"), "{e}");
}

#[test]
fn idx_wrong_dimension_count() {
    let b = idx::encode(&[2, 28 * 28], &vec![0u8; 2 * 784]);
    let e = err_of(idx::parse_images_bytes(&b, origin()));
    assert!(
        e.contains("some/file.bin") && e.contains("3 dimension"),
        "{e}"
    );
}

#[test]
fn idx_truncated_data() {
    let b = images(3);
    let e = err_of(idx::parse_images_bytes(&b[..b.len() - 100], origin()));
    assert!(
        e.contains("some/file.bin") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn idx_header_claiming_gigabytes_is_refused_or_costs_nothing() {
    // 10,000,000 images of 4096×4096: refused by the size checks before reading anything.
    let b = idx::encode(&[10_000_000, 4096, 4096], &[1, 2, 3]);
    let e = err_of(idx::parse_images_bytes(&b, origin()));
    assert!(e.contains("some/file.bin"), "{e}");
    // 1 GiB of pixels is 5 GiB decoded: over the default memory budget, refused by name.
    let b = idx::encode(&[1024, 1024, 1024], &[1, 2, 3]);
    let e = err_of(idx::parse_images_bytes(&b, origin()));
    assert!(e.contains("FERROGRAD_MAX_DATA_MEMORY"), "{e}");
    // A header within the budget (512 MiB) over 3 bytes: reported as truncated; the untouched
    // reservation costs no memory.
    let b = idx::encode(&[512, 1024, 1024], &[1, 2, 3]);
    let e = err_of(idx::parse_images_bytes(&b, origin()));
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn idx_corrupt_gzip() {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&images(2)).unwrap();
    let mut b = gz.finish().unwrap();
    // Damage the deflate stream between the 10-byte gzip header and the 8-byte trailer.
    let end = b.len() - 8;
    for x in &mut b[12..end] {
        *x ^= 0x5a;
    }
    let e = err_of(idx::parse_images_bytes(&b, origin()));
    assert!(e.contains("some/file.bin"), "{e}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn idx_label_count_differs_from_image_count() {
    let dir = temp_dir("count");
    write(&dir, "train-images-idx3-ubyte", &images(3));
    write(&dir, "train-labels-idx1-ubyte", &idx::encode(&[2], &[1, 2]));
    let e = err_of(ferrograd::data::load_idx_pair(
        ferrograd::data::DatasetName::Mnist,
        &dir,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        255.0,
        &mut ferrograd::limits::DataBudget::new(1 << 30),
    ));
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("2 labels for 3 images"),
        "{e}"
    );
}

#[test]
fn idx_labels_of_ten_or_more() {
    let b = idx::encode(&[3], &[1, 10, 2]);
    let e = err_of(idx::parse_labels_bytes(&b, 10, origin()));
    assert!(e.contains("some/file.bin") && e.contains("label 10"), "{e}");
}

#[test]
fn cifar_size_not_a_multiple_of_the_record() {
    let e = err_of(cifar::parse(&vec![0u8; 3073 * 2 + 5], origin(), 255.0));
    assert!(e.contains("some/file.bin") && e.contains("3073"), "{e}");
}

#[test]
fn cifar_label_above_nine() {
    let mut b = cifar::encode(&[(3, vec![0; 3072]), (4, vec![0; 3072])]);
    b[3073] = 11;
    let e = err_of(cifar::parse(&b, origin(), 255.0));
    assert!(
        e.contains("some/file.bin") && e.contains("record 1") && e.contains("label 11"),
        "{e}"
    );
}

#[test]
fn digits_csv_with_a_bad_field_count_or_a_non_number() {
    let row = |n: usize| {
        (0..n)
            .map(|i| (i % 10).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let e = err_of(parse_digits_csv(
        &format!("{}\n{}\n", row(65), row(64)),
        "my.csv",
        16.0,
    ));
    assert!(
        e.contains("my.csv") && e.contains("line 2") && e.contains("64 fields"),
        "{e}"
    );
    let bad = row(65).replacen('3', "x", 1);
    let e = err_of(parse_digits_csv(&bad, "my.csv", 16.0));
    assert!(
        e.contains("my.csv") && e.contains("not a whole number"),
        "{e}"
    );
}

#[test]
fn a_valid_small_model_round_trips() {
    let m = small_model();
    assert_eq!(
        ModelFile::from_bytes(&m.to_bytes().unwrap(), origin()).unwrap(),
        m
    );
}

#[test]
fn model_random_bytes() {
    let bytes: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = err_of(ModelFile::from_bytes(&bytes, origin()));
    assert!(
        e.contains("some/file.bin") && e.contains("not a ferrograd model"),
        "{e}"
    );
}

#[test]
fn model_truncated() {
    let b = small_model().to_bytes().unwrap();
    let e = err_of(ModelFile::from_bytes(&b[..b.len() - 7], origin()));
    assert!(e.contains("some/file.bin"), "{e}");
}

#[test]
fn model_wrong_format_version() {
    let mut m = small_model();
    m.format_version = 2;
    let e = err_of(ModelFile::from_bytes(&m.to_bytes().unwrap(), origin()));
    assert!(e.contains("version 2"), "{e}");
}

#[test]
fn model_shapes_that_do_not_fit_the_architecture() {
    let mut m = small_model();
    m.layers[1].weight_shape = vec![2, 3];
    let e = err_of(ModelFile::from_bytes(&m.to_bytes().unwrap(), origin()));
    assert!(e.contains("layer 1"), "{e}");
    let mut m = small_model();
    m.layers[0].bias.pop();
    let e = err_of(ModelFile::from_bytes(&m.to_bytes().unwrap(), origin()));
    assert!(e.contains("layer 0"), "{e}");
}

#[test]
fn model_claiming_gigabytes_is_refused_without_allocating_them() {
    // An architecture of 1,000,000 × 1,000,000 weights (4 TB), with a few bytes of data.
    let mut m = small_model();
    m.architecture = vec![1_000_000, 1_000_000];
    m.layers.truncate(1);
    let e = err_of(ModelFile::from_bytes(&m.to_bytes().unwrap(), origin()));
    assert!(e.contains("too large") || e.contains("implausible"), "{e}");
    // A MessagePack array header promising 4 billion floats, then nothing.
    let mut b = small_model().to_bytes().unwrap();
    let pos = b.windows(6).position(|w| w == b"weight").unwrap() + 6;
    b.truncate(pos);
    b.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    let e = err_of(ModelFile::from_bytes(&b, origin()));
    assert!(e.contains("some/file.bin"), "{e}");
}

#[test]
fn predict_with_a_corrupt_model_file_is_one_line_and_no_panic() {
    let dir = temp_dir("predict");
    let path = dir.join("model.msgpack");
    std::fs::write(&path, b"\x93\x01\x02garbage").unwrap();
    let out = bin()
        .args(["predict", "--model"])
        .arg(&path)
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(
        err.contains("model.msgpack") && !err.contains("panicked"),
        "{err}"
    );
}
