//! IDX loading (MNIST / Fashion-MNIST format), raw and gzip, and its error messages.

use std::io::Write;
use std::path::Path;

use ddlens::data::{self, load, load_idx_split, read_idx_images, DatasetName, Normalizer};
use flate2::write::GzEncoder;
use flate2::Compression;

fn images_file(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0803, n, rows, cols] {
        out.extend(u32::to_be_bytes(word));
    }
    out.extend_from_slice(pixels);
    out
}

fn labels_file(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0801, labels.len() as u32] {
        out.extend(u32::to_be_bytes(word));
    }
    out.extend_from_slice(labels);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes a split of `n` 4x3 images with pixel value = index and labels `i % 10`.
fn write_split(dir: &Path, prefix: &str, n: usize, gz: bool) {
    let pixels: Vec<u8> = (0..n * 12).map(|i| (i % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let (img, lab) = (images_file(n as u32, 4, 3, &pixels), labels_file(&labels));
    let suffix = if gz { ".gz" } else { "" };
    let enc = |b: Vec<u8>| if gz { gzip(&b) } else { b };
    std::fs::write(
        dir.join(format!("{prefix}-images-idx3-ubyte{suffix}")),
        enc(img),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}")),
        enc(lab),
    )
    .unwrap();
}

fn err_text<T: std::fmt::Debug>(r: ddlens::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn raw_and_gzip_give_the_same_normalised_data() {
    let raw = tempfile::tempdir().unwrap();
    let gz = tempfile::tempdir().unwrap();
    write_split(raw.path(), "train", 20, false);
    write_split(gz.path(), "train", 20, true);
    let norm = Normalizer::mnist();
    let a = load_idx_split(raw.path(), "train", &norm).unwrap();
    let b = load_idx_split(gz.path(), "train", &norm).unwrap();
    assert_eq!(a.images(), b.images());
    assert_eq!(a.len(), 20);
    assert_eq!(a.input_shape(), [1, 4, 3]);
    assert_eq!(a.num_classes(), 10);
    assert_eq!(a.labels()[13], 3);
    // Pixel 5 of image 0 has value 5.
    let expected = (5.0 / 255.0 - 0.1307) / 0.3081;
    assert!((a.images()[[0, 0, 1, 2]] - expected).abs() < 1e-6);
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = vec![7u8; 2 * 4 * 3];
    // Gzip data under a name without `.gz`.
    let path = dir.path().join("x-images-idx3-ubyte");
    std::fs::write(&path, gzip(&images_file(2, 4, 3, &pixels))).unwrap();
    let images = read_idx_images(&path).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (2, 4, 3));
    assert_eq!(images.pixels, pixels);
}

#[test]
fn truncated_file_names_file_and_byte_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = images_file(3, 4, 3, &[0; 36]);
    bytes.truncate(bytes.len() - 5);
    let path = dir.path().join("short-images-idx3-ubyte");
    std::fs::write(&path, &bytes).unwrap();
    let msg = err_text(read_idx_images(&path));
    assert!(msg.contains("short-images-idx3-ubyte"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    assert!(msg.contains("52") && msg.contains("47"), "{msg}");
}

#[test]
fn truncated_gzip_stream_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gzip(&images_file(3, 4, 3, &[1; 36]));
    bytes.truncate(bytes.len() / 2);
    let path = dir.path().join("cut-images-idx3-ubyte.gz");
    std::fs::write(&path, &bytes).unwrap();
    let msg = err_text(read_idx_images(&path));
    assert!(msg.contains("cut-images-idx3-ubyte.gz"), "{msg}");
}

/// A gzip file inflates to up to ~1000 times its size; the reader stops one byte past what the
/// header announces (here 20 bytes, not the 8 MiB the stream holds), so a small hostile file
/// cannot fill memory, and the extra data is still reported.
#[test]
fn gzip_data_past_the_header_is_not_inflated() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = images_file(1, 2, 2, &[1, 2, 3, 4]);
    bytes.extend(std::iter::repeat_n(0u8, 8 << 20));
    let path = dir.path().join("bomb-images-idx3-ubyte.gz");
    std::fs::write(&path, gzip(&bytes)).unwrap();
    let msg = err_text(read_idx_images(&path));
    assert!(msg.contains("bomb-images-idx3-ubyte.gz"), "{msg}");
    assert!(
        msg.contains("trailing bytes") && msg.contains("needs 20 bytes, found 21"),
        "{msg}"
    );
}

#[test]
fn bad_magic_names_file_and_magic() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", 5, false);
    // A labels file where the images file should be.
    let path = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&path, labels_file(&[1, 2, 3])).unwrap();
    let msg = err_text(load_idx_split(dir.path(), "train", &Normalizer::mnist()));
    assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
    assert!(
        msg.contains("0x00000801") && msg.contains("0x00000803"),
        "{msg}"
    );
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", 5, false);
    let labels = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&labels, labels_file(&[1, 2, 3])).unwrap();
    let msg = err_text(load_idx_split(dir.path(), "train", &Normalizer::mnist()));
    assert!(msg.contains("5 images but 3 labels"), "{msg}");
    assert!(msg.contains("train-labels-idx1-ubyte"), "{msg}");
}

#[test]
fn label_out_of_range_names_value_index_and_file() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", 5, false);
    let labels = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&labels, labels_file(&[1, 2, 3, 12, 4])).unwrap();
    let msg = err_text(load_idx_split(dir.path(), "train", &Normalizer::mnist()));
    assert!(msg.contains("label 12 at index 3"), "{msg}");
    assert!(msg.contains("train-labels-idx1-ubyte"), "{msg}");
}

#[test]
fn load_reads_both_splits_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", 30, true);
    write_split(dir.path(), "t10k", 10, false);
    let splits = load(DatasetName::Mnist, Some(dir.path())).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (30, 10));
    assert_eq!(splits.train.name(), "mnist-train");
    assert_eq!(splits.test.name(), "mnist-test");
}

#[test]
fn missing_files_are_listed_with_the_folder_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), "train", 5, true);
    let msg = err_text(load(DatasetName::FashionMnist, Some(dir.path())));
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    assert!(msg.contains("t10k-labels-idx1-ubyte"), "{msg}");
    assert!(!msg.contains("train-images"), "{msg}");
    assert!(msg.contains("dataset-fashion-mnist"), "{msg}");

    let absent = dir.path().join("nowhere");
    let msg = err_text(load(DatasetName::Mnist, Some(&absent)));
    assert!(
        msg.contains("nowhere") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn mnist_without_a_folder_says_how_to_give_one() {
    if std::env::var_os(data::DATA_ENV).is_some() {
        println!(
            "note: {} is set; skipping the no-folder check",
            data::DATA_ENV
        );
        return;
    }
    let msg = err_text(load(DatasetName::Mnist, None));
    assert!(msg.contains("DDLENS_DATA"), "{msg}");
}
