//! The analyses: `ddl_analysis_names` lists them (from the library's registry) and
//! `ddl_analyze(name, ...)` runs any of them; the named entries `ddl_analyze_<name>` stay as
//! one-line shorthands (the ABI only grows).
//!
//! Inputs are borrowed handles (the model bundle, the real train and test sets, an array of
//! distilled sets with optional names), settings as a JSON object (`NULL` or `""` for the
//! defaults of the budget; unknown fields are errors naming the field), an optional output
//! folder that receives `<name>.json` and the PNG figures exactly as `ddlens analyze <name>`
//! writes them, and the usual progress callback. The result comes back as a JSON string
//! (free with `ddl_string_free`). Settings travel as JSON so that the ABI stays stable while
//! analyses gain options; docs/analyses.md lists every field.

use std::ffi::{c_char, c_void};

use super::args;
use super::bundle::DdlBundle;
use super::dataset::DdlDataset;
use super::distilled::DdlDistilledSet;
use super::guard::{ffi_call, FfiError, FfiResult};
use super::handles::borrow;
use super::progress::{Callback, DdlProgressFn};
use super::status::DdlStatus;
use crate::analysis::{self, Budget, NamedSet, RealData, RunInfo};

/// Budget of an analysis (`uint32_t`): how much compute it may spend.
pub type DdlBudget = u32;
/// The paper's protocol (GPU hours).
pub const DDL_BUDGET_PAPER: DdlBudget = 0;
/// Minutes on 2 CPU cores.
pub const DDL_BUDGET_CPU: DdlBudget = 1;
/// Seconds: tests and smoke runs.
pub const DDL_BUDGET_SMOKE: DdlBudget = 2;

fn budget(value: DdlBudget) -> FfiResult<Budget> {
    match value {
        DDL_BUDGET_PAPER => Ok(Budget::Paper),
        DDL_BUDGET_CPU => Ok(Budget::Cpu),
        DDL_BUDGET_SMOKE => Ok(Budget::Smoke),
        v => Err(FfiError::invalid(
            "budget",
            format!("unknown budget {v}; use DDL_BUDGET_PAPER, _CPU or _SMOKE"),
        )),
    }
}

/// The arguments every `ddl_analyze_*` entry takes, as the C caller passed them.
pub(crate) struct AnalyzeArgs {
    pub bundle: *const DdlBundle,
    pub train: *const DdlDataset,
    pub test: *const DdlDataset,
    pub sets: *const *const DdlDistilledSet,
    pub names: *const *const c_char,
    pub num_sets: usize,
    pub budget: DdlBudget,
    pub options_json: *const c_char,
    pub seed: u64,
    pub out_dir: *const c_char,
    pub progress: DdlProgressFn,
    pub user_data: *mut c_void,
    pub out_json: *mut *mut c_char,
}

/// The shared body of `ddl_analyze` and the named entries: runs the registry's analysis
/// `name` ([`analysis::find`]).
///
/// # Safety
/// The pointers in `a` must satisfy the contract documented on the entries.
pub(crate) unsafe fn analyze_named(func: &str, name: Option<&str>, a: AnalyzeArgs) -> DdlStatus {
    ffi_call(func, || {
        // SAFETY: forwarded contract.
        let out = unsafe { args::out_string(a.out_json, "out_json") }?;
        let entry = match name {
            Some(n) => analysis::find(n)?,
            None => return Err(FfiError::null("name")),
        };
        // SAFETY: forwarded contract.
        let (bundle, train, test) = unsafe {
            (
                &borrow(a.bundle, "bundle")?.inner,
                &borrow(a.train, "train_set")?.inner,
                &borrow(a.test, "test_set")?.inner,
            )
        };
        // SAFETY: forwarded contract.
        let sets = unsafe { named_sets(a.sets, a.names, a.num_sets) }?;
        let budget = budget(a.budget)?;
        // SAFETY: forwarded contract.
        let options = unsafe { args::opt_string(a.options_json, "options_json") }?;
        // SAFETY: forwarded contract.
        let out_dir = unsafe { args::opt_string(a.out_dir, "out_dir") }?;
        let info = RunInfo {
            model: bundle.name().to_string(),
            dataset: train.name().to_string(),
            budget,
            seed: a.seed,
        };
        let request = analysis::Request {
            info: &info,
            options,
            out_dir: out_dir.map(std::path::Path::new),
        };
        let mut report = Callback::new(a.progress, a.user_data);
        let (json, _) = (entry.run)(
            bundle,
            RealData { train, test },
            &sets,
            &request,
            &mut report,
        )?;
        *out = args::give_json(&json)?;
        Ok(())
    })
}

