//! `recognition-over-training`: recorded steps and curve lengths follow the settings, the
//! curves are those of the documented P_real run (checked against an independent training and
//! `evaluate`), and progress cancels, on the tiny bundle and the banded toy problem.

use crate::common;

use ddlens::analysis::recognition_over_training::{recognition_over_training, RotConfig};
use ddlens::analysis::{no_progress, Budget, NamedSet, RealData};
use ddlens::train;
use ddlens::Error;

fn sets() -> Vec<NamedSet> {
    vec![
        NamedSet {
            name: "six".into(),
            data: common::banded_dataset(6, 3),
            lr: None,
        },
        NamedSet {
            name: "twelve".into(),
            data: common::banded_dataset(12, 4),
            lr: None,
        },
    ]
}

#[test]
fn steps_and_curves_follow_the_settings_and_match_an_independent_run() {
    let b = common::open("tiny-1x8x8");
    // 600 images: 3 steps per epoch at batch 256, so 7 steps cross two epoch boundaries.
    let (train_set, test) = (
        common::banded_dataset(600, 1),
        common::banded_dataset(45, 2),
    );
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let config = RotConfig {
        steps: 7,
        every: 3,
        test_images: 0,
        seed: 5,
    };
    let sets = sets();
    let r = recognition_over_training(&b, real, &sets, &config, &mut no_progress).unwrap();
    assert_eq!(r.steps, [0, 3, 6, 7]);
    assert_eq!(config.recorded_steps(), r.steps);
    assert_eq!(r.sets.len(), 2);
    for c in r.sets.iter().chain([&r.test]) {
        assert_eq!((c.accuracy.len(), c.loss.len()), (4, 4), "{}", c.name);
    }
    assert_eq!((r.test.name.as_str(), r.test.images), ("test", 45));
    assert_eq!((r.sets[1].name.as_str(), r.sets[1].images), ("twelve", 12));

    // The same run, trained independently: init_params(seed), config.train_config.
    let tc = config.train_config(train_set.len());
    let out = train::train(&b, b.init_params(config.seed), &train_set, &tc, &mut []).unwrap();
    assert_eq!(out.steps, 7);
    let e = train::evaluate(&b, &out.params, &test).unwrap();
    assert_eq!(*r.test.accuracy.last().unwrap(), e.accuracy);
    assert_eq!(*r.test.loss.last().unwrap(), e.loss);
    let e = train::evaluate(&b, &out.params, &sets[1].data).unwrap();
    assert_eq!(*r.sets[1].accuracy.last().unwrap(), e.accuracy);
    // Step 0 is the initialisation.
    let e0 = train::evaluate(&b, &b.init_params(config.seed), &test).unwrap();
    assert_eq!(r.test.accuracy[0], e0.accuracy);

    // `first_step_all_correct` is the first recorded step at accuracy 1.
    for c in &r.sets {
        let want = c
            .accuracy
            .iter()
            .position(|&a| a == 1.0)
            .map(|i| r.steps[i]);
        assert_eq!(c.first_step_all_correct, want);
        let from = (0..c.accuracy.len())
            .find(|&i| c.accuracy[i..].iter().all(|&a| a == 1.0))
            .map(|i| r.steps[i]);
        assert_eq!(c.all_correct_from, from);
    }

    // every = 1 records every step; a multiple of `every` as the last step is not repeated.
    let every1 = RotConfig {
        every: 1,
        steps: 4,
        ..config.clone()
    };
    let r = recognition_over_training(&b, real, &[], &every1, &mut no_progress).unwrap();
    assert_eq!(r.steps, [0, 1, 2, 3, 4]);
    let r = recognition_over_training(
        &b,
        real,
        &[],
        &RotConfig { every: 2, ..every1 },
        &mut no_progress,
    )
    .unwrap();
    assert_eq!(r.steps, [0, 2, 4]);
}

#[test]
fn the_test_sample_is_class_balanced_and_settings_are_checked() {
    let b = common::open("tiny-1x8x8");
    let (train_set, test) = (common::banded_dataset(60, 1), common::banded_dataset(90, 2));
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let config = RotConfig {
        steps: 2,
        every: 1,
        test_images: 30,
        seed: 0,
    };
    let r = recognition_over_training(&b, real, &[], &config, &mut no_progress).unwrap();
    assert_eq!(r.test.images, 30);
    for (field, bad) in [
        (
            "steps",
            RotConfig {
                steps: 0,
                ..config.clone()
            },
        ),
        (
            "every",
            RotConfig {
                every: 0,
                ..config.clone()
            },
        ),
    ] {
        let e = recognition_over_training(&b, real, &[], &bad, &mut no_progress)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("`{field}`")), "{e}");
    }
    let cpu = RotConfig::for_budget(Budget::Cpu, 0);
    assert!(cpu.test_images > 0 && cpu.every > 1);
    assert_eq!(RotConfig::for_budget(Budget::Paper, 0).every, 1);
}

#[test]
fn progress_reports_every_step_and_cancels() {
    let b = common::open("tiny-1x8x8");
    let (train_set, test) = (common::banded_dataset(60, 1), common::banded_dataset(30, 2));
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let config = RotConfig {
        steps: 6,
        every: 2,
        test_images: 0,
        seed: 0,
    };
    let mut seen = Vec::new();
    let mut log = |_: &str, done: usize, total: usize| {
        seen.push((done, total));
        Ok(())
    };
    recognition_over_training(&b, real, &sets(), &config, &mut log).unwrap();
    assert_eq!(seen, (0..=6).map(|s| (s, 6)).collect::<Vec<_>>());
    let mut cancel = |_: &str, done: usize, _: usize| {
        if done == 3 {
            Err(Error::Cancelled("test".into()))
        } else {
            Ok(())
        }
    };
    let e = recognition_over_training(&b, real, &sets(), &config, &mut cancel).unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
}
