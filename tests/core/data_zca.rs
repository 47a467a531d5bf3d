//! ZCA whitening (`ddlens::data::Zca`): whitened data has identity covariance, and the
//! transform is kornia's `ZCAWhitening` formula, computed here with torch as the reference.

use std::process::Command;

use ddlens::data::{Normalizer, Splits, Zca};
use ddlens::Dataset;
use ndarray::{Array1, Array2, Array4, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::data_import::{skip_without_torch, torch_python};

/// `n` images of 1x3x3 with correlated pixels: standard normals mixed by a fixed matrix, plus
/// an offset per pixel.
fn correlated(n: usize, seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = 9;
    let mix = Array2::from_shape_fn((d, d), |_| rng.sample::<f64, _>(StandardNormal));
    let z = Array2::from_shape_fn((n, d), |_| rng.sample::<f64, _>(StandardNormal));
    let offset = Array1::from_shape_fn(d, |i| i as f64 * 0.5);
    let x = z.dot(&mix) + &offset;
    x.mapv(|v| v as f32)
        .into_shape_with_order((n, 1, 3, 3))
        .unwrap()
}

fn covariance(images: &Array4<f32>) -> Array2<f64> {
    let n = images.dim().0;
    let flat = images.to_shape((n, 9)).unwrap().mapv(f64::from);
    let centred = &flat - &flat.mean_axis(Axis(0)).unwrap();
    centred.t().dot(&centred) / (n - 1) as f64
}

#[test]
fn whitened_data_has_identity_covariance() {
    let images = correlated(400, 1);
    let zca = Zca::fit(images.view(), 1e-9).unwrap();
    let cov = covariance(&zca.apply(images.view()).unwrap());
    for ((i, j), &c) in cov.indexed_iter() {
        let want = if i == j { 1.0 } else { 0.0 };
        assert!((c - want).abs() < 1e-3, "cov[{i},{j}] = {c}");
    }
    // The matrix is symmetric, as ZCA's (unlike PCA whitening's) is.
    let w = zca.matrix();
    assert!(w
        .iter()
        .zip(w.t().iter())
        .all(|(a, b)| (a - b).abs() < 1e-5));
}

#[test]
fn eps_shrinks_each_direction_by_its_variance() {
    // With eps, the covariance of the output is U diag(s / (s + eps)) Uᵀ: along a direction
    // of variance s, s / (s + eps). Scaled-down data (variance ~eps) is shrunk visibly.
    let images = correlated(400, 2).mapv(|v| v * 0.1);
    let zca = Zca::fit(images.view(), Zca::MTT_EPS).unwrap();
    let out_cov = covariance(&zca.apply(images.view()).unwrap());
    let trace: f64 = out_cov.diag().sum();
    assert!(trace < 9.0 * 0.99, "trace {trace} should be well below 9");
    assert!(trace > 0.0);
}

#[test]
fn matches_the_kornia_formula_computed_with_torch() {
    let Some(python) = torch_python() else {
        return skip_without_torch();
    };
    let (n, d) = (300, 9);
    let images = correlated(n, 3);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("x.bin");
    let bytes: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).unwrap();
    // kornia.enhance.zca_mean (unbiased) and linear_transform, in float64.
    let script = r#"
import sys, torch
path, n, d, eps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
x = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.float32).reshape(n, d).double()
mean = x.mean(0, keepdim=True)
xc = x - mean
cov = xc.t().mm(xc) / (n - 1)
U, S, _ = torch.linalg.svd(cov)
T = U.mm(torch.rsqrt(S.reshape(-1, 1) + eps) * U.t())
y = (x - mean).mm(T)
open(path + ".T", "wb").write(T.float().numpy().tobytes())
open(path + ".y", "wb").write(y.float().numpy().tobytes())
"#;
    let status = Command::new(python)
        .args(["-c", script])
        .arg(&input)
        .args([n.to_string(), d.to_string(), Zca::MTT_EPS.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let floats = |ext: &str| -> Vec<f32> {
        let b = std::fs::read(tmp.path().join(format!("x.bin.{ext}"))).unwrap();
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let zca = Zca::fit(images.view(), Zca::MTT_EPS).unwrap();
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
    for (k, (&ours, &theirs)) in zca.matrix().iter().zip(&floats("T")).enumerate() {
        assert!(close(ours, theirs), "W[{k}]: {ours} vs torch {theirs}");
    }
    let whitened = zca.apply(images.view()).unwrap();
    for (k, (&ours, &theirs)) in whitened.iter().zip(&floats("y")).enumerate() {
        assert!(close(ours, theirs), "y[{k}]: {ours} vs torch {theirs}");
    }
}

#[test]
fn whiten_splits_fits_on_pixels_of_the_training_split() {
    let labels = |n: usize| Array1::from_iter((0..n).map(|i| (i % 2) as i64));
    let norm = Normalizer::new("test", vec![0.5], vec![0.25]).unwrap();
    let train_px = correlated(200, 4).mapv(|v| v * 0.1 + 0.5);
    let test_px = correlated(50, 5).mapv(|v| v * 0.1 + 0.5);
    let normalised = |px: &Array4<f32>| px.mapv(|v| (v - 0.5) / 0.25);
    let splits = Splits {
        train: Dataset::new(normalised(&train_px), labels(200), 2, "train").unwrap(),
        test: Dataset::new(normalised(&test_px), labels(50), 2, "test").unwrap(),
    };
    let out = Zca::whiten_splits(&splits, &norm, Zca::MTT_EPS).unwrap();
    // The same as fitting on the pixels directly, as MTT does on ToTensor's output.
    let zca = Zca::fit(train_px.view(), Zca::MTT_EPS).unwrap();
    let want = zca.apply(test_px.view()).unwrap();
    for (&a, &b) in out.test.images().iter().zip(want.iter()) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    assert_eq!(out.train.labels(), splits.train.labels());
    assert_eq!(out.test.name(), "test");

    // Shape and channel mismatches are errors, not panics.
    let other = Array4::<f32>::zeros((2, 1, 2, 2));
    assert!(zca.apply(other.view()).is_err());
    let rgb = Normalizer::cifar10();
    assert!(Zca::whiten_splits(&splits, &rgb, 0.1).is_err());
    assert!(Zca::fit(train_px.view(), 0.0).is_err());
}