/// Every analysis `ddl_analyze` knows, in the paper's order, as a JSON array of
/// `{"name", "about", "own_baseline"}` (`own_baseline`: the analysis builds its own random
/// real baseline, so pass the distilled sets alone). Free `*out_json` with `ddl_string_free`.
/// Thread-safe.
///
/// # Safety
/// `out_json` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddl_analysis_names(out_json: *mut *mut c_char) -> DdlStatus {
    ffi_call("ddl_analysis_names", || {
        // SAFETY: forwarded contract.
        let out = unsafe { args::out_string(out_json, "out_json") }?;
        let list: Vec<serde_json::Value> = analysis::ANALYSES
            .iter()
            .map(|e| serde_json::json!({"name": e.name, "about": e.about, "own_baseline": e.own_baseline}))
            .collect();
        *out = args::give_json(&serde_json::Value::Array(list))?;
        Ok(())
    })
}

/// Runs the analysis called `name` (one of `ddl_analysis_names`; docs/analyses.md documents
/// each one's settings and result) with the shared contract below: the same as the named
/// entries `ddl_analyze_<name>`, which remain as shorthands. An unknown `name` is
/// `DDL_STATUS_INVALID_ARGUMENT` listing the known ones. Thread-safe: every input is only read.
/// The result JSON holds the verdict under `"verdict"`: `"state"` (`"supports"`,
/// `"contradicts"` or `"inconclusive"`), `"claim"`, `"effect"`, `"reason"` and, per set, its
/// effect as a 95% interval `{"estimate", "lo", "hi", "n"}`; where a random real reference was
/// given, `"against_reference"` says whether the effect goes beyond the reference's, per set
/// with the difference's interval (docs/analyses.md, "Verdicts").
///
/// # Safety
/// `name` NULL or NUL-terminated; otherwise the shared contract above: handles NULL or live,
/// arrays of `num_sets` elements, strings NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze(
    name: *const c_char,
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    // SAFETY: forwarded contract; a bad `name` is reported through the same path.
    let name = unsafe { args::opt_string(name, "name") };
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    match name {
        // SAFETY: forwarded contract.
        Ok(n) => unsafe { analyze_named("ddl_analyze", n, a) },
        Err(e) => ffi_call("ddl_analyze", || {
            // Like every failure, this one leaves the output NULL.
            // SAFETY: forwarded contract.
            unsafe { args::out_string(a.out_json, "out_json") }?;
            Err(e)
        }),
    }
}

/// Copies the distilled sets (and names, default `set<i>`) out of the handle array.
unsafe fn named_sets(
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    n: usize,
) -> FfiResult<Vec<NamedSet>> {
    if n > 0 && sets.is_null() {
        return Err(FfiError::null("sets"));
    }
    // SAFETY: forwarded contract.
    let handles = unsafe { args::opt_slice(sets, n, "sets") }?.unwrap_or(&[]);
    // SAFETY: forwarded contract.
    let names = unsafe { args::opt_slice(names, n, "names") }?;
    let mut out = Vec::with_capacity(n);
    for (i, &h) in handles.iter().enumerate() {
        // SAFETY: forwarded contract.
        let set = unsafe { borrow(h, &format!("sets[{i}]")) }?;
        let name = match names.map(|ns| ns[i]) {
            // SAFETY: forwarded contract.
            Some(p) if !p.is_null() => {
                unsafe { args::string(p, &format!("names[{i}]")) }?.to_string()
            }
            _ => format!("set{i}"),
        };
        out.push(NamedSet::from_distilled(name, set.inner.clone()));
    }
    Ok(out)
}

// One entry per analysis. Each documents its settings and result; the shared contract is in
// the module documentation (and docs/c-api.md):
//
// * `bundle`, `train_set`, `test_set`: live handles (the real data, normalised);
// * `sets`: `num_sets` distilled-set handles (NULL when 0), `names`: NULL or `num_sets`
//   strings (NULL entries are named `set<i>`);
// * `budget`: a `DDL_BUDGET_*`; `options_json`: NULL, "" or a JSON object of settings;
// * `seed`: seeds every random draw; `out_dir`: NULL, or a folder that receives
//   `<name>.json` and the PNG figures;
// * `progress`/`user_data`: optional progress callback (nonzero cancels);
// * `out_json`: receives the result (free with `ddl_string_free`).
//
// Thread-safe: every input is only read.

