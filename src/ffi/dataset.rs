//! Datasets: the standard benchmarks from their files, or caller memory (copied during the
//! call, never borrowed afterwards).

use std::ffi::{c_char, c_void};

use serde_json::json;

use super::args;
use super::bundle::copy_into;
use super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::handles::{borrow, into_handle, release};
use super::status::DdlStatus;
use crate::data::{self, DatasetName, Normalizer};
use crate::Dataset;

/// Element type of caller memory (a `uint32_t` so that any value can be checked safely).
pub type DdlDtype = u32;
/// 32-bit floats.
pub const DDL_DTYPE_F32: DdlDtype = 0;
/// Bytes (pixels 0..=255).
pub const DDL_DTYPE_U8: DdlDtype = 1;

/// Labelled images (opaque): `N x C x H x W` floats in normalised space and `N` labels in
/// `0..num_classes`. Immutable once created, so every function may run concurrently on the
/// same dataset.
pub struct DdlDataset {
    pub(crate) inner: Dataset,
}

/// Loads both splits of a benchmark: `name` is `"fashion-mnist"`, `"mnist"` or `"cifar10"`;
/// `dir` is the folder with its standard files, or NULL for the default (`DDLENS_DATA`, or the
/// Debian package's folder for Fashion-MNIST). Images are normalised with the dataset's
/// standard constants. `*out_train` / `*out_test` receive the splits; either may be NULL to
/// skip it, not both. `DDL_STATUS_NOT_FOUND` for a missing `dir`, `DDL_STATUS_DATA` for missing
/// or malformed files (the message names them and the fix). Thread-safe.
///
/// # Safety
/// Strings must be NULL or NUL-terminated; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_load(
    name: *const c_char,
    dir: *const c_char,
    out_train: *mut *mut DdlDataset,
    out_test: *mut *mut DdlDataset,
) -> DdlStatus {
    ffi_call("ddl_dataset_load", || {
        // SAFETY: forwarded contract.
        let (train, test) = unsafe {
            (
                args::opt_out(out_train, "out_train")?,
                args::opt_out(out_test, "out_test")?,
            )
        };
        if train.is_none() && test.is_none() {
            return Err(FfiError::new(
                DdlStatus::NullArgument,
                "arguments `out_train` and `out_test` are both NULL; pass at least one",
            ));
        }
        let (train, test) = (train.map(null_slot), test.map(null_slot));
        // SAFETY: forwarded contract.
        let name: DatasetName = unsafe { args::string(name, "name") }?.parse()?;
        // SAFETY: forwarded contract.
        let dir = unsafe { args::opt_existing_path(dir, "dir") }?;
        let splits = data::load(name, dir)?;
        if let Some(slot) = train {
            *slot = into_handle(DdlDataset {
                inner: splits.train,
            });
        }
        if let Some(slot) = test {
            *slot = into_handle(DdlDataset { inner: splits.test });
        }
        Ok(())
    })
}

fn null_slot<T>(slot: &mut *mut T) -> &mut *mut T {
    *slot = std::ptr::null_mut();
    slot
}

/// The most classes a dataset made from caller memory may declare: far beyond any
/// classification benchmark, and small enough for the per-class tables (counts, indices by
/// class) that sampling, descriptions and analyses build.
const MAX_CLASSES: usize = 1 << 20;

