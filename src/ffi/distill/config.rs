//! Distillation configurations: a handle over the library's [`DistillJob`], adjusted setter by
//! setter. Each setter checks that its field applies to the method, validates a copy and
//! commits only a valid one, so a refused setter changes nothing. Defaults, validation and the
//! description all come from the job: the C ABI adds only argument checks.

use std::ffi::c_char;
use std::path::PathBuf;

use super::super::args;
use super::super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::super::handles::{borrow, borrow_mut, into_handle, release};
use super::super::status::DdlStatus;
use crate::distill::{DistillJob, Field, MethodKind};

/// A distillation configuration (opaque): the method, images per class and every
/// hyperparameter, with `ddlens distill`'s defaults until a setter changes them. Functions
/// taking `const DdlDistillConfig*` may run concurrently on one handle; setters need exclusive
/// use.
pub struct DdlDistillConfig {
    pub(super) inner: DistillJob,
}

fn to_usize(v: u64, arg: &str) -> FfiResult<usize> {
    usize::try_from(v).map_err(|_| FfiError::invalid(arg, format!("{v} does not fit in size_t")))
}

fn count(v: u64, arg: &str) -> FfiResult<usize> {
    args::positive(to_usize(v, arg)?, arg)
}

fn optional_count(v: u64, arg: &str) -> FfiResult<Option<usize>> {
    match v {
        0 => Ok(None),
        n => to_usize(n, arg).map(Some),
    }
}

fn positive_rate(v: f32, arg: &str) -> FfiResult<f32> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(FfiError::invalid(
            arg,
            format!("must be positive and finite, got {v}"),
        ))
    }
}

/// A configuration for `method` (`"random"`, `"herding"`, `"dm"`, `"dc"`, `"dsa"`, `"mtt"` or
/// `"bptt"`, any case) distilling `ipc` images per class, with the defaults of `ddlens distill`
/// (docs/c-api.md lists them): iterations 1000 (mtt 5000; random and herding do not iterate),
/// seed 0, image learning rate 1 for dm, 1000 for mtt, 100 for bptt, 0.1 otherwise, image
/// momentum 0.5, real batch 256, DSA augmentation on for dm and mtt (always for dsa), mtt with
/// 20 student steps matching 2 expert epochs from start epochs below 20, bptt with 100
/// unrolled steps, no checkpoint. An unknown method is `DDL_STATUS_INVALID_ARGUMENT` naming `method` and listing
/// the valid ones; `ipc` 0 is `DDL_STATUS_INVALID_ARGUMENT`. Free with
/// `ddl_distill_config_free`. Thread-safe.
///
/// # Safety
/// `method` must be NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_new(
    method: *const c_char,
    ipc: usize,
    out: *mut *mut DdlDistillConfig,
) -> DdlStatus {
    ffi_call("ddl_distill_config_new", || {
        // SAFETY: forwarded contract.
        let (out, name) = unsafe {
            (
                args::out_handle(out, "out")?,
                args::string(method, "method")?,
            )
        };
        let kind: MethodKind = name.parse()?;
        args::positive(ipc, "ipc")?;
        let job = DistillJob::new(kind, ipc)?;
        job.validate()?;
        *out = into_handle(DdlDistillConfig { inner: job });
        Ok(())
    })
}

/// Releases a configuration. NULL is a no-op. The handle must not be in use by another thread.
///
/// # Safety
/// `config` must be NULL or a handle from `ddl_distill_config_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_free(config: *mut DdlDistillConfig) {
    // SAFETY: forwarded contract.
    ffi_release("ddl_distill_config_free", || unsafe { release(config) });
}

/// Describes the configuration as JSON, defaults resolved: `{"method", "ipc", "seed"}` plus
/// the settings the method uses (`"iterations"`, `"lr_img"`, `"momentum"`, `"batch_real"`,
/// `"dsa"`, `"syn_steps"`, `"batch_syn"` (null = the whole set), `"lr_lr"`, `"experts"`,
/// `"expert_epochs_ahead"`, `"max_start_epoch"`, `"window"` (null = full BPTT), `"learn_lr"`,
/// `"herding_params"`, `"checkpoint"`, `"checkpoint_every"`, `"resume"`). Free `*out_json` with
/// `ddl_string_free`. Thread-safe.
///
/// # Safety
/// `config` must be NULL or a live handle; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_describe(
    config: *const DdlDistillConfig,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    ffi_call("ddl_distill_config_describe", || {
        // SAFETY: forwarded contract.
        let (out, c) = unsafe {
            (
                args::out_string(out_json, "out_json")?,
                borrow(config, "config")?,
            )
        };
        *out = args::give_json(&c.inner.describe())?;
        Ok(())
    })
}

