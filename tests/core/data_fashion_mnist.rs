//! The real Fashion-MNIST, when the Debian package `dataset-fashion-mnist` is installed.

use std::path::Path;

use ddlens::data::{load, DatasetName};

const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn real_fashion_mnist_loads_and_is_normalised() {
    let dir = Path::new(DEBIAN_DIR);
    if !dir.is_dir() {
        println!("note: {DEBIAN_DIR} is absent (package dataset-fashion-mnist); test skipped");
        return;
    }
    let splits = load(DatasetName::FashionMnist, Some(dir)).unwrap();
    let (train, test) = (&splits.train, &splits.test);
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.input_shape(), [1, 28, 28]);
    assert_eq!(train.num_classes(), 10);
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    // The standard constants are the training set's own statistics.
    let n = train.images().len() as f64;
    let mean = train.images().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = train
        .images()
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean.abs() < 2e-3, "normalised mean {mean}");
    assert!(
        (var.sqrt() - 1.0).abs() < 5e-3,
        "normalised std {}",
        var.sqrt()
    );
}
