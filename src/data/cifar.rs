//! CIFAR-10 binary batches (`data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`): each
//! record is one label byte followed by 3072 pixel bytes, channel-major (1024 red, 1024 green,
//! 1024 blue, each 32 x 32 row-major).

use std::path::{Path, PathBuf};

use ndarray::Array1;

use super::{data_err, Dataset, Normalizer, Split};
use crate::error::{Error, Result};

/// Bytes per CIFAR-10 record: 1 label + 3 x 32 x 32 pixels.
pub const CIFAR10_RECORD_BYTES: usize = 1 + PIXELS;
const PIXELS: usize = 3 * 32 * 32;
const CLASSES: usize = 10;
/// The folder the official `cifar-10-binary.tar.gz` extracts to.
const TAR_FOLDER: &str = "cifar-10-batches-bin";

/// Reads one batch file: `(pixels, labels)` with pixels `N x 3 x 32 x 32` row-major.
pub fn read_cifar10_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() || bytes.len() % CIFAR10_RECORD_BYTES != 0 {
        return Err(data_err(
            path.display(),
            format!(
                "truncated or not a CIFAR-10 binary batch: {} bytes is not a positive multiple \
                 of the {CIFAR10_RECORD_BYTES}-byte record",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / CIFAR10_RECORD_BYTES;
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(CIFAR10_RECORD_BYTES).enumerate() {
        if usize::from(record[0]) >= CLASSES {
            return Err(data_err(
                path.display(),
                format!(
                    "record {i} has label {}, CIFAR-10 labels are 0..=9",
                    record[0]
                ),
            ));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// Loads the training (five batches, in order) or test split from `dir`, or from
/// `dir/cifar-10-batches-bin` when that is where the batches are. The dataset is named
/// `cifar10-train` or `cifar10-test`.
pub fn load_cifar10_split(dir: &Path, split: Split, norm: &Normalizer) -> Result<Dataset> {
    let dir = batches_dir(dir);
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in split_files(split) {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(data_err(
                dir.display(),
                format!("missing CIFAR-10 batch `{name}`"),
            ));
        }
        let (p, l) = read_cifar10_batch(&path)?;
        pixels.extend(p);
        labels.extend(l);
    }
    let n = labels.len();
    let images = norm.normalize_u8(&pixels, [n, 3, 32, 32])?;
    let labels = Array1::from_iter(labels.into_iter().map(i64::from));
    Dataset::new(images, labels, CLASSES, format!("cifar10-{split}"))
}

/// The batch file names of a split.
pub(crate) fn split_files(split: Split) -> Vec<&'static str> {
    match split {
        Split::Train => vec![
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
        Split::Test => vec!["test_batch.bin"],
    }
}

/// `dir/cifar-10-batches-bin` when it exists (the tarball was extracted into `dir`), else `dir`.
pub(crate) fn batches_dir(dir: &Path) -> PathBuf {
    let nested = dir.join(TAR_FOLDER);
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}
