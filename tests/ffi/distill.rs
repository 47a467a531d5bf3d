//! Distillation through the C ABI (src/ffi/distill.rs), called in-process: every method gives
//! bit-identical images (and learned lr) to the Rust API (`ddlens::distill::run` with the same
//! settings); MTT's experts from `ddl_generate_experts` equal `generate_experts`; errors name
//! the argument; the progress callback counts and cancels; a run resumed from its checkpoint
//! equals an uninterrupted one.

use crate::common;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use ddlens::augment::Dsa;
use ddlens::distill::{
    self, Bptt, BpttConfig, Dc, DcConfig, Dm, DmConfig, ExpertConfig, ExpertDir, Method, Mtt,
    MttConfig, RunConfig, Synthetic,
};
use ddlens::ffi::*;

use super::support::*;
use ddlens::train::{self, TrainConfig};
use ddlens::{Bundle, Dataset};
use serde_json::{json, Value};

const MODEL: &str = "tiny-1x8x8";

fn path_c(p: &Path) -> CString {
    cstr(p.to_str().unwrap())
}

/// Takes a library string, frees it, returns it parsed as JSON.
fn take_json(s: *mut c_char) -> Value {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    unsafe { ddl_string_free(s) };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn models_dir() -> PathBuf {
    common::models_dir()
}

/// The bundle through the C ABI and the same bundle through the Rust API.
fn bundles(name: &str) -> (*mut DdlBundle, Bundle) {
    runtime();
    let path = path_c(&models_dir().join(name));
    let mut b = null_mut();
    ok(unsafe { ddl_bundle_open(path.as_ptr(), &mut b) });
    (b, common::open(name))
}

/// The shared toy problem as a Rust dataset and as a C handle holding the same floats.
fn data(n: usize, seed: u64) -> (*mut DdlDataset, Dataset) {
    let real = common::banded_dataset(n, seed);
    let x = real.images().as_slice().unwrap();
    let y = real.labels().as_slice().unwrap();
    let shape = [n, 1, 8, 8];
    let name = cstr(real.name());
    let mut d = null_mut();
    ok(unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            shape.as_ptr(),
            4,
            y.as_ptr(),
            n,
            3,
            null(),
            null(),
            name.as_ptr(),
            &mut d,
        )
    });
    (d, real)
}

fn config(method: &str, ipc: usize) -> *mut DdlDistillConfig {
    let m = cstr(method);
    let mut c = null_mut();
    ok(unsafe { ddl_distill_config_new(m.as_ptr(), ipc, &mut c) });
    assert!(!c.is_null());
    c
}

fn describe(c: *const DdlDistillConfig) -> Value {
    let mut j = null_mut();
    ok(unsafe { ddl_distill_config_describe(c, &mut j) });
    take_json(j)
}

/// What `ddl_distill` produced, copied out: image bits, labels, learned lr, report, metadata.
struct Got {
    images: Vec<u32>,
    labels: Vec<i64>,
    lr: Option<f32>,
    report: Value,
    meta: Value,
}

fn distil(b: *const DdlBundle, d: *const DdlDataset, c: *const DdlDistillConfig) -> Got {
    let (mut set, mut json) = (null_mut(), null_mut());
    ok(unsafe { ddl_distill(b, d, c, None, null_mut(), &mut set, &mut json) });
    let report = take_json(json);
    let got = read_set(set, report);
    unsafe { ddl_distilled_free(set) };
    got
}

fn read_set(set: *mut DdlDistilledSet, report: Value) -> Got {
    let mut data = null_mut();
    ok(unsafe { ddl_distilled_data(set, &mut data) });
    let mut n = 0usize;
    ok(unsafe { ddl_dataset_len(data, &mut n) });
    let mut images = vec![0f32; n * 64];
    let mut labels = vec![0i64; n];
    ok(unsafe { ddl_dataset_get_images(data, images.as_mut_ptr(), images.len()) });
    ok(unsafe { ddl_dataset_get_labels(data, labels.as_mut_ptr(), labels.len()) });
    unsafe { ddl_dataset_free(data) };
    let (mut has, mut lr) = (false, 0f32);
    ok(unsafe { ddl_distilled_lr(set, &mut has, &mut lr) });
    let mut meta = null_mut();
    ok(unsafe { ddl_distilled_describe(set, &mut meta) });
    Got {
        images: images.iter().map(|v| v.to_bits()).collect(),
        labels,
        lr: has.then_some(lr),
        report,
        meta: take_json(meta),
    }
}

