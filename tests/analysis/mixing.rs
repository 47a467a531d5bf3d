//! The `mixing` analysis on the tiny 1x8x8 bundle and the banded 3-class toy problem: the
//! extras are nested and class-balanced, k = 0 trains on exactly the set, every point is an
//! independent P_dist training on set + extras, baselines match the sets' sizes and avoid the
//! extras, results are reproducible, a set that copies the baseline's real images gets the
//! baseline's curve, and cancellation propagates.

use crate::common;

use std::collections::HashSet;

use ddlens::analysis::mixing::{self, CurveKind, Mixing, MixingConfig, MixingResult};
use ddlens::analysis::{self, no_progress, Budget, NamedSet, RealData};
use ddlens::train::{evaluate, train, TrainConfig};
use ddlens::{Bundle, Dataset, Error};

fn tiny() -> Bundle {
    common::open("tiny-1x8x8")
}

/// Real splits: 60 training images per class, 60 test images.
fn real() -> (Dataset, Dataset) {
    (
        common::banded_dataset(180, 1),
        common::banded_dataset(60, 2),
    )
}

fn config() -> MixingConfig {
    MixingConfig {
        test_images: 0,
        ..MixingConfig::for_budget(Budget::Smoke, 11)
    }
}

fn run(
    b: &Bundle,
    train: &Dataset,
    test: &Dataset,
    sets: &[NamedSet],
    c: &MixingConfig,
) -> MixingResult {
    mixing::mixing(b, RealData { train, test }, sets, c, &mut no_progress).unwrap()
}

/// An independent P_dist training (init and order from `seed`), accuracy on `test`.
fn p_dist_accuracy(
    b: &Bundle,
    data: &Dataset,
    test: &Dataset,
    c: &MixingConfig,
    run: usize,
) -> f64 {
    let tc = TrainConfig {
        lr: c.lr,
        ..TrainConfig::p_dist(c.steps, c.seed + run as u64)
    };
    let out = train(b, b.init_params(tc.seed), data, &tc, &mut []).unwrap();
    evaluate(b, &out.params, test).unwrap().accuracy
}

#[test]
fn extras_are_nested_and_class_balanced() {
    let (train, _) = real();
    let ks = [0, 2, 5, 10];
    let ex = mixing::extras(&train, &ks, 4).unwrap();
    assert_eq!(ex.len(), ks.len());
    for (k, idx) in ks.iter().zip(&ex) {
        assert_eq!(idx.len(), 3 * k);
        let unique: HashSet<_> = idx.iter().collect();
        assert_eq!(unique.len(), idx.len(), "no repeats");
        let mut counts = [0usize; 3];
        for &i in idx {
            counts[train.labels()[i] as usize] += 1;
        }
        assert_eq!(counts, [*k; 3], "class-balanced at k = {k}");
    }
    for w in ex.windows(2) {
        let big: HashSet<_> = w[1].iter().collect();
        assert!(w[0].iter().all(|i| big.contains(i)), "nested");
    }
    assert_eq!(ex, mixing::extras(&train, &ks, 4).unwrap(), "same seed");
    assert_ne!(ex, mixing::extras(&train, &ks, 5).unwrap(), "other seed");
    // Asking for the larger ks alone gives the same images (the draw is per class prefixes).
    assert_eq!(mixing::extras(&train, &[10], 4).unwrap()[0], ex[3]);
}

#[test]
fn points_are_independent_p_dist_trainings_and_baselines_match() {
    let b = tiny();
    let (train_set, test) = real();
    let set = common::toy_set();
    let c = config();
    let r = run(&b, &train_set, &test, std::slice::from_ref(&set), &c);
    assert_eq!(r.ks, c.ks);
    assert_eq!(r.test_images, test.len());
    assert_eq!(r.curves.len(), 2);
    let (dist, base) = (&r.curves[0], &r.curves[1]);
    assert_eq!(
        (dist.kind, base.kind),
        (CurveKind::Distilled, CurveKind::Baseline)
    );
    assert_eq!(dist.name, "toy-ipc2");
    assert_eq!(base.name, "random-ipc2");
    assert_eq!(dist.baseline.as_deref(), Some("random-ipc2"));

    // The recorded extras are the nested draw of `extras`.
    let ex = mixing::extras(&train_set, &c.ks, c.seed).unwrap();
    assert_eq!(r.extras_per_class.len(), 3);
    for (k, idx) in c.ks.iter().zip(&ex) {
        let from_result: Vec<usize> = r
            .extras_per_class
            .iter()
            .flat_map(|cl| cl[..*k].to_vec())
            .collect();
        assert_eq!(&from_result, idx);
    }

    // k = 0 trains on exactly the set; k > 0 on set + extras, each run independently.
    for (p, (k, idx)) in dist.points.iter().zip(c.ks.iter().zip(&ex)) {
        assert_eq!(p.k, *k);
        assert_eq!(p.train_size, set.data.len() + 3 * k);
        assert_eq!(p.accuracies.len(), c.runs);
        let data = if *k == 0 {
            set.data.clone()
        } else {
            set.data.concat(&train_set.select(idx).unwrap()).unwrap()
        };
        for (run, &acc) in p.accuracies.iter().enumerate() {
            assert_eq!(
                acc,
                p_dist_accuracy(&b, &data, &test, &c, run),
                "k = {k}, run {run}"
            );
        }
        let mean = p.accuracies.iter().sum::<f64>() / c.runs as f64;
        assert!((p.mean - mean).abs() < 1e-12);
    }
    for (i, p) in dist.points.iter().enumerate() {
        assert!((dist.change_vs_first_k[i] - (p.mean - dist.points[0].mean)).abs() < 1e-12);
        let gap = dist.gap_to_baseline.as_ref().unwrap()[i];
        assert!((gap - (p.mean - base.points[i].mean)).abs() < 1e-12);
    }

    // The baseline: same per-class counts and sizes, real images outside the extras.
    assert_eq!(base.set_size, set.data.len());
    assert_eq!(base.class_counts, set.data.class_counts());
    for (pd, pb) in dist.points.iter().zip(&base.points) {
        assert_eq!(pd.train_size, pb.train_size);
    }
    let bidx = base.indices.as_ref().unwrap();
    assert_eq!(bidx.len(), 6);
    let extra: HashSet<_> = r.extras_per_class.iter().flatten().collect();
    assert!(
        bidx.iter().all(|i| !extra.contains(i)),
        "baseline avoids the extras"
    );
    let base_data = train_set.select(bidx).unwrap();
    assert_eq!(base_data.class_counts(), vec![2, 2, 2]);
    assert_eq!(
        base.points[0].accuracies[0],
        p_dist_accuracy(&b, &base_data, &test, &c, 0)
    );
}

