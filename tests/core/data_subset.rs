//! Seeded class-balanced subsets: balance, determinism, nesting, fractions.

use std::collections::HashSet;

use ddlens::data::{
    class_balanced, fraction_per_class, nested_class_balanced, uniform_fractions, Dataset,
};
use ndarray::{Array1, Array4};

/// 3 classes with 50, 40 and 30 examples, interleaved.
fn uneven() -> Dataset {
    let labels: Vec<i64> = (0..50)
        .map(|_| 0)
        .chain((0..40).map(|_| 1))
        .chain((0..30).map(|_| 2))
        .collect();
    let n = labels.len();
    Dataset::new(
        Array4::zeros((n, 1, 1, 1)),
        Array1::from(labels),
        3,
        "uneven",
    )
    .unwrap()
}

fn per_class(d: &Dataset, idx: &[usize]) -> Vec<usize> {
    d.select(idx).unwrap().class_counts()
}

#[test]
fn balanced_distinct_and_seeded() {
    let d = uneven();
    let a = class_balanced(&d, 10, 7).unwrap();
    assert_eq!(per_class(&d, &a), vec![10, 10, 10]);
    assert_eq!(a.iter().collect::<HashSet<_>>().len(), 30);
    assert_eq!(a, class_balanced(&d, 10, 7).unwrap());
    assert_ne!(a, class_balanced(&d, 10, 8).unwrap());
}

#[test]
fn too_few_examples_names_the_class() {
    let msg = class_balanced(&uneven(), 31, 0).unwrap_err().to_string();
    assert!(
        msg.contains("class 2 has 30 examples, 31 were requested"),
        "{msg}"
    );
}

#[test]
fn nested_subsets_grow_per_class_prefixes() {
    let d = uneven();
    let sizes = [0, 2, 10, 30];
    let nested = nested_class_balanced(&d, &sizes, 3).unwrap();
    assert!(nested[0].is_empty());
    for (subset, &k) in nested.iter().zip(&sizes) {
        assert_eq!(per_class(&d, subset), vec![k; 3]);
    }
    for pair in nested.windows(2) {
        let larger: HashSet<_> = pair[1].iter().collect();
        assert!(pair[0].iter().all(|i| larger.contains(i)));
    }
    // A smaller class_balanced draw is the per-class prefix of a larger one with the same seed.
    assert_eq!(class_balanced(&d, 10, 3).unwrap(), nested[2]);
    assert!(nested_class_balanced(&d, &[5, 5], 0).is_err());
}

#[test]
fn fractions_per_class() {
    let d = uneven();
    let idx = fraction_per_class(&d, &[0.1, 0.5, 1.0], 1).unwrap();
    assert_eq!(per_class(&d, &idx), vec![5, 20, 30]);
    assert_eq!(idx, fraction_per_class(&d, &[0.1, 0.5, 1.0], 1).unwrap());
    assert!(fraction_per_class(&d, &[0.1, 0.5], 1).is_err());
    assert!(fraction_per_class(&d, &[0.1, 0.5, 1.5], 1).is_err());

    let f = uniform_fractions(10, 0.005, 0.05, 9).unwrap();
    assert_eq!(f.len(), 10);
    assert!(f.iter().all(|x| (0.005..=0.05).contains(x)));
    assert_eq!(f, uniform_fractions(10, 0.005, 0.05, 9).unwrap());
    assert!(uniform_fractions(10, 0.5, 0.1, 9).is_err());
}
