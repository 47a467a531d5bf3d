//! `recognition`: real-trained models classifying distilled images, on the tiny bundles and
//! the banded toy problem: exact scores for known sets, given parameters used as they are,
//! models trained (and their parameters written) otherwise, and errors naming the setting.

use crate::common;

use std::collections::BTreeMap;

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

/// A model with BatchNorm running statistics (`tiny-bn-1x8x8`): trained here, its file holds
/// the statistics training produced, and given back it recognises the same images (the
/// statistics are read from the file, not reset).
#[test]
fn a_running_stats_model_is_trained_saved_and_read_with_its_state() {
    let b = common::open("tiny-1x8x8");
    let bn = common::open("tiny-bn-1x8x8");
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
    let mut cfg = config(&["tiny-bn-1x8x8"], &[]);
    cfg.train_epochs = 3;
    cfg.train_max_steps = None;
    cfg.params_out = Some(dir.path().to_str().unwrap().to_string());
    let r = recognition(&b, real, &sets, &cfg, &mut no_progress).unwrap();
    let file = dir.path().join("tiny-bn-1x8x8.safetensors");
    let state = train::load_state(&file, bn.manifest()).unwrap();
    assert_ne!(
        state,
        bn.init_state(),
        "the file holds the trained statistics"
    );
    let tc = cfg.train_config(0);
    let want = train::train(&bn, bn.init_params(tc.seed), &train_set, &tc, &mut []).unwrap();
    assert_eq!(state, want.state);
    let mut again = cfg.clone();
    again.params = [("tiny-bn-1x8x8".to_string(), file.display().to_string())].into();
    again.params_out = None;
    let r2 = recognition(&b, real, &sets, &again, &mut no_progress).unwrap();
    assert_eq!(r2.models[0].source, "given");
    assert_eq!(r.models[0].test_accuracy, r2.models[0].test_accuracy);
    assert_eq!(r.sets[0].models[0].accuracy, r2.sets[0].models[0].accuracy);
}
