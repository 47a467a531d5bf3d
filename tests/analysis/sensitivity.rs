//! The `sensitivity` analysis on the tiny 1x8x8 bundles and the banded 3-class toy problem:
//! the standard column is exactly the standard evaluation with the same seed, every variation
//! is the standard evaluation with one thing changed, drops are differences to the standard
//! column, trainings identical to the standard one are reused, missing templated
//! architectures are skipped with a note while unknown named ones are errors, diverged runs
//! are counted, and results are reproducible.

use crate::common;

use ddlens::analysis::sensitivity::{
    self, RowKind, Sensitivity, SensitivityConfig, SensitivityResult,
};
use ddlens::analysis::{self, no_progress, Budget, NamedSet, RealData};
use ddlens::train::{evaluate, standard_evaluation, train, Schedule, StandardEval, TrainConfig};
use ddlens::{Bundle, Dataset, Error};

fn tiny() -> Bundle {
    common::open("tiny-1x8x8")
}

fn real() -> (Dataset, Dataset) {
    (
        common::banded_dataset(120, 1),
        common::banded_dataset(60, 2),
    )
}

/// Smoke defaults on the whole toy test split, 2 runs, minibatch 2 as the small batch, and
/// the tiny max-pool bundle as the other architecture (the convnettiny default has no 1x8x8
/// bundle and is skipped).
fn config() -> SensitivityConfig {
    SensitivityConfig {
        runs: 2,
        epochs: 6,
        batch_sizes: vec![2, 0],
        architectures: vec!["tiny-maxpool-{shape}".into(), "convnettiny-{shape}".into()],
        test_images: 0,
        ..SensitivityConfig::for_budget(Budget::Smoke, 21)
    }
}

fn run(b: &Bundle, sets: &[NamedSet], c: &SensitivityConfig) -> SensitivityResult {
    let (train, test) = real();
    let real = RealData {
        train: &train,
        test: &test,
    };
    sensitivity::sensitivity(b, real, sets, c, &mut no_progress).unwrap()
}

fn standard(b: &Bundle, data: &Dataset, test: &Dataset, eval: &StandardEval) -> Vec<f64> {
    standard_evaluation(b, data, test, "x", eval, &mut ddlens::progress::Silent)
        .unwrap()
        .accuracies
}

/// Accuracy of one run trained with `tc` from `b.init_params(tc.seed)`.
fn trained(b: &Bundle, data: &Dataset, test: &Dataset, tc: &TrainConfig) -> f64 {
    let out = train(b, b.init_params(tc.seed), data, tc, &mut []).unwrap();
    evaluate(b, &out.params, test).unwrap().accuracy
}

