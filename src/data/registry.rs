//! The dataset registry: one [`DatasetSpec`] per dataset, holding every fact the rest of the
//! crate needs about it — its names, folder, file format, download mirrors with checksums,
//! image shape and colour conversion, class names, and how raw pixel values become features.
//! Lookup, download, the terminal prompt, `--help`, model files and loading all read it, so a
//! new dataset is one entry here plus one [`DatasetName`] variant.

use super::download::Checksum;
use crate::artifacts::Normalisation;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The datasets ferrograd knows: the name users type (`--dataset`, the prompt, model files).
/// Every fact about one is in its [`spec`](DatasetName::spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    /// MNIST handwritten digits.
    Mnist,
    /// Fashion-MNIST clothing images.
    Fashion,
    /// CIFAR-10, turned grayscale.
    Cifar10,
    /// The UCI optical handwritten digits, embedded in the binary.
    Digits,
}

/// How a dataset's files are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Four IDX files ([`IDX_FILES`]), each optionally gzipped.
    Idx,
    /// CIFAR-10's binary batches, unpacked from one archive (see [`super::cifar`]).
    CifarBinary,
    /// The UCI digits CSV compiled into the binary (see [`super::digits`]).
    EmbeddedCsv,
}

/// How many colour channels the raw images have, and how they become one gray value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// One channel, used as it is.
    Gray,
    /// Red, green and blue planes, turned gray with ITU-R BT.601 luma
    /// `Y = 0.299 R + 0.587 G + 0.114 B` ([`super::cifar::luma`]).
    RgbToLuma,
}

/// How raw pixel values become features: `feature = raw / divisor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaling {
    /// What the raw values are (recorded in model files, compared when a model is applied).
    pub kind: &'static str,
    /// The divisor that maps the raw range onto [0, 1].
    pub divisor: f32,
}

/// Where a dataset is downloaded from.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// Base addresses tried in order (`<mirror>/<file>`); `$FERROGRAD_MIRROR` replaces them.
    pub mirrors: &'static [&'static str],
    /// The files fetched, with their published checksums.
    pub files: &'static [(&'static str, Checksum)],
}

/// Everything ferrograd knows about one dataset.
#[derive(Clone, Copy, Debug)]
pub struct DatasetSpec {
    /// The dataset this describes.
    pub name: DatasetName,
    /// The short name used on the command line, in file names and in model files.
    pub id: &'static str,
    /// Other names accepted on the command line and at the prompt.
    pub aliases: &'static [&'static str],
    /// One line for `--help` and the prompt.
    pub description: &'static str,
    /// The folder its files live in (`data/<folder>/`, `/usr/share/datasets/<folder>/`).
    pub folder: &'static str,
    /// How its files are laid out.
    pub format: Format,
    /// `[height, width]` of its images (IDX files carry their own, which loading uses).
    pub image: [usize; 2],
    /// Raw channels and the gray conversion.
    pub colour: Colour,
    /// Class names, by label.
    pub classes: &'static [&'static str],
    /// How raw values become features.
    pub scaling: Scaling,
    /// Download mirrors and checksums; `None` for embedded data.
    pub source: Option<Source>,
}

/// The file names of an IDX dataset, training images and labels, then test images and labels.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

const DIGIT_CLASSES: &[&str] = &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// 8-bit pixels: what MNIST, Fashion-MNIST and CIFAR-10 (after luma) hold.
const U8_PIXELS: Scaling = Scaling {
    kind: "u8 pixels",
    divisor: 255.0,
};

const MNIST: DatasetSpec = DatasetSpec {
    name: DatasetName::Mnist,
    id: "mnist",
    aliases: &[],
    description: "MNIST handwritten digits, 28×28",
    folder: "mnist",
    format: Format::Idx,
    image: [28, 28],
    colour: Colour::Gray,
    classes: DIGIT_CLASSES,
    scaling: U8_PIXELS,
    // sha256 of the original files (see ../shared/data/README.md).
    source: Some(Source {
        mirrors: &["https://ossci-datasets.s3.amazonaws.com/mnist"],
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                Checksum::Sha256(
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                ),
            ),
            (
                "train-labels-idx1-ubyte.gz",
                Checksum::Sha256(
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                ),
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                Checksum::Sha256(
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                ),
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                Checksum::Sha256(
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
            ),
        ],
    }),
};

const FASHION: DatasetSpec = DatasetSpec {
    name: DatasetName::Fashion,
    id: "fashion",
    aliases: &["fashion-mnist"],
    description: "Fashion-MNIST clothing images, 28×28",
    folder: "fashion-mnist",
    format: Format::Idx,
    image: [28, 28],
    colour: Colour::Gray,
    classes: &[
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    scaling: U8_PIXELS,
    // md5 as Zalando Research publishes them.
    source: Some(Source {
        mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"],
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                Checksum::Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ),
            (
                "train-labels-idx1-ubyte.gz",
                Checksum::Md5("25c81989df183df01b3e8a0aad5dffbe"),
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                Checksum::Md5("bef4ecab320f06d8554ea6380940ec79"),
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                Checksum::Md5("bb300cfdad3c16e7a12a480ee83cd310"),
            ),
        ],
    }),
};

