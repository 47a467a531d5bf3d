//! A batch split into chunks (`Bundle::chunk`) gives the results of one call on the whole
//! batch, to rounding, for every role; graphs that use batch statistics are never split.

use crate::common::{batch, open, random_array2, smooth_params, unit_direction};
use ddlens::Bundle;
use ndarray::{Array1, ArrayD};

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn flat(t: &[ArrayD<f32>]) -> Vec<f32> {
    t.iter().flat_map(|a| a.iter().copied()).collect()
}

/// Every role at batch 10 in chunks of at most 3 (3 + 3 + 2 + 2) against one call.
fn check(name: &str) {
    let mut b = open(name);
    assert_eq!(
        b.chunk(),
        Some(ddlens::bundle::CPU_CHUNK),
        "{name}: CPU default"
    );
    let p = smooth_params(&b, 1);
    let a = unit_direction(&b, 2);
    let (x, y) = batch(&b, 10, 3);
    let w = Array1::from_shape_fn(10, |i| 0.5 + i as f32 / 10.0);
    let c = random_array2((10, b.manifest().feature_dim), 4);

    let whole = |b: &Bundle| {
        (
            b.forward(&p, x.view()).unwrap(),
            b.grad(&p, x.view(), y.view(), Some(w.view())).unwrap(),
            b.grad_vjp(&p, x.view(), y.view(), Some(w.view()), &a)
                .unwrap(),
            b.features_vjp(&p, x.view(), c.view()).unwrap(),
            b.loss_jvp(&p, &a, x.view(), y.view()).unwrap(),
        )
    };
    b.set_chunk(None);
    let one = whole(&b);
    b.set_chunk(Some(3));
    let split = whole(&b);

    let tol = 1e-5;
    let checks = [
        (
            "forward logits",
            max_rel(
                split.0.logits.as_slice().unwrap(),
                one.0.logits.as_slice().unwrap(),
            ),
        ),
        (
            "forward features",
            max_rel(
                split.0.features.as_slice().unwrap(),
                one.0.features.as_slice().unwrap(),
            ),
        ),
        ("grad loss", max_rel(&[split.1.loss], &[one.1.loss])),
        (
            "grad",
            max_rel(&flat(split.1.grad.tensors()), &flat(one.1.grad.tensors())),
        ),
        (
            "grad_vjp hv",
            max_rel(&flat(split.2.hv.tensors()), &flat(one.2.hv.tensors())),
        ),
        (
            "grad_vjp x_grad",
            max_rel(
                split.2.x_grad.as_slice().unwrap(),
                one.2.x_grad.as_slice().unwrap(),
            ),
        ),
        (
            "features_vjp",
            max_rel(split.3.as_slice().unwrap(), one.3.as_slice().unwrap()),
        ),
        (
            "loss_jvp",
            max_rel(split.4.as_slice().unwrap(), one.4.as_slice().unwrap()),
        ),
    ];
    for (what, err) in checks {
        assert!(
            err < tol,
            "{name} {what}: chunked differs by {err:e} (relative)"
        );
    }
    // A bad argument is named before any chunk runs.
    let msg = b
        .grad(&p, x.view(), y.slice(ndarray::s![..9]), None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("9 labels for a batch of 10"), "{msg}");
}

#[test]
fn chunked_calls_match_one_call_tiny() {
    check("tiny-1x8x8");
}

#[test]
fn chunked_calls_match_one_call_convnettiny() {
    check("convnettiny-1x28x28");
}

#[test]
fn graphs_with_batch_statistics_are_never_split() {
    let dir = tempfile::tempdir().unwrap();
    let src = crate::common::models_dir().join("tiny-1x8x8");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let manifest = dir.path().join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["batch_statistics"] = serde_json::Value::Bool(true);
    std::fs::write(&manifest, m.to_string()).unwrap();

    crate::common::runtime();
    let mut b = Bundle::open(dir.path()).unwrap();
    assert_eq!(b.chunk(), None);
    b.set_chunk(Some(3));
    assert_eq!(
        b.chunk(),
        None,
        "set_chunk must not split batch-statistics graphs"
    );
}
