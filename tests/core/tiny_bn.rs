//! An independent reference for the committed `tiny-bn-1x8x8` bundle (Conv(1->4, 3x3, pad 1)
//! -> BatchNorm2d(4) with running statistics as state -> ReLU -> AvgPool 2 -> Linear(64 -> 3)):
//! the batch statistics of its BatchNorm input, computed here in f64 from the parameters, and
//! through them the training-mode forward pass, which the bundle has no graph for (its
//! `forward` is evaluation mode). Feeding a batch's own statistics as the state makes the
//! evaluation-mode graph normalise exactly as training mode does.

use ddlens::bundle::ForwardOutput;
use ddlens::{Bundle, Params};
use ndarray::{Array1, Array4, ArrayD, IxDyn};

use crate::common;

/// The bundle's name.
pub const NAME: &str = "tiny-bn-1x8x8";
/// PyTorch's default BatchNorm momentum, which the bundle was exported with.
pub const MOMENTUM: f64 = 0.1;

/// Per-channel statistics of the BatchNorm input over (batch, height, width).
pub struct Stats {
    pub mean: Vec<f64>,
    /// Biased variance (what training mode normalises with).
    pub var: Vec<f64>,
    /// Unbiased variance (what the running variance is updated with).
    pub var_unbiased: Vec<f64>,
}

/// `conv0(x)` per channel, in f64.
fn conv0(b: &Bundle, p: &Params, x: &Array4<f32>) -> Array4<f64> {
    let names: Vec<&str> = b
        .manifest()
        .params
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let w = &p.tensors()[names.iter().position(|n| *n == "conv0.weight").unwrap()];
    let bias = &p.tensors()[names.iter().position(|n| *n == "conv0.bias").unwrap()];
    let (n, _, h, wd) = x.dim();
    let c = bias.len();
    Array4::from_shape_fn((n, c, h, wd), |(i, o, r, s)| {
        let mut acc = bias[[o]] as f64;
        for dr in 0..3 {
            for ds in 0..3 {
                let (rr, ss) = (r as i64 + dr as i64 - 1, s as i64 + ds as i64 - 1);
                if (0..h as i64).contains(&rr) && (0..wd as i64).contains(&ss) {
                    acc += w[[o, 0, dr, ds]] as f64 * x[[i, 0, rr as usize, ss as usize]] as f64;
                }
            }
        }
        acc
    })
}

/// The batch statistics of the BatchNorm input for parameters `p` and batch `x`.
pub fn stats(b: &Bundle, p: &Params, x: &Array4<f32>) -> Stats {
    let z = conv0(b, p, x);
    let (n, c, h, w) = z.dim();
    let count = (n * h * w) as f64;
    let mut out = Stats {
        mean: vec![0.0; c],
        var: vec![0.0; c],
        var_unbiased: vec![0.0; c],
    };
    for ch in 0..c {
        let v = z.index_axis(ndarray::Axis(1), ch);
        let mean = v.sum() / count;
        let ss: f64 = v.iter().map(|a| (a - mean) * (a - mean)).sum();
        out.mean[ch] = mean;
        out.var[ch] = ss / count;
        out.var_unbiased[ch] = ss / (count - 1.0);
    }
    out
}

/// A state `[running_mean, running_var]` from per-channel values.
pub fn state(b: &Bundle, mean: &[f64], var: &[f64]) -> Params {
    let t = |v: &[f64]| {
        ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.iter().map(|&a| a as f32).collect()).unwrap()
    };
    b.state_from_tensors(vec![t(mean), t(var)]).unwrap()
}

/// The training-mode forward pass: evaluation mode on the batch's own statistics.
pub fn train_forward(b: &Bundle, p: &Params, x: &Array4<f32>) -> ForwardOutput {
    let s = stats(b, p, x);
    b.forward_with_state(p, &state(b, &s.mean, &s.var), x.view())
        .unwrap()
}

/// Weighted mean cross-entropy of the training-mode logits.
pub fn train_loss(
    b: &Bundle,
    p: &Params,
    x: &Array4<f32>,
    y: &Array1<i64>,
    w: &Array1<f32>,
) -> f64 {
    let ce = common::cross_entropy(&train_forward(b, p, x).logits, y);
    ce.iter().zip(w).map(|(c, &wi)| c * wi as f64).sum::<f64>() / y.len() as f64
}

/// The whole evaluation-mode network in f64 from the parameters and `state` (BatchNorm eps
/// 1e-5, PyTorch's default): the logits `[B, 3]`.
pub fn eval_logits(b: &Bundle, p: &Params, s: &Params, x: &Array4<f32>) -> ndarray::Array2<f64> {
    let z = conv0(b, p, x);
    let get = |name: &str| {
        let i = b
            .manifest()
            .params
            .iter()
            .position(|q| q.name == name)
            .unwrap();
        p.tensors()[i].mapv(|v| v as f64)
    };
    let (gamma, beta, wl, bl) = (
        get("norm0.weight"),
        get("norm0.bias"),
        get("classifier.weight"),
        get("classifier.bias"),
    );
    let (mean, var) = (&s.tensors()[0], &s.tensors()[1]);
    let (n, c, h, w) = z.dim();
    let act = Array4::from_shape_fn((n, c, h, w), |(i, ch, r, q)| {
        let norm = (z[[i, ch, r, q]] - mean[[ch]] as f64) / (var[[ch]] as f64 + 1e-5).sqrt();
        (norm * gamma[[ch]] + beta[[ch]]).max(0.0)
    });
    let pooled = Array4::from_shape_fn((n, c, h / 2, w / 2), |(i, ch, r, q)| {
        (act[[i, ch, 2 * r, 2 * q]]
            + act[[i, ch, 2 * r + 1, 2 * q]]
            + act[[i, ch, 2 * r, 2 * q + 1]]
            + act[[i, ch, 2 * r + 1, 2 * q + 1]])
            / 4.0
    });
    let feats = pooled.into_shape_with_order((n, c * h * w / 4)).unwrap();
    let wl = wl.into_dimensionality::<ndarray::Ix2>().unwrap();
    let mut logits = feats.dot(&wl.t());
    logits += &bl.into_dimensionality::<ndarray::Ix1>().unwrap();
    logits
}
