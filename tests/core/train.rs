//! Training, evaluation, hooks and parameter files on the tiny bundle with synthetic data.

use crate::common;

use ddlens::augment::{Dsa, STANDARD_STRATEGY};
use ddlens::bundle::Params;
use ddlens::train::{
    self, Control, Hook, RecordEval, Schedule, Sgd, SgdConfig, StandardEval, StepContext,
    TrainConfig,
};
use ddlens::Dataset;
use ndarray::{Array1, Array4};

fn synthetic(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

#[test]
fn sgd_matches_pytorch_rule() {
    let b = common::open("tiny-1x8x8");
    let specs = &b.manifest().params;
    let n = b.manifest().num_parameters();
    let mut p = Params::from_flat(specs, &vec![1.0; n]).unwrap();
    let g = Params::from_flat(specs, &vec![0.5; n]).unwrap();
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        weight_decay: 0.1,
    });
    // step 1: d = g + wd·θ = 0.6; v = 0.6; θ = 1 - 0.1·0.6 = 0.94
    sgd.step(&mut p, g.clone(), 0.1);
    assert!(p.to_flat().iter().all(|v| (v - 0.94).abs() < 1e-6));
    // step 2: d = 0.5 + 0.094 = 0.594; v = 0.9·0.6 + 0.594 = 1.134; θ = 0.94 - 0.1134 = 0.8266
    sgd.step(&mut p, g, 0.1);
    assert!(
        p.to_flat().iter().all(|v| (v - 0.8266).abs() < 1e-5),
        "{:?}",
        &p.to_flat()[..3]
    );
}

#[test]
fn step_schedule() {
    let s = Schedule::Step {
        milestones: vec![10, 20],
        gamma: 0.1,
    };
    assert_eq!(s.lr_at(1.0, 9), 1.0);
    assert!((s.lr_at(1.0, 10) - 0.1).abs() < 1e-7);
    assert!((s.lr_at(1.0, 25) - 0.01).abs() < 1e-8);
    let std = TrainConfig::standard_eval(300, 0.01, 100, 0);
    assert_eq!(std.total_steps(100), 300);
    assert!((std.schedule.lr_at(0.01, 150) - 0.001).abs() < 1e-9);
}

#[test]
fn training_learns_and_is_deterministic() {
    let b = common::open("tiny-1x8x8");
    let train_set = synthetic(96, 1);
    let test = synthetic(60, 2);
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
    let before = train::evaluate(&b, &b.init_params(0), &test).unwrap();
    let run = || train::train(&b, b.init_params(0), &train_set, &config, &mut []).unwrap();
    let (a, c) = (run(), run());
    assert_eq!(a.steps, 15 * 6);
    assert_eq!(
        a.params, c.params,
        "same seed must give the same parameters"
    );
    let after = train::evaluate(&b, &a.params, &test).unwrap();
    assert!(
        after.accuracy > 0.9,
        "accuracy {} after training",
        after.accuracy
    );
    assert!(after.loss < before.loss);
    let mut other = config.clone();
    other.seed = 4;
    let d = train::train(&b, b.init_params(0), &train_set, &other, &mut []).unwrap();
    assert_ne!(
        a.params, d.params,
        "another shuffling seed gives another run"
    );
}

#[test]
fn full_batch_hooks_and_early_stop() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(30, 5);
    let config = TrainConfig::p_dist(12, 0);
    let mut record = RecordEval::new(&data, 1, true);
    let mut seen = Vec::new();
    let mut stopper = |ctx: &StepContext<'_>| {
        seen.push(ctx.step);
        Ok(if ctx.step == 7 {
            Control::Stop
        } else {
            Control::Continue
        })
    };
    let hooks: &mut [&mut dyn Hook] = &mut [&mut record, &mut stopper];
    let out = train::train(&b, b.init_params(1), &data, &config, hooks).unwrap();
    assert_eq!(out.steps, 7);
    assert!(out.stopped_early);
    assert_eq!(seen, (0..=7).collect::<Vec<_>>());
    assert_eq!(record.records.len(), 8);
    assert_eq!(record.records[0].step, 0);
    assert_eq!(record.records[0].predictions.len(), 30);
    // Full batch: each logged loss is the loss on the whole set before the update.
    let first = b
        .grad(
            &b.init_params(1),
            data.images().view(),
            data.labels().view(),
            None,
        )
        .unwrap()
        .loss;
    assert!((out.log[0].loss - first).abs() < 1e-6);
}

