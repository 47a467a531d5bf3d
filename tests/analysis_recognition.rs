//! `recognition`: real-trained models classifying distilled images, on the tiny bundles and
//! the banded toy problem: exact scores for known sets, given parameters used as they are,
//! models trained (and their parameters written) otherwise, errors naming the setting, and the
//! C ABI entry.

mod common;

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use ddlens::analysis::recognition::{recognition, RecognitionConfig};
use ddlens::analysis::{no_progress, Budget, NamedSet, RealData};
use ddlens::train::{self, load_params, save_params, Schedule, SgdConfig, TrainConfig};
use ddlens::{Bundle, Dataset, Params};
use ndarray::Array1;

/// Parameters of `b` trained well on the banded problem.
fn trained(b: &Bundle, train_set: &Dataset) -> Params {
    let config = TrainConfig {
        epochs: 15,
        max_steps: None,
        batch_size: Some(16),
        lr: 0.05,
        sgd: SgdConfig {
            momentum: 0.9,
            weight_decay: 5e-4,
        },
        schedule: Schedule::Constant,
        seed: 3,
        augment: None,
    };
    train::train(b, b.init_params(0), train_set, &config, &mut [])
        .unwrap()
        .params
}

fn config(models: &[&str], params: &[(&str, &str)]) -> RecognitionConfig {
    RecognitionConfig {
        models: models.iter().map(|s| s.to_string()).collect(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..RecognitionConfig::for_budget(Budget::Smoke, 0)
    }
}

#[test]
fn correctly_classified_real_images_score_one_and_flipped_labels_score_accordingly() {
    let b = common::open("tiny-1x8x8");
    let (train_set, test) = (common::banded_dataset(96, 1), common::banded_dataset(60, 2));
    let params = trained(&b, &train_set);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.safetensors");
    save_params(&file, b.manifest(), &params).unwrap();

    // Twelve candidate images the model classifies correctly, four per class.
    let pool = common::banded_dataset(90, 5);
    let e = train::evaluate(&b, &params, &pool).unwrap();
    let mut picked = Vec::new();
    for c in 0..3 {
        picked.extend(
            (0..pool.len())
                .filter(|&i| pool.labels()[i] == c && e.predictions[i] as i64 == c)
                .take(4),
        );
    }
    assert_eq!(
        picked.len(),
        12,
        "the trained tiny model should get most right"
    );
    let good = pool.select(&picked).unwrap();
    // The same images with three labels moved to the next class: two of class 0 (now 1) and
    // one of class 2 (now 0).
    let mut labels: Array1<i64> = good.labels().clone();
    for &i in &[0usize, 1, 8] {
        labels[i] = (labels[i] + 1) % 3;
    }
    let flipped = Dataset::new(good.images().clone(), labels, 3, "flipped").unwrap();
    let sets = [
        NamedSet {
            name: "good".into(),
            data: good,
            lr: None,
        },
        NamedSet {
            name: "flipped".into(),
            data: flipped,
            lr: None,
        },
    ];
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let path = file.to_str().unwrap();
    let cfg = config(&["model"], &[("model", path)]);
    let r = recognition(&b, real, &sets, &cfg, &mut no_progress).unwrap();

    assert_eq!(r.models.len(), 1);
    let m = &r.models[0];
    assert_eq!((m.source.as_str(), m.train_steps), ("given", 0));
    assert_eq!(m.params_file.as_deref(), Some(path));
    let test_acc = train::evaluate(&b, &params, &test).unwrap().accuracy;
    assert_eq!(
        m.test_accuracy, test_acc,
        "given parameters are used as they are"
    );

    let good = &r.sets[0].models[0];
    assert_eq!((good.accuracy, good.correct), (1.0, 12));
    assert_eq!(good.per_class, vec![Some(1.0); 3]);
    let flipped = &r.sets[1].models[0];
    assert_eq!(flipped.correct, 9);
    assert!((flipped.accuracy - 0.75).abs() < 1e-12);
    // Class 0: its 2 remaining images plus the relabelled class-2 image (2/3); class 1: its 4
    // plus the 2 relabelled class-0 images (4/6); class 2: its 3 remaining images (3/3).
    let pc: Vec<f64> = flipped.per_class.iter().map(|p| p.unwrap()).collect();
    assert!((pc[0] - 2.0 / 3.0).abs() < 1e-12, "{pc:?}");
    assert!((pc[1] - 4.0 / 6.0).abs() < 1e-12, "{pc:?}");
    assert_eq!(pc[2], 1.0, "{pc:?}");
}

#[test]
fn models_without_params_are_trained_and_written_for_reuse() {
    let b = common::open("tiny-1x8x8");
    let (train_set, test) = (common::banded_dataset(96, 1), common::banded_dataset(60, 2));
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let sets = [NamedSet {
        name: "some".into(),
        data: common::banded_dataset(9, 7),
        lr: None,
    }];
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&["model", "tiny-maxpool-1x8x8"], &[]);
    cfg.train_epochs = 2;
    cfg.train_max_steps = None;
    cfg.params_out = Some(dir.path().to_str().unwrap().to_string());
    let r = recognition(&b, real, &sets, &cfg, &mut no_progress).unwrap();
    let names: Vec<&str> = r.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(names, ["tiny-1x8x8", "tiny-maxpool-1x8x8"]);
    for (m, rec) in r.models.iter().enumerate() {
        // 2 epochs of 96 images in batches of 256: 2 steps.
        assert_eq!((rec.source.as_str(), rec.train_steps), ("trained", 2));
        // Model m is P_real with seed + m from init_params(seed + m).
        let other = common::open(&rec.model);
        let tc = cfg.train_config(m);
        assert_eq!(tc.seed, m as u64);
        let want = train::train(&other, other.init_params(tc.seed), &train_set, &tc, &mut [])
            .unwrap()
            .params;
        let written = load_params(
            &dir.path().join(format!("{}.safetensors", rec.model)),
            other.manifest(),
        )
        .unwrap();
        assert_eq!(written, want);
        assert_eq!(
            rec.params_file
                .as_deref()
                .map(|p| p.ends_with(".safetensors")),
            Some(true)
        );
    }
    // Passing the written files back gives the same recognition without training.
    let given: Vec<(String, String)> = r
        .models
        .iter()
        .map(|m| (m.model.clone(), m.params_file.clone().unwrap()))
        .collect();
    let mut again = cfg.clone();
    again.params = given.into_iter().collect();
    again.params_out = None;
    let r2 = recognition(&b, real, &sets, &again, &mut no_progress).unwrap();
    assert!(r2
        .models
        .iter()
        .all(|m| m.source == "given" && m.train_steps == 0));
    for (a, c) in r.sets[0].models.iter().zip(&r2.sets[0].models) {
        assert_eq!((a.accuracy, &a.per_class), (c.accuracy, &c.per_class));
    }
}

