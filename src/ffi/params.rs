//! Model parameters: fresh initialisation, get/set as flat vectors or per named tensor,
//! parameter files.
//!
//! The flat layout is every tensor of the manifest's `params` list, in order, each row-major
//! (`ddl_bundle_describe` lists names and shapes). It is the layout of `ddl_bundle_grad`'s
//! gradient too.

use std::ffi::c_char;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use super::args;
use super::bundle::{copy_into, DdlBundle};
use super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::handles::{borrow, borrow_mut, into_handle, release};
use super::status::DdlStatus;
use crate::bundle::{ParamSpec, Params};
use crate::train::{load_model, save_model};

/// A set of model parameters (opaque), owned by the caller and independent of the bundle it
/// came from. Functions taking `const DdlParams*` may run concurrently on the same handle;
/// `ddl_params_set_*` need exclusive use (no other call on that handle meanwhile).
pub struct DdlParams {
    pub(crate) params: Params,
    /// Names and shapes, for per-tensor access and error messages.
    pub(crate) specs: Vec<ParamSpec>,
    /// The BatchNorm running statistics these parameters were trained with (`ddl_train`) or
    /// read with (`ddl_params_load`); empty when the model has none or none is known, in
    /// which case evaluating a model with state is refused by name.
    pub(crate) state: Params,
}

impl DdlParams {
    pub(crate) fn new(params: Params, specs: &[ParamSpec]) -> DdlParams {
        DdlParams::with_state(params, Params::empty(), specs)
    }

    pub(crate) fn with_state(params: Params, state: Params, specs: &[ParamSpec]) -> DdlParams {
        DdlParams {
            params,
            specs: specs.to_vec(),
            state,
        }
    }

    fn tensor_index(&self, name: &str) -> FfiResult<usize> {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
                FfiError::invalid(
                    "name",
                    format!(
                        "no parameter `{name}` (the model has: {})",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// Draws a fresh initialisation (PyTorch's default initialisers) from `seed`: same seed, same
/// parameters. `*out` receives a handle to free with `ddl_params_free`. Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_init(
    bundle: *const DdlBundle,
    seed: u64,
    out: *mut *mut DdlParams,
) -> DdlStatus {
    ffi_call("ddl_params_init", || {
        // SAFETY: forwarded contract.
        let (out, b) = unsafe { (args::out_handle(out, "out")?, borrow(bundle, "bundle")?) };
        let params = b.inner.init_params(seed);
        *out = into_handle(DdlParams::new(params, &b.inner.manifest().params));
        Ok(())
    })
}

/// Creates parameters from a flat vector of exactly `ddl_bundle_num_parameters` floats
/// (copied; the caller's buffer is only read during the call). Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `values` must hold `len` floats; `out` must be
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_from_flat(
    bundle: *const DdlBundle,
    values: *const f32,
    len: usize,
    out: *mut *mut DdlParams,
) -> DdlStatus {
    ffi_call("ddl_params_from_flat", || {
        // SAFETY: forwarded contract.
        let (out, b) = unsafe { (args::out_handle(out, "out")?, borrow(bundle, "bundle")?) };
        let specs = &b.inner.manifest().params;
        let n = b.inner.manifest().num_parameters();
        if len != n {
            return Err(FfiError::invalid(
                "len",
                format!("is {len}, model `{}` has {n} parameters", b.inner.name()),
            ));
        }
        // SAFETY: forwarded contract.
        let values = unsafe { args::slice(values, len, "values") }?;
        *out = into_handle(DdlParams::new(Params::from_flat(specs, values)?, specs));
        Ok(())
    })
}

/// Reads a parameter file (safetensors, one tensor per manifest parameter, as written by
/// `ddl_params_save` or by PyTorch with the same names). `DDL_STATUS_NOT_FOUND` when the file
/// does not exist, `DDL_STATUS_BUNDLE` when it does not fit the model. Thread-safe.
///
/// # Safety
/// `bundle` must be NULL or a live handle; `path` NULL or NUL-terminated; `out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_load(
    bundle: *const DdlBundle,
    path: *const c_char,
    out: *mut *mut DdlParams,
) -> DdlStatus {
    ffi_call("ddl_params_load", || {
        // SAFETY: forwarded contract.
        let (out, b, path) = unsafe {
            (
                args::out_handle(out, "out")?,
                borrow(bundle, "bundle")?,
                args::existing_path(path, "path")?,
            )
        };
        let m = b.inner.manifest();
        let (params, state) = load_model(path, m)?;
        let state = state.unwrap_or_else(Params::empty);
        *out = into_handle(DdlParams::with_state(params, state, &m.params));
        Ok(())
    })
}

/// Writes parameters to a safetensors file (atomically: a temporary file renamed into place).
/// The bundle names the tensors and must be the model the parameters belong to. Thread-safe.
///
/// # Safety
/// Handles must be NULL or live; `path` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_save(
    bundle: *const DdlBundle,
    params: *const DdlParams,
    path: *const c_char,
) -> DdlStatus {
    ffi_call("ddl_params_save", || {
        // SAFETY: forwarded contract.
        let (b, p, path) = unsafe {
            (
                borrow(bundle, "bundle")?,
                borrow(params, "params")?,
                args::string(path, "path")?,
            )
        };
        let m = b.inner.manifest();
        // Re-check against this bundle: the handle may come from another model.
        let checked = Params::from_tensors(&m.params, p.params.tensors().to_vec())?;
        save_model(Path::new(path), m, &checked, &p.state)?;
        Ok(())
    })
}

/// Copies a parameter set into a new handle. Thread-safe.
///
/// # Safety
/// `params` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_clone(
    params: *const DdlParams,
    out: *mut *mut DdlParams,
) -> DdlStatus {
    ffi_call("ddl_params_clone", || {
        // SAFETY: forwarded contract.
        let (out, p) = unsafe { (args::out_handle(out, "out")?, borrow(params, "params")?) };
        *out = into_handle(DdlParams {
            params: p.params.clone(),
            specs: p.specs.clone(),
            state: p.state.clone(),
        });
        Ok(())
    })
}

