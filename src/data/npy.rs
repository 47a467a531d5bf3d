//! Importing distilled sets saved with NumPy: an `images.npy` / `labels.npy` pair, or an
//! `.npz` archive with arrays `images`, `labels` and optionally `lr`.
//!
//! Images may be float32 or float64 (NumPy's default, converted), labels int64 or int32.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array4, ArrayD, Ix1, Ix4};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};
use zip::ZipArchive;

use super::distilled::{file_stem, infer_classes};
use super::{data_err, Dataset, DistilledMeta, DistilledSet};
use crate::error::{Error, Result};

/// Where one array is read from.
enum Source<'a> {
    Npy(&'a Path),
    Npz(&'a mut ZipArchive<File>),
}

/// Why reading one array as one element type failed.
enum Failure {
    /// The array exists with another dtype (its NumPy descriptor).
    WrongDtype(String),
    /// The archive has no such array.
    Missing,
    /// Anything else (I/O, corrupt header or data).
    Other(String),
}

impl DistilledSet {
    /// Imports `images.npy` (`N x C x H x W`, normalised) and `labels.npy`. `num_classes`
    /// defaults to the class count of `meta.dataset`, else max label + 1. The dataset is named
    /// after the images file.
    pub fn import_npy(
        images: &Path,
        labels: &Path,
        num_classes: Option<usize>,
        meta: DistilledMeta,
    ) -> Result<DistilledSet> {
        let image_array = read_images(&mut Source::Npy(images), images)?;
        let label_array = read_labels(&mut Source::Npy(labels), labels)?;
        if image_array.dim().0 != label_array.len() {
            return Err(data_err(
                images.display(),
                format!(
                    "{} images but {} labels in {}",
                    image_array.dim().0,
                    label_array.len(),
                    labels.display()
                ),
            ));
        }
        assemble(images, image_array, label_array, None, num_classes, meta)
    }

    /// Imports an `.npz` archive (`np.savez` or `np.savez_compressed`) with arrays `images`,
    /// `labels` and optionally `lr` (a scalar or one-element array).
    pub fn import_npz(
        path: &Path,
        num_classes: Option<usize>,
        meta: DistilledMeta,
    ) -> Result<DistilledSet> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = ZipArchive::new(file)
            .map_err(|e| data_err(path.display(), format!("not a valid .npz archive: {e}")))?;
        let images = read_images(&mut Source::Npz(&mut archive), path)?;
        let labels = read_labels(&mut Source::Npz(&mut archive), path)?;
        let lr = read_lr(&mut Source::Npz(&mut archive), path)?;
        assemble(path, images, labels, lr, num_classes, meta)
    }
}

fn assemble(
    path: &Path,
    images: Array4<f32>,
    labels: Array1<i64>,
    lr: Option<f32>,
    num_classes: Option<usize>,
    meta: DistilledMeta,
) -> Result<DistilledSet> {
    let in_file = |e: Error| data_err(path.display(), e.to_string());
    let num_classes = num_classes.unwrap_or_else(|| infer_classes(&meta, &labels));
    let data = Dataset::new(images, labels, num_classes, file_stem(path)).map_err(in_file)?;
    DistilledSet::new(data, lr, meta).map_err(in_file)
}

fn read_images(src: &mut Source, path: &Path) -> Result<Array4<f32>> {
    let array = read_float(src, "images", path)?.ok_or_else(|| missing("images", path))?;
    let shape = array.shape().to_vec();
    array.into_dimensionality::<Ix4>().map_err(|_| {
        data_err(
            path.display(),
            format!("array `images` has shape {shape:?}, expected rank 4 (N x C x H x W)"),
        )
    })
}

fn read_labels(src: &mut Source, path: &Path) -> Result<Array1<i64>> {
    let array = match read::<i64>(src, "labels") {
        Err(Failure::WrongDtype(_)) => read::<i32>(src, "labels").map(|a| a.mapv(i64::from)),
        other => other,
    };
    let array = match array {
        Ok(a) => a,
        Err(f) => return Err(failure(f, "labels", "int64 or int32", path)),
    };
    let shape = array.shape().to_vec();
    array.into_dimensionality::<Ix1>().map_err(|_| {
        data_err(
            path.display(),
            format!("array `labels` has shape {shape:?}, expected rank 1"),
        )
    })
}

fn read_lr(src: &mut Source, path: &Path) -> Result<Option<f32>> {
    let Some(array) = read_float(src, "lr", path)? else {
        return Ok(None);
    };
    if array.len() != 1 {
        return Err(data_err(
            path.display(),
            format!(
                "array `lr` has shape {:?}, expected a scalar",
                array.shape()
            ),
        ));
    }
    Ok(array.iter().next().copied())
}

/// Reads a float32 or float64 array; `None` when an archive lacks it.
fn read_float(src: &mut Source, name: &str, path: &Path) -> Result<Option<ArrayD<f32>>> {
    let array = match read::<f32>(src, name) {
        Err(Failure::WrongDtype(_)) => read::<f64>(src, name).map(|a| a.mapv(|v| v as f32)),
        other => other,
    };
    match array {
        Ok(a) => Ok(Some(a)),
        Err(Failure::Missing) => Ok(None),
        Err(f) => Err(failure(f, name, "float32 or float64", path)),
    }
}