#[test]
fn every_column_is_the_standard_evaluation_with_one_change() {
    let b = tiny();
    let (train_set, test) = real();
    let set = common::toy_set();
    let c = config();
    let r = run(&b, std::slice::from_ref(&set), &c);
    let names: Vec<&str> = r.setups.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "standard",
            "epochs x0.3",
            "epochs x3",
            "lr x0.1",
            "lr x10",
            "batch 2",
            "full batch",
            "sgd",
            "tiny-maxpool-1x8x8"
        ]
    );
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(r.notes[0].contains("convnettiny-1x8x8"), "{:?}", r.notes);
    assert_eq!(r.test_images, test.len());
    assert_eq!(r.rows.len(), 2);
    assert_eq!(
        (r.rows[0].kind, r.rows[1].kind),
        (RowKind::Distilled, RowKind::Baseline)
    );
    assert_eq!(r.rows[1].name, "random-ipc2");
    let base_data = train_set
        .select(r.rows[1].indices.as_ref().unwrap())
        .unwrap();
    assert_eq!(base_data.class_counts(), set.data.class_counts());

    for (row, data) in r.rows.iter().zip([&set.data, &base_data]) {
        let lr = if row.kind == RowKind::Distilled {
            0.05
        } else {
            0.01
        };
        assert_eq!(row.lr as f32, lr);
        assert_eq!(row.train_size, data.len());
        let eval = StandardEval {
            runs: c.runs,
            epochs: c.epochs,
            lr,
            seed: c.seed,
            augment: None,
        };
        let cell = |name: &str| row.cells.iter().find(|c| c.setup == name).unwrap();
        // The reference column is an independent standard evaluation with the same seed.
        assert_eq!(
            cell("standard").accuracies,
            standard(&b, data, &test, &eval)
        );
        assert_eq!(cell("standard").steps, 6);
        // Fewer/more epochs, other lr: the standard evaluation with that setting.
        let epochs = |e| StandardEval {
            epochs: e,
            ..eval.clone()
        };
        assert_eq!(
            cell("epochs x0.3").accuracies,
            standard(&b, data, &test, &epochs(2))
        );
        assert_eq!(
            cell("epochs x3").accuracies,
            standard(&b, data, &test, &epochs(18))
        );
        assert_eq!(cell("epochs x3").steps, 18);
        let lrs = |l| StandardEval {
            lr: l,
            ..eval.clone()
        };
        assert_eq!(
            cell("lr x0.1").accuracies,
            standard(&b, data, &test, &lrs(lr * 0.1))
        );
        assert_eq!(
            cell("lr x10").accuracies,
            standard(&b, data, &test, &lrs(lr * 10.0))
        );
        // Another architecture: the standard evaluation of that bundle.
        let other = common::open("tiny-maxpool-1x8x8");
        assert_eq!(
            cell("tiny-maxpool-1x8x8").accuracies,
            standard(&other, data, &test, &eval)
        );
        // Minibatch 2 (3 steps per epoch, lr x0.1 at half) and plain SGD, run by run.
        for run in 0..c.runs {
            let std_tc = eval.train_config(data.len(), run);
            let batch = TrainConfig {
                batch_size: Some(2),
                schedule: Schedule::Step {
                    milestones: vec![9],
                    gamma: 0.1,
                },
                ..std_tc.clone()
            };
            assert_eq!(
                cell("batch 2").accuracies[run],
                trained(&b, data, &test, &batch)
            );
            let mut sgd = std_tc;
            sgd.sgd.momentum = 0.0;
            assert_eq!(cell("sgd").accuracies[run], trained(&b, data, &test, &sgd));
        }
        assert_eq!(cell("batch 2").steps, 18);
        // Full batch trains exactly like batch 256 on 6 images: the standard runs are reused.
        assert_eq!(cell("full batch").accuracies, cell("standard").accuracies);
        assert!(cell("full batch").note.is_some());
        assert!(cell("batch 2").note.is_none());

        // drop = mean accuracy - the standard mean, and the table repeats the cells.
        let i = r.table.rows.iter().position(|n| *n == row.name).unwrap();
        for (j, cell) in row.cells.iter().enumerate() {
            let mean = cell.accuracies.iter().sum::<f64>() / c.runs as f64;
            assert!((cell.mean - mean).abs() < 1e-12);
            assert_eq!(cell.drop, cell.mean - row.cells[0].mean);
            assert_eq!(cell.diverged_runs, 0);
            assert_eq!(r.table.accuracy[i][j], cell.mean);
            assert_eq!(r.table.drop[i][j], cell.drop);
            assert_eq!(r.table.setups[j], cell.setup);
        }
        assert_eq!(row.cells[0].drop, 0.0);
    }
    // The heat map: one row per set, one column per variation, values in points.
    let h = r.heatmap();
    assert_eq!(h.rows.len(), 2);
    assert_eq!(h.cols.len(), 8);
    assert_eq!(h.cols[7], "tiny-maxpool");
    assert_eq!(h.values[0][0], 100.0 * r.rows[0].cells[1].drop);
}

