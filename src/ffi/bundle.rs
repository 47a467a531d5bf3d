//! Model bundles: open, describe, and the graph calls a training framework needs when it
//! hands ddlens its own tensors (`forward`, `grad`).

use std::ffi::c_char;
use std::path::Path;

use ndarray::{ArrayView1, ArrayView4};
use serde_json::json;

use super::args;
use super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::handles::{borrow, into_handle, release};
use super::params::DdlParams;
use super::runtime::require;
use super::status::DdlStatus;
use crate::bundle::{resolve_bundle, Bundle};

/// An opened, validated model bundle (opaque). Immutable once opened: every function that
/// takes a `const DdlBundle*` may run on the same bundle from several threads at once (calls
/// on the same graph role are serialised inside).
pub struct DdlBundle {
    pub(crate) inner: Bundle,
}

/// Opens and validates a bundle: `path` is a bundle folder, or the name of a bundle in
/// `DDLENS_MODELS` / the project's `models/` (e.g. `"convnet3-1x28x28"`).
///
/// `*out` receives the handle (free with `ddl_bundle_free`), NULL on failure. Errors:
/// `DDL_STATUS_RUNTIME_NOT_INITIALIZED` before `ddl_runtime_init`; `DDL_STATUS_NOT_FOUND` when
/// `path` is neither an existing path nor a known name; `DDL_STATUS_BUNDLE` for a malformed
/// bundle. Thread-safe.
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_open(
    path: *const c_char,
    out: *mut *mut DdlBundle,
) -> DdlStatus {
    ffi_call("ddl_bundle_open", || {
        // SAFETY: forwarded contract.
        let (out, path) = unsafe { (args::out_handle(out, "out")?, args::string(path, "path")?) };
        let rt = require()?;
        let dir = if Path::new(path).exists() {
            Path::new(path).to_path_buf()
        } else {
            resolve_bundle(path).map_err(|e| match e {
                crate::Error::InvalidArgument { message, .. } => {
                    FfiError::new(DdlStatus::NotFound, format!("argument `path`: {message}"))
                }
                other => other.into(),
            })?
        };
        *out = into_handle(DdlBundle {
            inner: Bundle::open_with(rt, dir)?,
        });
        Ok(())
    })
}

/// Releases a bundle. NULL is a no-op. The bundle must not be in use by another thread, and
/// parameters created from it stay valid (they do not refer to it).
///
/// # Safety
/// `bundle` must be NULL or a handle from `ddl_bundle_open`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_free(bundle: *mut DdlBundle) {
    // SAFETY: forwarded contract.
    ffi_release("ddl_bundle_free", || unsafe { release(bundle) });
}

/// Describes the bundle as JSON: `{"name", "description", "dir", "input_shape" [C,H,W],
/// "num_classes", "feature_dim", "num_parameters", "normalization" {"dataset","mean","std"},
/// "params" [{"name","shape"}...] (the flat parameter order), "roles" [...], "opset",
/// "producer"}`. Free `*out_json` with `ddl_string_free`. Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `out_json` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_describe(
    bundle: *const DdlBundle,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_bundle_describe", || {
        // SAFETY: forwarded contract.
        let (out, b) = unsafe {
            (
                args::out_string(out_json, "out_json")?,
                borrow(bundle, "bundle")?,
            )
        };
        let b = &b.inner;
        let m = b.manifest();
        let params: Vec<_> = m
            .params
            .iter()
            .map(|p| json!({ "name": p.name, "shape": p.shape }))
            .collect();
        let roles: Vec<&str> = b.roles().into_iter().map(|r| r.name()).collect();
        *out = args::give_json(&json!({
            "name": m.name,
            "description": m.description,
            "dir": b.dir(),
            "input_shape": m.input_shape,
            "num_classes": m.num_classes,
            "feature_dim": m.feature_dim,
            "num_parameters": m.num_parameters(),
            "normalization": m.normalization,
            "params": params,
            "roles": roles,
            "opset": m.opset,
            "producer": m.producer,
        }))?;
        Ok(())
    })
}

