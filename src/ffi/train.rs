//! Training and evaluation.

use std::ffi::{c_char, c_void};

use serde_json::json;

use super::args;
use super::bundle::DdlBundle;
use super::dataset::DdlDataset;
use super::guard::{ffi_call, FfiError, FfiResult};
use super::handles::{borrow, into_handle};
use super::params::DdlParams;
use super::progress::{Callback, DdlProgressFn};
use super::status::DdlStatus;
use super::train_config::DdlTrainConfig;
use crate::train::{self, Control, Hook, StepContext};

/// Trains a copy of `init` on `data` with `config` (SGD; same seed, same result on the CPU).
///
/// `progress` (may be NULL) is called with `user_data` before the first update and after each;
/// a nonzero return cancels with `DDL_STATUS_CANCELLED`. On success `*out_params` receives the
/// trained parameters (free with `ddl_params_free`; `init` is unchanged) and, when `out_json` is
/// not NULL, `*out_json` a JSON report `{"steps", "total_steps", "stopped_early",
/// "final_loss", "log": [{"step", "epoch", "loss", "lr"}...]}` (free with `ddl_string_free`).
/// On failure both outputs are NULL. A dataset that does not fit the model is
/// `DDL_STATUS_DATA`; divergence (non-finite loss) is `DDL_STATUS_INVALID_ARGUMENT` naming
/// `lr`.
///
/// Thread-safe with respect to other calls: the bundle, `init`, `data` and `config` are only
/// read, so several threads may train at once, sharing them or not.
///
/// # Safety
/// Handles must be NULL or live; `progress` NULL or a valid function; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train(
    bundle: *const DdlBundle,
    init: *const DdlParams,
    data: *const DdlDataset,
    config: *const DdlTrainConfig,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_params: *mut *mut DdlParams,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_train", || {
        // The optional output first: it must be NULL after any failure, a NULL `out_params`
        // included.
        // SAFETY: forwarded contract.
        let (out_json, out) = unsafe {
            (
                args::opt_out_string(out_json, "out_json")?,
                args::out_handle(out_params, "out_params")?,
            )
        };
        // SAFETY: forwarded contract.
        let (b, p, d, c) = unsafe {
            (
                &borrow(bundle, "bundle")?.inner,
                borrow(init, "init")?,
                &borrow(data, "data")?.inner,
                &borrow(config, "config")?.inner,
            )
        };
        let progress = Callback::new(progress, user_data);
        let mut hook = |ctx: &StepContext<'_>| {
            progress.report(ctx.step as u64, ctx.total_steps as u64)?;
            Ok(Control::Continue)
        };
        let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
        let outcome = train::train(b, p.params.clone(), d, c, hooks)?;
        let report = json!({
            "steps": outcome.steps,
            "total_steps": c.total_steps(d.len()),
            "stopped_early": outcome.stopped_early,
            "final_loss": outcome.log.last().map(|s| s.loss),
            "log": outcome.log,
        });
        // Encode before handing anything out, so that a failure leaves both outputs NULL.
        let text = out_json
            .as_ref()
            .map(|_| args::give_json(&report))
            .transpose()?;
        let specs = &b.manifest().params;
        *out = into_handle(DdlParams::with_state(outcome.params, outcome.state, specs));
        if let (Some(slot), Some(text)) = (out_json, text) {
            *slot = text;
        }
        Ok(())
    })
}

/// Evaluates `params` on every example of `data`: accuracy (fraction of arg-max logits equal
/// to the label) to `*out_accuracy`, mean cross-entropy to `*out_loss`, and, when `out_json` is
/// not NULL, `{"accuracy", "loss", "confusion": [[count of label i predicted j]...]}` (free with
/// `ddl_string_free`). Each output may be NULL. Thread-safe.
///
/// # Safety
/// Handles must be NULL or live; outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_evaluate(
    bundle: *const DdlBundle,
    params: *const DdlParams,
    data: *const DdlDataset,
    out_accuracy: *mut f64,
    out_loss: *mut f64,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_evaluate", || {
        // SAFETY: forwarded contract.
        let (acc, loss, json_out) = unsafe {
            (
                args::opt_out(out_accuracy, "out_accuracy")?,
                args::opt_out(out_loss, "out_loss")?,
                args::opt_out_string(out_json, "out_json")?,
            )
        };
        // SAFETY: forwarded contract.
        let (b, p, d) = unsafe {
            (
                &borrow(bundle, "bundle")?.inner,
                borrow(params, "params")?,
                &borrow(data, "data")?.inner,
            )
        };
        let e = if p.state.is_empty() {
            train::evaluate(b, &p.params, d)?
        } else {
            train::evaluate_with_state(b, &p.params, &p.state, d)?
        };
        if let Some(slot) = json_out {
            *slot = args::give_json(&e)?;
        }
        if let Some(a) = acc {
            *a = e.accuracy;
        }
        if let Some(l) = loss {
            *l = e.loss;
        }
        Ok(())
    })
}

