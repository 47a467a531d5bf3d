//! The analyses through the C ABI (src/ffi/analysis.rs), called in-process: `ddl_analyze_pixels`,
//! `_curvature` and `_influence` return exactly the JSON of the Rust API
//! (`ddlens::analysis::run_and_save` with the same settings) and write the same result folder;
//! `_mixing`, `_sensitivity`, `_recognition`, `_agreement` and `_recognition_over_training`
//! (whose results tests/analysis_*.rs check through the Rust API) follow their settings and set
//! names and learning rates, return the result they write to `<name>.json` (with the seed), draw
//! their PNG figures, and reject an unknown setting by name; errors name the argument or
//! settings field; a NULL name keeps the default `set<i>`; the progress callback cancels.

use crate::common;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr::{null, null_mut};

use ddlens::analysis::curvature::Curvature;
use ddlens::analysis::influence::Influence;
use ddlens::analysis::pixels::Pixels;
use ddlens::analysis::{self, Analysis, Budget, NamedSet, RealData, RunInfo};
use ddlens::ffi::*;

use super::support::*;
use ddlens::Dataset;

const MODEL: &str = "tiny-1x8x8";
const SEED: u64 = 7;

/// The settings every comparison uses: the smoke budget, made smaller still.
const PIXELS_OPTIONS: &str = r#"{"bins": 30, "real_images": 60}"#;
const CURVATURE_OPTIONS: &str =
    r#"{"steps": [0, 2, 4], "train_images": 30, "batch": 30, "spectrum_steps": [4]}"#;
const INFLUENCE_OPTIONS: &str =
    r#"{"steps": 8, "loo_images": 2, "test_images": 30, "cg_iters": 4, "feature_steps": 3}"#;

/// The signature every `ddl_analyze_*` entry shares.
type AnalyzeFn = unsafe extern "C" fn(
    *const DdlBundle,
    *const DdlDataset,
    *const DdlDataset,
    *const *const DdlDistilledSet,
    *const *const c_char,
    usize,
    DdlBudget,
    *const c_char,
    u64,
    *const c_char,
    DdlProgressFn,
    *mut c_void,
    *mut *mut c_char,
) -> DdlStatus;

/// Takes a library string and frees it.
fn take_string(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    unsafe { ddl_string_free(s) };
    text
}

/// A Rust dataset as a C handle holding the same floats (and name).
fn handle(d: &Dataset) -> *mut DdlDataset {
    let x = d.images().as_slice().unwrap();
    let y = d.labels().as_slice().unwrap();
    let [c, h, w] = d.input_shape();
    let shape = [d.len(), c, h, w];
    let name = cstr(d.name());
    let mut out = null_mut();
    ok(unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            shape.as_ptr(),
            4,
            y.as_ptr(),
            d.len(),
            d.num_classes(),
            null(),
            null(),
            name.as_ptr(),
            &mut out,
        )
    });
    out
}

/// The model, the real splits and two distilled sets, both as C handles and as Rust values.
/// The sets are named "toy" and NULL (so the second gets the default name `set1`).
struct Fixture {
    bundle: *mut DdlBundle,
    train: *mut DdlDataset,
    test: *mut DdlDataset,
    sets: Vec<*mut DdlDistilledSet>,
    rust_bundle: ddlens::Bundle,
    rust_train: Dataset,
    rust_test: Dataset,
    rust_sets: Vec<NamedSet>,
}

impl Fixture {
    fn new() -> Fixture {
        runtime();
        let path = cstr(common::models_dir().join(MODEL).to_str().unwrap());
        let mut bundle = null_mut();
        ok(unsafe { ddl_bundle_open(path.as_ptr(), &mut bundle) });
        let rust_train = common::banded_dataset(90, 1);
        let rust_test = common::banded_dataset(45, 2);
        let mut sets = Vec::new();
        let mut rust_sets = Vec::new();
        for (i, (name, n)) in [("toy", 9), ("set1", 6)].into_iter().enumerate() {
            let data = common::banded_dataset(n, 3 + i as u64);
            let d = handle(&data);
            let mut set = null_mut();
            ok(unsafe { ddl_distilled_create(d, null(), null(), &mut set) });
            unsafe { ddl_dataset_free(d) };
            sets.push(set);
            rust_sets.push(NamedSet {
                name: name.into(),
                data,
                lr: None,
            });
        }
        Fixture {
            bundle,
            train: handle(&rust_train),
            test: handle(&rust_test),
            sets,
            rust_bundle: common::open(MODEL),
            rust_train,
            rust_test,
            rust_sets,
        }
    }