#[test]
fn evaluation_is_consistent() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(40, 6);
    let e = train::evaluate(&b, &b.init_params(2), &data).unwrap();
    let total: u32 = e.confusion.iter().flatten().sum();
    assert_eq!(total, 40);
    let diag: u32 = (0..3).map(|i| e.confusion[i][i]).sum();
    assert!((e.accuracy - diag as f64 / 40.0).abs() < 1e-12);
    let mean = e.per_example_loss.iter().map(|&l| l as f64).sum::<f64>() / 40.0;
    assert!((mean - e.loss).abs() < 1e-9);
    let g = b
        .grad(
            &b.init_params(2),
            data.images().view(),
            data.labels().view(),
            None,
        )
        .unwrap();
    assert!(
        (g.loss as f64 - e.loss).abs() < 1e-4,
        "grad loss {} vs eval loss {}",
        g.loss,
        e.loss
    );
}

#[test]
fn params_file_round_trip_and_errors() {
    let b = common::open("tiny-1x8x8");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.safetensors");
    let p = b.init_params(9);
    train::save_params(&path, b.manifest(), &p).unwrap();
    assert_eq!(train::load_params(&path, b.manifest()).unwrap(), p);
    let other = common::open("mlp-1x28x28");
    let err = train::load_params(&path, other.manifest())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("p.safetensors") && err.contains("has no tensor"),
        "{err}"
    );
    std::fs::write(&path, b"garbage").unwrap();
    let err = train::load_params(&path, b.manifest())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a safetensors"), "{err}");
}