/// Applies `edit` to a copy when `field` applies to the configuration's method, validates the
/// result and commits only a valid one, so a refused setter leaves the configuration as it was.
unsafe fn set(
    func: &str,
    config: *mut DdlDistillConfig,
    field: Field,
    edit: impl FnOnce(&mut DistillJob) -> FfiResult,
) -> DdlStatus {
    ffi_call(func, || {
        // SAFETY: forwarded contract.
        let c = unsafe { borrow_mut(config, "config") }?;
        c.inner.check_applies(field)?;
        let mut next = c.inner.clone();
        edit(&mut next)?;
        next.validate()?;
        c.inner = next;
        Ok(())
    })
}

/// Sets the number of iterations (at least 1; a resumed run counts those already done, so a
/// finished run can be extended). dm, dc, dsa, mtt, bptt. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_iterations(
    config: *mut DdlDistillConfig,
    iterations: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_iterations",
            config,
            Field::Iterations,
            |s| {
                s.iterations = Some(count(iterations, "iterations")?);
                Ok(())
            },
        )
    }
}

/// Sets the seed of the initial set (real images drawn class-balanced), of every iteration's
/// random draws and of herding's feature model. Every method. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_seed(
    config: *mut DdlDistillConfig,
    seed: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_distill_config_set_seed", config, Field::Seed, |s| {
            s.seed = seed;
            Ok(())
        })
    }
}

/// Sets the image learning rate (positive, finite; SGD on normalised pixels). dm, dc, dsa,
/// mtt, bptt. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_lr_img(
    config: *mut DdlDistillConfig,
    lr_img: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_distill_config_set_lr_img", config, Field::LrImg, |s| {
            s.lr_img = Some(positive_rate(lr_img, "lr_img")?);
            Ok(())
        })
    }
}

/// Sets the momentum of the image optimiser (and of mtt/bptt's learned-lr optimiser), in
/// [0, 1). dm, dc, dsa, mtt, bptt. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_momentum(
    config: *mut DdlDistillConfig,
    momentum: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_momentum",
            config,
            Field::Momentum,
            |s| {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(FfiError::invalid(
                        "momentum",
                        format!("must be in [0, 1), got {momentum}"),
                    ));
                }
                s.momentum = Some(momentum);
                Ok(())
            },
        )
    }
}

/// Sets the number of real images per class per iteration (dm, dc, dsa) or in bptt's outer
/// loss batch (at least 1). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_batch_real(
    config: *mut DdlDistillConfig,
    batch_real: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_batch_real",
            config,
            Field::BatchReal,
            |s| {
                s.batch_real = count(batch_real, "batch_real")?;
                Ok(())
            },
        )
    }
}

/// Sets the inner steps (at least 1): mtt's student steps N (default 20), bptt's unrolled
/// training steps (default 100). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_syn_steps(
    config: *mut DdlDistillConfig,
    syn_steps: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_syn_steps",
            config,
            Field::SynSteps,
            |s| {
                s.syn_steps = Some(count(syn_steps, "syn_steps")?);
                Ok(())
            },
        )
    }
}

/// Sets the synthetic minibatch of mtt's student / bptt's inner training; 0 (the default)
/// uses the whole set. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_batch_syn(
    config: *mut DdlDistillConfig,
    batch_syn: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_batch_syn",
            config,
            Field::BatchSyn,
            |s| {
                s.batch_syn = optional_count(batch_syn, "batch_syn")?;
                Ok(())
            },
        )
    }
}

/// Sets the learning rate of the learned inner learning rate (positive, finite; default 1e-5):
/// mtt, and bptt with `ddl_distill_config_set_learn_lr`. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_lr_lr(
    config: *mut DdlDistillConfig,
    lr_lr: f32,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_distill_config_set_lr_lr", config, Field::LrLr, |s| {
            s.lr_lr = positive_rate(lr_lr, "lr_lr")?;
            Ok(())
        })
    }
}

/// Switches differentiable siamese augmentation on (the default) or off for dm and mtt: the
/// standard strategy, without flips when the real set is MNIST (loaded with
/// `ddl_dataset_load("mnist", ...)`). dsa always augments (`false` is refused: that is dc).
/// Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_dsa(
    config: *mut DdlDistillConfig,
    dsa: bool,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set("ddl_distill_config_set_dsa", config, Field::Dsa, |s| {
            if s.method == MethodKind::Dsa && !dsa {
                return Err(FfiError::invalid(
                    "dsa",
                    "dsa without augmentation is dc; use method \"dc\"",
                ));
            }
            s.dsa = dsa;
            Ok(())
        })
    }
}

