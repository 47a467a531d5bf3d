//! The role checks shared by the bundled-model tests and the user-module test: every graph
//! role against central finite differences and against the other roles. The step suits
//! float32 graphs (rounding stays well below the tolerance). ReLU networks are checked at
//! `smooth_params`, a point where no ReLU sits near its kink, because finite differences of a
//! piecewise-smooth function are otherwise biased.

use ddlens::{Bundle, Params};
use ndarray::{Array1, Axis};

use super::*;

/// How a model's non-linearities constrain the finite-difference checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has ReLUs: checked at `smooth_params`, with larger steps.
    Relu,
    /// Smooth activations (max pooling allowed): fresh parameters, small steps.
    Smooth,
}

impl Kind {
    /// The kind of a bundled model.
    pub fn of(name: &str) -> Kind {
        if SMOOTH_BUNDLES.contains(&name) {
            Kind::Smooth
        } else {
            Kind::Relu
        }
    }

    /// Parameters to check at.
    pub fn params(self, b: &Bundle, seed: u64) -> Params {
        match self {
            Kind::Relu => smooth_params(b, seed),
            Kind::Smooth => b.init_params(seed),
        }
    }
}

/// Runs every check on a bundle.
pub fn check_all(b: &Bundle, kind: Kind) {
    check_forward(b, kind);
    check_grad(b, kind);
    check_grad_vjp(b, kind);
    check_features_vjp(b, kind);
    check_loss_jvp(b, kind);
}

const RTOL: f64 = 3e-2;
const BATCH: usize = 6;

/// Finite difference for `features_vjp`, stepping per input element (the direction has RMS 1 per element).
/// `<features, c>` is a large sum whose float32 rounding (~1e-4 for the ConvNets, whose
/// features sit near the ±8 biases) swamps small moves; at the smooth point the ReLU bundles
/// take a 5% move without any mask changing. The tanh/max-pool bundle is the opposite: its
/// features are small (little rounding), but every max-pool winner that switches within the
/// step biases the difference by O(1) with a probability O(step), so the step must be tiny.
fn feature_fd(kind: Kind, f: impl Fn(f32) -> f64) -> f64 {
    if kind == Kind::Smooth {
        // Plain central difference: Richardson would triple the rounding at this small step.
        central(f, 5e-4)
    } else {
        central_richardson(f, 5e-2)
    }
}

/// Step along unit parameter directions (see `feature_fd` for why the max-pool bundle
/// needs a smaller one).
fn param_step(kind: Kind) -> f32 {
    if kind == Kind::Smooth {
        1e-3
    } else {
        1e-2
    }
}

fn loss_at(
    b: &Bundle,
    p: &ddlens::Params,
    x: &ndarray::Array4<f32>,
    y: &Array1<i64>,
    w: &Array1<f32>,
) -> f64 {
    let logits = b.forward(p, x.view()).unwrap().logits;
    let ce = cross_entropy(&logits, y);
    ce.iter()
        .zip(w.iter())
        .map(|(c, &wi)| c * wi as f64)
        .sum::<f64>()
        / y.len() as f64
}

/// `grad`: the loss output equals the cross-entropy of `forward`'s logits, and the gradient's
/// directional derivative equals central differences of that loss (with non-uniform weights).
pub fn check_grad(b: &Bundle, kind: Kind) {
    let name = b.name();
    let eps = param_step(kind);
    let p = kind.params(b, 1);
    let (x, y) = batch(b, BATCH, 2);
    let w = Array1::from_shape_fn(BATCH, |i| 0.5 + i as f32 * 0.25);
    let out = b.grad(&p, x.view(), y.view(), Some(w.view())).unwrap();
    assert_close(
        &format!("{name}: grad loss"),
        out.loss as f64,
        loss_at(b, &p, &x, &y, &w),
        1e-5,
        1e-3,
    );
    for seed in [10, 11] {
        let d = unit_direction(b, seed);
        let fd = central(|e| loss_at(b, &shifted(&p, &d, e), &x, &y, &w), eps);
        assert_close(
            &format!("{name}: <grad, d>"),
            out.grad.dot(&d),
            fd,
            RTOL,
            1e-2,
        );
    }
}

