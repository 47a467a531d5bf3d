//! Dataset distillation: a configuration handle per method (adjusted setter by setter, each
//! validated and naming its field), the distillation itself with checkpoints, resume and a
//! cancelling progress callback, and the expert trajectories MTT matches.
//!
//! Each method is configured and run as `ddlens distill` does (src/bin/ddlens.rs): the same
//! defaults, the same seeded real initialisation, the same settings fingerprint in the
//! checkpoint, so a run through the C ABI gives bit-identical images to the Rust API and the
//! CLI with the same settings, and can resume their checkpoints.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::args;
use super::bundle::DdlBundle;
use super::dataset::DdlDataset;
use super::distilled::DdlDistilledSet;
use super::guard::{ffi_call, ffi_release, FfiError, FfiResult};
use super::handles::{borrow, borrow_mut, into_handle, release};
use super::progress::{DdlProgressFn, Progress};
use super::status::DdlStatus;
use crate::augment::{AugOp, Dsa};
use crate::bundle::{Bundle, Params};
use crate::data::{DatasetName, DistilledMeta};
use crate::distill::{
    self, BpttConfig, DcConfig, DmConfig, ExpertConfig, ExpertDir, ExpertSource, IterContext,
    Method, MttConfig, RunConfig, RunLog, Synthetic,
};
use crate::error::{Error, Result};
use crate::train::{self, Control, Hook, StepContext, TrainConfig};
use crate::Dataset;

/// The distillation methods, as `ddl_distill_config_new` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Random,
    Herding,
    Dm,
    Dc,
    Dsa,
    Mtt,
    Bptt,
}

const KINDS: [Kind; 7] = [
    Kind::Random,
    Kind::Herding,
    Kind::Dm,
    Kind::Dc,
    Kind::Dsa,
    Kind::Mtt,
    Kind::Bptt,
];
/// The methods that iterate (and so have iterations, checkpoints and image optimisers).
const ITERATIVE: &[Kind] = &[Kind::Dm, Kind::Dc, Kind::Dsa, Kind::Mtt, Kind::Bptt];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::Herding => "herding",
            Kind::Dm => "dm",
            Kind::Dc => "dc",
            Kind::Dsa => "dsa",
            Kind::Mtt => "mtt",
            Kind::Bptt => "bptt",
        }
    }

    /// `ddlens distill`'s iteration budgets (none for random and herding).
    fn default_iterations(self) -> usize {
        match self {
            Kind::Random | Kind::Herding => 0,
            Kind::Mtt => 5000,
            Kind::Dm | Kind::Dc | Kind::Dsa | Kind::Bptt => 1000,
        }
    }

    /// `ddlens distill`'s image learning rates.
    fn default_lr_img(self) -> f32 {
        match self {
            Kind::Dm => 1.0,
            Kind::Mtt => 1000.0,
            Kind::Bptt => BpttConfig::default().lr_img,
            _ => 0.1,
        }
    }

    /// `ddlens distill`'s inner steps (MTT's student steps, BPTT's unrolled steps).
    fn default_syn_steps(self) -> usize {
        match self {
            Kind::Mtt => 20,
            _ => BpttConfig::default().steps,
        }
    }
}

fn method_names() -> String {
    KINDS.map(Kind::name).join(", ")
}

/// Every setting a method may use; `None` = the method's default.
#[derive(Debug, Clone)]
struct Settings {
    method: Kind,
    ipc: usize,
    iterations: Option<usize>,
    seed: u64,
    lr_img: Option<f32>,
    momentum: Option<f32>,
    batch_real: usize,
    dsa: bool,
    syn_steps: Option<usize>,
    batch_syn: Option<usize>,
    lr_lr: f32,
    experts: Option<PathBuf>,
    expert_epochs: usize,
    max_start_epoch: usize,
    window: Option<usize>,
    learn_lr: bool,
    herding_params: Option<PathBuf>,
    checkpoint: Option<PathBuf>,
    checkpoint_every: usize,
    resume: bool,
}

impl Settings {
    /// `ddlens distill`'s defaults for `method`.
    fn new(method: Kind, ipc: usize) -> Settings {
        let mtt = MttConfig::default();
        Settings {
            method,
            ipc,
            iterations: None,
            seed: 0,
            lr_img: None,
            momentum: None,
            batch_real: 256,
            dsa: true,
            syn_steps: None,
            batch_syn: None,
            lr_lr: mtt.lr_lr,
            experts: None,
            expert_epochs: mtt.expert_epochs,
            max_start_epoch: mtt.max_start_epoch,
            window: None,
            learn_lr: false,
            herding_params: None,
            checkpoint: None,
            checkpoint_every: 0,
            resume: false,
        }
    }