#[test]
fn bad_config_and_mismatched_data_are_named() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(10, 7);
    let mut config = TrainConfig::p_dist(3, 0);
    config.lr = -1.0;
    let err = train::train(&b, b.init_params(0), &data, &config, &mut [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lr`"), "{err}");
    let big = Dataset::new(Array4::zeros((2, 1, 28, 28)), Array1::zeros(2), 10, "wrong").unwrap();
    let err = train::train(
        &b,
        b.init_params(0),
        &big,
        &TrainConfig::p_dist(1, 0),
        &mut [],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("wrong") || err.contains("28"), "{err}");
}

#[test]
fn augmentation_changes_the_run_and_is_seeded() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(40, 8);
    let plain = TrainConfig::standard_eval(3, 0.05, data.len(), 11);
    let augmented = plain.clone().with_augment(Some(&Dsa::default()));
    assert_eq!(augmented.augment.as_deref(), Some(STANDARD_STRATEGY));
    let run = |c: &TrainConfig| train::train(&b, b.init_params(0), &data, c, &mut []).unwrap();
    let (p, a1, a2) = (run(&plain), run(&augmented), run(&augmented));
    assert_eq!(a1.steps, p.steps);
    assert_eq!(a1.params, a2.params, "same seed, same augmented run");
    assert_ne!(a1.params, p.params, "augmentation must change the run");
    let other_seed = TrainConfig {
        seed: 12,
        ..augmented.clone()
    };
    assert_ne!(run(&other_seed).params, a1.params);
    // `none` names no transform: exactly the plain run.
    let none = TrainConfig {
        augment: Some("none".into()),
        ..plain.clone()
    };
    assert_eq!(run(&none).params, p.params);
}

#[test]
fn bad_augmentation_is_named() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(10, 9);
    let config = TrainConfig {
        augment: Some("color_warp".into()),
        ..TrainConfig::p_real(1, 0)
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("`augment`") && err.contains("warp"), "{err}");
    let err = train::train(&b, b.init_params(0), &data, &config, &mut [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`augment`"), "{err}");
    let eval = StandardEval {
        runs: 1,
        epochs: 1,
        augment: Some("flip_spin".into()),
        ..StandardEval::default()
    };
    let err = train::standard_evaluation(
        &b,
        &data,
        &data,
        "set",
        &eval,
        &mut ddlens::progress::Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`augment`") && err.contains("spin"), "{err}");
}

#[test]
fn config_json_without_augment_reads_as_none() {
    let plain = TrainConfig::p_dist(5, 1);
    let mut v = serde_json::to_value(&plain).unwrap();
    assert_eq!(v["augment"], serde_json::Value::Null);
    v.as_object_mut().unwrap().remove("augment");
    let back: TrainConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back, plain);
}

#[test]
fn standard_evaluation_with_augmentation() {
    let b = common::open("tiny-1x8x8");
    let train_set = synthetic(30, 10);
    let test = synthetic(30, 11);
    assert_eq!(StandardEval::new(None).epochs, 300);
    let with_dsa = StandardEval::new(Some(&Dsa::default()));
    assert_eq!(with_dsa.epochs, 1000);
    assert_eq!(with_dsa.augment.as_deref(), Some(STANDARD_STRATEGY));
    let eval = StandardEval {
        runs: 2,
        epochs: 4,
        lr: 0.05,
        ..with_dsa
    };
    let mut steps = Vec::new();
    let mut run = || {
        train::standard_evaluation(
            &b,
            &train_set,
            &test,
            "set",
            &eval,
            &mut |_: &str, done, total| {
                steps.push((done, total));
                Ok(())
            },
        )
        .unwrap()
    };
    let (s1, s2) = (run(), run());
    assert_eq!(s1.accuracies.len(), 2);
    assert_eq!(s1.accuracies, s2.accuracies, "same seed, same accuracies");
    let once: Vec<(usize, usize)> = (0..=8).map(|d| (d, 8)).collect();
    assert_eq!(
        steps,
        [once.clone(), once].concat(),
        "two evaluations, each one count over two runs of 4 steps"
    );
    // Each run trains exactly `train_config(run)`.
    let config = eval.train_config(train_set.len(), 1);
    assert_eq!(config.seed, 1);
    assert_eq!(config.augment.as_deref(), Some(STANDARD_STRATEGY));
    let out = train::train(&b, b.init_params(1), &train_set, &config, &mut []).unwrap();
    let acc = train::evaluate(&b, &out.params, &test).unwrap().accuracy;
    assert_eq!(acc, s1.accuracies[1]);
    let err = train::standard_evaluation(
        &b,
        &train_set,
        &test,
        "set",
        &StandardEval {
            runs: 0,
            ..eval.clone()
        },
        &mut ddlens::progress::Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`runs`"), "{err}");
}

/// `ddl_train_config_set_dsa` (the C setter; the rest of the C ABI is tested in ffi_api.rs).
#[test]
fn c_setter_for_augmentation() {
    use ddlens::ffi::*;
    use std::ffi::{CStr, CString};
    use std::ptr::{null, null_mut};
    let last_error = || {
        unsafe { CStr::from_ptr(ddl_last_error()) }
            .to_string_lossy()
            .into_owned()
    };
    let to_json = |c: *const DdlTrainConfig| {
        let mut s = null_mut();
        assert_eq!(
            unsafe { ddl_train_config_to_json(c, &mut s) },
            DdlStatus::Ok
        );
        let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
        unsafe { ddl_string_free(s) };
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let mut c = null_mut();
    assert_eq!(
        unsafe { ddl_train_config_standard_eval(1000, 0.01, 100, 0, &mut c) },
        DdlStatus::Ok
    );
    assert_eq!(to_json(c)["augment"], serde_json::Value::Null);
    let s = CString::new("crop_cutout_scale_rotate").unwrap();
    assert_eq!(
        unsafe { ddl_train_config_set_dsa(c, s.as_ptr()) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    assert_eq!(to_json(c)["augment"], "crop_cutout_scale_rotate");
    let bad = CString::new("crop_twirl").unwrap();
    assert_eq!(
        unsafe { ddl_train_config_set_dsa(c, bad.as_ptr()) },
        DdlStatus::InvalidArgument
    );
    let msg = last_error();
    assert!(msg.contains("`augment`") && msg.contains("twirl"), "{msg}");
    assert_eq!(
        to_json(c)["augment"],
        "crop_cutout_scale_rotate",
        "a rejected strategy leaves the configuration as it was"
    );
    let none = CString::new("none").unwrap();
    assert_eq!(
        unsafe { ddl_train_config_set_dsa(c, none.as_ptr()) },
        DdlStatus::Ok
    );
    assert_eq!(to_json(c)["augment"], serde_json::Value::Null);
    assert_eq!(
        unsafe { ddl_train_config_set_dsa(c, s.as_ptr()) },
        DdlStatus::Ok
    );
    assert_eq!(
        unsafe { ddl_train_config_set_dsa(c, null()) },
        DdlStatus::Ok
    );
    assert_eq!(to_json(c)["augment"], serde_json::Value::Null);
    unsafe { ddl_train_config_free(c) };
}

/// Parameters as one flat vector, for exact comparisons.
fn flat(p: &Params) -> Vec<f32> {
    p.tensors().iter().flat_map(|t| t.iter().copied()).collect()
}

#[test]
fn a_shared_run_is_replayed_bit_for_bit_and_trained_once() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(600, 11);
    // 600 images at batch 256: 3 steps per epoch; 2 epochs, stopped at step 5 or 6.
    let config = |max: usize| TrainConfig {
        max_steps: Some(max),
        ..TrainConfig::p_real(2, 3)
    };
    // The reference: an ordinary run, parameters kept at every step.
    let mut reference: Vec<Vec<f32>> = Vec::new();
    let mut keep = |ctx: &StepContext<'_>| {
        reference.push(flat(ctx.params));
        Ok(Control::Continue)
    };
    train::train(&b, b.init_params(4), &data, &config(6), &mut [&mut keep]).unwrap();

    let _scope = train::SharedRuns::open();
    // The first caller trains (its hook sees every step) and records...
    let mut seen = Vec::new();
    let mut first = |ctx: &StepContext<'_>| {
        seen.push(ctx.step);
        Ok(Control::Continue)
    };
    let last = train::train_at(&b, 4, &data, &config(6), &[2, 5], &mut [&mut first]).unwrap();
    assert_eq!(seen, (0..=6).collect::<Vec<_>>());
    assert_eq!(flat(&last), reference[6]);
    // ...the next with the same run, stopped earlier, is replayed at its steps alone, with
    // the trained parameters.
    let mut replayed = Vec::new();
    let mut second = |ctx: &StepContext<'_>| {
        replayed.push((ctx.step, ctx.total_steps, flat(ctx.params)));
        Ok(Control::Continue)
    };
    let last = train::train_at(&b, 4, &data, &config(5), &[2, 5], &mut [&mut second]).unwrap();
    assert_eq!(flat(&last), reference[5]);
    let steps: Vec<(usize, usize)> = replayed.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(steps, [(2, 5), (5, 5)]);
    assert_eq!(replayed[0].2, reference[2]);
    // Another seed is another run: trained, every step seen.
    let mut count = 0;
    let mut third = |_: &StepContext<'_>| {
        count += 1;
        Ok(Control::Continue)
    };
    train::train_at(&b, 5, &data, &config(5), &[2], &mut [&mut third]).unwrap();
    assert_eq!(count, 6);
    // A step past the run is an error naming `steps`.
    let e = train::train_at(&b, 4, &data, &config(5), &[9], &mut []).unwrap_err();
    assert!(e.to_string().contains("steps"), "{e}");
}

/// Fails the run (as a kill would end it) once `at` updates are done.
struct KillAt(usize);

impl Hook for KillAt {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> ddlens::Result<Control> {
        if ctx.step == self.0 {
            return Err(ddlens::Error::Internal("killed".into()));
        }
        Ok(Control::Continue)
    }
}

#[test]
fn an_interrupted_run_resumes_from_its_checkpoint_bit_for_bit() {
    let b = common::open("tiny-1x8x8");
    let data = synthetic(40, 5);
    // Momentum, weight decay, a step schedule and DSA: every piece of state must come back.
    let config = TrainConfig {
        epochs: 6,
        max_steps: None,
        batch_size: Some(16),
        lr: 0.05,
        sgd: SgdConfig {
            momentum: 0.9,
            weight_decay: 5e-4,
        },
        schedule: Schedule::Step {
            milestones: vec![9],
            gamma: 0.1,
        },
        seed: 7,
        augment: Some(STANDARD_STRATEGY.into()),
    };
    let whole = train::train(&b, b.init_params(1), &data, &config, &mut []).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = train::Checkpointing {
        path: dir.path().join("train.ckpt"),
        every_secs: 0.0,
        resume: false,
    };
    // 3 updates per epoch: killed in the middle of epoch 4 (update 11), after the checkpoint
    // of epoch 3.
    let mut kill = KillAt(11);
    let run = |hooks: &mut [&mut dyn Hook], c: &train::Checkpointing, config: &TrainConfig| {
        train::train_checkpointed(&b, b.init_params(1), &data, config, hooks, Some(c))
    };
    assert!(run(&mut [&mut kill], &ckpt, &config).is_err());
    assert!(ckpt.path.is_file());
    let again = train::Checkpointing {
        resume: true,
        ..ckpt.clone()
    };
    let resumed = run(&mut [], &again, &config).unwrap();
    assert_eq!(resumed.resumed_from, 9);
    assert_eq!(resumed.params, whole.params, "resumed parameters differ");
    assert_eq!(resumed.log, whole.log);
    // Other settings: refused, naming the setting that differs.
    let other = TrainConfig {
        lr: 0.02,
        ..config.clone()
    };
    let err = run(&mut [], &again, &other).unwrap_err().to_string();
    assert!(
        err.contains("train.ckpt") && err.contains("config.lr"),
        "{err}"
    );
    // A damaged checkpoint: named, with the way out.
    std::fs::write(&ckpt.path, b"not a checkpoint").unwrap();
    let err = run(&mut [], &again, &config).unwrap_err().to_string();
    assert!(
        err.contains("train.ckpt") && err.contains("delete it"),
        "{err}"
    );
    std::fs::remove_file(&ckpt.path).unwrap();
    let err = run(&mut [], &again, &config).unwrap_err().to_string();
    assert!(err.contains("without --resume"), "{err}");
}
