//! Helpers shared by the integration tests: bundle lookup, seeded random data, and central
//! finite differences.
#![allow(dead_code)]

pub mod role_checks;

use std::path::PathBuf;

use ddlens::{Bundle, Params};
use ndarray::{Array1, Array2, Array4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Every bundle committed under `models/`.
pub const BUNDLES: [&str; 8] = [
    "tiny-1x8x8",
    "tiny-maxpool-1x8x8",
    "tiny-bn-1x8x8",
    "mlp-1x28x28",
    "convnettiny-1x28x28",
    "convnettiny-3x32x32",
    "convnet3-1x28x28",
    "convnet3-3x32x32",
];

/// The committed bundles (or `DDLENS_TEST_MODELS`, to test freshly exported ones).
pub fn models_dir() -> PathBuf {
    std::env::var_os("DDLENS_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// Sets ONNX Runtime up the way every test does (CPU, one thread), once per process, so that
/// the tests grouped in one crate can run in any order (an explicit `init` with other settings
/// after another would be refused). A runtime already set up, by a test that opened a bundle
/// directly, is kept.
pub fn runtime() {
    if ddlens::runtime::is_initialized() {
        return;
    }
    ddlens::runtime::init(ddlens::runtime::RuntimeConfig {
        provider: ddlens::runtime::ProviderChoice::Cpu,
        threads: Some(1),
        ..Default::default()
    })
    .expect("ONNX Runtime (run scripts/setup)");
}

pub fn open(name: &str) -> Bundle {
    runtime();
    Bundle::open(models_dir().join(name)).unwrap_or_else(|e| panic!("opening {name}: {e}"))
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn normal_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Bundles without ReLU.
pub const SMOOTH_BUNDLES: [&str; 1] = ["tiny-maxpool-1x8x8"];

/// Fresh parameters moved to a point where every ReLU is clearly on or off for the test
/// batches, so the network is smooth in a neighbourhood and finite differences are valid.
///
/// ReLU networks are only piecewise smooth: autodiff returns the Hessian of the active piece,
/// while a finite difference of the gradient that crosses a kink picks up the jump, an O(1)
/// error whatever the step (the crossing probability shrinks like ε, the jump/ε grows like
/// 1/ε). Every bundled architecture puts a per-unit bias right before each ReLU (norm biases
/// in the ConvNets, layer biases in the MLP); setting those to ±8 by unit keeps half the units
/// on and half off, far from the kink, so the masks are still exercised. The last parameter
/// (classifier bias) is left alone.
pub fn smooth_params(b: &Bundle, seed: u64) -> Params {
    let mut p = b.init_params(seed);
    // Tanh bundles are smooth already (their max-pool argmax switches only on exact ties), and
    // a ±8 bias would saturate the tanh and hide its layer from the check.
    if SMOOTH_BUNDLES.contains(&b.name()) {
        return p;
    }
    let last = b.manifest().params.len() - 1;
    for (i, (spec, t)) in b.manifest().params.iter().zip(p.tensors_mut()).enumerate() {
        if i != last
            && spec.name.ends_with("bias")
            && t.ndim() == 1
            && !spec.name.starts_with("conv")
        {
            for (j, v) in t.iter_mut().enumerate() {
                *v = if j % 2 == 0 { 8.0 } else { -8.0 };
            }
        }
    }
    p
}

/// A learnable 3-class problem for the tiny 1x8x8 bundles: each class lights up one band of
/// two rows on a noisy background. Same `n` and `seed`, same data.
pub fn banded_dataset(n: usize, seed: u64) -> ddlens::Dataset {
    let mut r = rng(seed);
    let mut x = Array4::from_shape_vec((n, 1, 8, 8), normal_vec(&mut r, n * 64)).unwrap();
    x.mapv_inplace(|v| 0.3 * v);
    let y = Array1::from_shape_fn(n, |i| (i % 3) as i64);
    for i in 0..n {
        let c = (i % 3) * 2;
        for h in c..c + 2 {
            for w in 0..8 {
                x[[i, 0, h, w]] += 2.0;
            }
        }
    }
    ddlens::Dataset::new(x, y, 3, "synthetic").unwrap()
}

/// A random batch `(x, y)` for a bundle.
pub fn batch(b: &Bundle, n: usize, seed: u64) -> (Array4<f32>, Array1<i64>) {
    let mut r = rng(seed);
    let [c, h, w] = b.manifest().input_shape;
    let x = Array4::from_shape_vec((n, c, h, w), normal_vec(&mut r, n * c * h * w)).unwrap();
    let k = b.manifest().num_classes as i64;
    let y = Array1::from_shape_fn(n, |_| r.random_range(0..k));
    (x, y)
}

/// A random direction in parameter space with unit norm.
pub fn unit_direction(b: &Bundle, seed: u64) -> Params {
    let mut r = rng(seed);
    let n = b.manifest().num_parameters();
    let v = normal_vec(&mut r, n);
    let mut p = Params::from_flat(&b.manifest().params, &v).unwrap();
    let norm = p.norm() as f32;
    p.scale(1.0 / norm);
    p
}

/// A random unit-norm array of the given shape.
pub fn unit_array4(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    let mut r = rng(seed);
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let mut a = Array4::from_shape_vec(shape, normal_vec(&mut r, n)).unwrap();
    let norm = a.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() as f32;
    a.mapv_inplace(|v| v / norm);
    a
}

pub fn random_array2(shape: (usize, usize), seed: u64) -> Array2<f32> {
    let mut r = rng(seed);
    Array2::from_shape_vec(shape, normal_vec(&mut r, shape.0 * shape.1)).unwrap()
}

/// `params + eps * dir`.
pub fn shifted(params: &Params, dir: &Params, eps: f32) -> Params {
    let mut p = params.clone();
    p.axpy(eps, dir);
    p
}

/// Central difference `(f(+eps) - f(-eps)) / (2 eps)` in f64.
pub fn central(f: impl Fn(f32) -> f64, eps: f32) -> f64 {
    (f(eps) - f(-eps)) / (2.0 * eps as f64)
}

/// Richardson-extrapolated central difference, `(4 D(eps/2) - D(eps)) / 3`: truncation error
/// O(eps⁴), for checks that need a large step to stay above float32 rounding.
pub fn central_richardson(f: impl Fn(f32) -> f64, eps: f32) -> f64 {
    let coarse = central(&f, eps);
    let fine = central(&f, eps / 2.0);
    (4.0 * fine - coarse) / 3.0
}

/// Per-sample cross-entropy from logits, in f64.
pub fn cross_entropy(logits: &Array2<f32>, y: &Array1<i64>) -> Vec<f64> {
    logits
        .outer_iter()
        .zip(y.iter())
        .map(|(row, &label)| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            lse - row[label as usize] as f64
        })
        .collect()
}

pub fn dot4(a: &Array4<f32>, b: &Array4<f32>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| *x as f64 * *y as f64)
        .sum()
}

/// Asserts `|got - want| <= rtol * max(|want|, floor)`, with a readable message.
pub fn assert_close(what: &str, got: f64, want: f64, rtol: f64, floor: f64) {
    let err = (got - want).abs();
    let scale = want.abs().max(floor);
    assert!(
        err <= rtol * scale,
        "{what}: got {got:.6e}, finite differences give {want:.6e} (relative error {:.3e} > {rtol:.1e})",
        err / scale
    );
}

/// A small "distilled" set of the banded toy data: 2 images per class, learned lr 0.05 (the
/// training-based analyses' tests study it).
pub fn toy_set() -> ddlens::analysis::NamedSet {
    ddlens::analysis::NamedSet {
        name: "toy-ipc2".into(),
        data: banded_dataset(6, 3),
        lr: Some(0.05),
    }
}

/// An `.npy` file (format 1) of `descr` and `shape` (written into the header as given, e.g. a
/// Python tuple) with `data` after the header: for hand-made hostile headers.
pub fn npy_raw(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}