/// Releases parameters. NULL is a no-op. The handle must not be in use by another thread.
///
/// # Safety
/// `params` must be NULL or a handle from a `ddl_params_*`/`ddl_train` output, not freed
/// before.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_free(params: *mut DdlParams) {
    // SAFETY: forwarded contract.
    ffi_release("ddl_params_free", || unsafe { release(params) });
}

/// Writes the total number of scalars (the flat length). Thread-safe.
///
/// # Safety
/// `params` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_numel(params: *const DdlParams, out: *mut usize) -> DdlStatus {
    ffi_call("ddl_params_numel", || {
        // SAFETY: forwarded contract.
        let (p, out) = unsafe { (borrow(params, "params")?, args::out(out, "out")?) };
        *out = p.params.numel();
        Ok(())
    })
}

/// Copies all values, flat in manifest order, into `values` (capacity `capacity` floats, at
/// least `ddl_params_numel`). Thread-safe.
///
/// # Safety
/// `params` must be NULL or a live handle; `values` must be NULL or hold `capacity` floats.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_get_flat(
    params: *const DdlParams,
    values: *mut f32,
    capacity: usize,
) -> DdlStatus {
    ffi_call("ddl_params_get_flat", || {
        // SAFETY: forwarded contract.
        let p = unsafe { borrow(params, "params") }?;
        // SAFETY: forwarded contract.
        let dst = unsafe { args::out_slice(values, capacity, p.params.numel(), "values") }?;
        copy_into(dst, p.params.tensors().iter().flat_map(|t| t.iter()));
        Ok(())
    })
}

/// Overwrites all values from a flat vector of exactly `ddl_params_numel` floats. Needs
/// exclusive use of `params`.
///
/// # Safety
/// `params` must be NULL or a live handle not used by another thread; `values` must hold
/// `len` floats.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_set_flat(
    params: *mut DdlParams,
    values: *const f32,
    len: usize,
) -> DdlStatus {
    ffi_call("ddl_params_set_flat", || {
        // SAFETY: forwarded contract.
        let p = unsafe { borrow_mut(params, "params") }?;
        let n = p.params.numel();
        if len != n {
            return Err(FfiError::invalid(
                "len",
                format!("is {len}, the parameters have {n} values"),
            ));
        }
        // SAFETY: forwarded contract.
        let values = unsafe { args::slice(values, len, "values") }?;
        p.params = Params::from_flat(&p.specs, values)?;
        Ok(())
    })
}

