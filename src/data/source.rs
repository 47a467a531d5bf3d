//! Named benchmark datasets: where their files are, and loading both splits.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{cifar, data_err, idx, Dataset, Normalizer};
use crate::error::{Error, Result};

/// Environment variable naming a data folder: either the dataset's folder itself or a folder
/// holding one subfolder per dataset (`fashion-mnist`, `mnist`, `cifar10`).
pub const DATA_ENV: &str = "DDLENS_DATA";
/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The benchmarks ddlens can load from their standard files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// Fashion-MNIST (Zalando): 1 x 28 x 28, 10 classes, gzip IDX files.
    FashionMnist,
    /// MNIST digits: 1 x 28 x 28, 10 classes, IDX files.
    Mnist,
    /// CIFAR-10: 3 x 32 x 32, 10 classes, binary batches.
    Cifar10,
}

/// A train or test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

/// Both splits of a dataset.
#[derive(Debug, Clone)]
pub struct Splits {
    /// The training split.
    pub train: Dataset,
    /// The test split.
    pub test: Dataset,
}

impl DatasetName {
    /// Every known dataset.
    pub const ALL: [DatasetName; 3] = [
        DatasetName::FashionMnist,
        DatasetName::Mnist,
        DatasetName::Cifar10,
    ];

    /// The benchmark a split was loaded from, by its name (`fashion-mnist-train`,
    /// `cifar10-test`, or the bare benchmark name), if any: how a dataset handed over by a
    /// caller is matched to its benchmark's augmentation and normalisation.
    pub fn of_split(name: &str) -> Option<DatasetName> {
        let base = name
            .strip_suffix("-train")
            .or_else(|| name.strip_suffix("-test"))
            .unwrap_or(name);
        base.parse().ok()
    }

    /// Canonical name: `fashion-mnist`, `mnist` or `cifar10`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::Cifar10 => "cifar10",
        }
    }

    /// The standard normalisation constants.
    pub fn normalizer(self) -> Normalizer {
        match self {
            DatasetName::FashionMnist => Normalizer::fashion_mnist(),
            DatasetName::Mnist => Normalizer::mnist(),
            DatasetName::Cifar10 => Normalizer::cifar10(),
        }
    }

    /// Shape `[C, H, W]` of one example.
    pub fn input_shape(self) -> [usize; 3] {
        match self {
            DatasetName::FashionMnist | DatasetName::Mnist => [1, 28, 28],
            DatasetName::Cifar10 => [3, 32, 32],
        }
    }

    /// Number of classes (10 for all three).
    pub fn num_classes(self) -> usize {
        10
    }

    /// The name of each class, by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetName::FashionMnist => &[
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
            DatasetName::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetName::Cifar10 => &[
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
        }
    }

    /// [`DatasetName::class_names`] of the dataset called `name` (a benchmark name or one of
    /// its split names), if it is one.
    pub fn class_names_of(name: &str) -> Option<&'static [&'static str]> {
        name.parse::<DatasetName>()
            .ok()
            .or_else(|| DatasetName::of_split(name))
            .map(DatasetName::class_names)
    }

    /// Names of the files a data folder must hold.
    pub fn required_files(self) -> Vec<String> {
        match self {
            DatasetName::FashionMnist | DatasetName::Mnist => ["train", "t10k"]
                .iter()
                .flat_map(|p| {
                    [
                        format!("{p}-images-idx3-ubyte"),
                        format!("{p}-labels-idx1-ubyte"),
                    ]
                })
                .map(|f| format!("{f}[.gz]"))
                .collect(),
            DatasetName::Cifar10 => [Split::Train, Split::Test]
                .into_iter()
                .flat_map(cifar::split_files)
                .map(String::from)
                .collect(),
        }
    }

    /// Files of [`Self::required_files`] that `dir` lacks.
    fn missing_files(self, dir: &Path) -> Vec<String> {
        match self {
            DatasetName::FashionMnist | DatasetName::Mnist => ["train", "t10k"]
                .iter()
                .flat_map(|p| [(*p, "images-idx3"), (*p, "labels-idx1")])
                .filter(|(p, k)| idx::locate(dir, p, k).is_none())
                .map(|(p, k)| format!("{p}-{k}-ubyte[.gz]"))
                .collect(),
            DatasetName::Cifar10 => {
                let dir = cifar::batches_dir(dir);
                [Split::Train, Split::Test]
                    .into_iter()
                    .flat_map(cifar::split_files)
                    .filter(|f| !dir.join(f).is_file())
                    .map(String::from)
                    .collect()
            }
        }
    }

    /// How to obtain the files, for error messages.
    fn fix(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => {
                "install the Debian package `dataset-fashion-mnist` (files in \
                 /usr/share/datasets/fashion-mnist), or put the four IDX files of \
                 https://github.com/zalandoresearch/fashion-mnist in a folder and pass it \
                 (or set DDLENS_DATA)"
            }
            DatasetName::Mnist => {
                "put the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) in a folder and \
                 pass it (or set DDLENS_DATA)"
            }
            DatasetName::Cifar10 => {
                "extract cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) \
                 and pass the folder (or set DDLENS_DATA)"
            }
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = Error;

    /// Accepts the canonical names and common spellings, ignoring case, `-` and `_`
    /// (`fashion-mnist`, `FashionMNIST`, `fmnist`, `mnist`, `cifar10`, `CIFAR-10`).
    fn from_str(s: &str) -> Result<DatasetName> {
        let key: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "fashionmnist" | "fmnist" => Ok(DatasetName::FashionMnist),
            "mnist" => Ok(DatasetName::Mnist),
            "cifar10" => Ok(DatasetName::Cifar10),
            _ => Err(Error::invalid(
                "dataset",
                format!("unknown dataset `{s}`; known: fashion-mnist, mnist, cifar10"),
            )),
        }
    }
}

