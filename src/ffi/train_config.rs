//! Training configurations: an opaque handle built from a named protocol, adjusted field by
//! field (each setter validates and names the field), or read from JSON.
//!
//! A handle rather than a C struct so that later fields can be added without breaking the ABI.

use std::ffi::c_char;

use serde_json::Value;

use super::args;
use super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::handles::{borrow, borrow_mut, into_handle, release};
use super::status::DdlStatus;
use crate::train::{Schedule, TrainConfig};

/// A training configuration (opaque). Functions taking `const DdlTrainConfig*` may run
/// concurrently on one handle; setters need exclusive use.
pub struct DdlTrainConfig {
    pub(crate) inner: TrainConfig,
}

fn to_usize(v: u64, arg: &str) -> FfiResult<usize> {
    usize::try_from(v).map_err(|_| FfiError::invalid(arg, format!("{v} does not fit in size_t")))
}

/// Checks a whole configuration, naming the field at fault.
fn validate(c: &TrainConfig) -> FfiResult<()> {
    c.validate()?;
    if let Schedule::Step { gamma, .. } = c.schedule {
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(FfiError::invalid(
                "gamma",
                format!("must be positive and finite, got {gamma}"),
            ));
        }
    }
    if c.max_steps == Some(0) {
        return Err(FfiError::invalid(
            "max_steps",
            "must be at least 1 (or null for no limit)",
        ));
    }
    Ok(())
}

unsafe fn give(
    out: *mut *mut DdlTrainConfig,
    build: impl FnOnce() -> FfiResult<TrainConfig>,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let out = unsafe { args::out_handle(out, "out") }?;
    let config = build()?;
    validate(&config)?;
    *out = into_handle(DdlTrainConfig { inner: config });
    Ok(())
}

/// The standard evaluation recipe of a training set of `train_size` examples: SGD with
/// learning rate `lr` (0.01, or a distilled set's learned rate), momentum 0.9, weight decay
/// 5e-4, batch 256, `epochs` epochs, learning rate x0.1 at half of the epochs; shuffling
/// seeded by `seed`. Free with `ddl_train_config_free`. Thread-safe.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_standard_eval(
    epochs: u64,
    lr: f32,
    train_size: usize,
    seed: u64,
    out: *mut *mut DdlTrainConfig,
) -> DdlStatus {
    ffi_call("ddl_train_config_standard_eval", || {
        // SAFETY: forwarded contract.
        unsafe {
            give(out, || {
                args::positive(train_size, "train_size")?;
                Ok(TrainConfig::standard_eval(
                    to_usize(epochs, "epochs")?,
                    lr,
                    train_size,
                    seed,
                ))
            })
        }
    })
}

/// P_dist of "What is Dataset Distillation Learning?": full-batch SGD for `steps` steps,
/// learning rate 0.01, momentum 0.9, no weight decay. Thread-safe.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_p_dist(
    steps: u64,
    seed: u64,
    out: *mut *mut DdlTrainConfig,
) -> DdlStatus {
    ffi_call("ddl_train_config_p_dist", || {
        // SAFETY: forwarded contract.
        unsafe {
            give(out, || {
                Ok(TrainConfig::p_dist(to_usize(steps, "steps")?, seed))
            })
        }
    })
}

/// P_real of the same paper: minibatch 256, learning rate 0.01, momentum 0.9, no weight
/// decay, `epochs` epochs. Thread-safe.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_p_real(
    epochs: u64,
    seed: u64,
    out: *mut *mut DdlTrainConfig,
) -> DdlStatus {
    ffi_call("ddl_train_config_p_real", || {
        // SAFETY: forwarded contract.
        unsafe {
            give(out, || {
                Ok(TrainConfig::p_real(to_usize(epochs, "epochs")?, seed))
            })
        }
    })
}