/// Writes the shape of the tensor named `name`: its rank to `*out_ndim` (also on
/// `DDL_STATUS_BUFFER_TOO_SMALL`, so a first call with `shape` NULL and `capacity` 0 asks for
/// the rank) and its dimensions into `shape` (capacity `capacity`). Thread-safe.
///
/// # Safety
/// `params` must be NULL or a live handle; `name` NULL or NUL-terminated; `shape` NULL or
/// holding `capacity` values; `out_ndim` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_tensor_shape(
    params: *const DdlParams,
    name: *const c_char,
    shape: *mut usize,
    capacity: usize,
    out_ndim: *mut usize,
) -> DdlStatus {
    ffi_call("ddl_params_tensor_shape", || {
        // SAFETY: forwarded contract.
        let (p, name, ndim) = unsafe {
            (
                borrow(params, "params")?,
                args::string(name, "name")?,
                args::out(out_ndim, "out_ndim")?,
            )
        };
        let dims = &p.specs[p.tensor_index(name)?].shape;
        // The rank is written on success and on a short buffer only (to size it), like every
        // scalar output, not after another failure.
        // SAFETY: forwarded contract.
        let dst =
            unsafe { args::out_slice(shape, capacity, dims.len(), "shape") }.inspect_err(|e| {
                if e.status == DdlStatus::BufferTooSmall {
                    *ndim = dims.len();
                }
            })?;
        *ndim = dims.len();
        dst.copy_from_slice(dims);
        Ok(())
    })
}

/// Describes the parameters as JSON: `{"numel", "params": [{"name", "shape"}...]}` in flat
/// order. Free `*out_json` with `ddl_string_free`. Thread-safe.
///
/// # Safety
/// `params` must be NULL or a live handle; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_describe(
    params: *const DdlParams,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_params_describe", || {
        // SAFETY: forwarded contract.
        let (out, p) = unsafe {
            (
                args::out_string(out_json, "out_json")?,
                borrow(params, "params")?,
            )
        };
        let list: Vec<_> = p
            .specs
            .iter()
            .map(|s| serde_json::json!({ "name": s.name, "shape": s.shape }))
            .collect();
        *out = args::give_json(&serde_json::json!({ "numel": p.params.numel(), "params": list }))?;
        Ok(())
    })
}

/// Copies the tensor named `name` (row-major, its manifest shape) into `values` (capacity
/// `capacity` floats). An unknown name is `DDL_STATUS_INVALID_ARGUMENT` listing the names.
/// Thread-safe.
///
/// # Safety
/// `params` must be NULL or a live handle; `name` NULL or NUL-terminated; `values` NULL or
/// holding `capacity` floats.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_get_tensor(
    params: *const DdlParams,
    name: *const c_char,
    values: *mut f32,
    capacity: usize,
) -> DdlStatus {
    ffi_call("ddl_params_get_tensor", || {
        // SAFETY: forwarded contract.
        let (p, name) = unsafe { (borrow(params, "params")?, args::string(name, "name")?) };
        let t = &p.params.tensors()[p.tensor_index(name)?];
        // SAFETY: forwarded contract.
        let dst = unsafe { args::out_slice(values, capacity, t.len(), "values") }?;
        copy_into(dst, t.iter());
        Ok(())
    })
}

/// Overwrites the tensor named `name` from exactly as many floats as it has (row-major).
/// Needs exclusive use of `params`.
///
/// # Safety
/// `params` must be NULL or a live handle not used by another thread; `name` NULL or
/// NUL-terminated; `values` must hold `len` floats.
#[no_mangle]
pub unsafe extern "C" fn ddl_params_set_tensor(
    params: *mut DdlParams,
    name: *const c_char,
    values: *const f32,
    len: usize,
) -> DdlStatus {
    ffi_call("ddl_params_set_tensor", || {
        // SAFETY: forwarded contract.
        let (p, name) = unsafe { (borrow_mut(params, "params")?, args::string(name, "name")?) };
        let i = p.tensor_index(name)?;
        let shape = &p.specs[i].shape;
        let n: usize = shape.iter().product();
        if len != n {
            return Err(FfiError::invalid(
                "len",
                format!("is {len}, tensor `{name}` {shape:?} has {n} values"),
            ));
        }
        // SAFETY: forwarded contract.
        let values = unsafe { args::slice(values, len, "values") }?;
        p.params.tensors_mut()[i] =
            ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("length checked");
        Ok(())
    })
}