    /// Calls `f` with the fixture's handles, `names` and `options`; the JSON text on success.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        f: AnalyzeFn,
        names: Option<&[*const c_char]>,
        budget: DdlBudget,
        options: Option<&str>,
        out_dir: Option<&Path>,
        progress: DdlProgressFn,
        user_data: *mut c_void,
    ) -> (DdlStatus, Option<String>) {
        let sets: Vec<*const DdlDistilledSet> = self.sets.iter().map(|s| s.cast_const()).collect();
        let options = options.map(cstr);
        let out_dir = out_dir.map(|p| cstr(p.to_str().unwrap()));
        let mut json = null_mut();
        let status = unsafe {
            f(
                self.bundle,
                self.train,
                self.test,
                sets.as_ptr(),
                names.map_or(null(), <[_]>::as_ptr),
                sets.len(),
                budget,
                options.as_ref().map_or(null(), |o| o.as_ptr()),
                SEED,
                out_dir.as_ref().map_or(null(), |o| o.as_ptr()),
                progress,
                user_data,
                &mut json,
            )
        };
        if status == DdlStatus::Ok {
            (status, Some(take_string(json)))
        } else {
            assert!(json.is_null(), "no result after a failure");
            (status, None)
        }
    }

    /// `A` through the C entry `f` and through `run_and_save`, each into its own folder: the
    /// JSON strings and the written files must be identical.
    fn compare<A: Analysis>(&self, f: AnalyzeFn, options: &str) {
        let dir = tempfile::tempdir().unwrap();
        let (c_dir, rust_dir) = (dir.path().join("c"), dir.path().join("rust"));
        let toy = cstr("toy");
        let names = [toy.as_ptr(), null()];
        let (status, got) = self.call(
            f,
            Some(&names),
            DDL_BUDGET_SMOKE,
            Some(options),
            Some(&c_dir),
            None,
            null_mut(),
        );
        ok(status);
        let got = got.unwrap();

        let config = analysis::config_with::<A>(Budget::Smoke, SEED, Some(options)).unwrap();
        let info = RunInfo {
            model: self.rust_bundle.name().to_string(),
            dataset: self.rust_train.name().to_string(),
            budget: Budget::Smoke,
            seed: SEED,
        };
        let real = RealData {
            train: &self.rust_train,
            test: &self.rust_test,
        };
        let (want, saved) = analysis::run_and_save::<A>(
            &self.rust_bundle,
            real,
            &self.rust_sets,
            &config,
            &info,
            Some(&rust_dir),
            &mut analysis::no_progress,
        )
        .unwrap();
        assert_eq!(
            got,
            serde_json::to_string(&want).unwrap(),
            "{}: the C result differs from the Rust API's",
            A::NAME
        );
        let parsed: serde_json::Value = serde_json::from_str(&got).unwrap();
        let names: Vec<&str> = parsed["sets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert!(
            names.contains(&"toy") && names.contains(&"set1"),
            "{}: set names {names:?}",
            A::NAME
        );

        // The same files, with the same bytes: `<name>.json` and every figure.
        let saved = saved.unwrap();
        let json_name = format!("{}.json", A::NAME);
        assert_eq!(saved.json, rust_dir.join(&json_name));
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(
            read(&c_dir.join(&json_name)),
            read(&saved.json),
            "{json_name}"
        );
        let envelope: serde_json::Value =
            serde_json::from_slice(&read(&c_dir.join(&json_name))).unwrap();
        assert_eq!(envelope["analysis"], A::NAME);
        assert_eq!(envelope["info"]["budget"], "smoke");
        assert!(
            same_values(&envelope["result"], &parsed),
            "{json_name} holds another result than the one returned"
        );
        assert!(!saved.figures.is_empty(), "{} draws figures", A::NAME);
        for fig in &saved.figures {
            let name = fig.file_name().unwrap();
            assert!(name.to_string_lossy().ends_with(".png"));
            let bytes = read(&c_dir.join(name));
            assert!(bytes.starts_with(b"\x89PNG"), "{}", name.to_string_lossy());
            assert_eq!(bytes, read(fig), "{}", name.to_string_lossy());
        }
        let mut files: Vec<_> = std::fs::read_dir(&c_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        files.sort();
        assert_eq!(files.len(), 1 + saved.figures.len(), "{files:?}");
    }
}