/// Creates a dataset by copying caller memory; nothing is borrowed after the call returns.
///
/// * `images`: `shape[0] x shape[1] x shape[2] x shape[3]` (N x C x H x W) elements, row-major
///   (C order), of type `dtype`: `DDL_DTYPE_F32` or `DDL_DTYPE_U8` (other values:
///   `DDL_STATUS_INVALID_ARGUMENT`). `ndim` must be 4.
/// * `labels`: `num_labels` (must equal N) class indices in `0..num_classes`; `num_classes` is
///   at least 1 and at most 2^20 (`DDL_STATUS_INVALID_ARGUMENT` otherwise).
/// * `mean`, `std`: C floats each, or both NULL. With them, pixels are normalised as
///   `(p - mean) / std` where `p` is the float pixel in [0, 1] (F32) or `byte / 255` (U8); use
///   `ddl_bundle_normalization` to get the model's constants. Without them, F32 images are
///   taken as already normalised and U8 images become `byte / 255`.
/// * `name`: used in messages; NULL for `"memory"`.
///
/// Thread-safe.
///
/// # Safety
/// Buffers must be NULL or hold the documented element counts; `name` NULL or NUL-terminated;
/// `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_from_memory(
    images: *const c_void,
    dtype: DdlDtype,
    shape: *const usize,
    ndim: usize,
    labels: *const i64,
    num_labels: usize,
    num_classes: usize,
    mean: *const f32,
    std: *const f32,
    name: *const c_char,
    out: *mut *mut DdlDataset,
) -> DdlStatus {
    ffi_call("ddl_dataset_from_memory", || {
        // SAFETY: forwarded contract.
        let out = unsafe { args::out_handle(out, "out") }?;
        if ndim != 4 {
            return Err(FfiError::invalid(
                "ndim",
                format!("is {ndim}, images must be 4-D (N x C x H x W)"),
            ));
        }
        // SAFETY: forwarded contract.
        let dims = unsafe { args::slice(shape, 4, "shape") }?;
        let shape = [dims[0], dims[1], dims[2], dims[3]];
        if shape.contains(&0) {
            return Err(FfiError::invalid(
                "shape",
                format!("{shape:?} has a zero dimension"),
            ));
        }
        if num_labels != shape[0] {
            return Err(FfiError::invalid(
                "num_labels",
                format!("is {num_labels}, shape[0] (N) is {}", shape[0]),
            ));
        }
        args::positive(num_classes, "num_classes")?;
        if num_classes > MAX_CLASSES {
            return Err(FfiError::invalid(
                "num_classes",
                format!("is {num_classes}, at most {MAX_CLASSES} classes are supported"),
            ));
        }
        let len = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| FfiError::invalid("shape", format!("{shape:?} is too large")))?;
        // SAFETY: forwarded contract.
        let labels = unsafe { args::slice(labels, num_labels, "labels") }?;
        // SAFETY: forwarded contract.
        let norm = unsafe { normalizer(mean, std, shape[1]) }?;
        // SAFETY: forwarded contract.
        let name = unsafe { args::opt_string(name, "name") }?.unwrap_or("memory");
        let dataset = match dtype {
            DDL_DTYPE_F32 => {
                // SAFETY: forwarded contract: `images` holds N*C*H*W floats.
                let x = unsafe { args::slice(images.cast::<f32>(), len, "images") }?;
                data::from_memory_f32(x, shape, labels, num_classes, norm.as_ref(), name)?
            }
            DDL_DTYPE_U8 => {
                // SAFETY: forwarded contract: `images` holds N*C*H*W bytes.
                let x = unsafe { args::slice(images.cast::<u8>(), len, "images") }?;
                let norm = norm.unwrap_or_else(|| Normalizer::identity(shape[1]));
                data::from_memory_u8(x, shape, labels, num_classes, &norm, name)?
            }
            other => {
                return Err(FfiError::invalid(
                    "dtype",
                    format!("{other} is not a DdlDtype (DDL_DTYPE_F32 0, DDL_DTYPE_U8 1)"),
                ))
            }
        };
        *out = into_handle(DdlDataset { inner: dataset });
        Ok(())
    })
}

/// The normaliser from optional `mean`/`std` arrays of `channels` floats.
unsafe fn normalizer(
    mean: *const f32,
    std: *const f32,
    channels: usize,
) -> FfiResult<Option<Normalizer>> {
    match (mean.is_null(), std.is_null()) {
        (true, true) => Ok(None),
        (false, false) => {
            // SAFETY: forwarded contract: C floats each.
            let (m, s) = unsafe {
                (
                    args::slice(mean, channels, "mean")?,
                    args::slice(std, channels, "std")?,
                )
            };
            Ok(Some(Normalizer::new("caller", m.to_vec(), s.to_vec())?))
        }
        _ => Err(FfiError::invalid("mean` / `std", "give both or neither")),
    }
}

/// Releases a dataset. NULL is a no-op. The handle must not be in use by another thread.
///
/// # Safety
/// `dataset` must be NULL or a handle from a `ddl_dataset_*`/`ddl_distilled_data` output, not
/// freed before.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_free(dataset: *mut DdlDataset) {
    // SAFETY: forwarded contract.
    ffi_release("ddl_dataset_free", || unsafe { release(dataset) });
}

/// Writes the number of examples. Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_len(dataset: *const DdlDataset, out: *mut usize) -> DdlStatus {
    ffi_call("ddl_dataset_len", || {
        // SAFETY: forwarded contract.
        let (d, out) = unsafe { (borrow(dataset, "dataset")?, args::out(out, "out")?) };
        *out = d.inner.len();
        Ok(())
    })
}

/// Writes the number of classes (labels lie in `0..num_classes`). Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_num_classes(
    dataset: *const DdlDataset,
    out: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_dataset_num_classes", || {
        // SAFETY: forwarded contract.
        let (d, out) = unsafe { (borrow(dataset, "dataset")?, args::out(out, "out")?) };
        *out = d.inner.num_classes();
        Ok(())
    })
}