/// Writes the shape `[C, H, W]` of one input example. Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; the outputs must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_input_shape(
    bundle: *const DdlBundle,
    out_channels: *mut usize,
    out_height: *mut usize,
    out_width: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_input_shape", || {
        // SAFETY: forwarded contract.
        let (b, c, h, w) = unsafe {
            (
                borrow(bundle, "bundle")?,
                args::out(out_channels, "out_channels")?,
                args::out(out_height, "out_height")?,
                args::out(out_width, "out_width")?,
            )
        };
        [*c, *h, *w] = b.inner.manifest().input_shape;
        Ok(())
    })
}

/// Writes the number of classes (logits). Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_num_classes(
    bundle: *const DdlBundle,
    out: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_num_classes", || {
        // SAFETY: forwarded contract.
        let (b, out) = unsafe { (borrow(bundle, "bundle")?, args::out(out, "out")?) };
        *out = b.inner.manifest().num_classes;
        Ok(())
    })
}

/// Writes the size of the penultimate feature vector (the `features` output of forward).
/// Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_feature_dim(
    bundle: *const DdlBundle,
    out: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_feature_dim", || {
        // SAFETY: forwarded contract.
        let (b, out) = unsafe { (borrow(bundle, "bundle")?, args::out(out, "out")?) };
        *out = b.inner.manifest().feature_dim;
        Ok(())
    })
}

/// Writes the total number of scalar parameters (the length of a flat parameter vector).
/// Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_num_parameters(
    bundle: *const DdlBundle,
    out: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_num_parameters", || {
        // SAFETY: forwarded contract.
        let (b, out) = unsafe { (borrow(bundle, "bundle")?, args::out(out, "out")?) };
        *out = b.inner.manifest().num_parameters();
        Ok(())
    })
}

/// Copies the bundle's per-channel normalisation (`x_norm = (pixel/255 - mean) / std`) into
/// `mean` and `std`, each holding `channels` floats (`channels` must equal C). Pass them to
/// `ddl_dataset_from_memory` to normalise raw pixels the way the model expects. Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `mean` and `std` must be NULL or hold `channels`
/// writable floats.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_normalization(
    bundle: *const DdlBundle,
    mean: *mut f32,
    std: *mut f32,
    channels: usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_normalization", || {
        // SAFETY: forwarded contract.
        let b = unsafe { borrow(bundle, "bundle") }?;
        let norm = &b.inner.manifest().normalization;
        let c = b.inner.manifest().input_shape[0];
        if channels != c {
            return Err(FfiError::invalid(
                "channels",
                format!("is {channels}, the model has {c} input channels"),
            ));
        }
        // SAFETY: forwarded contract.
        let (m, s) = unsafe {
            (
                args::out_slice(mean, channels, c, "mean")?,
                args::out_slice(std, channels, c, "std")?,
            )
        };
        m.copy_from_slice(&norm.mean);
        s.copy_from_slice(&norm.std);
        Ok(())
    })
}

/// The input batch `x` (`batch x C x H x W`, row-major) as a view, with its size checked.
unsafe fn input_batch<'a>(
    b: &Bundle,
    x: *const f32,
    batch: usize,
) -> FfiResult<ArrayView4<'a, f32>> {
    let [c, h, w] = b.manifest().input_shape;
    args::positive(batch, "batch")?;
    let len = batch
        .checked_mul(c * h * w)
        .ok_or_else(|| FfiError::invalid("batch", format!("{batch} examples is too large")))?;
    // SAFETY: forwarded contract: `x` holds batch*C*H*W floats.
    let x = unsafe { args::slice(x, len, "x") }?;
    Ok(ArrayView4::from_shape((batch, c, h, w), x).expect("length computed from the shape"))
}

