//! `Dataset` invariants and helpers, normalisation, and datasets from memory.

use ddlens::bundle::{Manifest, Normalization};
use ddlens::data::{from_memory_f32, from_memory_u8, Dataset, DatasetName, Normalizer};
use ndarray::{Array1, Array4};

/// `n` examples of shape 1x2x2, pixel values `i`, labels `i % classes`.
fn toy(n: usize, classes: usize) -> Dataset {
    let images = Array4::from_shape_fn((n, 1, 2, 2), |(i, _, _, _)| i as f32);
    let labels = Array1::from_iter((0..n).map(|i| (i % classes) as i64));
    Dataset::new(images, labels, classes, "toy").unwrap()
}

fn manifest(input_shape: [usize; 3], classes: usize) -> Manifest {
    let json = serde_json::json!({
        "format": "ddlens-bundle", "format_version": 1, "name": "convnet3-test",
        "input_shape": input_shape, "num_classes": classes, "feature_dim": 8,
        "normalization": {"dataset": "mnist", "mean": [0.1307], "std": [0.3081]},
        "opset": 17,
        "params": [{"name": "w", "shape": [2], "init": {"kind": "constant", "value": 0.0}}],
        "graphs": {}
    });
    serde_json::from_value(json).unwrap()
}

#[test]
fn constructor_rejects_bad_lengths_labels_and_nan() {
    let images = Array4::<f32>::zeros((3, 1, 2, 2));
    let msg = Dataset::new(images.clone(), Array1::from(vec![0, 1]), 2, "d")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("3 images but 2 labels"), "{msg}");

    let msg = Dataset::new(images.clone(), Array1::from(vec![0, -1, 1]), 2, "d")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("label -1 at index 1"), "{msg}");

    let mut bad = images;
    bad[[2, 0, 1, 1]] = f32::INFINITY;
    bad[[1, 0, 0, 0]] = f32::NAN;
    let msg = Dataset::new(bad, Array1::from(vec![0, 1, 1]), 2, "nanset")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("dataset `nanset`") && msg.contains("image 1"),
        "{msg}"
    );
}

#[test]
fn select_concat_and_counts() {
    let d = toy(7, 3);
    assert_eq!(d.class_counts(), vec![3, 2, 2]);
    let s = d.select(&[6, 0, 6]).unwrap();
    assert_eq!(s.labels().to_vec(), vec![0, 0, 0]);
    assert_eq!(s.images()[[0, 0, 1, 1]], 6.0);
    assert!(d.select(&[7]).unwrap_err().to_string().contains("index 7"));

    let both = d.concat(&s).unwrap();
    assert_eq!(both.len(), 10);
    assert_eq!(both.images()[[7, 0, 0, 0]], 6.0);
    let other = Dataset::new(Array4::zeros((1, 1, 3, 3)), Array1::from(vec![0]), 3, "big").unwrap();
    let msg = d.concat(&other).unwrap_err().to_string();
    assert!(
        msg.contains("[1, 2, 2]") && msg.contains("[1, 3, 3]"),
        "{msg}"
    );
}

#[test]
fn batches_follow_the_order_with_a_short_last_batch() {
    let d = toy(5, 5);
    let order = [4, 3, 2, 1, 0];
    let batches: Vec<_> = d.batches(&order, 2).unwrap().collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].labels.to_vec(), vec![4, 3]);
    assert_eq!(batches[2].images.dim(), (1, 1, 2, 2));
    assert!(d.batches(&[0, 9], 2).is_err());
    assert!(d.batches(&order, 0).is_err());
    assert_eq!(d.batch(&[1]).unwrap().labels.to_vec(), vec![1]);
}

#[test]
fn check_against_names_both_shapes_and_the_bundle() {
    let d = toy(4, 10);
    d.check_against(&manifest([1, 2, 2], 10)).unwrap();
    let msg = d
        .check_against(&manifest([1, 28, 28], 10))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[1, 2, 2]") && msg.contains("[1, 28, 28]"),
        "{msg}"
    );
    assert!(msg.contains("convnet3-test"), "{msg}");
    let msg = d
        .check_against(&manifest([1, 2, 2], 3))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("10 classes") && msg.contains("3 classes"),
        "{msg}"
    );
}