/// `pixels` (paper §3): pixel-value distributions of the real training images and of each
/// set, per channel, with range statistics. Settings: `bins` (100), `real_images` (real
/// images sampled; 0 = all), `seed`. Result: `{"bin_edges": [...], "sets": [{"name",
/// "images", "channels": [{"mean", "std", "min", "max", "p01", "p99",
/// "outside_real_range"}], "density": [[...] per channel]}]}` with the real sample first.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above: handles NULL or live, arrays of `num_sets` elements, strings
/// NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_pixels(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_pixels", Some("pixels"), a) }
}

/// `mixing` (paper §3): each set plus `k` real images per class (nested class-balanced
/// extras, the same for every set), trained with P_dist, beside a random real set of the same
/// per-class size plus the same extras. Settings: `ks` ([0, 2, 10, 50, 250]; strictly
/// increasing), `runs` (5), `steps` (P_dist steps, 300), `lr` (0.01), `baseline` (true),
/// `test_images` (class-balanced test sample; 0 = all), `seed`. Result: `{"ks", "runs",
/// "steps", "lr", "test_images", "extras_per_class": [[index...] per class], "curves":
/// [{"name", "kind" ("distilled"|"baseline"), "set_size", "class_counts", "baseline",
/// "indices", "points": [{"k", "train_size", "accuracies", "mean", "std"}],
/// "change_vs_first_k", "gap_to_baseline"}]}` with the given sets first.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above: handles NULL or live, arrays of `num_sets` elements, strings
/// NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_mixing(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_mixing", Some("mixing"), a) }
}

/// `sensitivity` (paper §3): each set and a random real set of the same per-class size under
/// the standard evaluation (first, the reference) and under variations of it. Settings:
/// `runs` (5), `epochs` (standard epochs, 300), `epoch_factors` ([0.3, 3]), `lr_factors`
/// ([0.1, 10], of the set's learned lr or 0.01), `batch_sizes` ([10, 0]; 0 = full batch),
/// `optimizers` (["sgd"]: plain SGD without momentum; "adam" is skipped with a note),
/// `architectures` (["convnettiny-{shape}", "mlp-{shape}"]: bundle names or folders, `{shape}`
/// = the data's CxHxW; templated names that do not resolve are skipped with a note, others
/// are errors), `baseline` (true), `augment` (null or a DSA strategy), `test_images` (0 =
/// all), `seed`. Result: `{"runs", "epochs", "test_images", "setups": [{"name",
/// "description"}], "rows": [{"name", "kind", "train_size", "lr", "cells": [{"setup",
/// "accuracies", "mean", "std", "drop", "diverged_runs", "steps", "note"}]}], "table":
/// {"rows", "setups", "accuracy", "drop"}, "notes"}`; `drop` = mean accuracy minus the
/// standard setup's (negative: worse), `null` accuracies are diverged runs.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above: handles NULL or live, arrays of `num_sets` elements, strings
/// NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_sensitivity(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_sensitivity", Some("sensitivity"), a) }
}

/// `curvature` (paper §4.3): Hessian traces of the mean loss (Hutchinson, Rademacher probes,
/// PyHessian's stopping rule) at chosen steps of one P_real run, on a real training sample and
/// on each set; top eigenvalues (Lanczos) and SLQ eigenvalue densities at `spectrum_steps`.
/// Settings: `steps`, `train_images` (0 = all), `batch`, `max_probes`, `tol`,
/// `spectrum_steps`, `top_k`, `lanczos_iters`, `slq_probes`, `ema`, `seed`. Result:
/// `{"steps": [...], "sets": [{"name", "examples", "traces": [{"trace", "probes",
/// "std_error"}], "ema": [...], "spectra": [{"step", "top_eigenvalues", "grid",
/// "density"}]}], "peak_steps": [...]}` with the real sample first.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_curvature(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_curvature", Some("curvature"), a) }
}