const CIFAR10: DatasetSpec = DatasetSpec {
    name: DatasetName::Cifar10,
    id: "cifar10",
    aliases: &[],
    description: "CIFAR-10, 32×32 colour turned grayscale",
    folder: "cifar10",
    format: Format::CifarBinary,
    image: [32, 32],
    colour: Colour::RgbToLuma,
    classes: &[
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
    scaling: U8_PIXELS,
    // md5 as the CIFAR page publishes it.
    source: Some(Source {
        mirrors: &["https://www.cs.toronto.edu/~kriz"],
        files: &[(
            "cifar-10-binary.tar.gz",
            Checksum::Md5("c32a1d4ab5d03f1284b67883e8d87530"),
        )],
    }),
};

const DIGITS: DatasetSpec = DatasetSpec {
    name: DatasetName::Digits,
    id: "digits",
    aliases: &[],
    description: "UCI optical handwritten digits, 8×8, embedded in the binary",
    folder: "digits",
    format: Format::EmbeddedCsv,
    image: [8, 8],
    colour: Colour::Gray,
    classes: DIGIT_CLASSES,
    scaling: Scaling {
        kind: "digits 0..16",
        divisor: 16.0,
    },
    source: None,
};

impl DatasetName {
    /// Every dataset, in the order menus list them (the prompt's numbers are these, from 1).
    pub const ALL: [DatasetName; 4] = [
        DatasetName::Mnist,
        DatasetName::Fashion,
        DatasetName::Cifar10,
        DatasetName::Digits,
    ];

    /// Everything known about this dataset.
    pub fn spec(self) -> &'static DatasetSpec {
        match self {
            DatasetName::Mnist => &MNIST,
            DatasetName::Fashion => &FASHION,
            DatasetName::Cifar10 => &CIFAR10,
            DatasetName::Digits => &DIGITS,
        }
    }

    /// The short name used in file names and on the command line.
    pub fn as_str(self) -> &'static str {
        self.spec().id
    }

    /// The folder its files live in (`data/<folder>/`, `/usr/share/datasets/<folder>/`).
    pub fn folder(self) -> &'static str {
        self.spec().folder
    }

    /// Parses a short name or an alias, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<DatasetName> {
        DatasetName::ALL.into_iter().find(|d| {
            let spec = d.spec();
            std::iter::once(&spec.id)
                .chain(spec.aliases)
                .any(|n| n.eq_ignore_ascii_case(s))
        })
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--dataset`'s values, aliases and help lines, from the registry.
#[cfg(feature = "cli")]
impl clap::ValueEnum for DatasetName {
    fn value_variants<'a>() -> &'a [Self] {
        &DatasetName::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let spec = self.spec();
        Some(
            clap::builder::PossibleValue::new(spec.id)
                .help(spec.description)
                .aliases(spec.aliases.iter().copied()),
        )
    }
}

impl Scaling {
    /// The record written into model files.
    pub fn to_file(self) -> Normalisation {
        Normalisation {
            kind: self.kind.into(),
            divisor: self.divisor,
        }
    }
}

impl DatasetSpec {
    /// Class names, by label, as owned strings (what [`super::Dataset`] holds).
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.to_string()).collect()
    }

    /// The divisor that turns this dataset's raw values into the inputs a model recorded
    /// (`model` read from `origin`) was trained on.
    ///
    /// A model records how its training pixels became inputs. When it describes the same
    /// kind of raw values as this dataset's, its own divisor is applied — even when it is not
    /// this dataset's usual one — because that reproduces the inputs the model learnt from.
    /// A different kind (a model of 0..16 digits on 8-bit pixels) has no meaningful
    /// conversion, so it is refused; so is a divisor so small that pixels become infinite.
    pub fn divisor_for(&self, model: &Normalisation, origin: &Path) -> Result<f32> {
        if model.kind != self.scaling.kind {
            bail!(
                "{}: the model's inputs are {:?} divided by {}, {}'s raw values are {:?}: its normalisation does not apply to this dataset",
                origin.display(),
                model.kind,
                model.divisor,
                self.id,
                self.scaling.kind
            );
        }
        // The raw range's top over the model's divisor: infinite inputs would give NaN scores.
        if !(self.scaling.divisor / model.divisor).is_finite() {
            bail!(
                "{}: normalisation divisor {} turns {}'s pixels into infinite inputs",
                origin.display(),
                model.divisor,
                self.id
            );
        }
        Ok(model.divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_spec_is_filed_under_its_own_name_and_serde_agrees() {
        for d in DatasetName::ALL {
            assert_eq!(d.spec().name, d);
            assert_eq!(DatasetName::parse(d.spec().id), Some(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.spec().id));
        }
    }

    #[test]
    fn parse_takes_aliases_and_any_case_but_nothing_else() {
        assert_eq!(
            DatasetName::parse("Fashion-MNIST"),
            Some(DatasetName::Fashion)
        );
        assert_eq!(DatasetName::parse("CIFAR10"), Some(DatasetName::Cifar10));
        for bad in ["", "mnist ", "fashion_mnist", "cifar", "digits2"] {
            assert_eq!(DatasetName::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_model_of_another_kind_of_pixels_is_refused_naming_the_file() {
        let digits = DatasetName::Digits.spec();
        let mnist_model = DatasetName::Mnist.spec().scaling.to_file();
        let e = digits
            .divisor_for(&mnist_model, Path::new("m.msgpack"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.msgpack: ") && e.contains("digits 0..16"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let own = digits.scaling.to_file();
        assert_eq!(digits.divisor_for(&own, Path::new("m")).unwrap(), 16.0);
        let rescaled = Normalisation {
            divisor: 8.0,
            ..own
        };
        assert_eq!(digits.divisor_for(&rescaled, Path::new("m")).unwrap(), 8.0);
        let tiny = Normalisation {
            divisor: 1e-38,
            ..digits.scaling.to_file()
        };
        let e = digits.divisor_for(&tiny, Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("infinite inputs"), "{e}");
    }
}