/// Sets mtt's expert trajectories: a folder written by `ddl_generate_experts` (or `ddlens
/// experts`) for the same model. mtt needs one. A folder that does not exist is
/// `DDL_STATUS_NOT_FOUND` naming `experts_dir`; its contents are checked by `ddl_distill`.
/// Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread; `experts_dir` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_experts(
    config: *mut DdlDistillConfig,
    experts_dir: *const c_char,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_experts",
            config,
            Field::Experts,
            |s| {
                let dir = args::existing_path(experts_dir, "experts_dir")?;
                if !dir.is_dir() {
                    return Err(FfiError::invalid(
                        "experts_dir",
                        format!("{} is not a folder", dir.display()),
                    ));
                }
                s.experts = Some(dir.to_path_buf());
                Ok(())
            },
        )
    }
}

/// Sets mtt's expert epochs M between the student's start and its target (at least 1, at most
/// the experts' epochs, which `ddl_distill` checks; default 2). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_expert_epochs_ahead(
    config: *mut DdlDistillConfig,
    expert_epochs_ahead: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_expert_epochs_ahead",
            config,
            Field::ExpertEpochsAhead,
            |s| {
                s.expert_epochs_ahead = count(expert_epochs_ahead, "expert_epochs_ahead")?;
                Ok(())
            },
        )
    }
}

/// Sets mtt's start epochs: drawn from `0..max_start_epoch` (at least 1, default 20; clamped so
/// that the target epoch exists). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_max_start_epoch(
    config: *mut DdlDistillConfig,
    max_start_epoch: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_max_start_epoch",
            config,
            Field::MaxStartEpoch,
            |s| {
                s.max_start_epoch = count(max_start_epoch, "max_start_epoch")?;
                Ok(())
            },
        )
    }
}

/// RaT-BPTT: differentiate only the last `window` steps of an unroll of random length in
/// `window..=syn_steps` (at most `syn_steps`); 0 (the default) differentiates every step.
/// bptt. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_window(
    config: *mut DdlDistillConfig,
    window: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_window",
            config,
            Field::Window,
            |s| {
                s.window = optional_count(window, "window")?;
                Ok(())
            },
        )
    }
}

/// Whether bptt learns its inner learning rate too (stored in the distilled set; default
/// false). Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_learn_lr(
    config: *mut DdlDistillConfig,
    learn_lr: bool,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_learn_lr",
            config,
            Field::LearnLr,
            |s| {
                s.learn_lr = learn_lr;
                Ok(())
            },
        )
    }
}

/// herding: pick images in the feature space of these parameters (a safetensors file from
/// `ddl_params_save`) instead of a model trained for one epoch of P_real on the real set (the
/// default, NULL or `""`). A missing file is `DDL_STATUS_NOT_FOUND` naming `params_path`. Needs
/// exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread; `params_path` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_herding_params(
    config: *mut DdlDistillConfig,
    params_path: *const c_char,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_herding_params",
            config,
            Field::HerdingParams,
            |s| {
                s.herding_params = match args::opt_string(params_path, "params_path")? {
                    None | Some("") => None,
                    Some(_) => Some(args::existing_path(params_path, "params_path")?.to_path_buf()),
                };
                Ok(())
            },
        )
    }
}

/// Checkpoints the run to `path` (a safetensors file, replaced atomically) after every `every`
/// iterations and after the last one; `every` 0 writes it after the last one only. NULL or `""`
/// (the default) writes none. The checkpoint holds everything an exact resume needs (see
/// `ddl_distill_config_set_resume`). dm, dc, dsa, mtt, bptt. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread; `path` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_checkpoint(
    config: *mut DdlDistillConfig,
    path: *const c_char,
    every: u64,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_checkpoint",
            config,
            Field::Checkpoint,
            |s| {
                s.checkpoint = args::opt_string(path, "path")?
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from);
                s.checkpoint_every = to_usize(every, "every")?;
                Ok(())
            },
        )
    }
}

/// With `resume` true, `ddl_distill` continues from the checkpoint file of an earlier run with
/// the same settings, model and data (a differing setting is `DDL_STATUS_DATA` naming it; a
/// missing file `DDL_STATUS_NOT_FOUND`): the result is bit-identical to an uninterrupted run on
/// the CPU. Needs a checkpoint path (`ddl_distill_config_set_checkpoint`). dm, dc, dsa, mtt,
/// bptt. Needs exclusive use of `config`.
///
/// # Safety
/// `config` must be NULL or a live handle not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ddl_distill_config_set_resume(
    config: *mut DdlDistillConfig,
    resume: bool,
) -> DdlStatus {
    // SAFETY: forwarded contract.
    unsafe {
        set(
            "ddl_distill_config_set_resume",
            config,
            Field::Resume,
            |s| {
                s.resume = resume;
                Ok(())
            },
        )
    }
}
