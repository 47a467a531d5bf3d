//! The baselines: `random` is class-balanced and seeded; `herding` picks a balanced set whose
//! class means in feature space are closer to the true class means than a random set's.

use crate::common;

use ddlens::distill::{herd, herding_set, random_set, Synthetic};
use ddlens::{Bundle, Dataset, Params};
use ndarray::{array, Array1, Array4, Axis};

fn synthetic(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

#[test]
fn random_is_balanced_and_seeded() {
    let real = synthetic(90, 1);
    let a = random_set(&real, 4, 5).unwrap();
    let b = random_set(&real, 4, 5).unwrap();
    let c = random_set(&real, 4, 6).unwrap();
    assert_eq!(a, b, "same seed, same set");
    assert_ne!(a.images, c.images, "another seed, another set");
    assert_eq!(a.len(), 12);
    assert!(a.class_indices().iter().all(|m| m.len() == 4));
    // Grouped by class, as every synthetic set is.
    assert_eq!(a.labels.to_vec(), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    // Real images, each from its own class.
    for (i, &y) in a.labels.iter().enumerate() {
        let img = a.images.index_axis(Axis(0), i);
        let found = real.class_indices()[y as usize]
            .iter()
            .any(|&j| real.images().index_axis(Axis(0), j) == img);
        assert!(found, "image {i} is not a real image of class {y}");
    }
}

#[test]
fn herd_tracks_the_mean_greedily() {
    // Mean 5: first the nearest to 5 (4 and 6 tie: the lower index wins), then the one that
    // brings the mean of two back to 5.
    let f = array![[0.0f32], [10.0], [4.0], [6.0]];
    assert_eq!(herd(&f, 2), [2, 3]);
    assert_eq!(herd(&f, 4).len(), 4);
}

fn mean_feature(b: &Bundle, p: &Params, x: Array4<f32>) -> Array1<f64> {
    let f = b.forward(p, x.view()).unwrap().features.mapv(f64::from);
    f.mean_axis(Axis(0)).unwrap()
}

/// Sum over classes of the distance between the set's mean feature and the class mean.
fn mean_gap(b: &Bundle, p: &Params, real: &Dataset, set: &Synthetic) -> f64 {
    let real_idx = real.class_indices();
    set.class_indices()
        .iter()
        .enumerate()
        .map(|(c, members)| {
            let want = mean_feature(b, p, real.images().select(Axis(0), &real_idx[c]));
            let got = mean_feature(b, p, set.images.select(Axis(0), members));
            (&want - &got).mapv(|v| v * v).sum().sqrt()
        })
        .sum()
}

#[test]
fn herding_matches_class_means_better_than_random() {
    let b = common::open("tiny-1x8x8");
    let p = b.init_params(2);
    let real = synthetic(150, 1);
    let mut classes_done = 0;
    let herded = herding_set(&b, &p, &real, 3, &mut |_: &str, done, _| {
        classes_done = done;
        Ok(())
    })
    .unwrap();
    assert_eq!(classes_done, 3);
    assert!(herded.class_indices().iter().all(|m| m.len() == 3));
    assert_eq!(
        herded,
        herding_set(&b, &p, &real, 3, &mut ddlens::progress::Silent).unwrap()
    );
    let gap_herding = mean_gap(&b, &p, &real, &herded);
    // Against several random draws, so that one lucky draw cannot decide the test.
    for seed in 0..5 {
        let gap_random = mean_gap(&b, &p, &real, &random_set(&real, 3, seed).unwrap());
        assert!(
            gap_herding < gap_random,
            "herding gap {gap_herding:.4} is not below random (seed {seed}) {gap_random:.4}"
        );
    }
    let err = herding_set(&b, &p, &real, 51, &mut ddlens::progress::Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ipc") && err.contains("class 0"), "{err}");
}
