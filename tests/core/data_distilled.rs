//! Distilled-set files: safetensors round trip, metadata, NumPy imports, and errors.

use std::collections::HashMap;
use std::path::Path;

use ddlens::data::{Dataset, DistilledMeta, DistilledSet};
use ndarray::{arr0, Array1, Array4};
use ndarray_npy::{write_npy, NpzWriter};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn images(n: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, 1, 3, 2), |(i, _, h, w)| {
        i as f32 - 0.5 * h as f32 + 0.25 * w as f32
    })
}

fn labels(n: usize) -> Array1<i64> {
    Array1::from_iter((0..n).map(|i| (i % 10) as i64))
}

fn sample(lr: Option<f32>) -> DistilledSet {
    let data = Dataset::new(images(20), labels(20), 10, "dm").unwrap();
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("iterations".to_string(), "20000".to_string());
    let meta = DistilledMeta {
        method: "dm".into(),
        ipc: 2,
        dataset: "fashion-mnist".into(),
        model: "convnet3-1x28x28".into(),
        seed: Some(42),
        extra,
    };
    DistilledSet::new(data, lr, meta).unwrap()
}

/// A safetensors file as PyTorch's `save_file` would write it.
fn write_raw(path: &Path, tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>, meta: &[(&str, &str)]) {
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn err_text<T: std::fmt::Debug>(r: ddlens::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn round_trip_keeps_data_lr_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dm_ipc2.safetensors");
    let set = sample(Some(0.0125));
    set.write(&path).unwrap();
    assert!(!dir.path().join("dm_ipc2.safetensors.tmp").exists());
    let back = DistilledSet::read(&path).unwrap();
    assert_eq!(back.data.images(), set.data.images());
    assert_eq!(back.data.labels(), set.data.labels());
    assert_eq!(back.data.num_classes(), 10);
    assert_eq!(back.data.name(), "dm_ipc2");
    assert_eq!(back.lr, Some(0.0125));
    assert_eq!(back.meta, set.meta);

    let no_lr = sample(None);
    no_lr.write(&path).unwrap();
    assert_eq!(DistilledSet::read(&path).unwrap().lr, None);
}

#[test]
fn pytorch_style_file_with_int32_labels_and_lr_of_shape_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torch.safetensors");
    let labels: Vec<u8> = [0i32, 1, 1].iter().flat_map(|x| x.to_le_bytes()).collect();
    write_raw(
        &path,
        vec![
            (
                "images",
                Dtype::F32,
                vec![3, 1, 2, 2],
                f32_bytes(&[0.5; 12]),
            ),
            ("labels", Dtype::I32, vec![3], labels),
            ("lr", Dtype::F32, vec![1], f32_bytes(&[0.03])),
        ],
        &[("method", "mtt"), ("note", "hello")],
    );
    let set = DistilledSet::read(&path).unwrap();
    assert_eq!(set.data.labels().to_vec(), vec![0, 1, 1]);
    assert_eq!(set.lr, Some(0.03));
    assert_eq!(set.meta.method, "mtt");
    assert_eq!(set.meta.ipc, 2, "ipc is taken from the data when absent");
    assert_eq!(set.meta.extra["note"], "hello");
    // No dataset and no num_classes: max label + 1.
    assert_eq!(set.data.num_classes(), 2);
}

#[test]
fn errors_name_the_file_and_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    let ones = f32_bytes(&[1.0; 12]);
    let labels: Vec<u8> = [0i64, 1, 1].iter().flat_map(|x| x.to_le_bytes()).collect();

    write_raw(
        &path,
        vec![("images", Dtype::F32, vec![3, 1, 2, 2], ones.clone())],
        &[],
    );
    let msg = err_text(DistilledSet::read(&path));
    assert!(
        msg.contains("broken.safetensors") && msg.contains("missing tensor `labels`"),
        "{msg}"
    );

    let f64_labels: Vec<u8> = [0f64, 1.0, 1.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    write_raw(
        &path,
        vec![
            ("images", Dtype::F32, vec![3, 1, 2, 2], ones.clone()),
            ("labels", Dtype::F64, vec![3], f64_labels),
        ],
        &[],
    );
    let msg = err_text(DistilledSet::read(&path));
    assert!(msg.contains("tensor `labels` has dtype F64"), "{msg}");

    write_raw(
        &path,
        vec![
            ("images", Dtype::F32, vec![3, 4], ones.clone()),
            ("labels", Dtype::I64, vec![3], labels.clone()),
        ],
        &[],
    );
    let msg = err_text(DistilledSet::read(&path));
    assert!(msg.contains("tensor `images` has shape [3, 4]"), "{msg}");

    let mut nan = [1.0f32; 12];
    nan[7] = f32::NAN;
    write_raw(
        &path,
        vec![
            ("images", Dtype::F32, vec![3, 1, 2, 2], f32_bytes(&nan)),
            ("labels", Dtype::I64, vec![3], labels.clone()),
        ],
        &[],
    );
    let msg = err_text(DistilledSet::read(&path));
    assert!(
        msg.contains("broken.safetensors") && msg.contains("image 1"),
        "{msg}"
    );

    write_raw(
        &path,
        vec![
            ("images", Dtype::F32, vec![3, 1, 2, 2], ones),
            ("labels", Dtype::I64, vec![3], labels),
        ],
        &[("format", "something-else")],
    );
    let msg = err_text(DistilledSet::read(&path));
    assert!(msg.contains("metadata `format`"), "{msg}");

    std::fs::write(&path, b"not a safetensors file").unwrap();
    let msg = err_text(DistilledSet::read(&path));
    assert!(
        msg.contains("broken.safetensors") && msg.contains("safetensors"),
        "{msg}"
    );
}