#[test]
fn bad_models_and_params_are_errors_naming_them() {
    let b = common::open("tiny-1x8x8");
    let (train_set, test) = (common::banded_dataset(30, 1), common::banded_dataset(30, 2));
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let msg = |cfg: &RecognitionConfig| {
        recognition(&b, real, &[], cfg, &mut no_progress)
            .unwrap_err()
            .to_string()
    };
    let m = msg(&config(&["no-such-net"], &[]));
    assert!(m.contains("`models`") && m.contains("no-such-net"), "{m}");
    assert!(
        m.contains("tiny-1x8x8"),
        "lists the bundles for the shape: {m}"
    );
    let m = msg(&config(&["model"], &[("convnet9", "x.safetensors")]));
    assert!(m.contains("`params`") && m.contains("convnet9"), "{m}");
    let m = msg(&config(
        &["model"],
        &[("model", "/nonexistent/p.safetensors")],
    ));
    assert!(m.contains("/nonexistent/p.safetensors"), "{m}");
    let m = msg(&config(&[], &[]));
    assert!(m.contains("`models`"), "{m}");
}

// ---- the C ABI ----

use ddlens::ffi::*;

fn last_error() -> String {
    unsafe { CStr::from_ptr(ddl_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn ffi_dataset(d: &Dataset) -> *mut DdlDataset {
    let x: Vec<f32> = d.images().iter().copied().collect();
    let y: Vec<i64> = d.labels().to_vec();
    let shape = d.images().shape().to_vec();
    let mut out = null_mut();
    let s = unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            shape.as_ptr(),
            4,
            y.as_ptr(),
            y.len(),
            d.num_classes(),
            null(),
            null(),
            null(),
            &mut out,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    out
}

#[test]
fn c_abi_entry_writes_json_and_figures_and_rejects_unknown_options() {
    let path = CString::new(common::models_dir().join("tiny-1x8x8").to_str().unwrap()).unwrap();
    // The defaults, as the Rust tests of this binary get them through `Bundle::open`.
    let status = unsafe { ddl_runtime_init(null(), DDL_PROVIDER_AUTO, 0) };
    assert_eq!(status, DdlStatus::Ok, "{}", last_error());
    let mut bundle = null_mut();
    assert_eq!(
        unsafe { ddl_bundle_open(path.as_ptr(), &mut bundle) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let train_set = ffi_dataset(&common::banded_dataset(60, 1));
    let test = ffi_dataset(&common::banded_dataset(30, 2));
    let set_data = ffi_dataset(&common::banded_dataset(6, 3));
    let mut set = null_mut();
    assert_eq!(
        unsafe { ddl_distilled_create(set_data, null(), null(), &mut set) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let sets = [set as *const DdlDistilledSet];
    let name = CString::new("toy").unwrap();
    let names = [name.as_ptr()];
    let dir = tempfile::tempdir().unwrap();
    let out_dir = CString::new(dir.path().to_str().unwrap()).unwrap();
    let run = |options: &str, out_json: &mut *mut c_char| {
        let options = CString::new(options).unwrap();
        unsafe {
            ddl_analyze_recognition(
                bundle,
                train_set,
                test,
                sets.as_ptr(),
                names.as_ptr(),
                1,
                DDL_BUDGET_SMOKE,
                options.as_ptr(),
                0,
                out_dir.as_ptr(),
                None,
                null_mut(),
                out_json,
            )
        }
    };
    let mut json = null_mut();
    let status = run(r#"{"train_epochs": 5, "train_max_steps": 3}"#, &mut json);
    assert_eq!(status, DdlStatus::Ok, "{}", last_error());
    let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    unsafe { ddl_string_free(json) };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["sets"][0]["name"], "toy");
    assert_eq!(v["models"][0]["train_steps"], 3);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("recognition.json")).unwrap())
            .unwrap();
    assert_eq!(file["analysis"], "recognition");
    assert_eq!(file["result"], v);
    assert!(dir.path().join("recognition.png").is_file());
    assert!(dir.path().join("recognition-per-class.png").is_file());

    let mut json = null_mut();
    let status = run(r#"{"bogus_field": 1}"#, &mut json);
    assert_eq!(status, DdlStatus::InvalidArgument);
    assert!(last_error().contains("bogus_field"), "{}", last_error());
    unsafe {
        ddl_distilled_free(set);
        ddl_dataset_free(set_data);
        ddl_dataset_free(train_set);
        ddl_dataset_free(test);
        ddl_bundle_free(bundle);
    }
}