/// Reads a configuration from JSON, the format `ddl_train_config_to_json` writes:
/// `{"epochs", "max_steps" (null = none), "batch_size" (null = full batch), "lr",
/// "sgd": {"momentum", "weight_decay"}, "schedule": {"kind": "constant"} or
/// {"kind": "step", "milestones": [...], "gamma"}, "seed", "augment" (null = none, or a DSA
/// strategy, see `ddl_train_config_set_dsa`)}`. Every field is required except `max_steps`,
/// `batch_size` and `augment`; unknown fields and bad values are
/// `DDL_STATUS_INVALID_ARGUMENT` naming the field. Thread-safe.
///
/// # Safety
/// `json` must be NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_from_json(
    json: *const c_char,
    out: *mut *mut DdlTrainConfig,
) -> DdlStatus {
    ffi_call("ddl_train_config_from_json", || {
        // `give` sets `*out` to NULL first, so that it is NULL after a NULL `json` too.
        // SAFETY: forwarded contract.
        unsafe { give(out, || parse_config(args::string(json, "json")?)) }
    })
}

fn parse_config(text: &str) -> FfiResult<TrainConfig> {
    let bad = |e: serde_json::Error| FfiError::invalid("json", e);
    let given: Value = serde_json::from_str(text).map_err(bad)?;
    let config: TrainConfig = serde_json::from_value(given.clone()).map_err(bad)?;
    // serde ignores unknown keys here; a misspelt field must not silently keep its default.
    let canonical = serde_json::to_value(&config).map_err(bad)?;
    reject_unknown(&given, &canonical, "")?;
    Ok(config)
}

/// Fails on the first key of `given` that the canonical encoding does not have.
fn reject_unknown(given: &Value, canonical: &Value, path: &str) -> FfiResult<()> {
    if let (Value::Object(g), Value::Object(c)) = (given, canonical) {
        for (key, value) in g {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match c.get(key) {
                None => return Err(FfiError::invalid("json", format!("unknown field `{here}`"))),
                Some(cv) => reject_unknown(value, cv, &here)?,
            }
        }
    }
    Ok(())
}

/// Writes the configuration as JSON (see `ddl_train_config_from_json`). Free `*out_json`
/// with `ddl_string_free`. Thread-safe.
///
/// # Safety
/// `config` must be NULL or a live handle; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_to_json(
    config: *const DdlTrainConfig,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_train_config_to_json", || {
        // SAFETY: forwarded contract.
        let (out, c) = unsafe {
            (
                args::out_string(out_json, "out_json")?,
                borrow(config, "config")?,
            )
        };
        *out = args::give_json(&c.inner)?;
        Ok(())
    })
}

/// Writes the number of updates a run on `train_size` examples makes. Thread-safe.
///
/// # Safety
/// `config` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_total_steps(
    config: *const DdlTrainConfig,
    train_size: usize,
    out: *mut u64,
) -> DdlStatus {
    ffi_call("ddl_train_config_total_steps", || {
        // SAFETY: forwarded contract.
        let (c, out) = unsafe { (borrow(config, "config")?, args::out(out, "out")?) };
        *out = c
            .inner
            .total_steps(args::positive(train_size, "train_size")?) as u64;
        Ok(())
    })
}

/// Releases a configuration. NULL is a no-op. The handle must not be in use by another thread.
///
/// # Safety
/// `config` must be NULL or a handle from a `ddl_train_config_*` constructor, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_free(config: *mut DdlTrainConfig) {
    // SAFETY: forwarded contract.
    ffi_release("ddl_train_config_free", || unsafe { release(config) });
}

/// Applies `edit` to a copy, validates it, and commits only a valid result, so a rejected
/// setter leaves the configuration as it was.
unsafe fn set(
    func: &str,
    config: *mut DdlTrainConfig,
    edit: impl FnOnce(&mut TrainConfig) -> FfiResult,
) -> DdlStatus {
    ffi_call(func, || {
        // SAFETY: forwarded contract.
        let c = unsafe { borrow_mut(config, "config") }?;
        let mut next = c.inner.clone();
        edit(&mut next)?;
        validate(&next)?;
        c.inner = next;
        Ok(())
    })
}

