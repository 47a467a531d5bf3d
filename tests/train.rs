//! Training, evaluation, hooks and parameter files on the tiny bundle with synthetic data.

mod common;

use ddlens::bundle::Params;
use ddlens::train::{
    self, Control, Hook, RecordEval, Schedule, Sgd, SgdConfig, StepContext, TrainConfig,
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
