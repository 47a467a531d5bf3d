//! Broken bundles give errors that name what is wrong and where.

use crate::common;

use std::path::{Path, PathBuf};

use ddlens::bundle::{Manifest, Role};
use ddlens::Bundle;
use serde_json::Value;

/// Copies the tiny bundle into a temporary folder so each test can break it its own way.
fn copy_tiny() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("tiny");
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(common::models_dir().join("tiny-1x8x8")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    (tmp, dst)
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut Value)) {
    let path = dir.join("manifest.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn open_err(dir: &Path) -> String {
    match Bundle::open(dir) {
        Ok(_) => panic!("bundle at {} opened although it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(
            msg.contains(p),
            "error message does not mention `{p}`:\n{msg}"
        );
    }
}

#[test]
fn intact_copy_opens() {
    let (_tmp, dir) = copy_tiny();
    let b = Bundle::open(&dir).unwrap();
    assert_eq!(b.roles(), Role::ALL.to_vec());
}

#[test]
fn missing_folder_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    assert_mentions(
        &open_err(&tmp.path().join("nope")),
        &["nope", "not a folder"],
    );
    assert_mentions(&open_err(tmp.path()), &["no manifest.json"]);
}

#[test]
fn invalid_json_names_the_file() {
    let (_tmp, dir) = copy_tiny();
    std::fs::write(dir.join("manifest.json"), "{ \"format\": ").unwrap();
    assert_mentions(&open_err(&dir), &["manifest.json", "invalid manifest"]);
}

#[test]
fn missing_field_is_named() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        v.as_object_mut().unwrap().remove("num_classes");
    });
    assert_mentions(&open_err(&dir), &["manifest.json", "num_classes"]);
}

#[test]
fn missing_graph_file() {
    let (_tmp, dir) = copy_tiny();
    std::fs::remove_file(dir.join("grad_vjp.onnx")).unwrap();
    assert_mentions(
        &open_err(&dir),
        &["grad_vjp.onnx", "missing graph file", "grad_vjp"],
    );
}

#[test]
fn unknown_role() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        let g = v["graphs"]["grad"].clone();
        v["graphs"]["hessian"] = g;
    });
    assert_mentions(&open_err(&dir), &["unknown role `hessian`", "known roles"]);
}

#[test]
fn forward_is_required() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        v["graphs"].as_object_mut().unwrap().remove("forward");
    });
    assert_mentions(&open_err(&dir), &["forward"]);
}

#[test]
fn wrong_tensor_name_in_manifest() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        v["graphs"]["forward"]["outputs"][1] = Value::from("embedding");
    });
    assert_mentions(
        &open_err(&dir),
        &["graphs.forward.outputs[1]", "embedding", "features"],
    );
}

#[test]
fn graph_file_of_another_role() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        v["graphs"]["grad"]["file"] = Value::from("forward.onnx");
    });
    assert_mentions(&open_err(&dir), &["forward.onnx", "role `grad`"]);
}

#[test]
fn parameter_shape_mismatch() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        let shape = &mut v["params"][0]["shape"];
        let first = shape[0].as_u64().unwrap();
        shape[0] = Value::from(first + 1);
    });
    let name = Manifest::read(&dir.join("manifest.json")).unwrap().params[0]
        .name
        .clone();
    assert_mentions(&open_err(&dir), &[&format!("`{name}`"), "dimension 0"]);
}

#[test]
fn input_shape_mismatch() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| v["input_shape"][1] = Value::from(9));
    assert_mentions(&open_err(&dir), &["input `x`", "dimension 2"]);
}

#[test]
fn unsupported_format_version_and_opset() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| v["format_version"] = Value::from(99));
    assert_mentions(&open_err(&dir), &["format_version", "99"]);
    edit_manifest(&dir, |v| {
        v["format_version"] = Value::from(1);
        v["opset"] = Value::from(7);
    });
    assert_mentions(&open_err(&dir), &["opset", "7"]);
}

#[test]
fn opset_disagreeing_with_graph() {
    let (_tmp, dir) = copy_tiny();
    let real = Manifest::read(&dir.join("manifest.json")).unwrap().opset;
    let other = if real == 21 { 20 } else { real + 1 };
    edit_manifest(&dir, |v| v["opset"] = Value::from(other));
    assert_mentions(&open_err(&dir), &["opset", &real.to_string()]);
}

#[test]
fn corrupt_onnx_file() {
    let (_tmp, dir) = copy_tiny();
    std::fs::write(dir.join("loss_jvp.onnx"), b"not a protobuf").unwrap();
    assert_mentions(&open_err(&dir), &["loss_jvp.onnx", "cannot load"]);
}

#[test]
fn normalization_length_must_match_channels() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        v["normalization"]["mean"] = serde_json::json!([0.1, 0.2])
    });
    assert_mentions(&open_err(&dir), &["normalization", "one per channel"]);
}