impl Split {
    /// `train` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// File-name prefix of the split in the MNIST IDX distributions (`train`, `t10k`).
    pub fn idx_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The folder `load` reads when none is given: with `DDLENS_DATA` set, its subfolder named
/// after the dataset if that exists, else `DDLENS_DATA` itself; without it, the Debian
/// location for Fashion-MNIST and `None` for the others.
pub fn default_dir(name: DatasetName) -> Option<PathBuf> {
    if let Some(root) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        let root = PathBuf::from(root);
        let sub = root.join(name.as_str());
        return Some(if sub.is_dir() { sub } else { root });
    }
    match name {
        DatasetName::FashionMnist => Some(PathBuf::from(DEBIAN_FASHION_MNIST)),
        DatasetName::Mnist | DatasetName::Cifar10 => None,
    }
}

/// Loads both splits of a benchmark, normalised with its standard constants, from `dir` or
/// from [`default_dir`]. Splits are named `{dataset}-train` and `{dataset}-test`.
pub fn load(name: DatasetName, dir: Option<&Path>) -> Result<Splits> {
    let dir = match dir.map(Path::to_path_buf).or_else(|| default_dir(name)) {
        Some(dir) => dir,
        None => {
            return Err(data_err(
                name,
                format!(
                    "no data folder given and {DATA_ENV} is not set; {}",
                    name.fix()
                ),
            ))
        }
    };
    check_folder(name, &dir)?;
    let norm = name.normalizer();
    let one = |split: Split| -> Result<Dataset> {
        let data = match name {
            DatasetName::FashionMnist | DatasetName::Mnist => {
                idx::load_idx_split(&dir, split.idx_prefix(), &norm)?
            }
            DatasetName::Cifar10 => cifar::load_cifar10_split(&dir, split, &norm)?,
        };
        Ok(data.with_name(format!("{name}-{split}")))
    };
    Ok(Splits {
        train: one(Split::Train)?,
        test: one(Split::Test)?,
    })
}

/// Fails with the folder, the missing files and the fix when `dir` lacks files.
fn check_folder(name: DatasetName, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(data_err(
            dir.display(),
            format!("{name} data folder does not exist; {}", name.fix()),
        ));
    }
    let missing = name.missing_files(dir);
    if missing.is_empty() {
        return Ok(());
    }
    Err(data_err(
        dir.display(),
        format!(
            "{name} data folder lacks {}; {}",
            missing.join(", "),
            name.fix()
        ),
    ))
}