/// Whether two JSON values are equal, numbers compared by value: the returned JSON and
/// `<name>.json` must print every `f32` field with the same digits (`0.17469114`, not the
/// widened `0.17469114065170288`).
fn same_values(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_values(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_values(v, w)))
        }
        _ => a == b,
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        unsafe {
            for &s in &self.sets {
                ddl_distilled_free(s);
            }
            ddl_dataset_free(self.train);
            ddl_dataset_free(self.test);
            ddl_bundle_free(self.bundle);
        }
    }
}

#[test]
fn pixels_matches_the_rust_api() {
    Fixture::new().compare::<Pixels>(ddl_analyze_pixels, PIXELS_OPTIONS);
}

#[test]
fn curvature_matches_the_rust_api() {
    Fixture::new().compare::<Curvature>(ddl_analyze_curvature, CURVATURE_OPTIONS);
}

#[test]
fn influence_matches_the_rust_api() {
    Fixture::new().compare::<Influence>(ddl_analyze_influence, INFLUENCE_OPTIONS);
}

#[test]
fn without_out_dir_or_names_the_result_is_the_same_with_default_names() {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let run = |out: Option<&Path>| {
        let (status, json) = fx.call(
            ddl_analyze_pixels,
            None,
            DDL_BUDGET_SMOKE,
            Some(PIXELS_OPTIONS),
            out,
            None,
            null_mut(),
        );
        ok(status);
        json.unwrap()
    };
    let with = run(Some(dir.path()));
    let without = run(None);
    assert_eq!(with, without);
    // No names: every set is `set<i>`.
    let v: serde_json::Value = serde_json::from_str(&without).unwrap();
    let names: Vec<&str> = v["sets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| n.starts_with("set"))
        .collect();
    assert_eq!(names, ["set0", "set1"]);
    assert!(dir.path().join("pixels.json").is_file());
}

#[test]
fn errors_name_the_argument_or_the_field() {
    let fx = Fixture::new();
    let sets: Vec<*const DdlDistilledSet> = fx.sets.iter().map(|s| s.cast_const()).collect();
    let mut json = null_mut();

    // NULL handles.
    let s = unsafe {
        ddl_analyze_pixels(
            null(),
            fx.train,
            fx.test,
            sets.as_ptr(),
            null(),
            sets.len(),
            DDL_BUDGET_SMOKE,
            null(),
            0,
            null(),
            None,
            null_mut(),
            &mut json,
        )
    };
    expect(
        s,
        DdlStatus::NullArgument,
        &["ddl_analyze_pixels", "`bundle`"],
    );
    assert!(json.is_null());
    let s = unsafe {
        ddl_analyze_curvature(
            fx.bundle,
            fx.train,
            null(),
            sets.as_ptr(),
            null(),
            sets.len(),
            DDL_BUDGET_SMOKE,
            null(),
            0,
            null(),
            None,
            null_mut(),
            &mut json,
        )
    };
    expect(
        s,
        DdlStatus::NullArgument,
        &["ddl_analyze_curvature", "`test_set`"],
    );
    let s = unsafe {
        ddl_analyze_influence(
            fx.bundle,
            fx.train,
            fx.test,
            sets.as_ptr(),
            null(),
            sets.len(),
            DDL_BUDGET_SMOKE,
            null(),
            0,
            null(),
            None,
            null_mut(),
            null_mut(),
        )
    };
    expect(s, DdlStatus::NullArgument, &["`out_json`"]);
    let with_null = [sets[0], null()];
    let s = unsafe {
        ddl_analyze_pixels(
            fx.bundle,
            fx.train,
            fx.test,
            with_null.as_ptr(),
            null(),
            2,
            DDL_BUDGET_SMOKE,
            null(),
            0,
            null(),
            None,
            null_mut(),
            &mut json,
        )
    };
    expect(s, DdlStatus::NullArgument, &["`sets[1]`"]);
    // A NULL array with a nonzero count is an error, not "no sets".
    let s = unsafe {
        ddl_analyze_pixels(
            fx.bundle,
            fx.train,
            fx.test,
            null(),
            null(),
            2,
            DDL_BUDGET_SMOKE,
            null(),
            0,
            null(),
            None,
            null_mut(),
            &mut json,
        )
    };
    expect(s, DdlStatus::NullArgument, &["`sets`"]);

    // A budget that does not exist.
    let analyses: [(AnalyzeFn, &str); 3] = [
        (ddl_analyze_pixels, "ddl_analyze_pixels"),
        (ddl_analyze_curvature, "ddl_analyze_curvature"),
        (ddl_analyze_influence, "ddl_analyze_influence"),
    ];
    for (f, name) in analyses {
        let (s, _) = fx.call(f, None, 7, None, None, None, null_mut());
        expect(s, DdlStatus::InvalidArgument, &[name, "`budget`", "7"]);
    }

    // Settings: an unknown field, a mistyped value, not an object, not JSON.
    let (s, _) = fx.call(
        ddl_analyze_pixels,
        None,
        DDL_BUDGET_SMOKE,
        Some(r#"{"bins": 10, "bogus_field": 1}"#),
        None,
        None,
        null_mut(),
    );
    expect(
        s,
        DdlStatus::InvalidArgument,
        &["ddl_analyze_pixels", "bogus_field", "bins"],
    );
    let (s, _) = fx.call(
        ddl_analyze_curvature,
        None,
        DDL_BUDGET_SMOKE,
        Some(r#"{"steps": "many"}"#),
        None,
        None,
        null_mut(),
    );
    expect(s, DdlStatus::InvalidArgument, &["curvature options"]);
    for bad in ["[1, 2]", "{bins"] {
        let (s, _) = fx.call(
            ddl_analyze_influence,
            None,
            DDL_BUDGET_SMOKE,
            Some(bad),
            None,
            None,
            null_mut(),
        );
        expect(s, DdlStatus::InvalidArgument, &["influence options"]);
    }
    // "" is the budget's defaults, like NULL.
    let (s, _) = fx.call(
        ddl_analyze_pixels,
        None,
        DDL_BUDGET_SMOKE,
        Some(""),
        None,
        None,
        null_mut(),
    );
    ok(s);
}

/// Counts progress reports in `user_data` (a `usize`) and cancels at the third.
unsafe extern "C" fn cancel_at_third(user_data: *mut c_void, _step: u64, _total: u64) -> c_int {
    let calls = unsafe { &mut *user_data.cast::<usize>() };
    *calls += 1;
    c_int::from(*calls >= 3)
}

/// Counts progress reports and checks that `step` never passes `total`.
unsafe extern "C" fn count(user_data: *mut c_void, step: u64, total: u64) -> c_int {
    assert!(step <= total, "{step} of {total}");
    unsafe { *user_data.cast::<usize>() += 1 };
    0
}

#[test]
fn progress_reports_and_a_nonzero_answer_cancels() {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    for (f, options) in [
        (ddl_analyze_curvature as AnalyzeFn, CURVATURE_OPTIONS),
        (ddl_analyze_influence, INFLUENCE_OPTIONS),
    ] {
        let mut calls = 0usize;
        let (s, _) = fx.call(
            f,
            None,
            DDL_BUDGET_SMOKE,
            Some(options),
            None,
            Some(count),
            (&mut calls as *mut usize).cast(),
        );
        ok(s);
        assert!(calls >= 3, "{calls} progress reports");

        let mut calls = 0usize;
        let out = dir.path().join("cancelled");
        let (s, json) = fx.call(
            f,
            None,
            DDL_BUDGET_SMOKE,
            Some(options),
            Some(&out),
            Some(cancel_at_third),
            (&mut calls as *mut usize).cast(),
        );
        expect(s, DdlStatus::Cancelled, &["progress callback"]);
        assert!(json.is_none());
        assert_eq!(calls, 3, "the call stops at the first nonzero answer");
        assert!(!out.exists(), "a cancelled analysis writes no results");
    }
}

/// The real splits (`train` and `test` banded images), one distilled set (the banded
/// `(6, 3)` images) and an output folder, as C handles freed on drop: the fixture of the
/// analyses whose results their own test files check through the Rust API.
struct OneSet {
    bundle: *mut DdlBundle,
    train: *mut DdlDataset,
    test: *mut DdlDataset,
    set: *mut DdlDistilledSet,
    /// The set's name; NULL (the default `set0`) when `None`.
    name: Option<CString>,
    seed: u64,
    dir: tempfile::TempDir,
}

impl OneSet {
    fn new(train: usize, test: usize, lr: Option<f32>, name: Option<&str>, seed: u64) -> OneSet {
        runtime();
        let path = cstr(common::models_dir().join(MODEL).to_str().unwrap());
        let mut bundle = null_mut();
        ok(unsafe { ddl_bundle_open(path.as_ptr(), &mut bundle) });
        let data = handle(&common::banded_dataset(6, 3));
        let mut set = null_mut();
        let lr = lr.as_ref().map_or(null(), |lr| lr as *const f32);
        ok(unsafe { ddl_distilled_create(data, lr, null(), &mut set) });
        unsafe { ddl_dataset_free(data) };
        OneSet {
            bundle,
            train: handle(&common::banded_dataset(train, 1)),
            test: handle(&common::banded_dataset(test, 2)),
            set,
            name: name.map(cstr),
            seed,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `f` on the set with the smoke budget, `options`, the seed and the output folder: the
    /// JSON text, or the status and the thread's message (and no result).
    fn call(&self, f: AnalyzeFn, options: &str) -> Result<String, (DdlStatus, String)> {
        let sets = [self.set.cast_const()];
        let names = self.name.as_ref().map(|n| [n.as_ptr()]);
        let options = cstr(options);
        let out_dir = cstr(self.dir.path().to_str().unwrap());
        let mut json = null_mut();
        let status = unsafe {
            f(
                self.bundle,
                self.train,
                self.test,
                sets.as_ptr(),
                names.as_ref().map_or(null(), |n| n.as_ptr()),
                sets.len(),
                DDL_BUDGET_SMOKE,
                options.as_ptr(),
                self.seed,
                out_dir.as_ptr(),
                None,
                null_mut(),
                &mut json,
            )
        };
        if status == DdlStatus::Ok {
            Ok(take_string(json))
        } else {
            assert!(json.is_null(), "no result after a failure");
            Err((status, last_error()))
        }
    }

    /// `f` with `options` succeeds, `<analysis>.json` holds the returned result (with the seed
    /// in its `info`), and every `figures` file is a PNG: the parsed result.
    fn written(
        &self,
        f: AnalyzeFn,
        options: &str,
        analysis: &str,
        figures: &[&str],
    ) -> serde_json::Value {
        let text = self
            .call(f, options)
            .unwrap_or_else(|(s, msg)| panic!("{analysis}: {s:?}: {msg}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let read = |name: &str| {
            let p = self.dir.path().join(name);
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let file: serde_json::Value =
            serde_json::from_slice(&read(&format!("{analysis}.json"))).unwrap();
        assert_eq!(file["analysis"], analysis);
        assert_eq!(file["info"]["seed"], self.seed);
        assert_eq!(file["result"], v);
        for fig in figures {
            assert!(read(fig).starts_with(b"\x89PNG"), "{fig} is not a PNG");
        }
        v
    }

    /// `f` with `options` fails with `DDL_STATUS_INVALID_ARGUMENT` and a message naming every
    /// `needles`.
    #[track_caller]
    fn rejects(&self, f: AnalyzeFn, options: &str, needles: &[&str]) {
        let (status, msg) = self.call(f, options).unwrap_err();
        assert_eq!(status, DdlStatus::InvalidArgument, "message: {msg}");
        for n in needles {
            assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
        }
    }
}

impl Drop for OneSet {
    fn drop(&mut self) {
        unsafe {
            ddl_distilled_free(self.set);
            ddl_dataset_free(self.train);
            ddl_dataset_free(self.test);
            ddl_bundle_free(self.bundle);
        }
    }
}

#[test]
fn mixing_writes_json_and_figure_and_names_unknown_settings() {
    let fx = OneSet::new(180, 60, None, Some("toy"), 7);
    let f = ddl_analyze_mixing;
    let options = r#"{"ks": [0, 2], "runs": 1, "steps": 5}"#;
    let v = fx.written(f, options, "mixing", &["mixing.png"]);
    assert_eq!(v["ks"], serde_json::json!([0, 2]));
    assert_eq!(v["curves"][0]["name"], "toy");
    assert_eq!(v["curves"][1]["kind"], "baseline");
    fx.rejects(f, r#"{"steps": 5, "bogus": 1}"#, &["bogus", "mixing"]);
}

#[test]
fn sensitivity_writes_json_and_figure_and_names_unknown_settings() {
    let fx = OneSet::new(120, 60, Some(0.05), None, 5);
    let f = ddl_analyze_sensitivity;
    let options = r#"{"epochs": 4, "lr_factors": [0.5]}"#;
    let v = fx.written(f, options, "sensitivity", &["sensitivity.png"]);
    assert_eq!(v["rows"][0]["name"], "set0");
    assert_eq!(v["rows"][0]["lr"], 0.05);
    assert_eq!(v["setups"][0]["name"], "standard");
    fx.rejects(
        f,
        r#"{"epochs": 4, "optimiser": ["sgd"]}"#,
        &["optimiser", "sensitivity"],
    );
}

#[test]
fn recognition_writes_json_and_figures_and_names_unknown_settings() {
    let fx = OneSet::new(60, 30, None, Some("toy"), 0);
    let f = ddl_analyze_recognition;
    let options = r#"{"train_epochs": 5, "train_max_steps": 3}"#;
    let figures = ["recognition.png", "recognition-per-class.png"];
    let v = fx.written(f, options, "recognition", &figures);
    assert_eq!(v["sets"][0]["name"], "toy");
    assert_eq!(v["models"][0]["train_steps"], 3);
    fx.rejects(f, r#"{"bogus_field": 1}"#, &["bogus_field"]);
}

#[test]
fn agreement_writes_json_and_figures_and_names_unknown_settings() {
    let fx = OneSet::new(90, 30, None, None, 0);
    let f = ddl_analyze_agreement;
    let options = r#"{"pool_a_fraction_min": 0.1, "pool_a_fraction_max": 0.2}"#;
    let figures = ["agreement.png", "agreement-means.png"];
    let v = fx.written(f, options, "agreement", &figures);
    assert_eq!(v["sets"][0]["name"], "set0");
    assert_eq!(v["pool_a"]["members"], 2);
    fx.rejects(f, r#"{"pool_c_size": 1}"#, &["pool_c_size"]);
}

#[test]
fn recognition_over_training_writes_json_and_figures_and_names_unknown_settings() {
    let fx = OneSet::new(60, 30, None, Some("toy"), 0);
    let f = ddl_analyze_recognition_over_training;
    let options = r#"{"steps": 5, "every": 5}"#;
    let figures = [
        "recognition-over-training.png",
        "recognition-over-training-loss.png",
    ];
    let v = fx.written(f, options, "recognition-over-training", &figures);
    assert_eq!(v["steps"], serde_json::json!([0, 5]));
    assert_eq!(v["sets"][0]["name"], "toy");
    fx.rejects(f, r#"{"stride": 2}"#, &["stride"]);
}

#[test]
fn the_generic_entry_runs_any_listed_analysis_like_its_named_entry() {
    let fx = Fixture::new();
    let mut json = null_mut();
    ok(unsafe { ddl_analysis_names(&mut json) });
    let list: serde_json::Value = serde_json::from_str(&take_string(json)).unwrap();
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, analysis::names().collect::<Vec<_>>());
    assert_eq!(listed.len(), 8);
    assert!(list[0]["about"].as_str().is_some_and(|a| !a.is_empty()));

    let sets: Vec<*const DdlDistilledSet> = fx.sets.iter().map(|s| s.cast_const()).collect();
    let options = cstr(PIXELS_OPTIONS);
    let generic = |name: *const c_char| {
        let mut json = null_mut();
        let status = unsafe {
            ddl_analyze(
                name,
                fx.bundle,
                fx.train,
                fx.test,
                sets.as_ptr(),
                null(),
                sets.len(),
                DDL_BUDGET_SMOKE,
                options.as_ptr(),
                SEED,
                null(),
                None,
                null_mut(),
                &mut json,
            )
        };
        (status, (!json.is_null()).then(|| take_string(json)))
    };
    let pixels = cstr("pixels");
    let (status, by_name) = generic(pixels.as_ptr());
    ok(status);
    let (status, named) = fx.call(
        ddl_analyze_pixels,
        None,
        DDL_BUDGET_SMOKE,
        Some(PIXELS_OPTIONS),
        None,
        None,
        null_mut(),
    );
    ok(status);
    assert_eq!(
        by_name, named,
        "ddl_analyze(\"pixels\") is ddl_analyze_pixels"
    );
    // The verdict comes back with the result: a state, the claim, and one entry per set.
    let result: serde_json::Value = serde_json::from_str(by_name.as_deref().unwrap()).unwrap();
    let verdict = &result["verdict"];
    assert!(
        ["supports", "contradicts", "inconclusive"]
            .contains(&verdict["state"].as_str().unwrap_or("")),
        "{verdict}"
    );
    assert!(verdict["claim"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(
        verdict["sets"].as_array().map(Vec::len),
        Some(sets.len()),
        "{verdict}"
    );

    let unknown = cstr("pixel");
    let (status, out) = generic(unknown.as_ptr());
    expect(
        status,
        DdlStatus::InvalidArgument,
        &[
            "ddl_analyze",
            "unknown analysis `pixel`",
            "recognition-over-training",
        ],
    );
    assert!(out.is_none());
    let (status, _) = generic(null());
    expect(status, DdlStatus::NullArgument, &["ddl_analyze", "`name`"]);
}
