//! IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic, then one
//! `u32` per dimension) followed by `u8` data. Files may be gzip-compressed; compression is
//! detected from the content (gzip magic `1f 8b`), not the file name.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use ndarray::Array1;

use super::{data_err, Dataset, Normalizer};
use crate::error::{Error, Result};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;
/// MNIST and Fashion-MNIST both have ten classes.
const IDX_CLASSES: usize = 10;

/// Images read from an IDX file, row-major `count x rows x cols` bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `count * rows * cols` pixels.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (magic `0x00000803`), raw or gzip.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gz(path, IMAGES_MAGIC, 3)?;
    let dims = parse_header(path, &bytes, IMAGES_MAGIC, 3)?;
    let pixels = take_body(path, bytes, &dims)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Reads an IDX label file (magic `0x00000801`), raw or gzip.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path, LABELS_MAGIC, 1)?;
    let dims = parse_header(path, &bytes, LABELS_MAGIC, 1)?;
    take_body(path, bytes, &dims)
}

/// Loads `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]` from `dir`
/// (`prefix` is `train` or `t10k` in the MNIST distributions) as a 10-class dataset named
/// `{normalizer dataset}-{prefix}`.
pub fn load_idx_split(dir: &Path, prefix: &str, norm: &Normalizer) -> Result<Dataset> {
    let images_path = require(dir, prefix, "images-idx3")?;
    let labels_path = require(dir, prefix, "labels-idx1")?;
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    if images.count != labels.len() {
        return Err(data_err(
            images_path.display(),
            format!(
                "{} images but {} labels in {}",
                images.count,
                labels.len(),
                labels_path.display()
            ),
        ));
    }
    if images.count == 0 {
        return Err(data_err(
            images_path.display(),
            "holds 0 images; a dataset needs at least one",
        ));
    }
    let shape = [images.count, 1, images.rows, images.cols];
    let pixels = norm.normalize_u8(&images.pixels, shape)?;
    let labels = Array1::from_iter(labels.iter().map(|&l| i64::from(l)));
    let name = format!("{}-{prefix}", norm.dataset());
    // Label range errors should point at the labels file, not just the dataset.
    Dataset::new(pixels, labels, IDX_CLASSES, name)
        .map_err(|e| data_err(labels_path.display(), e.to_string()))
}

/// The file names accepted for one IDX file: the `-idx3-ubyte` spelling of the original
/// distribution and the `.idx3-ubyte` one of some mirrors, each raw or gzip.
pub(crate) fn candidates(prefix: &str, kind: &str) -> Vec<String> {
    let dotted = kind.replacen('-', ".", 1);
    [
        format!("{prefix}-{kind}-ubyte"),
        format!("{prefix}-{kind}-ubyte.gz"),
        format!("{prefix}-{dotted}-ubyte"),
        format!("{prefix}-{dotted}-ubyte.gz"),
    ]
    .into()
}

/// The first existing candidate file in `dir`.
pub(crate) fn locate(dir: &Path, prefix: &str, kind: &str) -> Option<PathBuf> {
    candidates(prefix, kind)
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn require(dir: &Path, prefix: &str, kind: &str) -> Result<PathBuf> {
    locate(dir, prefix, kind).ok_or_else(|| {
        data_err(
            dir.display(),
            format!("missing {prefix}-{kind}-ubyte (raw or .gz)"),
        )
    })
}

/// The whole file, decompressed when it starts with the gzip magic. Decompression stops one
/// byte past the size the header announces (enough to report trailing bytes), so a small
/// hostile file (a "gzip bomb") cannot expand into more memory than the data it claims to hold.
fn read_maybe_gz(path: &Path, magic: u32, ndim: usize) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let corrupt = |e: std::io::Error| {
        data_err(
            path.display(),
            format!("corrupt or truncated gzip data: {e}"),
        )
    };
    let header_len = 4 + 4 * ndim;
    let mut decoder = MultiGzDecoder::new(raw.as_slice());
    let mut out = Vec::with_capacity(header_len);
    (&mut decoder)
        .take(header_len as u64)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    let dims = parse_header(path, &out, magic, ndim)?;
    // A body too large to count is reported by `take_body` without reading it.
    if let Some(body) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        decoder
            .take((body as u64).saturating_add(1))
            .read_to_end(&mut out)
            .map_err(corrupt)?;
    }
    Ok(out)
}

/// Checks the magic number and returns the dimensions.
fn parse_header(path: &Path, bytes: &[u8], magic: u32, ndim: usize) -> Result<Vec<usize>> {
    let header_len = 4 + 4 * ndim;
    let truncated = || {
        data_err(
            path.display(),
            format!(
                "truncated IDX header: expected {header_len} bytes, found {}",
                bytes.len()
            ),
        )
    };
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    // The magic comes first so that a wrong kind of file is reported as such even when short.
    let found = word(0).ok_or_else(truncated)?;
    if found != magic {
        let kind = if magic == IMAGES_MAGIC {
            "u8 images, 3 dimensions"
        } else {
            "u8 labels, 1 dimension"
        };
        return Err(data_err(
            path.display(),
            format!("bad IDX magic 0x{found:08x}, expected 0x{magic:08x} ({kind})"),
        ));
    }
    (1..=ndim)
        .map(|i| word(i).map(|d| d as usize).ok_or_else(truncated))
        .collect()
}

/// Strips the header, checking the body holds exactly the announced number of bytes.
fn take_body(path: &Path, mut bytes: Vec<u8>, dims: &[usize]) -> Result<Vec<u8>> {
    let header_len = 4 + 4 * dims.len();
    let body: Option<usize> = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let expected = body.and_then(|b| b.checked_add(header_len));
    if expected != Some(bytes.len()) {
        let what = if expected.is_some_and(|e| e > bytes.len()) || expected.is_none() {
            "truncated IDX file"
        } else {
            "IDX file has trailing bytes"
        };
        return Err(data_err(
            path.display(),
            format!(
                "{what}: header {dims:?} needs {} bytes, found {}",
                expected.map_or_else(|| "more than usize::MAX".into(), |e| e.to_string()),
                bytes.len()
            ),
        ));
    }
    bytes.drain(..header_len);
    Ok(bytes)
}