#[test]
fn npy_pair_import_converts_float64_and_int32() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("images.npy"), dir.path().join("labels.npy"));
    write_npy(&img, &images(10).mapv(f64::from)).unwrap();
    write_npy(&lab, &labels(10).mapv(|l| l as i32)).unwrap();
    let meta = DistilledMeta {
        dataset: "mnist".into(),
        ..Default::default()
    };
    let set = DistilledSet::import_npy(&img, &lab, None, meta).unwrap();
    assert_eq!(set.data.images(), &images(10));
    assert_eq!(set.data.labels(), &labels(10));
    assert_eq!(set.data.num_classes(), 10);
    assert_eq!(set.meta.ipc, 1);

    write_npy(&lab, &Array1::from(vec![0.5f32; 10])).unwrap();
    let msg = err_text(DistilledSet::import_npy(
        &img,
        &lab,
        None,
        Default::default(),
    ));
    assert!(msg.contains("labels.npy") && msg.contains("dtype"), "{msg}");

    write_npy(&lab, &labels(9)).unwrap();
    let msg = err_text(DistilledSet::import_npy(
        &img,
        &lab,
        None,
        Default::default(),
    ));
    assert!(msg.contains("10 images but 9 labels"), "{msg}");
}

/// A header nesting brackets deeper than any NumPy writes is refused, naming the file
/// (ndarray-npy's header parser takes exponential time in the nesting depth; a fuzzer's
/// 145-byte file with 50 levels ran past 10 s).
#[test]
fn npy_header_nesting_deep_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("images.npy"), dir.path().join("labels.npy"));
    write_npy(&lab, &labels(1)).unwrap();
    // 40 deep, and 5 (one past the limit: the header's own `{` and `(` and three `[`).
    for depth in [40, 3] {
        let shape = format!("{}(1, 1, 2, 2){}", "[".repeat(depth), "]".repeat(depth));
        let bytes = crate::common::npy_raw("<f4", &shape, &[0u8; 16]);
        std::fs::write(&img, bytes).unwrap();
        // The message comes from the check that runs before the parser, so it never ran.
        let msg = err_text(DistilledSet::import_npy(
            &img,
            &lab,
            None,
            Default::default(),
        ));
        assert!(
            msg.contains("images.npy") && msg.contains("nests brackets"),
            "{msg}"
        );
    }
}

#[test]
fn npz_import_stored_and_compressed_with_lr() {
    let dir = tempfile::tempdir().unwrap();
    for compressed in [false, true] {
        let path = dir.path().join(format!("set{compressed}.npz"));
        let file = std::fs::File::create(&path).unwrap();
        let method = if compressed {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        let mut npz = NpzWriter::new_with_options(file, options);
        npz.add_array("images", &images(4)).unwrap();
        npz.add_array("labels", &labels(4)).unwrap();
        npz.add_array("lr", &arr0(0.02f32)).unwrap();
        npz.finish().unwrap();
        let set = DistilledSet::import_npz(&path, Some(10), Default::default()).unwrap();
        assert_eq!(set.data.images(), &images(4));
        assert_eq!(set.lr, Some(0.02));
    }

    let path = dir.path().join("nolabels.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&path).unwrap());
    npz.add_array("images", &images(4)).unwrap();
    npz.finish().unwrap();
    let msg = err_text(DistilledSet::import_npz(&path, None, Default::default()));
    assert!(
        msg.contains("nolabels.npz") && msg.contains("missing array `labels`"),
        "{msg}"
    );
}

#[test]
fn empty_sets_are_refused_where_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    write_raw(
        &path,
        vec![
            ("images", Dtype::F32, vec![0, 1, 4, 4], Vec::new()),
            ("labels", Dtype::I64, vec![0], Vec::new()),
        ],
        &[],
    );
    let e = err_text(DistilledSet::read(&path));
    assert!(
        e.contains("empty.safetensors") && e.contains("no images"),
        "{e}"
    );
    let npz = dir.path().join("empty.npz");
    let mut w = NpzWriter::new(std::fs::File::create(&npz).unwrap());
    w.add_array("images", &Array4::<f32>::zeros((0, 1, 4, 4)))
        .unwrap();
    w.add_array("labels", &Array1::<i64>::zeros(0)).unwrap();
    w.finish().unwrap();
    let e = err_text(DistilledSet::read_any(&npz));
    assert!(e.contains("empty.npz") && e.contains("no images"), "{e}");
    let data = Dataset::new(Array4::zeros((0, 1, 4, 4)), Array1::zeros(0), 2, "none").unwrap();
    let e = err_text(DistilledSet::new(data, None, DistilledMeta::default()));
    assert!(e.contains("`images`") && e.contains("no images"), "{e}");
}
