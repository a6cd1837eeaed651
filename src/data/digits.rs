//! The UCI optical handwritten digits (1,797 images of 8×8, pixel values 0..16), compiled into
//! the binary: parsing the CSV and the fixed training/test split.

use super::registry::DatasetName;
use super::Dataset;
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use ndarray::Array2;
use std::io::Read;

/// The UCI digits set (1,797 images of 8×8), compiled into the binary.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Every `DIGITS_TEST_EVERY`-th row of the digits file (rows 5, 10, 15, … counting from 1) is
/// a test image: 359 of 1,797, a fixed split anyone can reproduce. The rows are ordered by
/// writer, so an interleaved split shares writers between training and test, like the usual
/// random splits of this set; the last 20% (unseen writers) is a harder test (report.md).
pub const DIGITS_TEST_EVERY: usize = 5;

/// Largest raw pixel value of the digits (their 4×4 blocks count set pixels of 32×32 bitmaps).
const MAX_PIXEL: u32 = 16;

/// Parses the UCI digits CSV (64 pixel values in 0..16, then the label, per row); each pixel
/// becomes `value / divisor`.
pub fn parse_digits_csv(text: &str, origin: &str, divisor: f32) -> Result<Dataset> {
    let spec = DatasetName::Digits.spec();
    let [height, width] = spec.image;
    let pixels = height * width;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != pixels + 1 {
            bail!(
                "{origin}: line {}: {} fields, expected {}",
                i + 1,
                fields.len(),
                pixels + 1
            );
        }
        for (j, f) in fields.iter().enumerate() {
            let v: u32 = f.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "{origin}: line {}: field {} ({f:?}) is not a whole number",
                    i + 1,
                    j + 1
                )
            })?;
            if j < pixels {
                if v > MAX_PIXEL {
                    bail!("{origin}: line {}: pixel {v} outside 0..16", i + 1);
                }
                features.push(v as f32 / divisor);
            } else {
                if v as usize >= spec.classes.len() {
                    bail!("{origin}: line {}: label {v} outside 0..9", i + 1);
                }
                labels.push(v as usize);
            }
        }
    }
    let n = labels.len();
    Ok(Dataset {
        name: DatasetName::Digits,
        features: Array2::from_shape_vec((n, pixels), features).expect("64 per row"),
        labels,
        height,
        width,
        classes: spec.class_names(),
    })
}

/// The embedded digits, each pixel divided by `divisor`: 1,438 training and 359 test images
/// (see [`DIGITS_TEST_EVERY`]).
pub fn load_digits_scaled(divisor: f32) -> Result<(Dataset, Dataset)> {
    let mut text = String::new();
    GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .context("embedded digits.csv.gz: cannot decompress")?;
    let all = parse_digits_csv(&text, "embedded digits.csv.gz", divisor)?;
    let (test, train): (Vec<usize>, Vec<usize>) =
        (0..all.len()).partition(|i| (i + 1) % DIGITS_TEST_EVERY == 0);
    Ok((all.subset(&train), all.subset(&test)))
}

/// The embedded digits with the registry's normalisation (see [`load_digits_scaled`]).
pub fn load_digits() -> Result<(Dataset, Dataset)> {
    load_digits_scaled(DatasetName::Digits.spec().scaling.divisor)
}
