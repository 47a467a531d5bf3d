//! CIFAR-10 binary batches: loading, layout, and error messages.

use std::path::Path;

use ddlens::data::{load, read_cifar10_batch, DatasetName, CIFAR10_RECORD_BYTES};

/// `n` records; record `i` has label `(i + offset) % 10` and every pixel of channel `c` equal
/// to `10 * c + i`.
fn batch(n: usize, offset: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * CIFAR10_RECORD_BYTES);
    for i in 0..n {
        out.push(((i + offset) % 10) as u8);
        for c in 0..3 {
            out.extend(std::iter::repeat_n((10 * c + i) as u8, 1024));
        }
    }
    out
}

fn write_all(dir: &Path) {
    for k in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{k}.bin")), batch(4, k)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), batch(3, 0)).unwrap();
}

#[test]
fn loads_five_training_batches_in_order_and_the_test_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path());
    let splits = load(DatasetName::Cifar10, Some(dir.path())).unwrap();
    let (train, test) = (&splits.train, &splits.test);
    assert_eq!((train.len(), test.len()), (20, 3));
    assert_eq!(train.input_shape(), [3, 32, 32]);
    assert_eq!(train.name(), "cifar10-train");
    // Record 1 of data_batch_2 is example 5, label (1 + 2) % 10.
    assert_eq!(train.labels()[5], 3);
    // Channel-major layout: channel 2 of record 1 holds 21 everywhere.
    let blue = (21.0 / 255.0 - 0.4465) / 0.2010;
    assert!((train.images()[[5, 2, 31, 0]] - blue).abs() < 1e-6);
    let red = (1.0 / 255.0 - 0.4914) / 0.2023;
    assert!((train.images()[[5, 0, 0, 31]] - red).abs() < 1e-6);
}

#[test]
fn finds_batches_inside_the_extracted_tar_folder() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&nested).unwrap();
    write_all(&nested);
    let splits = load(DatasetName::Cifar10, Some(dir.path())).unwrap();
    assert_eq!(splits.test.len(), 3);
}

#[test]
fn truncated_batch_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path());
    let mut bytes = batch(3, 0);
    bytes.pop();
    std::fs::write(dir.path().join("test_batch.bin"), &bytes).unwrap();
    let msg = load(DatasetName::Cifar10, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("test_batch.bin"), "{msg}");
    assert!(msg.contains("9218") && msg.contains("3073"), "{msg}");
}

#[test]
fn label_above_nine_names_file_record_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = batch(3, 0);
    bytes[2 * CIFAR10_RECORD_BYTES] = 10;
    let path = dir.path().join("data_batch_3.bin");
    std::fs::write(&path, &bytes).unwrap();
    let msg = read_cifar10_batch(&path).unwrap_err().to_string();
    assert!(msg.contains("data_batch_3.bin"), "{msg}");
    assert!(msg.contains("record 2 has label 10"), "{msg}");
}

#[test]
fn missing_batches_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path());
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let msg = load(DatasetName::Cifar10, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("data_batch_4.bin"), "{msg}");
    assert!(!msg.contains("data_batch_3.bin"), "{msg}");
    assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
}