/// Sets the number of epochs (at least 1). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_epochs(
    config: *mut DdlTrainConfig,
    epochs: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_epochs", config, |c| {
            c.epochs = to_usize(epochs, "epochs")?;
            Ok(())
        })
    }
}

/// Stops after `max_steps` updates even if epochs remain; 0 removes the limit. Needs exclusive
/// use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_max_steps(
    config: *mut DdlTrainConfig,
    max_steps: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_max_steps", config, |c| {
            c.max_steps = match max_steps {
                0 => None,
                n => Some(to_usize(n, "max_steps")?),
            };
            Ok(())
        })
    }
}

/// Sets the minibatch size; 0 means full-batch training (one update per epoch on the whole
/// set). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_batch_size(
    config: *mut DdlTrainConfig,
    batch_size: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_batch_size", config, |c| {
            c.batch_size = match batch_size {
                0 => None,
                n => Some(to_usize(n, "batch_size")?),
            };
            Ok(())
        })
    }
}

/// Sets the base learning rate (positive, finite). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_lr(
    config: *mut DdlTrainConfig,
    lr: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_lr", config, |c| {
            c.lr = lr;
            Ok(())
        })
    }
}

/// Sets the SGD momentum (in [0, 1)). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_momentum(
    config: *mut DdlTrainConfig,
    momentum: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_momentum", config, |c| {
            c.sgd.momentum = momentum;
            Ok(())
        })
    }
}

/// Sets the L2 weight decay (non-negative, finite). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_weight_decay(
    config: *mut DdlTrainConfig,
    weight_decay: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_weight_decay", config, |c| {
            c.sgd.weight_decay = weight_decay;
            Ok(())
        })
    }
}

/// Sets the seed of the shuffling order. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_seed(
    config: *mut DdlTrainConfig,
    seed: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_seed", config, |c| {
            c.seed = seed;
            Ok(())
        })
    }
}

/// Keeps the learning rate constant. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_schedule_constant(
    config: *mut DdlTrainConfig,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_schedule_constant", config, |c| {
            c.schedule = Schedule::Constant;
            Ok(())
        })
    }
}

/// Multiplies the learning rate by `gamma` (positive, finite) from each of the `count` update
/// numbers in `milestones` (0-based steps). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread; `milestones` must hold
/// `count` values (NULL allowed when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_schedule_step(
    config: *mut DdlTrainConfig,
    milestones: *const u64,
    count: usize,
    gamma: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_schedule_step", config, |c| {
            let m = args::slice(milestones, count, "milestones")?;
            let milestones = m
                .iter()
                .map(|&v| to_usize(v, "milestones"))
                .collect::<FfiResult<Vec<_>>>()?;
            c.schedule = Schedule::Step { milestones, gamma };
            Ok(())
        })
    }
}

/// Augments every minibatch with DSA: `strategy` is a strategy string such as
/// `"color_crop_cutout_flip_scale_rotate"` (the standard one; leave out `flip` for digits),
/// `_`-separated words among color, crop, cutout, flip, scale and rotate. Each update applies a
/// fresh draw per image (one family, picked at random), from a random stream of the seed
/// separate from the shuffling order's. NULL, `""` or `"none"` trains on the plain images
/// again. The standard evaluation with augmentation trains 1000 epochs instead of 300. An
/// unknown word is `DDL_STATUS_INVALID_ARGUMENT` naming `augment`, and leaves `config` as it
/// was. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread; `strategy` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ddl_train_config_set_dsa(
    config: *mut DdlTrainConfig,
    strategy: *const c_char,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_train_config_set_dsa", config, |c| {
            c.augment = args::opt_string(strategy, "strategy")?.map(str::to_owned);
            // Store the canonical strategy (`None` when it names no transform).
            c.augment = c.dsa()?.map(|d| d.strategy());
            Ok(())
        })
    }
}