/// Writes the shape `[C, H, W]` of one example. Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_input_shape(
    dataset: *const DdlDataset,
    out_channels: *mut usize,
    out_height: *mut usize,
    out_width: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_dataset_input_shape", || {
        // SAFETY: forwarded contract.
        let (d, c, h, w) = unsafe {
            (
                borrow(dataset, "dataset")?,
                args::out(out_channels, "out_channels")?,
                args::out(out_height, "out_height")?,
                args::out(out_width, "out_width")?,
            )
        };
        [*c, *h, *w] = d.inner.input_shape();
        Ok(())
    })
}

/// Copies the images (`N x C x H x W` floats, row-major, normalised) into `images` (capacity
/// `capacity` floats, at least N*C*H*W). Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `images` NULL or holding `capacity` floats.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_get_images(
    dataset: *const DdlDataset,
    images: *mut f32,
    capacity: usize,
) -> DdlStatus {
    ffi_call("ddl_dataset_get_images", || {
        // SAFETY: forwarded contract.
        let d = unsafe { borrow(dataset, "dataset") }?;
        let src = d.inner.images();
        // SAFETY: forwarded contract.
        let dst = unsafe { args::out_slice(images, capacity, src.len(), "images") }?;
        copy_into(dst, src.iter());
        Ok(())
    })
}

/// Copies the `N` labels into `labels` (capacity `capacity`, at least N). Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `labels` NULL or holding `capacity` values.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_get_labels(
    dataset: *const DdlDataset,
    labels: *mut i64,
    capacity: usize,
) -> DdlStatus {
    ffi_call("ddl_dataset_get_labels", || {
        // SAFETY: forwarded contract.
        let d = unsafe { borrow(dataset, "dataset") }?;
        let src = d.inner.labels();
        // SAFETY: forwarded contract.
        let dst = unsafe { args::out_slice(labels, capacity, src.len(), "labels") }?;
        for (d, s) in dst.iter_mut().zip(src.iter()) {
            *d = *s;
        }
        Ok(())
    })
}

/// A class-balanced random subset: `per_class` examples of every class, drawn with `seed`
/// (same seed, same subset), as a new dataset. Fails with `DDL_STATUS_DATA` when a class has
/// fewer examples. Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_class_balanced(
    dataset: *const DdlDataset,
    per_class: usize,
    seed: u64,
    out: *mut *mut DdlDataset,
) -> DdlStatus {
    ffi_call("ddl_dataset_class_balanced", || {
        // SAFETY: forwarded contract.
        let (out, d) = unsafe { (args::out_handle(out, "out")?, borrow(dataset, "dataset")?) };
        args::positive(per_class, "per_class")?;
        let idx = data::class_balanced(&d.inner, per_class, seed)?;
        *out = into_handle(DdlDataset {
            inner: d.inner.select(&idx)?,
        });
        Ok(())
    })
}

/// The examples at `indices` (`count` of them, each below the dataset length, repeats
/// allowed), in that order, as a new dataset. Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `indices` must hold `count` values; `out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_select(
    dataset: *const DdlDataset,
    indices: *const usize,
    count: usize,
    out: *mut *mut DdlDataset,
) -> DdlStatus {
    ffi_call("ddl_dataset_select", || {
        // SAFETY: forwarded contract.
        let (out, d) = unsafe { (args::out_handle(out, "out")?, borrow(dataset, "dataset")?) };
        args::positive(count, "count")?;
        // SAFETY: forwarded contract.
        let indices = unsafe { args::slice(indices, count, "indices") }?;
        if let Some(bad) = indices.iter().find(|&&i| i >= d.inner.len()) {
            return Err(FfiError::invalid(
                "indices",
                format!("index {bad} is out of range for {} examples", d.inner.len()),
            ));
        }
        *out = into_handle(DdlDataset {
            inner: d.inner.select(indices)?,
        });
        Ok(())
    })
}

/// Describes the dataset as JSON: `{"name", "len", "input_shape" [C,H,W], "num_classes",
/// "class_counts" [...]}`. Free `*out_json` with `ddl_string_free`. Thread-safe.
///
/// # Safety
/// `dataset` must be NULL or a live handle; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_dataset_describe(
    dataset: *const DdlDataset,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_dataset_describe", || {
        // SAFETY: forwarded contract.
        let (out, d) = unsafe {
            (
                args::out_string(out_json, "out_json")?,
                borrow(dataset, "dataset")?,
            )
        };
        let d = &d.inner;
        *out = args::give_json(&json!({
            "name": d.name(),
            "len": d.len(),
            "input_shape": d.input_shape(),
            "num_classes": d.num_classes(),
            "class_counts": d.class_counts(),
        }))?;
        Ok(())
    })
}
