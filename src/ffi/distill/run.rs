//! `ddl_distill`: runs the library's [`crate::distill::DistillJob`] held by a configuration.

use std::ffi::{c_char, c_void};

use super::super::args;
use super::super::bundle::DdlBundle;
use super::super::dataset::DdlDataset;
use super::super::distilled::DdlDistilledSet;
use super::super::guard::ffi_call;
use super::super::handles::{borrow, into_handle};
use super::super::progress::{Callback, DdlProgressFn};
use super::super::status::DdlStatus;
use super::config::DdlDistillConfig;

/// Distils `real` for the model of `bundle` with `config`, as `ddlens distill` does: the set
/// starts from `ipc` real images per class drawn with the seed (random: that is the result;
/// herding: picked by features instead) and is optimised for the configured iterations.
///
/// `progress` (may be NULL) is called with `user_data` before the first iteration (`step` 0, or
/// the checkpoint's iteration when resuming) and after each, with `total` the iterations
/// (herding: the feature model's training steps plus one per class; random: 1). A nonzero
/// return cancels with `DDL_STATUS_CANCELLED`; a checkpoint due by then has been written, so the
/// run can be resumed. On success `*out_set` receives the distilled set (free with
/// `ddl_distilled_free`; metadata method, ipc, dataset, model, seed; the learned learning rate
/// for mtt and bptt with `learn_lr`) and, when `out_json` is not NULL, `*out_json` a JSON report
/// `{"method", "ipc", "dataset", "model", "seed", "settings", "iterations", "resumed_from",
/// "wall_seconds", "final_loss", "loss_per_iteration": [...], "checkpoint"}` (free with
/// `ddl_string_free`). On failure both outputs are NULL.
///
/// Errors: `real` not fitting the model or a class with fewer than `ipc` images is
/// `DDL_STATUS_DATA` or `DDL_STATUS_INVALID_ARGUMENT`; mtt without experts is
/// `DDL_STATUS_INVALID_ARGUMENT` naming `experts`, experts for another model or damaged
/// `DDL_STATUS_BUNDLE`; resuming without a checkpoint file `DDL_STATUS_NOT_FOUND`, from one of
/// a run with other settings `DDL_STATUS_DATA`; divergence (a non-finite loss or pixel)
/// `DDL_STATUS_INVALID_ARGUMENT` naming `lr`.
///
/// Thread-safe: the bundle, `real` and `config` are only read, so several threads may distil
/// at once, sharing them or not (but not sharing a checkpoint file).
///
/// # Safety
/// Handles must be NULL or live; `progress` NULL or a valid function; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill(
    bundle: *const DdlBundle,
    real: *const DdlDataset,
    config: *const DdlDistillConfig,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_set: *mut *mut DdlDistilledSet,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_distill", || {
        // The optional output first: it must be NULL after any failure, a NULL `out_set`
        // included.
        // SAFETY: forwarded contract.
        let (out_json, out) = unsafe {
            (
                args::opt_out_string(out_json, "out_json")?,
                args::out_handle(out_set, "out_set")?,
            )
        };
        // SAFETY: forwarded contract.
        let (b, d, c) = unsafe {
            (
                &borrow(bundle, "bundle")?.inner,
                &borrow(real, "real")?.inner,
                &borrow(config, "config")?.inner,
            )
        };
        let outcome = c.run(b, d, &mut Callback::new(progress, user_data))?;
        let set = outcome.to_distilled()?;
        let report = outcome.report();
        // Encode before handing anything out, so that a failure leaves both outputs NULL.
        let text = out_json
            .as_ref()
            .map(|_| args::give_json(&report))
            .transpose()?;
        *out = into_handle(DdlDistilledSet { inner: set });
        if let (Some(slot), Some(text)) = (out_json, text) {
            *slot = text;
        }
        Ok(())
    })
}