    fn iterations(&self) -> usize {
        self.iterations
            .unwrap_or_else(|| self.method.default_iterations())
    }

    fn lr_img(&self) -> f32 {
        self.lr_img.unwrap_or_else(|| self.method.default_lr_img())
    }

    fn momentum(&self) -> f32 {
        self.momentum.unwrap_or(0.5)
    }

    fn syn_steps(&self) -> usize {
        self.syn_steps
            .unwrap_or_else(|| self.method.default_syn_steps())
    }

    /// The augmentation of DM and MTT: none when switched off, else the standard strategy
    /// (without flips on MNIST, whose mirrored digits are not digits).
    fn dsa_for(&self, real: Option<&Dataset>) -> Option<Dsa> {
        self.dsa.then(|| standard_dsa(real))
    }

    fn dm(&self, real: Option<&Dataset>) -> DmConfig {
        DmConfig {
            batch_real: self.batch_real,
            lr: self.lr_img(),
            momentum: self.momentum(),
            dsa: self.dsa_for(real),
        }
    }

    fn dc(&self, real: Option<&Dataset>) -> Result<DcConfig> {
        let mut config = DcConfig::for_ipc(self.ipc)?;
        config.batch_real = self.batch_real;
        config.lr_img = self.lr_img();
        config.momentum_img = self.momentum();
        if self.method == Kind::Dsa {
            config = config.with_dsa(standard_dsa(real));
        }
        Ok(config)
    }

    fn mtt(&self, real: Option<&Dataset>, lr_init: f32) -> MttConfig {
        MttConfig {
            syn_steps: self.syn_steps(),
            expert_epochs: self.expert_epochs,
            max_start_epoch: self.max_start_epoch,
            batch_syn: self.batch_syn,
            lr_img: self.lr_img(),
            lr_lr: self.lr_lr,
            lr_init,
            momentum: self.momentum(),
            dsa: self.dsa_for(real),
        }
    }

    fn bptt(&self) -> BpttConfig {
        let defaults = BpttConfig::default();
        BpttConfig {
            steps: self.syn_steps(),
            batch_syn: self.batch_syn,
            learn_lr: self.learn_lr,
            lr_lr: self.lr_lr,
            lr_img: self.lr_img(),
            momentum_img: self.momentum(),
            batch_real: self.batch_real,
            window: self.window,
            ..defaults
        }
    }

    /// Checks the combination (e.g. a BPTT window longer than the unroll) by building the
    /// method, as `ddl_distill` will; MTT without its experts, which are read at the run.
    fn validate(&self) -> Result<()> {
        match self.method {
            Kind::Random | Kind::Herding => {}
            Kind::Dm => {
                distill::Dm::new(self.dm(None))?;
            }
            Kind::Dc | Kind::Dsa => {
                distill::Dc::new(self.dc(None)?)?;
            }
            Kind::Mtt => {
                let lr_init = MttConfig::default().lr_init;
                distill::Mtt::new(self.mtt(None, lr_init), Box::new(Unbounded))?;
            }
            Kind::Bptt => {
                distill::Bptt::new(self.bptt())?;
            }
        }
        Ok(())
    }

    /// The effective settings, defaults resolved, for `ddl_distill_config_describe`.
    fn describe(&self) -> Value {
        let mut j = json!({
            "method": self.method.name(),
            "ipc": self.ipc,
            "seed": self.seed,
        });
        let mut put = |k: &str, v: Value| {
            j[k] = v;
        };
        let m = self.method;
        if ITERATIVE.contains(&m) {
            put("iterations", json!(self.iterations()));
            put("lr_img", json!(self.lr_img()));
            put("momentum", json!(self.momentum()));
            put("checkpoint", json!(self.checkpoint));
            put("checkpoint_every", json!(self.checkpoint_every));
            put("resume", json!(self.resume));
        }
        if [Kind::Dm, Kind::Dc, Kind::Dsa, Kind::Bptt].contains(&m) {
            put("batch_real", json!(self.batch_real));
        }
        if [Kind::Dm, Kind::Dsa, Kind::Mtt].contains(&m) {
            put("dsa", json!(self.dsa));
        }
        if [Kind::Mtt, Kind::Bptt].contains(&m) {
            put("syn_steps", json!(self.syn_steps()));
            put("batch_syn", json!(self.batch_syn));
            put("lr_lr", json!(self.lr_lr));
        }
        if m == Kind::Mtt {
            put("experts", json!(self.experts));
            put("expert_epochs_ahead", json!(self.expert_epochs));
            put("max_start_epoch", json!(self.max_start_epoch));
        }
        if m == Kind::Bptt {
            put("window", json!(self.window));
            put("learn_lr", json!(self.learn_lr));
        }
        if m == Kind::Herding {
            put("herding_params", json!(self.herding_params));
        }
        j
    }
}