#[test]
fn missing_role_is_reported_at_call_time() {
    let (_tmp, dir) = copy_tiny();
    edit_manifest(&dir, |v| {
        v["graphs"].as_object_mut().unwrap().remove("loss_jvp");
    });
    let b = Bundle::open(&dir).unwrap();
    let p = b.init_params(0);
    let (x, y) = common::batch(&b, 2, 0);
    let err = b
        .loss_jvp(&p, &p, x.view(), y.view())
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["loss_jvp", "missing"]);
}

#[test]
fn bad_call_arguments_name_the_argument() {
    let b = common::open("tiny-1x8x8");
    let p = b.init_params(0);
    let (x, mut y) = common::batch(&b, 3, 0);
    let wrong_x = ndarray::Array4::<f32>::zeros((3, 1, 9, 8));
    assert_mentions(
        &b.forward(&p, wrong_x.view()).unwrap_err().to_string(),
        &["`x`", "[batch, 1, 8, 8]"],
    );
    y[1] = 99;
    assert_mentions(
        &b.grad(&p, x.view(), y.view(), None)
            .unwrap_err()
            .to_string(),
        &["`y`", "99"],
    );
    let short = ndarray::Array1::<i64>::zeros(2);
    assert_mentions(
        &b.grad(&p, x.view(), short.view(), None)
            .unwrap_err()
            .to_string(),
        &["`y`", "2 labels"],
    );
    let w = ndarray::Array1::<f32>::ones(5);
    let y = ndarray::Array1::<i64>::zeros(3);
    assert_mentions(
        &b.grad(&p, x.view(), y.view(), Some(w.view()))
            .unwrap_err()
            .to_string(),
        &["`w`", "5 weights"],
    );
    let c = ndarray::Array2::<f32>::zeros((3, 1));
    assert_mentions(
        &b.features_vjp(&p, x.view(), c.view())
            .unwrap_err()
            .to_string(),
        &["`c`"],
    );
    let mut tensors = p.tensors().to_vec();
    tensors.pop();
    assert_mentions(
        &b.params_from_tensors(tensors).unwrap_err().to_string(),
        &["params", "expected"],
    );
}

#[test]
fn norm_state_is_read_checked_and_future_values_refused() {
    use ddlens::bundle::NormState;
    let (_tmp, dir) = copy_tiny();
    // Absent: no BatchNorm.
    assert_eq!(
        Bundle::open(&dir).unwrap().manifest().norm_state,
        NormState::None
    );
    // batch-stats needs batch_statistics (its batches must never be split).
    edit_manifest(&dir, |v| v["norm_state"] = Value::from("batch-stats"));
    assert_mentions(&open_err(&dir), &["norm_state", "batch_statistics"]);
    edit_manifest(&dir, |v| v["batch_statistics"] = Value::from(true));
    let b = Bundle::open(&dir).unwrap();
    assert_eq!(b.manifest().norm_state, NormState::BatchStats);
    assert_eq!(b.manifest().norm_state.as_str(), "batch-stats");
    // running-stats needs its `state` listed (tiny-1x8x8 has none).
    edit_manifest(&dir, |v| v["norm_state"] = Value::from("running-stats"));
    assert_mentions(
        &open_err(&dir),
        &["manifest.json", "running-stats", "`state`"],
    );
    // A form this build does not know is refused by name.
    edit_manifest(&dir, |v| v["norm_state"] = Value::from("group-stats"));
    assert_mentions(&open_err(&dir), &["manifest.json", "group-stats"]);
}

/// Every bundle under `models/` (the prebuilt architectures included) resolves by name, opens,
/// and runs `forward` and `grad` with finite outputs; a bundle with batch statistics is never
/// split.
#[test]
fn every_committed_bundle_resolves_opens_and_runs() {
    use ddlens::bundle::{resolve_bundle, NormState};
    common::runtime();
    let mut names: Vec<String> = std::fs::read_dir(common::models_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("manifest.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= common::BUNDLES.len(), "{names:?}");
    for name in &names {
        let folder = resolve_bundle(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = Bundle::open(&folder).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.name(), name);
        let p = b.init_params(1);
        let (x, y) = common::batch(&b, 2, 3);
        // A running-stats bundle's forward reads the state (the initial one here).
        let out = b.forward_with_state(&p, &b.init_state(), x.view()).unwrap();
        assert_eq!(out.logits.shape(), &[2, b.manifest().num_classes]);
        assert!(out.logits.iter().all(|v| v.is_finite()), "{name}");
        if b.roles().contains(&Role::Grad) {
            let g = b.grad(&p, x.view(), y.view(), None).unwrap();
            assert!(g.loss.is_finite(), "{name}");
        }
        if b.manifest().norm_state != NormState::None {
            assert_eq!(
                b.chunk(),
                None,
                "{name}: batch statistics must not be split"
            );
        }
    }
}