fn read<T: ReadableElement>(src: &mut Source, name: &str) -> Result<ArrayD<T>, Failure> {
    let bytes = match src {
        Source::Npy(path) => std::fs::read(path).map_err(|e| Failure::Other(e.to_string()))?,
        Source::Npz(archive) => entry_bytes(archive, name)?,
    };
    check_npy_sizes(&bytes).map_err(Failure::Other)?;
    ArrayD::<T>::read_npy(bytes.as_slice()).map_err(npy_failure)
}

/// The bytes of array `name` (`name` or `name.npy`, as NumPy names them) in an archive, read
/// no further than the size its zip entry declares: a small archive whose data inflates
/// beyond that (a "zip bomb") is refused before it fills memory.
fn entry_bytes(archive: &mut ZipArchive<File>, name: &str) -> Result<Vec<u8>, Failure> {
    let index = archive
        .index_for_name(name)
        .or_else(|| archive.index_for_name(&format!("{name}.npy")))
        .ok_or(Failure::Missing)?;
    let entry = archive
        .by_index(index)
        .map_err(|e| Failure::Other(e.to_string()))?;
    let declared = entry.size();
    let mut bytes = Vec::new();
    entry
        .take(declared.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Other(e.to_string()))?;
    if bytes.len() as u64 > declared {
        return Err(Failure::Other(format!(
            "the zip entry inflates to more than the {declared} bytes it declares"
        )));
    }
    Ok(bytes)
}

/// Checks the sizes an `.npy` header announces against the bytes there are, before
/// ndarray-npy allocates for them: the header length (up to 4 GiB in format 2 and 3) and the
/// element count (every element takes at least one byte). A few hundred hostile bytes
/// announcing a huge array are then an error, not an allocation of that array. A shape with a
/// zero dimension holds nothing, but ndarray-npy panics when its other dimensions multiply
/// past `isize::MAX`, so that is refused too.
fn check_npy_sizes(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    let truncated = || "truncated .npy header".to_string();
    if !bytes.starts_with(MAGIC) {
        // Let ndarray-npy name what is wrong.
        return Ok(());
    }
    let (len_bytes, header_len) = match bytes.get(MAGIC.len()) {
        Some(1) => {
            let b = bytes.get(8..10).ok_or_else(truncated)?;
            (2, usize::from(u16::from_le_bytes([b[0], b[1]])))
        }
        Some(2 | 3) => {
            let b = bytes.get(8..12).ok_or_else(truncated)?;
            (4, u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
        _ => return Ok(()),
    };
    let data_start = 8 + len_bytes + header_len;
    if data_start > bytes.len() {
        return Err(format!(
            "the .npy header announces {header_len} header bytes, the file has {}",
            bytes.len()
        ));
    }
    check_header_nesting(&bytes[8 + len_bytes..data_start])?;
    let mut head = &bytes[..data_start];
    let Ok(header) = Header::from_reader(&mut head) else {
        // ndarray-npy reports the parse error itself.
        return Ok(());
    };
    let data = bytes.len() - data_start;
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    let nonzero = header
        .shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    match (count, nonzero) {
        (Some(n), Some(m)) if n <= data && m <= isize::MAX as usize => Ok(()),
        _ => Err(format!(
            "the .npy header announces shape {:?}, more elements than the {data} data bytes \
             of the file hold",
            header.shape
        )),
    }
}

/// Deepest bracket nesting an `.npy` header may have. NumPy writes depth 2 (`{'shape': (..)}`);
/// a structured dtype's field with a shape makes 4 (`{'descr': [('f', '<f4', (2,))]}`), and
/// ddlens reads plain arrays only. ndarray-npy parses the header with a backtracking (pest)
/// grammar whose time grows exponentially with the nesting: a 145-byte file with 50 nested
/// `[` ran past libFuzzer's 10-second limit, and under the first limit here, 8, a 140-byte
/// header nesting exactly 8 deep still took 10 s in the fuzzer
/// (`fuzz/regressions/distilled_npy/timeout-*`, `slow-unit-*`).
const MAX_HEADER_NESTING: usize = 4;

/// Refuses a header whose brackets nest deeper than [`MAX_HEADER_NESTING`], before it reaches
/// the parser.
fn check_header_nesting(header: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    for &b in header {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(format!(
                        "the .npy header nests brackets more than {MAX_HEADER_NESTING} deep; \
                         NumPy's headers nest 2 to 4 deep, so this is not an array NumPy wrote"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn npy_failure(e: ReadNpyError) -> Failure {
    match e {
        ReadNpyError::WrongDescriptor(d) => Failure::WrongDtype(d.to_string()),
        other => Failure::Other(other.to_string()),
    }
}

fn failure(f: Failure, name: &str, expected: &str, path: &Path) -> Error {
    match f {
        Failure::Missing => missing(name, path),
        Failure::WrongDtype(d) => data_err(
            path.display(),
            format!("array `{name}` has dtype {d}, expected {expected}"),
        ),
        Failure::Other(m) => data_err(path.display(), format!("array `{name}`: {m}")),
    }
}

fn missing(name: &str, path: &Path) -> Error {
    data_err(path.display(), format!("missing array `{name}`"))
}