/// Runs the `forward` graph on a caller batch: `x` holds `batch x C x H x W` floats
/// (row-major, normalised). Writes `batch x num_classes` logits into `logits` (capacity
/// `logits_capacity` floats) and, when `features` is not NULL, `batch x feature_dim` features
/// into it (capacity `features_capacity`). Small buffers give `DDL_STATUS_BUFFER_TOO_SMALL`.
/// Thread-safe (the bundle may be shared; `params` is only read).
///
/// # Safety
/// Handles must be NULL or live; `x` must hold `batch*C*H*W` floats; output pointers must be
/// NULL or hold their capacity.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_forward(
    bundle: *const DdlBundle,
    params: *const DdlParams,
    x: *const f32,
    batch: usize,
    logits: *mut f32,
    logits_capacity: usize,
    features: *mut f32,
    features_capacity: usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_forward", || {
        // SAFETY: forwarded contract.
        let (b, p) = unsafe { (&borrow(bundle, "bundle")?.inner, borrow(params, "params")?) };
        let m = b.manifest();
        // SAFETY: forwarded contract.
        let x = unsafe { input_batch(b, x, batch) }?;
        // Check the output buffers before the (possibly long) graph run.
        // SAFETY: forwarded contract.
        let logits =
            unsafe { args::out_slice(logits, logits_capacity, batch * m.num_classes, "logits") }?;
        // SAFETY: forwarded contract.
        let features = unsafe {
            args::opt_out_slice(
                features,
                features_capacity,
                batch * m.feature_dim,
                "features",
            )
        }?;
        let out = if p.state.is_empty() {
            b.forward(&p.params, x)?
        } else {
            b.forward_with_state(&p.params, &p.state, x)?
        };
        copy_into(logits, out.logits.iter());
        if let Some(f) = features {
            copy_into(f, out.features.iter());
        }
        Ok(())
    })
}

/// Runs the `grad` graph on a caller batch: the weighted mean cross-entropy
/// `(1/batch) sum_i w_i ce_i` and its gradient. `x` holds `batch x C x H x W` floats, `y`
/// `batch` labels in `0..num_classes`, `w` `batch` weights or NULL for all ones. Writes the
/// loss to `*out_loss` (may be NULL) and the flat gradient (manifest order, like
/// `ddl_params_get_flat`) into `grad` when not NULL (capacity `grad_capacity` floats, at least
/// the parameter count). Thread-safe (the bundle may be shared; `params` is only read).
///
/// # Safety
/// Handles must be NULL or live; buffers must be NULL or hold the documented element counts.
#[no_mangle]
pub unsafe extern "C" fn ddl_bundle_grad(
    bundle: *const DdlBundle,
    params: *const DdlParams,
    x: *const f32,
    y: *const i64,
    w: *const f32,
    batch: usize,
    out_loss: *mut f32,
    grad: *mut f32,
    grad_capacity: usize,
) -> DdlStatus {
    ffi_call("ddl_bundle_grad", || {
        // SAFETY: forwarded contract.
        let (b, p) = unsafe { (&borrow(bundle, "bundle")?.inner, borrow(params, "params")?) };
        // SAFETY: forwarded contract.
        let x = unsafe { input_batch(b, x, batch) }?;
        // SAFETY: forwarded contract.
        let y = ArrayView1::from(unsafe { args::slice(y, batch, "y") }?);
        // SAFETY: forwarded contract.
        let w = unsafe { args::opt_slice(w, batch, "w") }?.map(ArrayView1::from);
        // SAFETY: forwarded contract.
        let loss_out = unsafe { args::opt_out(out_loss, "out_loss") }?;
        let n = b.manifest().num_parameters();
        // SAFETY: forwarded contract.
        let grad_out = unsafe { args::opt_out_slice(grad, grad_capacity, n, "grad") }?;
        let out = b.grad(&p.params, x, y, w)?;
        if let Some(l) = loss_out {
            *l = out.loss;
        }
        if let Some(g) = grad_out {
            copy_into(g, out.grad.tensors().iter().flat_map(|t| t.iter()));
        }
        Ok(())
    })
}

/// Copies an iterator of floats (exactly `dst.len()` of them) into a caller buffer.
pub(crate) fn copy_into<'a>(dst: &mut [f32], src: impl Iterator<Item = &'a f32>) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}