/// An expert source that only lets [`Mtt::new`] check the settings.
struct Unbounded;

impl ExpertSource for Unbounded {
    fn experts(&self) -> usize {
        1
    }

    fn epochs(&self) -> usize {
        usize::MAX
    }

    fn checkpoint(&self, _expert: usize, _epoch: usize) -> Result<Params> {
        Err(Error::invalid("experts", "no expert trajectories"))
    }
}

/// The benchmark a dataset was loaded from (`ddl_dataset_load` names splits
/// `<benchmark>-train` / `-test`), if any.
fn benchmark(real: &Dataset) -> Option<DatasetName> {
    let name = real.name();
    let base = name
        .strip_suffix("-train")
        .or_else(|| name.strip_suffix("-test"))
        .unwrap_or(name);
    base.parse().ok()
}

/// The standard DSA strategy, without flips on MNIST (as `ddlens distill` and `ddlens experts`).
fn standard_dsa(real: Option<&Dataset>) -> Dsa {
    match real.and_then(benchmark) {
        Some(DatasetName::Mnist) => Dsa::default().without(AugOp::Flip),
        _ => Dsa::default(),
    }
}

/// A distillation configuration (opaque): the method, images per class and every
/// hyperparameter, with `ddlens distill`'s defaults until a setter changes them. Functions
/// taking `const DdlDistillConfig*` may run concurrently on one handle; setters need exclusive
/// use.
pub struct DdlDistillConfig {
    inner: Settings,
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
        let lower = name.to_ascii_lowercase();
        let kind = KINDS
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                FfiError::invalid(
                    "method",
                    format!("unknown method `{name}`; available: {}", method_names()),
                )
            })?;
        args::positive(ipc, "ipc")?;
        let settings = Settings::new(kind, ipc);
        settings.validate()?;
        *out = into_handle(DdlDistillConfig { inner: settings });
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
    field: &str,
    applies: &[Kind],
    edit: impl FnOnce(&mut Settings) -> FfiResult,
) -> DdlStatus {
    ffi_call(func, || {
        // SAFETY: forwarded contract.
        let c = unsafe { borrow_mut(config, "config") }?;
        if !applies.contains(&c.inner.method) {
            return Err(FfiError::invalid(
                field,
                format!(
                    "does not apply to method `{}` (it applies to {})",
                    c.inner.method.name(),
                    applies
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
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
            "iterations",
            ITERATIVE,
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
        set("ddl_distill_config_set_seed", config, "seed", &KINDS, |s| {
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
        set(
            "ddl_distill_config_set_lr_img",
            config,
            "lr_img",
            ITERATIVE,
            |s| {
                s.lr_img = Some(positive_rate(lr_img, "lr_img")?);
                Ok(())
            },
        )
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
            "momentum",
            ITERATIVE,
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
            "batch_real",
            &[Kind::Dm, Kind::Dc, Kind::Dsa, Kind::Bptt],
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
            "syn_steps",
            &[Kind::Mtt, Kind::Bptt],
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
            "batch_syn",
            &[Kind::Mtt, Kind::Bptt],
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
        set(
            "ddl_distill_config_set_lr_lr",
            config,
            "lr_lr",
            &[Kind::Mtt, Kind::Bptt],
            |s| {
                s.lr_lr = positive_rate(lr_lr, "lr_lr")?;
                Ok(())
            },
        )
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
        set(
            "ddl_distill_config_set_dsa",
            config,
            "dsa",
            &[Kind::Dm, Kind::Dsa, Kind::Mtt],
            |s| {
                if s.method == Kind::Dsa && !dsa {
                    return Err(FfiError::invalid(
                        "dsa",
                        "dsa without augmentation is dc; use method \"dc\"",
                    ));
                }
                s.dsa = dsa;
                Ok(())
            },
        )
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
            "experts_dir",
            &[Kind::Mtt],
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
            "expert_epochs_ahead",
            &[Kind::Mtt],
            |s| {
                s.expert_epochs = count(expert_epochs_ahead, "expert_epochs_ahead")?;
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
            "max_start_epoch",
            &[Kind::Mtt],
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
            "window",
            &[Kind::Bptt],
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
            "learn_lr",
            &[Kind::Bptt],
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
            "params_path",
            &[Kind::Herding],
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
            "path",
            ITERATIVE,
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
            "resume",
            ITERATIVE,
            |s| {
                s.resume = resume;
                Ok(())
            },
        )
    }
}

/// A method that reports progress before each iteration, so the C callback can cancel between
/// iterations (after the runner wrote any checkpoint due).
struct Reporting<'a> {
    inner: &'a mut dyn Method,
    progress: Progress,
    total: u64,
}

impl Method for Reporting<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn init(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<()> {
        self.inner.init(ctx, syn)
    }

    fn iterate(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<f32> {
        self.progress.report(ctx.iteration as u64, self.total)?;
        self.inner.iterate(ctx, syn)
    }

    fn state(&self) -> Vec<(String, ndarray::ArrayD<f32>)> {
        self.inner.state()
    }

    fn load_state(&mut self, state: Vec<(String, ndarray::ArrayD<f32>)>) -> Result<()> {
        self.inner.load_state(state)
    }
}

/// What a distillation produced.
struct Outcome {
    syn: Synthetic,
    log: Option<RunLog>,
    settings: Value,
}

/// Runs an iterative method from the seeded real initialisation, with checkpoints and resume.
fn run_iterative(
    s: &Settings,
    bundle: &Bundle,
    real: &Dataset,
    method: &mut dyn Method,
    settings: Value,
    progress: Progress,
) -> Result<Outcome> {
    let iterations = s.iterations();
    let config = RunConfig {
        iterations,
        seed: s.seed,
        checkpoint_every: s.checkpoint.as_ref().map(|_| match s.checkpoint_every {
            0 => usize::MAX,
            n => n,
        }),
        checkpoint: s.checkpoint.clone(),
        settings: settings.clone(),
    };
    if s.resume {
        match &s.checkpoint {
            None => {
                return Err(Error::invalid(
                    "config",
                    "resume needs a checkpoint file (ddl_distill_config_set_checkpoint)",
                ))
            }
            Some(path) if !path.is_file() => {
                return Err(Error::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no checkpoint to resume from; run without resume to start",
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let mut syn = Synthetic::from_real(real, s.ipc, s.seed)?;
    let total = iterations as u64;
    let mut reporting = Reporting {
        inner: method,
        progress,
        total,
    };
    let log = distill::run(
        &mut reporting,
        &mut syn,
        bundle,
        real,
        &config,
        s.resume,
        &mut |_, _, _| {},
    )?;
    progress.report(total, total)?;
    Ok(Outcome {
        syn,
        log: Some(log),
        settings,
    })
}

/// Herding in the feature space of the given parameters, or of a model trained for one epoch
/// of P_real (whose steps the progress count includes).
fn herding(s: &Settings, bundle: &Bundle, real: &Dataset, progress: Progress) -> Result<Outcome> {
    real.check_against(bundle.manifest())?;
    let classes = real.num_classes() as u64;
    let (params, offset) = match &s.herding_params {
        Some(path) => {
            progress.report(0, classes)?;
            (train::load_params(path, bundle.manifest())?, 0)
        }
        None => {
            let config = TrainConfig::p_real(1, s.seed);
            let steps = config.total_steps(real.len()) as u64;
            let mut hook = |ctx: &StepContext<'_>| {
                progress.report(ctx.step as u64, steps + classes)?;
                Ok(Control::Continue)
            };
            let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
            let out = train::train(bundle, bundle.init_params(s.seed), real, &config, hooks)?;
            (out.params, steps)
        }
    };
    // Herding's own progress cannot fail: a cancellation is kept and returned afterwards.
    let stop: RefCell<Option<Error>> = RefCell::new(None);
    let syn = distill::herding_set(bundle, &params, real, s.ipc, &mut |done, _| {
        if stop.borrow().is_none() {
            if let Err(e) = progress.report(offset + done as u64, offset + classes) {
                *stop.borrow_mut() = Some(e);
            }
        }
    })?;
    if let Some(e) = stop.into_inner() {
        return Err(e);
    }
    let source = match &s.herding_params {
        Some(p) => p.display().to_string(),
        None => "P_real, 1 epoch".to_string(),
    };
    Ok(Outcome {
        syn,
        log: None,
        settings: json!({ "feature_model": source }),
    })
}

/// Runs the configured method (as `ddlens distill` does).
fn distill_with(
    s: &Settings,
    bundle: &Bundle,
    real: &Dataset,
    progress: Progress,
) -> Result<Outcome> {
    real.check_against(bundle.manifest())?;
    match s.method {
        Kind::Random => {
            progress.report(0, 1)?;
            let syn = distill::random_set(real, s.ipc, s.seed)?;
            progress.report(1, 1)?;
            Ok(Outcome {
                syn,
                log: None,
                settings: json!({}),
            })
        }
        Kind::Herding => herding(s, bundle, real, progress),
        Kind::Dm => {
            let config = s.dm(Some(real));
            let settings = serde_json::to_value(&config)
                .map_err(|e| Error::invalid("config", format!("cannot encode settings: {e}")))?;
            let mut dm = distill::Dm::new(config)?;
            run_iterative(s, bundle, real, &mut dm, settings, progress)
        }
        Kind::Dc | Kind::Dsa => {
            let config = s.dc(Some(real))?;
            let settings = config.settings();
            let mut dc = distill::Dc::new(config)?;
            run_iterative(s, bundle, real, &mut dc, settings, progress)
        }
        Kind::Mtt => {
            let dir = s.experts.as_ref().ok_or_else(|| {
                Error::invalid(
                    "config",
                    "mtt needs expert trajectories: give their folder with \
                     ddl_distill_config_set_experts (make one with ddl_generate_experts)",
                )
            })?;
            let experts = ExpertDir::open(dir, bundle.manifest())?;
            let config = s.mtt(Some(real), experts.index().lr);
            let index = experts.index().clone();
            let mut settings = config.settings();
            settings["experts"] = json!(index);
            let mut mtt = distill::Mtt::new(config, Box::new(experts))?;
            run_iterative(s, bundle, real, &mut mtt, settings, progress)
        }
        Kind::Bptt => {
            let config = s.bptt();
            let settings = config.settings();
            let mut bptt = distill::Bptt::new(config)?;
            run_iterative(s, bundle, real, &mut bptt, settings, progress)
        }
    }
}

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
/// `DDL_STATUS_INVALID_ARGUMENT` naming `config`, experts for another model or damaged
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
        // SAFETY: forwarded contract.
        let (out, out_json) = unsafe {
            (
                args::out_handle(out_set, "out_set")?,
                args::opt_out_string(out_json, "out_json")?,
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
        let start = Instant::now();
        let outcome = distill_with(c, b, d, Progress::new(progress, user_data))?;
        let dataset = benchmark(d).map_or_else(|| d.name().to_string(), |n| n.as_str().into());
        let meta = DistilledMeta {
            method: c.method.name().to_string(),
            ipc: c.ipc,
            dataset: dataset.clone(),
            model: b.name().to_string(),
            seed: Some(c.seed),
            extra: Default::default(),
        };
        let set = outcome.syn.to_distilled(meta)?;
        let losses = outcome
            .log
            .as_ref()
            .map(|l| l.losses.clone())
            .unwrap_or_default();
        let report = json!({
            "method": c.method.name(),
            "ipc": c.ipc,
            "dataset": dataset,
            "model": b.name(),
            "seed": c.seed,
            "settings": outcome.settings,
            "iterations": losses.len(),
            "resumed_from": outcome.log.as_ref().map(|l| l.resumed_from),
            "wall_seconds": start.elapsed().as_secs_f64(),
            "final_loss": losses.last(),
            "loss_per_iteration": losses,
            "checkpoint": outcome.log.as_ref().and(c.checkpoint.as_ref()),
        });
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
        let n = args::positive(num_experts, "num_experts")?;
        let epochs = count(epochs, "epochs")?;
        args::positive(batch, "batch")?;
        positive_rate(lr, "lr")?;
        d.check_against(b.manifest())?;
        let config = ExpertConfig {
            lr,
            batch,
            dsa: dsa.then(|| standard_dsa(Some(d))),
            ..ExpertConfig::new(epochs)
        };
        let progress = Progress::new(progress, user_data);
        let total = n.checked_mul(epochs).ok_or_else(|| {
            FfiError::invalid(
                "epochs",
                format!("{n} experts of {epochs} epochs is too many"),
            )
        })? as u64;
        progress.report(0, total)?;
        let index = distill::generate_experts_into(dir, b, d, n, &config, seed, &mut |e, ep| {
            progress.report((e * epochs + ep) as u64, total)
        })?;
        if let Some(slot) = out_json {
            *slot = args::give_json(&index)?;
        }
        Ok(())
    })
}
