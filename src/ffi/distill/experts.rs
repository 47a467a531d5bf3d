//! `ddl_generate_experts`: the library's [`ExpertJob`] (MTT's expert trajectories).

use std::ffi::{c_char, c_void};
use std::path::Path;

use super::super::args;
use super::super::bundle::DdlBundle;
use super::super::dataset::DdlDataset;
use super::super::guard::{ffi_call, FfiError};
use super::super::handles::borrow;
use super::super::progress::{Callback, DdlProgressFn};
use super::super::status::DdlStatus;
use crate::data::DatasetName;
use crate::distill::ExpertJob;

/// Trains `num_experts` expert trajectories for mtt on `dataset` and writes them to `out_dir`
/// (created if needed), as `ddlens experts` does: SGD with learning rate `lr`, no momentum, no
/// weight decay, minibatches of `batch`, `epochs` epochs, parameters saved at the start and
/// after every epoch; with `dsa`, every minibatch is augmented per image with the standard DSA
/// strategy (without flips on MNIST). Expert `i` draws from stream `i` of `seed`, so each is
/// reproducible on its own. Every expert's parameters and state are saved after every epoch
/// and the index (`experts.json`) last; unless every expert asked for is already complete, an
/// index left in `out_dir` is removed first, so an interrupted or cancelled generation is never
/// taken for a complete one.
/// Calling again with the same arguments continues an interrupted or cancelled generation to
/// the same files as an uninterrupted one; if `out_dir` holds experts made with other settings
/// the call fails (`DDL_STATUS_BUNDLE` naming the file) before touching anything.
///
/// `progress` (may be NULL) is called with `user_data` before the first epoch and after each,
/// counting epochs over all experts (`total` = `num_experts * epochs`); a nonzero return cancels
/// with `DDL_STATUS_CANCELLED`. On success, when `out_json` is not NULL, `*out_json` receives
/// the index `{"format", "model", "experts", "epochs", "lr", "momentum", "batch", "augment",
/// "seed"}` (free with `ddl_string_free`). `num_experts`, `epochs` or `batch` 0, or a `lr` that
/// is not positive, is `DDL_STATUS_INVALID_ARGUMENT` naming it; divergence is
/// `DDL_STATUS_INVALID_ARGUMENT` naming `lr`.
///
/// Thread-safe (the bundle and the dataset are only read), as long as no other call writes to
/// `out_dir` at the same time.
///
/// # Safety
/// Handles must be NULL or live; `out_dir` NULL or NUL-terminated; `progress` NULL or a valid
/// function; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_generate_experts(
    bundle: *const DdlBundle,
    dataset: *const DdlDataset,
    num_experts: usize,
    epochs: u64,
    lr: f32,
    batch: usize,
    dsa: bool,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_generate_experts", || {
        // SAFETY: forwarded contract.
        let out_json = unsafe { args::opt_out_string(out_json, "out_json") }?;
        // SAFETY: forwarded contract.
        let (b, d, dir) = unsafe {
            (
                &borrow(bundle, "bundle")?.inner,
                &borrow(dataset, "dataset")?.inner,
                Path::new(args::string(out_dir, "out_dir")?),
            )
        };
        args::positive(num_experts, "num_experts")?;
        let epochs = usize::try_from(epochs)
            .map_err(|_| FfiError::invalid("epochs", format!("{epochs} does not fit in size_t")))
            .and_then(|e| args::positive(e, "epochs"))?;
        args::positive(batch, "batch")?;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(FfiError::invalid(
                "lr",
                format!("must be positive and finite, got {lr}"),
            ));
        }
        d.check_against(b.manifest())?;
        let mut job = ExpertJob::new(num_experts, epochs, dsa, DatasetName::of_split(d.name()));
        job.config.lr = lr;
        job.config.batch = batch;
        job.seed = seed;
        let index = job.run(dir, b, d, &mut Callback::new(progress, user_data))?;
        if let Some(slot) = out_json {
            *slot = args::give_json(&index)?;
        }
        Ok(())
    })
}