#[test]
fn normalisation_constants_and_round_trip() {
    let c = Normalizer::cifar10();
    assert_eq!(c.mean(), &[0.4914, 0.4822, 0.4465]);
    assert_eq!(c.std(), &[0.2023, 0.1994, 0.2010]);
    assert_eq!(Normalizer::fashion_mnist().mean(), &[0.2861]);
    assert_eq!(Normalizer::fashion_mnist().std(), &[0.3530]);
    assert_eq!(Normalizer::for_dataset("MNIST"), Some(Normalizer::mnist()));
    assert_eq!(
        Normalizer::for_dataset("Fashion_MNIST"),
        Some(Normalizer::fashion_mnist())
    );
    assert_eq!(Normalizer::for_dataset("svhn"), None);

    let pixels: Vec<u8> = (0..2 * 3 * 2 * 2).map(|i| (i * 10) as u8).collect();
    let x = c.normalize_u8(&pixels, [2, 3, 2, 2]).unwrap();
    let back = c.to_u8(x.view());
    assert_eq!(back.iter().copied().collect::<Vec<_>>(), pixels);
    let unit = c.denormalize(x.view());
    assert!((unit[[1, 2, 1, 1]] - f32::from(pixels[23]) / 255.0).abs() < 1e-6);
    assert!(c.normalize_u8(&pixels, [2, 1, 6, 2]).is_err());
}

#[test]
fn conversion_with_the_manifest_normalization() {
    let n = Normalizer::mnist();
    let m: Normalization = (&n).into();
    assert_eq!(m.dataset, "mnist");
    assert_eq!(Normalizer::try_from(&m).unwrap(), n);
    let bad = Normalization {
        dataset: "x".into(),
        mean: vec![0.0],
        std: vec![0.0],
    };
    assert!(Normalizer::try_from(&bad).is_err());
}

#[test]
fn from_memory_copies_and_normalises() {
    let norm = DatasetName::Mnist.normalizer();
    let pixels = vec![255u8; 2 * 4];
    let d = from_memory_u8(&pixels, [2, 1, 2, 2], &[0, 1], 2, &norm, "mem").unwrap();
    assert!((d.images()[[1, 0, 1, 1]] - (1.0 - 0.1307) / 0.3081).abs() < 1e-6);

    let unit = vec![1.0f32; 8];
    let e = from_memory_f32(&unit, [2, 1, 2, 2], &[0, 1], 2, Some(&norm), "mem").unwrap();
    assert_eq!(d.images(), e.images());
    let raw = from_memory_f32(&unit, [2, 1, 2, 2], &[0, 1], 2, None, "mem").unwrap();
    assert_eq!(raw.images()[[0, 0, 0, 0]], 1.0);

    assert!(from_memory_f32(&unit, [3, 1, 2, 2], &[0, 1, 1], 2, None, "m").is_err());
    let three = Normalizer::cifar10();
    assert!(from_memory_u8(&pixels, [2, 1, 2, 2], &[0, 1], 2, &three, "m").is_err());
    let msg = from_memory_f32(&unit, [2, 1, 2, 2], &[0, 5], 2, None, "m")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("label 5 at index 1"), "{msg}");
}

#[test]
fn dataset_names_parse_in_common_spellings() {
    for (s, d) in [
        ("fashion-mnist", DatasetName::FashionMnist),
        ("FashionMNIST", DatasetName::FashionMnist),
        ("CIFAR-10", DatasetName::Cifar10),
        ("mnist", DatasetName::Mnist),
    ] {
        assert_eq!(s.parse::<DatasetName>().unwrap(), d);
    }
    assert!("imagenet".parse::<DatasetName>().is_err());
    assert_eq!(DatasetName::Cifar10.input_shape(), [3, 32, 32]);
}
