//! Runtime set-up: which ONNX Runtime library, which execution provider, how many threads.

use std::ffi::c_char;
use std::path::PathBuf;

use serde_json::json;

use super::args;
use super::guard::{ffi_call, FfiError, FfiResult};
use super::status::DdlStatus;
use crate::runtime::{self, ProviderChoice, Runtime, RuntimeConfig};

/// An execution provider choice (a `uint32_t` so that any value can be checked safely).
pub type DdlProvider = u32;
/// CUDA when it works, otherwise the CPU; `ddl_runtime_describe` says which and why. The
/// default (0).
pub const DDL_PROVIDER_AUTO: DdlProvider = 0;
/// The CPU only.
pub const DDL_PROVIDER_CPU: DdlProvider = 1;
/// CUDA, or `DDL_STATUS_PROVIDER` when it cannot be used.
pub const DDL_PROVIDER_CUDA: DdlProvider = 2;

fn provider_choice(p: DdlProvider) -> FfiResult<ProviderChoice> {
    match p {
        DDL_PROVIDER_AUTO => Ok(ProviderChoice::Auto),
        DDL_PROVIDER_CPU => Ok(ProviderChoice::Cpu),
        DDL_PROVIDER_CUDA => Ok(ProviderChoice::Cuda),
        other => Err(FfiError::invalid(
            "provider",
            format!("{other} is not a DdlProvider (DDL_PROVIDER_AUTO 0, _CPU 1, _CUDA 2)"),
        )),
    }
}

/// The process runtime, or `DDL_STATUS_RUNTIME_NOT_INITIALIZED`.
///
/// The C ABI never sets the runtime up implicitly (unlike the Rust API's `runtime::get`): ONNX
/// Runtime allows one environment per process and its settings cannot change, so a silent
/// default set-up would make the caller's later `ddl_runtime_init` fail. The first call that
/// needs the runtime says so instead, and names the fix.
pub(crate) fn require() -> FfiResult<&'static Runtime> {
    if !runtime::is_initialized() {
        return Err(FfiError::new(
            DdlStatus::RuntimeNotInitialized,
            "ONNX Runtime is not set up; call ddl_runtime_init(NULL, DDL_PROVIDER_AUTO, 0) first \
             (or with an explicit library path, provider and thread count)",
        ));
    }
    runtime::get().map_err(Into::into)
}

/// Sets up ONNX Runtime for the process; call once before opening bundles.
///
/// * `library_path`: path of `libonnxruntime.so`, or NULL to search (`DDLENS_ORT_LIB`,
///   `ORT_DYLIB_PATH`, the project's `.ddlens/onnxruntime`, python3's `onnxruntime`).
/// * `provider`: a `DDL_PROVIDER_*` value; others give `DDL_STATUS_INVALID_ARGUMENT`.
/// * `threads`: worker threads that run graph calls (the chunks of a batch side by side); 0 =
///   one per available core. A count above the available cores is capped to them, and
///   `ddl_runtime_describe`'s `threads_note` says so.
///
/// Calling it again with the same settings succeeds and changes nothing; other settings give
/// `DDL_STATUS_RUNTIME_CONFIG` (one environment per process). A missing library gives
/// `DDL_STATUS_RUNTIME_NOT_FOUND` with every path tried. Thread-safe (set-up is serialised).
///
/// # Safety
/// `library_path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ddl_runtime_init(
    library_path: *const c_char,
    provider: DdlProvider,
    threads: u32,
) -> DdlStatus {
    ffi_call("ddl_runtime_init", || {
        // SAFETY: forwarded contract.
        let library = unsafe { args::opt_string(library_path, "library_path") }?;
        let config = RuntimeConfig {
            library: library.map(PathBuf::from),
            provider: provider_choice(provider)?,
            threads: (threads > 0).then_some(threads as usize),
        };
        runtime::init(config)?;
        Ok(())
    })
}

/// Whether `ddl_runtime_init` has succeeded in this process. Never fails. Thread-safe.
#[no_mangle]
pub extern "C" fn ddl_runtime_is_initialized() -> bool {
    runtime::is_initialized()
}

/// Describes the runtime as JSON: `{"library", "library_source", "onnxruntime_version",
/// "provider" ("cpu"|"cuda"), "provider_requested", "provider_note" (why `auto` fell back, or
/// null), "threads" (the worker threads in use), "threads_requested" (null = one per core),
/// "threads_note" (why the request was capped to the cores, or null), "ddlens_version"}`. `*out_json` receives a string to
/// free with `ddl_string_free` (NULL on failure). `DDL_STATUS_RUNTIME_NOT_INITIALIZED` before
/// set-up. Thread-safe.
///
/// # Safety
/// `out_json` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_runtime_describe(out_json: *mut *mut c_char) -> DdlStatus {
    ffi_call("ddl_runtime_describe", || {
        // SAFETY: forwarded contract.
        let out = unsafe { args::out_string(out_json, "out_json") }?;
        let rt = require()?;
        *out = args::give_json(&json!({
            "library": rt.library_path(),
            "library_source": rt.library_source(),
            "onnxruntime_version": rt.version(),
            "provider": rt.provider().to_string(),
            "provider_requested": rt.config().provider.to_string(),
            "provider_note": rt.provider_note(),
            "threads": rt.threads(),
            "threads_requested": rt.config().threads,
            "threads_note": rt.threads_note(),
            "ddlens_version": crate::VERSION,
        }))?;
        Ok(())
    })
}