/// The standard evaluation of a training set: `runs` fresh models (initialisation and
/// shuffling seeded by `seed + run`), each trained on `train` with the standard recipe
/// (`epochs`, learning rate `lr`, see `ddl_train_config_standard_eval`), without
/// augmentation, and evaluated on `test` (with DSA augmentation:
/// `ddl_standard_evaluation_augmented`). `progress` sees one continuous count over all runs.
/// `*out_json` receives `{"label", "train_size", "accuracies": [...], "mean", "std"}` (free
/// with `ddl_string_free`). Thread-safe (all inputs are only read).
///
/// # Safety
/// Handles must be NULL or live; `progress` NULL or a valid function; `out_json` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_standard_evaluation(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    runs: usize,
    epochs: u64,
    lr: f32,
    seed: u64,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_standard_evaluation", || {
        // SAFETY: forwarded contract.
        unsafe {
            standard_evaluation_with(
                (bundle, train_set, test_set),
                (runs, epochs, lr, seed),
                std::ptr::null(),
                Callback::new(progress, user_data),
                out_json,
            )
        }
    })
}

/// `ddl_standard_evaluation` with DSA augmentation of every minibatch: `strategy` is a DSA
/// strategy string as `ddl_train_config_set_dsa` takes it (e.g. `"color_crop_cutout_flip_scale_rotate"`,
/// or NULL for none). The protocol with augmentation trains 1000 epochs (pass `epochs`
/// 1000). Run `r` seeds its initialisation, shuffling and augmentation with `seed + r`, as
/// `ddlens eval --dsa` does, so the accuracies are that command's. An unknown word is
/// `DDL_STATUS_INVALID_ARGUMENT` naming `augment`. Thread-safe (all inputs are only read).
///
/// # Safety
/// As `ddl_standard_evaluation`; `strategy` NULL or a NUL-terminated UTF-8 string.
#[no_mangle]
pub unsafe extern "C" fn ddl_standard_evaluation_augmented(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    runs: usize,
    epochs: u64,
    lr: f32,
    seed: u64,
    strategy: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_standard_evaluation_augmented", || {
        // SAFETY: forwarded contract.
        unsafe {
            standard_evaluation_with(
                (bundle, train_set, test_set),
                (runs, epochs, lr, seed),
                strategy,
                Callback::new(progress, user_data),
                out_json,
            )
        }
    })
}

/// The body of both standard-evaluation calls.
///
/// # Safety
/// The handles NULL or live, `strategy` NULL or a NUL-terminated string, `out_json` NULL or
/// writable.
unsafe fn standard_evaluation_with(
    (bundle, train_set, test_set): (*const DdlBundle, *const DdlDataset, *const DdlDataset),
    (runs, epochs, lr, seed): (usize, u64, f32, u64),
    strategy: *const c_char,
    mut progress: Callback,
    out_json: *mut *mut c_char,
) -> FfiResult<()> {
    // SAFETY: forwarded contract. The output is cleared first, whatever fails next.
    let out = unsafe { args::out_string(out_json, "out_json") }?;
    // SAFETY: forwarded contract (NULL: no augmentation).
    let strategy = unsafe { args::opt_string(strategy, "strategy") }?;
    // SAFETY: forwarded contract.
    let (b, tr, te) = unsafe {
        (
            &borrow(bundle, "bundle")?.inner,
            &borrow(train_set, "train_set")?.inner,
            &borrow(test_set, "test_set")?.inner,
        )
    };
    args::positive(runs, "runs")?;
    let epochs = usize::try_from(epochs)
        .map_err(|_| FfiError::invalid("epochs", "does not fit in size_t"))
        .and_then(|e| args::positive(e, "epochs"))?;
    let mut eval = train::StandardEval {
        runs,
        epochs,
        lr,
        seed,
        augment: strategy.map(str::to_owned),
    };
    // The canonical strategy (`None` when it names no transform), as the CLI stores it.
    eval.augment = eval.train_config(1, 0).dsa()?.map(|d| d.strategy());
    let summary = train::standard_evaluation(b, tr, te, tr.name(), &eval, &mut progress)?;
    *out = args::give_json(&summary)?;
    Ok(())
}