/// `grad_vjp`: H·a against differences of `grad` along a, and J_xᵀa against differences of
/// <grad, a> along an input direction.
pub fn check_grad_vjp(b: &Bundle, kind: Kind) {
    let name = b.name();
    let eps = param_step(kind);
    let p = kind.params(b, 3);
    let (x, y) = batch(b, BATCH, 4);
    let a = unit_direction(b, 5);
    let out = b.grad_vjp(&p, x.view(), y.view(), None, &a).unwrap();
    let grad_at = |q: &ddlens::Params, xx: &ndarray::Array4<f32>| {
        b.grad(q, xx.view(), y.view(), None).unwrap().grad
    };
    // H·a vs (g(θ+εa) - g(θ-εa)) / 2ε, compared along two probe directions and as a whole.
    let mut fd = grad_at(&shifted(&p, &a, eps), &x);
    fd.axpy(-1.0, &grad_at(&shifted(&p, &a, -eps), &x));
    fd.scale(1.0 / (2.0 * eps));
    let mut diff = fd.clone();
    diff.axpy(-1.0, &out.hv);
    let rel = diff.norm() / fd.norm().max(1e-3);
    assert!(
        rel < 5e-2,
        "{name}: |H·a - fd| / |fd| = {rel:.3e} (|fd| = {:.3e})",
        fd.norm()
    );
    for seed in [6, 7] {
        let probe = unit_direction(b, seed);
        let fd_dir = central(|e| grad_at(&shifted(&p, &a, e), &x).dot(&probe), eps);
        assert_close(
            &format!("{name}: <H·a, probe>"),
            out.hv.dot(&probe),
            fd_dir,
            RTOL,
            1e-2,
        );
    }
    let dx = unit_array4(x.dim(), 8);
    let fd_x = central(
        |e| {
            let xx = &x + &(&dx * e);
            grad_at(&p, &xx).dot(&a)
        },
        eps,
    );
    assert_close(
        &format!("{name}: <J_xᵀa, dx>"),
        dot4(&out.x_grad, &dx),
        fd_x,
        RTOL,
        1e-2,
    );
}

/// `features_vjp`: <x_grad, dx> against differences of <features(x), c>.
pub fn check_features_vjp(b: &Bundle, kind: Kind) {
    let name = b.name();
    let p = kind.params(b, 9);
    let (x, _) = batch(b, BATCH, 10);
    let c = random_array2((BATCH, b.manifest().feature_dim), 11);
    let x_grad = b.features_vjp(&p, x.view(), c.view()).unwrap();
    let feat_dot = |xx: &ndarray::Array4<f32>| -> f64 {
        let f = b.forward(&p, xx.view()).unwrap().features;
        f.iter()
            .zip(c.iter())
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum()
    };
    for seed in [12, 13] {
        let dx = unit_array4(x.dim(), seed) * (x.len() as f32).sqrt();
        let fd = feature_fd(kind, |e| feat_dot(&(&x + &(&dx * e))));
        assert_close(
            &format!("{name}: <features_vjp, dx>"),
            dot4(&x_grad, &dx),
            fd,
            RTOL,
            1e-2,
        );
    }
}

/// `loss_jvp`: per-sample derivative along v against differences of per-sample losses, and
/// against per-sample gradients from `grad` (weights B·e_i select sample i).
pub fn check_loss_jvp(b: &Bundle, kind: Kind) {
    let name = b.name();
    let eps = param_step(kind);
    let p = kind.params(b, 14);
    let (x, y) = batch(b, BATCH, 15);
    let v = unit_direction(b, 16);
    let jvp = b.loss_jvp(&p, &v, x.view(), y.view()).unwrap();
    assert_eq!(jvp.len(), BATCH);
    let per_sample =
        |q: &ddlens::Params| cross_entropy(&b.forward(q, x.view()).unwrap().logits, &y);
    let losses: Vec<Vec<f64>> = [eps, -eps, eps / 2.0, -eps / 2.0]
        .iter()
        .map(|&e| per_sample(&shifted(&p, &v, e)))
        .collect();
    for i in 0..BATCH {
        // Richardson-extrapolated central difference, as in `central_richardson`.
        let coarse = (losses[0][i] - losses[1][i]) / (2.0 * eps as f64);
        let fine = (losses[2][i] - losses[3][i]) / eps as f64;
        let fd = (4.0 * fine - coarse) / 3.0;
        assert_close(
            &format!("{name}: dloss[{i}]"),
            jvp[i] as f64,
            fd,
            RTOL,
            1e-2,
        );
        let mut w = Array1::zeros(BATCH);
        w[i] = BATCH as f32;
        let g = b.grad(&p, x.view(), y.view(), Some(w.view())).unwrap().grad;
        assert_close(
            &format!("{name}: dloss[{i}] vs grad_i·v"),
            jvp[i] as f64,
            g.dot(&v),
            1e-3,
            1e-3,
        );
    }
}

/// `forward`: a batch gives the same rows as its examples one at a time (dynamic batch, no
/// cross-example leakage), and features have the manifest's size.
pub fn check_forward(b: &Bundle, kind: Kind) {
    let name = b.name();
    let p = kind.params(b, 17);
    let (x, _) = batch(b, BATCH, 18);
    let out = b.forward(&p, x.view()).unwrap();
    assert_eq!(out.logits.dim(), (BATCH, b.manifest().num_classes));
    assert_eq!(out.features.dim(), (BATCH, b.manifest().feature_dim));
    for i in [0, BATCH - 1] {
        let one = b
            .forward(&p, x.slice(ndarray::s![i..i + 1, .., .., ..]))
            .unwrap();
        for (a, c) in one
            .logits
            .index_axis(Axis(0), 0)
            .iter()
            .zip(out.logits.index_axis(Axis(0), i))
        {
            assert!(
                (a - c).abs() <= 1e-4 * (1.0 + c.abs()),
                "{name}: batched logits differ from single"
            );
        }
    }
}