/// `recognition` (paper §3): the fraction of each set's images that models trained on real data
/// classify as their label, per model and per class. Models are trained on `train_set` with P_real
/// unless `params` gives them. Settings: `models` (bundle names or folders, architectures completed
/// with the input shape such as `convnet3`, or `model` for `bundle`), `params` (object: model ->
/// parameter file), `train_epochs`, `train_max_steps`, `test_images` (0 = all), `params_out`
/// (folder for trained parameters, or null), `seed`. Result: `{"test_images", "models": [{"entry",
/// "model", "source", "params_file", "train_steps", "test_accuracy"}], "sets": [{"name", "images",
/// "models": [{"model", "accuracy", "correct", "per_class": [...]}]}]}`.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above: handles NULL or live, arrays of `num_sets` elements, strings
/// NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_recognition(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_recognition", Some("recognition"), a) }
}

/// `agreement` (paper §4): test-prediction agreement of P_dist models trained on each set with
/// accuracy-matched real-trained models of pool A (random real subsets) and pool B (early-stopped
/// P_real runs), both pools trained in this call. Settings: `test_images`, `pool_a_size`,
/// `pool_a_fraction_min`, `pool_a_fraction_max`, `pool_a_epochs`, `pool_a_max_steps`,
/// `pool_b_runs`, `pool_b_epochs`, `pool_b_max_steps`, `pool_b_every`, `distilled_steps`,
/// `distilled_runs`, `match_tolerance`, `match_k`, `seed`. Result: `{"test_images",
/// "distilled_protocol", "pool_a"/"pool_b": {"description", "members", "labels", "accuracies"},
/// "sets": [{"name", "images", "run_accuracies", "test_accuracy", "pool_a"/"pool_b": {"matched",
/// "mean", "std", "mean_accuracy_gap", "agreements", "members"}}]}`.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above: handles NULL or live, arrays of `num_sets` elements, strings
/// NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_agreement(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_agreement", Some("agreement"), a) }
}

/// `recognition-over-training` (paper §4): one P_real run on `train_set`; every `every` steps,
/// accuracy and loss on each set and on the test sample. Settings: `steps`, `every`, `test_images`
/// (0 = all), `seed`. Result: `{"steps": [...], "test": {"name", "images", "accuracy", "loss",
/// "first_step_all_correct", "all_correct_from"}, "sets": [same per set]}`.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above: handles NULL or live, arrays of `num_sets` elements, strings
/// NUL-terminated, `out_json` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_recognition_over_training(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe {
        analyze_named(
            "ddl_analyze_recognition_over_training",
            Some("recognition-over-training"),
            a,
        )
    }
}

/// `influence` (paper §5): per distilled image, exact leave-one-out retraining (P_dist from
/// one shared initialisation) and influence functions (CG on damped Hessian-vector products
/// of the set's loss, one `loss_jvp` pass per test row), their Spearman correlation, the
/// top-k most influenced test images (a PNG grid per set in `out_dir`) and a semantic
/// consistency score against random test images of the top-k's class composition.
/// Settings: `steps`, `images` (0 = all), `loo_images` (0 = all), `test_images` (0 = all),
/// `damping`, `cg_iters`, `cg_tol`, `top_k`,
/// `grid_images`, `feature_steps`, `feature_params` (path or null), `random_draws`, `seed`.
/// Result: `{"test_images", "test_indices", "feature_model_accuracy", "sets": [{"name",
/// "accuracy", "median_spearman", "mean_top_similarity", "mean_random_similarity",
/// "fraction_more_consistent", "images": [{"index", "label", "loo", "influence_function",
/// "spearman", "cg_iterations", "cg_residual", "top", "top_similarity",
/// "random_similarity", "top_same_class"}]}]}`.
/// Thread-safe: every input is only read.
///
/// # Safety
/// See the shared contract above.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ddl_analyze_influence(
    bundle: *const DdlBundle,
    train_set: *const DdlDataset,
    test_set: *const DdlDataset,
    sets: *const *const DdlDistilledSet,
    names: *const *const c_char,
    num_sets: usize,
    budget: DdlBudget,
    options_json: *const c_char,
    seed: u64,
    out_dir: *const c_char,
    progress: DdlProgressFn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> DdlStatus {
    let a = AnalyzeArgs {
        bundle,
        train: train_set,
        test: test_set,
        sets,
        names,
        num_sets,
        budget,
        options_json,
        seed,
        out_dir,
        progress,
        user_data,
        out_json,
    };
    // SAFETY: forwarded contract.
    unsafe { analyze_named("ddl_analyze_influence", Some("influence"), a) }
}