#[test]
fn same_seed_same_result_and_a_copy_of_the_baseline_matches_it() {
    let b = tiny();
    let (train_set, test) = real();
    let set = common::toy_set();
    let c = config();
    let r1 = run(&b, &train_set, &test, std::slice::from_ref(&set), &c);
    let r2 = run(&b, &train_set, &test, std::slice::from_ref(&set), &c);
    assert_eq!(
        serde_json::to_string(&r1).unwrap(),
        serde_json::to_string(&r2).unwrap()
    );
    // A "distilled" set made of exactly the baseline's real images trains identically to it.
    let base = &r1.curves[1];
    let copy = NamedSet {
        name: "copy".into(),
        data: train_set.select(base.indices.as_ref().unwrap()).unwrap(),
        lr: None,
    };
    let r3 = run(&b, &train_set, &test, &[copy], &c);
    assert_eq!(
        r3.curves[1].indices, base.indices,
        "same draw, same baseline"
    );
    for (pc, pb) in r3.curves[0].points.iter().zip(&base.points) {
        assert_eq!(pc.accuracies, pb.accuracies);
    }
    assert!(r3.curves[0]
        .gap_to_baseline
        .as_ref()
        .unwrap()
        .iter()
        .all(|g| *g == 0.0));
    // Without the baseline only the given sets are trained.
    let no_base = MixingConfig {
        baseline: false,
        ..c.clone()
    };
    let r4 = run(&b, &train_set, &test, std::slice::from_ref(&set), &no_base);
    assert_eq!(r4.curves.len(), 1);
    assert_eq!(
        r4.curves[0].points[0].accuracies,
        r1.curves[0].points[0].accuracies
    );
}

#[test]
fn settings_are_checked_and_progress_cancels() {
    let b = tiny();
    let (train, test) = real();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let sets = [common::toy_set()];
    let bad = MixingConfig {
        ks: vec![0, 5, 2],
        ..config()
    };
    let e = mixing::mixing(&b, real, &sets, &bad, &mut no_progress).unwrap_err();
    assert!(e.to_string().contains("ks"), "{e}");
    let e = mixing::mixing(&b, real, &[], &config(), &mut no_progress).unwrap_err();
    assert!(e.to_string().contains("sets"), "{e}");
    let e = analysis::config_with::<Mixing>(Budget::Smoke, 0, Some(r#"{"kz": [0]}"#)).unwrap_err();
    assert!(e.to_string().contains("kz"), "{e}");
    let c = analysis::config_with::<Mixing>(Budget::Paper, 3, Some(r#"{"ks": [0, 1]}"#)).unwrap();
    assert_eq!((c.ks, c.runs, c.steps, c.seed), (vec![0, 1], 5, 300, 3));
    let paper = MixingConfig::for_budget(Budget::Paper, 0);
    assert_eq!(paper.ks, vec![0, 2, 10, 50, 250]);
    assert_eq!((paper.lr, paper.test_images), (0.01, 0));

    // Progress is monotone, ends at its total, and an error from it stops the analysis.
    let mut seen = Vec::new();
    let mut record = |_: &str, done: usize, total: usize| {
        seen.push((done, total));
        Ok(())
    };
    mixing::mixing(&b, real, &sets, &config(), &mut record).unwrap();
    let total = seen[0].1;
    let c = config();
    assert_eq!(total, 2 * c.ks.len() * c.runs * c.steps);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[1].1 == total));
    assert_eq!(seen.last(), Some(&(total, total)));
    let mut calls = 0;
    let mut cancel = |_: &str, _: usize, _: usize| {
        calls += 1;
        if calls > 5 {
            Err(Error::Cancelled("test".into()))
        } else {
            Ok(())
        }
    };
    let e = mixing::mixing(&b, real, &sets, &config(), &mut cancel).unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
    assert_eq!(calls, 6);
}

#[test]
fn a_huge_run_count_reserves_nothing_and_cancels_at_the_first_report() {
    let b = tiny();
    let (train, test) = real();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let sets = [common::toy_set()];
    let huge = MixingConfig {
        runs: 1 << 40,
        ..config()
    };
    let mut first = None;
    let mut cancel = |_: &str, done: usize, total: usize| {
        first = Some((done, total));
        Err(Error::Cancelled("test".into()))
    };
    let e = mixing::mixing(&b, real, &sets, &huge, &mut cancel).unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
    let units = 2 * huge.ks.len() * huge.runs;
    assert_eq!(first, Some((0, units * huge.steps)));
}