#[test]
fn architectures_and_optimizers_are_checked() {
    let b = tiny();
    let (train, test) = real();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let sets = [common::toy_set()];
    let with = |arch: &[&str], opt: &[&str]| SensitivityConfig {
        architectures: arch.iter().map(|s| s.to_string()).collect(),
        optimizers: opt.iter().map(|s| s.to_string()).collect(),
        epoch_factors: vec![],
        lr_factors: vec![],
        batch_sizes: vec![],
        baseline: false,
        ..config()
    };
    let err = |c: &SensitivityConfig| {
        sensitivity::sensitivity(&b, real, &sets, c, &mut no_progress)
            .unwrap_err()
            .to_string()
    };
    let e = err(&with(&["no-such-net"], &[]));
    assert!(
        e.contains("no-such-net") && e.contains("architectures"),
        "{e}"
    );
    // A real bundle for another input shape is an error naming it and the shapes.
    let e = err(&with(&["mlp-1x28x28"], &[]));
    assert!(e.contains("mlp") && e.contains("28"), "{e}");
    let e = err(&with(&[], &["rmsprop"]));
    assert!(e.contains("rmsprop") && e.contains("optimizers"), "{e}");
    // Templated names without a bundle, the model itself and adam are skipped with notes.
    let c = with(&["mlp-{shape}", "tiny-{shape}"], &["adam"]);
    let r = sensitivity::sensitivity(&b, real, &sets, &c, &mut no_progress).unwrap();
    assert_eq!(r.setups.len(), 1);
    assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    assert!(r.notes.iter().any(|n| n.contains("mlp-1x8x8")));
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("tiny-1x8x8") && n.contains("model")));
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("adam") && n.contains("SGD")));
    assert_eq!(r.rows.len(), 1);
    // With the standard setup alone the heat map shows its (zero) column.
    assert_eq!(r.heatmap().cols, ["standard"]);
    let e = sensitivity::sensitivity(&b, real, &[], &c, &mut no_progress).unwrap_err();
    assert!(e.to_string().contains("sets"), "{e}");
    let e = analysis::config_with::<Sensitivity>(Budget::Cpu, 0, Some(r#"{"lr": 1}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`lr`") && e.contains("sensitivity"), "{e}");
    let paper = SensitivityConfig::for_budget(Budget::Paper, 0);
    assert_eq!((paper.runs, paper.epochs, paper.test_images), (5, 300, 0));
}

#[test]
fn diverged_runs_are_counted_not_fatal() {
    let b = tiny();
    let c = SensitivityConfig {
        lr_factors: vec![1e7],
        epoch_factors: vec![],
        batch_sizes: vec![],
        optimizers: vec![],
        architectures: vec![],
        baseline: false,
        ..config()
    };
    let r = run(&b, &[common::toy_set()], &c);
    let cell = &r.rows[0].cells[1];
    assert_eq!(cell.setup, "lr x10000000");
    assert_eq!(cell.diverged_runs, c.runs, "{cell:?}");
    assert!(cell.mean.is_nan() && cell.drop.is_nan());
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["rows"][0]["cells"][1]["mean"].is_null());
    assert!(r.heatmap().values[0][0].is_nan());
}

#[test]
fn same_seed_same_result_and_progress_cancels() {
    let b = tiny();
    let c = SensitivityConfig {
        lr_factors: vec![],
        batch_sizes: vec![0],
        ..config()
    };
    let sets = [common::toy_set()];
    let a = serde_json::to_string(&run(&b, &sets, &c)).unwrap();
    assert_eq!(a, serde_json::to_string(&run(&b, &sets, &c)).unwrap());

    let (train, test) = real();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let mut seen = Vec::new();
    let mut record = |_: &str, done: usize, total: usize| {
        seen.push((done, total));
        Ok(())
    };
    sensitivity::sensitivity(&b, real, &sets, &c, &mut record).unwrap();
    // standard 6 + epochs 2 + 18 + (full batch reused) + sgd 6 + tiny-maxpool 6, per run, per row.
    let total = seen[0].1;
    assert_eq!(total, 2 * c.runs * (6 + 2 + 18 + 6 + 6));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[1].1 == total));
    assert_eq!(seen.last(), Some(&(total, total)));
    let mut calls = 0;
    let mut cancel = |_: &str, _: usize, _: usize| {
        calls += 1;
        if calls > 3 {
            Err(Error::Cancelled("test".into()))
        } else {
            Ok(())
        }
    };
    let e = sensitivity::sensitivity(&b, real, &sets, &c, &mut cancel).unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
}
