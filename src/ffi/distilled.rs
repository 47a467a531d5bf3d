//! Distilled-set files (safetensors: images, labels, optional learned learning rate, metadata;
//! docs/distilled-format.md).

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::args;
use super::dataset::DdlDataset;
use super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::handles::{borrow, into_handle, release};
use super::status::DdlStatus;
use crate::data::{DistilledMeta, DistilledSet};

/// A distilled set (opaque): a dataset, an optional learned learning rate and metadata.
/// Immutable once created, so every function may run concurrently on the same handle.
pub struct DdlDistilledSet {
    pub(crate) inner: DistilledSet,
}

/// Reads a distilled set: a ddlens safetensors file, an `.npz` (arrays `images`, `labels`), an
/// `.npy` of images with `labels.npy` beside it, or `zoo:NAME`, a set of the zoo (the
/// folders of `DDLENS_ZOO`, then the project's `zoo/`; an unknown name is
/// `DDL_STATUS_INVALID_ARGUMENT` listing the known ones). `DDL_STATUS_NOT_FOUND` when a file
/// does not exist, `DDL_STATUS_DATA` when it is malformed (the message names the tensor or
/// key) or holds no images. Thread-safe.
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_read(
    path: *const c_char,
    out: *mut *mut DdlDistilledSet,
) -> DdlStatus {
    ffi_call("ddl_distilled_read", || {
        // SAFETY: forwarded contract.
        let (out, path) = unsafe { (args::out_handle(out, "out")?, args::string(path, "path")?) };
        let path = crate::data::resolve_set(std::path::Path::new(path))?;
        if !path.exists() {
            return Err(FfiError::new(
                DdlStatus::NotFound,
                format!("argument `path`: {} does not exist", path.display()),
            ));
        }
        *out = into_handle(DdlDistilledSet {
            inner: DistilledSet::read_any(&path)?,
        });
        Ok(())
    })
}

/// Writes a distilled set to `path` atomically (a temporary file renamed into place).
/// Thread-safe.
///
/// # Safety
/// `set` must be NULL or a live handle; `path` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_write(
    set: *const DdlDistilledSet,
    path: *const c_char,
) -> DdlStatus {
    ffi_call("ddl_distilled_write", || {
        // SAFETY: forwarded contract.
        let (s, path) = unsafe { (borrow(set, "set")?, args::string(path, "path")?) };
        s.inner.write(Path::new(path))?;
        Ok(())
    })
}

/// The metadata keys a caller may give; unknown keys are an error (typos must not vanish).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetaJson {
    #[serde(default)]
    method: String,
    #[serde(default)]
    ipc: usize,
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

fn parse_meta(text: Option<&str>) -> FfiResult<DistilledMeta> {
    let m: MetaJson = match text {
        None => MetaJson::default(),
        Some(t) => serde_json::from_str(t).map_err(|e| {
            FfiError::invalid(
                "meta_json",
                format!(
                    "{e}; expected an object with keys method, ipc, dataset, model, seed, extra"
                ),
            )
        })?,
    };
    Ok(DistilledMeta {
        method: m.method,
        ipc: m.ipc,
        dataset: m.dataset,
        model: m.model,
        seed: m.seed,
        extra: m.extra,
    })
}

/// Makes a distilled set from a dataset (copied), an optional learned learning rate (`lr`
/// NULL for none; it must be finite) and optional metadata JSON
/// `{"method", "ipc", "dataset", "model", "seed", "extra": {string: string}}` (NULL, or any
/// subset of the keys; others are `DDL_STATUS_INVALID_ARGUMENT`). An `ipc` of 0 or missing is
/// taken from the data. Thread-safe.
///
/// # Safety
/// `data` must be NULL or a live handle; `lr` NULL or readable; `meta_json` NULL or
/// NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_create(
    data: *const DdlDataset,
    lr: *const f32,
    meta_json: *const c_char,
    out: *mut *mut DdlDistilledSet,
) -> DdlStatus {
    ffi_call("ddl_distilled_create", || {
        // SAFETY: forwarded contract.
        let (out, d) = unsafe { (args::out_handle(out, "out")?, borrow(data, "data")?) };
        // SAFETY: forwarded contract.
        let lr = unsafe { args::opt_slice(lr, 1, "lr") }?.map(|v| v[0]);
        // SAFETY: forwarded contract.
        let meta = parse_meta(unsafe { args::opt_string(meta_json, "meta_json") }?)?;
        *out = into_handle(DdlDistilledSet {
            inner: DistilledSet::new(d.inner.clone(), lr, meta)?,
        });
        Ok(())
    })
}

/// Releases a distilled set. NULL is a no-op. The handle must not be in use by another thread.
///
/// # Safety
/// `set` must be NULL or a handle from `ddl_distilled_read`/`_create`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_free(set: *mut DdlDistilledSet) {
    // SAFETY: forwarded contract.
    ffi_release("ddl_distilled_free", || unsafe { release(set) });
}

/// Copies the set's images and labels into a new dataset handle (free it with
/// `ddl_dataset_free`), e.g. to train on it. Thread-safe.
///
/// # Safety
/// `set` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_data(
    set: *const DdlDistilledSet,
    out: *mut *mut DdlDataset,
) -> DdlStatus {
    ffi_call("ddl_distilled_data", || {
        // SAFETY: forwarded contract.
        let (out, s) = unsafe { (args::out_handle(out, "out")?, borrow(set, "set")?) };
        *out = into_handle(DdlDataset {
            inner: s.inner.data.clone(),
        });
        Ok(())
    })
}

/// Writes whether the set carries a learned learning rate to `*out_has_lr` and, if so, the
/// rate to `*out_lr` (left unchanged otherwise). Thread-safe.
///
/// # Safety
/// `set` must be NULL or a live handle; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_lr(
    set: *const DdlDistilledSet,
    out_has_lr: *mut bool,
    out_lr: *mut f32,
) -> DdlStatus {
    ffi_call("ddl_distilled_lr", || {
        // SAFETY: forwarded contract.
        let (s, has, lr) = unsafe {
            (
                borrow(set, "set")?,
                args::out(out_has_lr, "out_has_lr")?,
                args::out(out_lr, "out_lr")?,
            )
        };
        *has = s.inner.lr.is_some();
        if let Some(v) = s.inner.lr {
            *lr = v;
        }
        Ok(())
    })
}

/// Describes the set as JSON: `{"method", "ipc", "dataset", "model", "seed", "extra", "lr"
/// (null when none), "len", "input_shape", "num_classes", "class_counts"}`. Free `*out_json`
/// with `ddl_string_free`. Thread-safe.
///
/// # Safety
/// `set` must be NULL or a live handle; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distilled_describe(
    set: *const DdlDistilledSet,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_distilled_describe", || {
        // SAFETY: forwarded contract.
        let (out, s) = unsafe { (args::out_string(out_json, "out_json")?, borrow(set, "set")?) };
        let (m, d) = (&s.inner.meta, &s.inner.data);
        *out = args::give_json(&json!({
            "method": m.method,
            "ipc": m.ipc,
            "dataset": m.dataset,
            "model": m.model,
            "seed": m.seed,
            "extra": m.extra,
            "lr": s.inner.lr,
            "len": d.len(),
            "input_shape": d.input_shape(),
            "num_classes": d.num_classes(),
            "class_counts": d.class_counts(),
        }))?;
        Ok(())
    })
}