fn bits(syn: &Synthetic) -> Vec<u32> {
    syn.images.iter().map(|v| v.to_bits()).collect()
}

/// Runs `method` through the Rust API from the seeded real initialisation, as ddl_distill does.
fn rust_run(
    method: &mut dyn Method,
    b: &Bundle,
    real: &Dataset,
    ipc: usize,
    iterations: usize,
    seed: u64,
) -> (Synthetic, Vec<f32>) {
    let mut syn = Synthetic::from_real(real, ipc, seed).unwrap();
    let config = RunConfig {
        iterations,
        seed,
        checkpoint_every: None,
        checkpoint: None,
        settings: json!({}),
    };
    let log = distill::run(
        method,
        &mut syn,
        b,
        real,
        &config,
        false,
        &mut ddlens::progress::Silent,
    )
    .unwrap();
    (syn, log.losses)
}

/// Asserts that the C result equals the Rust one bit for bit (images, labels, lr, losses).
#[track_caller]
fn assert_same(what: &str, got: &Got, want: &Synthetic, losses: &[f32]) {
    assert_eq!(
        got.images,
        bits(want),
        "{what}: images differ from the Rust API"
    );
    assert_eq!(got.labels, want.labels.to_vec(), "{what}: labels");
    assert_eq!(
        got.lr.map(f32::to_bits),
        want.lr.map(f32::to_bits),
        "{what}: learned lr"
    );
    let logged: Vec<f32> = got.report["loss_per_iteration"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(logged, losses, "{what}: losses");
    assert_eq!(got.report["iterations"], losses.len());
}

#[test]
fn dm_matches_the_rust_api_bit_for_bit() {
    let (b, rb) = bundles(MODEL);
    let (d, real) = data(60, 1);
    let c = config("DM", 2);
    ok(unsafe { ddl_distill_config_set_iterations(c, 4) });
    ok(unsafe { ddl_distill_config_set_seed(c, 7) });
    ok(unsafe { ddl_distill_config_set_batch_real(c, 16) });
    let got = distil(b, d, c);

    let mut dm = Dm::new(DmConfig {
        batch_real: 16,
        ..DmConfig::default()
    })
    .unwrap();
    let (want, losses) = rust_run(&mut dm, &rb, &real, 2, 4, 7);
    assert_same("dm", &got, &want, &losses);
    assert_ne!(
        want.images,
        Synthetic::from_real(&real, 2, 7).unwrap().images,
        "DM moved the images"
    );
    // The report and the set's metadata say what was run.
    assert_eq!(got.report["method"], "dm");
    assert_eq!(got.report["resumed_from"], 0);
    assert_eq!(got.report["settings"]["dsa"], Dsa::default().strategy());
    assert_eq!(got.meta["method"], "dm");
    assert_eq!(got.meta["ipc"], 2);
    assert_eq!(got.meta["model"], MODEL);
    assert_eq!(got.meta["seed"], 7);
    assert_eq!(got.meta["dataset"], "synthetic");
    assert!(got.meta["lr"].is_null());
    unsafe {
        ddl_distill_config_free(c);
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

#[test]
fn mtt_experts_and_distillation_match_the_rust_api_bit_for_bit() {
    let (b, rb) = bundles(MODEL);
    let (d, real) = data(60, 1);
    let dir = tempfile::tempdir().unwrap();
    let experts = dir.path().join("experts");
    let out = path_c(&experts);
    let mut index = null_mut();
    ok(unsafe {
        ddl_generate_experts(
            b,
            d,
            2,
            4,
            0.05,
            16,
            true,
            9,
            out.as_ptr(),
            None,
            null_mut(),
            &mut index,
        )
    });
    let index = take_json(index);
    assert_eq!(index["experts"], 2);
    assert_eq!(index["epochs"], 4);
    assert_eq!(index["model"], MODEL);
    let expert_config = ExpertConfig {
        batch: 16,
        lr: 0.05,
        dsa: Some(Dsa::default()),
        ..ExpertConfig::new(4)
    };
    let want_experts = distill::generate_experts(
        &rb,
        &real,
        2,
        &expert_config,
        9,
        &mut ddlens::progress::Silent,
    )
    .unwrap();
    let stored = ExpertDir::open(&experts, rb.manifest()).unwrap();
    assert_eq!(
        stored.load_all().unwrap(),
        want_experts,
        "experts differ from generate_experts"
    );

    let c = config("mtt", 2);
    ok(unsafe { ddl_distill_config_set_experts(c, out.as_ptr()) });
    ok(unsafe { ddl_distill_config_set_iterations(c, 3) });
    ok(unsafe { ddl_distill_config_set_seed(c, 5) });
    ok(unsafe { ddl_distill_config_set_syn_steps(c, 6) });
    ok(unsafe { ddl_distill_config_set_batch_syn(c, 4) });
    ok(unsafe { ddl_distill_config_set_expert_epochs_ahead(c, 2) });
    ok(unsafe { ddl_distill_config_set_max_start_epoch(c, 3) });
    ok(unsafe { ddl_distill_config_set_lr_img(c, 100.0) });
    ok(unsafe { ddl_distill_config_set_lr_lr(c, 1e-4) });
    let j = describe(c);
    assert_eq!(j["syn_steps"], 6);
    assert_eq!(j["batch_syn"], 4);
    assert_eq!(j["dsa"], true);
    let got = distil(b, d, c);

    let mut mtt = Mtt::new(
        MttConfig {
            syn_steps: 6,
            expert_epochs: 2,
            max_start_epoch: 3,
            batch_syn: Some(4),
            lr_img: 100.0,
            lr_lr: 1e-4,
            lr_init: 0.05,
            momentum: 0.5,
            dsa: Some(Dsa::default()),
        },
        Box::new(ExpertDir::open(&experts, rb.manifest()).unwrap()),
    )
    .unwrap();
    let (want, losses) = rust_run(&mut mtt, &rb, &real, 2, 3, 5);
    assert!(want.lr.is_some_and(|lr| lr != 0.05), "MTT learns the lr");
    assert_same("mtt", &got, &want, &losses);
    assert_eq!(got.meta["lr"].as_f64().map(|v| v as f32), want.lr);
    assert_eq!(got.report["settings"]["experts"]["experts"], 2);
    unsafe {
        ddl_distill_config_free(c);
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

#[test]
fn bptt_matches_the_rust_api_bit_for_bit() {
    let (b, rb) = bundles(MODEL);
    let (d, real) = data(60, 1);
    let c = config("bptt", 2);
    ok(unsafe { ddl_distill_config_set_iterations(c, 3) });
    ok(unsafe { ddl_distill_config_set_seed(c, 3) });
    ok(unsafe { ddl_distill_config_set_syn_steps(c, 10) });
    ok(unsafe { ddl_distill_config_set_window(c, 4) });
    ok(unsafe { ddl_distill_config_set_learn_lr(c, true) });
    ok(unsafe { ddl_distill_config_set_lr_lr(c, 1e-3) });
    ok(unsafe { ddl_distill_config_set_lr_img(c, 1.0) });
    ok(unsafe { ddl_distill_config_set_batch_real(c, 32) });
    let got = distil(b, d, c);

    let mut bptt = Bptt::new(BpttConfig {
        steps: 10,
        window: Some(4),
        learn_lr: true,
        lr_lr: 1e-3,
        lr_img: 1.0,
        batch_real: 32,
        ..BpttConfig::default()
    })
    .unwrap();
    let (want, losses) = rust_run(&mut bptt, &rb, &real, 2, 3, 3);
    assert!(want.lr.is_some(), "BPTT with learn_lr stores the lr");
    assert_same("bptt", &got, &want, &losses);
    unsafe {
        ddl_distill_config_free(c);
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

#[test]
fn dc_dsa_random_and_herding_match_the_rust_api() {
    let (b, rb) = bundles(MODEL);
    let (d, real) = data(30, 2);
    for dsa in [false, true] {
        let c = config(if dsa { "dsa" } else { "dc" }, 1);
        ok(unsafe { ddl_distill_config_set_iterations(c, 2) });
        ok(unsafe { ddl_distill_config_set_batch_real(c, 8) });
        let got = distil(b, d, c);
        let mut cfg = DcConfig::for_ipc(1).unwrap();
        cfg.batch_real = 8;
        if dsa {
            cfg = cfg.with_dsa(Dsa::default());
        }
        let (want, losses) = rust_run(&mut Dc::new(cfg).unwrap(), &rb, &real, 1, 2, 0);
        assert_same(if dsa { "dsa" } else { "dc" }, &got, &want, &losses);
        unsafe { ddl_distill_config_free(c) };
    }

    let c = config("random", 3);
    ok(unsafe { ddl_distill_config_set_seed(c, 4) });
    let got = distil(b, d, c);
    let want = distill::random_set(&real, 3, 4).unwrap();
    assert_same("random", &got, &want, &[]);
    assert!(got.report["resumed_from"].is_null());
    unsafe { ddl_distill_config_free(c) };

    // Herding in the features of a model trained for one epoch of P_real, or of a file.
    let c = config("herding", 2);
    ok(unsafe { ddl_distill_config_set_seed(c, 1) });
    let got = distil(b, d, c);
    let trained = train::train(
        &rb,
        rb.init_params(1),
        &real,
        &TrainConfig::p_real(1, 1),
        &mut [],
    )
    .unwrap()
    .params;
    let want =
        distill::herding_set(&rb, &trained, &real, 2, &mut ddlens::progress::Silent).unwrap();
    assert_same("herding", &got, &want, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("features.safetensors");
    let other = rb.init_params(77);
    train::save_params(&file, rb.manifest(), &other).unwrap();
    let f = path_c(&file);
    ok(unsafe { ddl_distill_config_set_herding_params(c, f.as_ptr()) });
    let got = distil(b, d, c);
    let want = distill::herding_set(&rb, &other, &real, 2, &mut ddlens::progress::Silent).unwrap();
    assert_same("herding from a file", &got, &want, &[]);
    unsafe {
        ddl_distill_config_free(c);
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

#[test]
fn errors_return_their_status_and_name_the_argument() {
    let (b, _) = bundles(MODEL);
    let (d, _) = data(30, 1);
    // A non-NULL output that the call must overwrite with NULL.
    let mut c: *mut DdlDistillConfig = std::ptr::NonNull::dangling().as_ptr();
    let m = cstr("dmx");
    expect(
        unsafe { ddl_distill_config_new(m.as_ptr(), 2, &mut c) },
        DdlStatus::InvalidArgument,
        &[
            "ddl_distill_config_new",
            "`method`",
            "dmx",
            "random, herding, dm, dc, dsa, mtt, bptt",
        ],
    );
    assert!(c.is_null(), "the output is NULL on failure");
    let dm = cstr("dm");
    expect(
        unsafe { ddl_distill_config_new(null(), 2, &mut c) },
        DdlStatus::NullArgument,
        &["`method`"],
    );
    expect(
        unsafe { ddl_distill_config_new(dm.as_ptr(), 2, null_mut()) },
        DdlStatus::NullArgument,
        &["`out`"],
    );
    expect(
        unsafe { ddl_distill_config_new(dm.as_ptr(), 0, &mut c) },
        DdlStatus::InvalidArgument,
        &["`ipc`", "at least 1"],
    );
    expect(
        unsafe { ddl_distill_config_set_iterations(null_mut(), 3) },
        DdlStatus::NullArgument,
        &["ddl_distill_config_set_iterations", "`config`"],
    );
    expect(
        unsafe { ddl_distill_config_describe(null(), &mut null_mut()) },
        DdlStatus::NullArgument,
        &["`config`"],
    );
    unsafe { ddl_distill_config_free(null_mut()) };

    // Setters validate, name their field and leave the configuration as it was.
    let c = config("dm", 1);
    expect(
        unsafe { ddl_distill_config_set_window(c, 3) },
        DdlStatus::InvalidArgument,
        &["`window`", "does not apply to method `dm`", "bptt"],
    );
    expect(
        unsafe { ddl_distill_config_set_momentum(c, 1.0) },
        DdlStatus::InvalidArgument,
        &["`momentum`", "[0, 1)"],
    );
    expect(
        unsafe { ddl_distill_config_set_lr_img(c, f32::NAN) },
        DdlStatus::InvalidArgument,
        &["`lr_img`"],
    );
    expect(
        unsafe { ddl_distill_config_set_iterations(c, 0) },
        DdlStatus::InvalidArgument,
        &["`iterations`"],
    );
    expect(
        unsafe { ddl_distill_config_set_batch_real(c, 0) },
        DdlStatus::InvalidArgument,
        &["`batch_real`"],
    );
    let j = describe(c);
    assert_eq!(
        (
            &j["momentum"],
            &j["lr_img"],
            &j["iterations"],
            &j["batch_real"]
        ),
        (&json!(0.5), &json!(1.0), &json!(1000), &json!(256)),
        "refused values leave the defaults: {j}"
    );
    assert!(j.get("window").is_none(), "dm has no window: {j}");
    // ddl_distill checks its pointers.
    let (mut set, mut json) = (null_mut(), null_mut());
    expect(
        unsafe { ddl_distill(null(), d, c, None, null_mut(), &mut set, &mut json) },
        DdlStatus::NullArgument,
        &["ddl_distill", "`bundle`"],
    );
    expect(
        unsafe { ddl_distill(b, null(), c, None, null_mut(), &mut set, &mut json) },
        DdlStatus::NullArgument,
        &["`real`"],
    );
    expect(
        unsafe { ddl_distill(b, d, null(), None, null_mut(), &mut set, &mut json) },
        DdlStatus::NullArgument,
        &["`config`"],
    );
    expect(
        unsafe { ddl_distill(b, d, c, None, null_mut(), null_mut(), &mut json) },
        DdlStatus::NullArgument,
        &["`out_set`"],
    );
    assert!(set.is_null() && json.is_null());
    // A class with fewer images than asked.
    let big = config("random", 11);
    expect(
        unsafe { ddl_distill(b, d, big, None, null_mut(), &mut set, &mut json) },
        DdlStatus::Data,
        &["ddl_distill"],
    );
    assert!(set.is_null() && json.is_null());
    unsafe { ddl_distill_config_free(big) };
    // Resuming needs a checkpoint path, and the file.
    ok(unsafe { ddl_distill_config_set_resume(c, true) });
    expect(
        unsafe { ddl_distill(b, d, c, None, null_mut(), &mut set, null_mut()) },
        DdlStatus::InvalidArgument,
        &["`resume`", "checkpoint"],
    );
    let dir = tempfile::tempdir().unwrap();
    let ckpt = path_c(&dir.path().join("none.ckpt"));
    ok(unsafe { ddl_distill_config_set_checkpoint(c, ckpt.as_ptr(), 1) });
    expect(
        unsafe { ddl_distill(b, d, c, None, null_mut(), &mut set, null_mut()) },
        DdlStatus::NotFound,
        &["none.ckpt"],
    );
    unsafe { ddl_distill_config_free(c) };

    // dsa always augments; bptt's window cannot exceed its steps.
    let c = config("dsa", 1);
    expect(
        unsafe { ddl_distill_config_set_dsa(c, false) },
        DdlStatus::InvalidArgument,
        &["`dsa`", "dc"],
    );
    ok(unsafe { ddl_distill_config_set_dsa(c, true) });
    unsafe { ddl_distill_config_free(c) };
    let c = config("bptt", 1);
    ok(unsafe { ddl_distill_config_set_syn_steps(c, 5) });
    expect(
        unsafe { ddl_distill_config_set_window(c, 6) },
        DdlStatus::InvalidArgument,
        &["`window`", "5 inner steps"],
    );
    assert!(describe(c)["window"].is_null());
    unsafe { ddl_distill_config_free(c) };

    // MTT: an experts folder that does not exist, and none at all.
    let c = config("mtt", 1);
    let missing = cstr("/nonexistent/ddlens-experts");
    expect(
        unsafe { ddl_distill_config_set_experts(c, missing.as_ptr()) },
        DdlStatus::NotFound,
        &["`experts_dir`", "/nonexistent/ddlens-experts"],
    );
    expect(
        unsafe { ddl_distill_config_set_experts(c, null()) },
        DdlStatus::NullArgument,
        &["`experts_dir`"],
    );
    expect(
        unsafe { ddl_distill(b, d, c, None, null_mut(), &mut set, &mut json) },
        DdlStatus::InvalidArgument,
        &[
            "ddl_distill",
            "`experts`",
            "mtt needs expert trajectories",
            "ddl_generate_experts",
        ],
    );
    // A folder without an index (e.g. an unfinished generation) is not found either.
    let empty = path_c(dir.path());
    ok(unsafe { ddl_distill_config_set_experts(c, empty.as_ptr()) });
    expect(
        unsafe { ddl_distill(b, d, c, None, null_mut(), &mut set, &mut json) },
        DdlStatus::NotFound,
        &["experts.json"],
    );
    assert!(set.is_null() && json.is_null());
    unsafe { ddl_distill_config_free(c) };

    // Experts: counts, rates and the folder are checked.
    let out = path_c(&dir.path().join("e"));
    let gen = |n: usize, epochs: u64, lr: f32, batch: usize, dir: *const c_char| unsafe {
        ddl_generate_experts(
            b,
            d,
            n,
            epochs,
            lr,
            batch,
            false,
            0,
            dir,
            None,
            null_mut(),
            null_mut(),
        )
    };
    expect(
        gen(0, 1, 0.01, 8, out.as_ptr()),
        DdlStatus::InvalidArgument,
        &["ddl_generate_experts", "`num_experts`"],
    );
    expect(
        gen(1, 0, 0.01, 8, out.as_ptr()),
        DdlStatus::InvalidArgument,
        &["`epochs`"],
    );
    expect(
        gen(1, 1, -1.0, 8, out.as_ptr()),
        DdlStatus::InvalidArgument,
        &["`lr`"],
    );
    expect(
        gen(1, 1, 0.01, 0, out.as_ptr()),
        DdlStatus::InvalidArgument,
        &["`batch`"],
    );
    expect(
        gen(1, 1, 0.01, 8, null()),
        DdlStatus::NullArgument,
        &["`out_dir`"],
    );
    unsafe {
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

struct Counter {
    calls: Vec<(u64, u64)>,
    stop_at: u64,
}

unsafe extern "C" fn count(user: *mut c_void, step: u64, total: u64) -> c_int {
    let c = unsafe { &mut *user.cast::<Counter>() };
    c.calls.push((step, total));
    c_int::from(step >= c.stop_at)
}

fn counter(stop_at: u64) -> Counter {
    Counter {
        calls: Vec::new(),
        stop_at,
    }
}

#[test]
fn progress_counts_iterations_and_cancels() {
    let (b, _) = bundles(MODEL);
    let (d, _) = data(30, 1);
    let c = config("dm", 1);
    ok(unsafe { ddl_distill_config_set_iterations(c, 5) });
    ok(unsafe { ddl_distill_config_set_batch_real(c, 8) });
    let mut all = counter(u64::MAX);
    let (mut set, mut json) = (null_mut(), null_mut());
    ok(unsafe {
        ddl_distill(
            b,
            d,
            c,
            Some(count),
            (&raw mut all).cast(),
            &mut set,
            &mut json,
        )
    });
    assert_eq!(
        all.calls,
        (0..=5).map(|s| (s, 5)).collect::<Vec<_>>(),
        "before the first iteration and after each"
    );
    unsafe {
        ddl_distilled_free(set);
        ddl_string_free(json);
    }
    let mut stop = counter(2);
    let (mut set, mut json) = (null_mut(), null_mut());
    expect(
        unsafe {
            ddl_distill(
                b,
                d,
                c,
                Some(count),
                (&raw mut stop).cast(),
                &mut set,
                &mut json,
            )
        },
        DdlStatus::Cancelled,
        &["ddl_distill", "step 2 of 5"],
    );
    assert!(set.is_null() && json.is_null(), "no result when cancelled");
    assert_eq!(
        stop.calls.len(),
        3,
        "no iteration after the callback said stop"
    );
    // Stopping at the very end still cancels (the caller asked for no result).
    let mut last = counter(5);
    expect(
        unsafe {
            ddl_distill(
                b,
                d,
                c,
                Some(count),
                (&raw mut last).cast(),
                &mut set,
                &mut json,
            )
        },
        DdlStatus::Cancelled,
        &["step 5 of 5"],
    );
    unsafe { ddl_distill_config_free(c) };

    // Herding counts the feature model's steps, then the classes; random one step.
    let c = config("herding", 1);
    let mut h = counter(u64::MAX);
    ok(unsafe {
        ddl_distill(
            b,
            d,
            c,
            Some(count),
            (&raw mut h).cast(),
            &mut set,
            null_mut(),
        )
    });
    unsafe { ddl_distilled_free(set) };
    let total = 1 + 3; // one epoch of 30 images in batches of 256, then 3 classes
    assert_eq!(h.calls, (0..=total).map(|s| (s, total)).collect::<Vec<_>>());
    let mut h = counter(1);
    expect(
        unsafe {
            ddl_distill(
                b,
                d,
                c,
                Some(count),
                (&raw mut h).cast(),
                &mut set,
                null_mut(),
            )
        },
        DdlStatus::Cancelled,
        &["step 1 of 4"],
    );
    unsafe { ddl_distill_config_free(c) };

    // Expert generation counts epochs over all experts and cancels between them.
    let whole = tempfile::tempdir().unwrap();
    let part = tempfile::tempdir().unwrap();
    let run = |dir: &Path, lr: f32, c: &mut Counter| unsafe {
        let out = path_c(dir);
        ddl_generate_experts(
            b,
            d,
            2,
            3,
            lr,
            8,
            false,
            0,
            out.as_ptr(),
            Some(count),
            (c as *mut Counter).cast(),
            null_mut(),
        )
    };
    let mut e = counter(u64::MAX);
    ok(run(whole.path(), 0.01, &mut e));
    assert_eq!(e.calls, (0..=6).map(|s| (s, 6)).collect::<Vec<_>>());
    assert!(whole.path().join("experts.json").is_file());
    let mut e = counter(4);
    expect(
        run(part.path(), 0.01, &mut e),
        DdlStatus::Cancelled,
        &["ddl_generate_experts", "step 4 of 6"],
    );
    assert_eq!(e.calls.len(), 5);
    assert!(
        !part.path().join("experts.json").exists(),
        "a cancelled generation leaves no index behind"
    );
    // The same call again continues after the last finished epoch, to the same files.
    let mut e = counter(u64::MAX);
    ok(run(part.path(), 0.01, &mut e));
    let steps: Vec<u64> = e.calls.iter().map(|c| c.0).collect();
    assert_eq!(
        steps,
        [4, 5, 6],
        "a resumed generation reports where it is, then every epoch it trains"
    );
    for (expert, epoch) in [(0, 3), (1, 0), (1, 2), (1, 3)] {
        let file = |dir: &Path| {
            std::fs::read(ddlens::distill::expert_checkpoint_path(dir, expert, epoch)).unwrap()
        };
        assert_eq!(
            file(whole.path()),
            file(part.path()),
            "expert {expert} epoch {epoch}"
        );
    }
    // Other settings on a folder of experts: refused, naming the file, and nothing is lost.
    let mut e = counter(u64::MAX);
    expect(
        run(part.path(), 0.02, &mut e),
        DdlStatus::Bundle,
        &["state.json", "other settings"],
    );
    assert!(part.path().join("experts.json").is_file());
    unsafe {
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

/// Runs `method` for `iterations` with a checkpoint every 2, cancelling at `stop_at` when given.
fn checkpointed(
    b: *const DdlBundle,
    d: *const DdlDataset,
    c: *mut DdlDistillConfig,
    ckpt: &CString,
    iterations: u64,
    resume: bool,
    stop_at: u64,
) -> (DdlStatus, Option<Got>) {
    ok(unsafe { ddl_distill_config_set_iterations(c, iterations) });
    ok(unsafe { ddl_distill_config_set_checkpoint(c, ckpt.as_ptr(), 2) });
    ok(unsafe { ddl_distill_config_set_resume(c, resume) });
    let mut stop = counter(stop_at);
    let (mut set, mut json) = (null_mut(), null_mut());
    let s = unsafe {
        ddl_distill(
            b,
            d,
            c,
            Some(count),
            (&raw mut stop).cast(),
            &mut set,
            &mut json,
        )
    };
    if s != DdlStatus::Ok {
        return (s, None);
    }
    let got = read_set(set, take_json(json));
    unsafe { ddl_distilled_free(set) };
    (s, Some(got))
}

#[test]
fn resume_from_a_checkpoint_equals_an_uninterrupted_run() {
    let (b, _) = bundles(MODEL);
    let (d, _) = data(60, 1);
    for method in ["dm", "bptt"] {
        let c = config(method, 2);
        ok(unsafe { ddl_distill_config_set_seed(c, 11) });
        ok(unsafe { ddl_distill_config_set_batch_real(c, 16) });
        if method == "bptt" {
            ok(unsafe { ddl_distill_config_set_syn_steps(c, 6) });
            ok(unsafe { ddl_distill_config_set_learn_lr(c, true) });
            ok(unsafe { ddl_distill_config_set_lr_lr(c, 1e-3) });
        }
        let straight_dir = tempfile::tempdir().unwrap();
        let straight = path_c(&straight_dir.path().join("run.ckpt"));
        let (s, full) = checkpointed(b, d, c, &straight, 6, false, u64::MAX);
        ok(s);
        let full = full.unwrap();

        // Cancelled at step 3: the checkpoint of iteration 2 is on disk; resume to 6.
        let dir = tempfile::tempdir().unwrap();
        let ckpt = path_c(&dir.path().join("run.ckpt"));
        let (s, _) = checkpointed(b, d, c, &ckpt, 6, false, 3);
        expect(s, DdlStatus::Cancelled, &["step 3 of 6"]);
        assert!(dir.path().join("run.ckpt").is_file());
        let (s, resumed) = checkpointed(b, d, c, &ckpt, 6, true, u64::MAX);
        ok(s);
        let resumed = resumed.unwrap();
        assert_eq!(resumed.report["resumed_from"], 2, "{method}");
        assert_eq!(
            resumed.images, full.images,
            "{method}: resumed images differ"
        );
        assert_eq!(
            resumed.lr.map(f32::to_bits),
            full.lr.map(f32::to_bits),
            "{method}"
        );
        assert_eq!(
            resumed.report["loss_per_iteration"], full.report["loss_per_iteration"],
            "{method}: the loss log spans the whole run"
        );
        if method == "bptt" {
            assert!(full.lr.is_some());
        }

        // Resuming with another setting is refused, naming it.
        ok(unsafe { ddl_distill_config_set_lr_img(c, 0.25) });
        let (s, _) = checkpointed(b, d, c, &ckpt, 8, true, u64::MAX);
        expect(s, DdlStatus::Data, &["run.ckpt", "other settings", "0.25"]);
        unsafe { ddl_distill_config_free(c) };
    }
    unsafe {
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}
