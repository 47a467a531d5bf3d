//! Every graph role of the running-stats bundle `tiny-bn-1x8x8` against central finite
//! differences, with the state held fixed: training-mode roles (`grad`, `grad_vjp`,
//! `features_vjp`, `loss_jvp`) against differences of the training-mode forward pass
//! (`tiny_bn::train_forward`), `grad`'s updated state against PyTorch's update rule applied to
//! independently computed batch statistics, and `forward` (evaluation mode) per example.

use ddlens::Params;
use ndarray::{Array1, Array2, Axis};

use super::tiny_bn::{self, MOMENTUM, NAME};
use crate::common::{self, *};

const BATCH: usize = 6;
const EPS: f32 = 1e-2;
const RTOL: f64 = 3e-2;

#[test]
fn grad_matches_training_mode_and_finite_differences() {
    let b = common::open(NAME);
    let p = smooth_params(&b, 1);
    let (x, y) = batch(&b, BATCH, 2);
    let w = Array1::from_shape_fn(BATCH, |i| 0.5 + i as f32 * 0.25);
    // Any state: training mode does not read it.
    let s = tiny_bn::state(&b, &[0.3, -0.2, 0.1, 0.0], &[1.5, 0.7, 1.0, 2.0]);
    let out = b
        .grad_with_state(&p, &s, x.view(), y.view(), Some(w.view()))
        .unwrap();
    assert_close(
        "grad loss",
        out.loss as f64,
        tiny_bn::train_loss(&b, &p, &x, &y, &w),
        1e-5,
        1e-4,
    );
    let plain = b.grad(&p, x.view(), y.view(), Some(w.view())).unwrap();
    assert_eq!(
        plain.loss, out.loss,
        "the loss does not depend on the state"
    );
    assert_eq!(
        plain.grad, out.grad,
        "the gradient does not depend on the state"
    );
    for seed in [10, 11] {
        let d = unit_direction(&b, seed);
        let fd = central(
            |e| tiny_bn::train_loss(&b, &shifted(&p, &d, e), &x, &y, &w),
            EPS,
        );
        assert_close("<grad, d>", out.grad.dot(&d), fd, RTOL, 1e-3);
    }
}

#[test]
fn grad_updates_the_state_with_pytorchs_rule() {
    let b = common::open(NAME);
    let p = b.init_params(3);
    let (mut x, y) = batch(&b, BATCH, 4);
    x.mapv_inplace(|v| 2.0 * v + 0.5);
    let (m0, v0) = ([0.3, -0.2, 0.1, 0.0], [1.5, 0.7, 1.0, 2.0]);
    let out = b
        .grad_with_state(&p, &tiny_bn::state(&b, &m0, &v0), x.view(), y.view(), None)
        .unwrap();
    let st = tiny_bn::stats(&b, &p, &x);
    let (mean, var) = (&out.state.tensors()[0], &out.state.tensors()[1]);
    for c in 0..4 {
        // nn.BatchNorm2d in training mode: (1 - m) * old + m * batch, unbiased variance.
        let want_mean = (1.0 - MOMENTUM) * m0[c] + MOMENTUM * st.mean[c];
        let want_var = (1.0 - MOMENTUM) * v0[c] + MOMENTUM * st.var_unbiased[c];
        assert_close("running_mean", mean[[c]] as f64, want_mean, 1e-5, 1e-6);
        assert_close("running_var", var[[c]] as f64, want_var, 1e-5, 1e-6);
    }
    // Without an explicit state, `grad` starts from the manifest's (0, 1).
    let from_init = b.grad(&p, x.view(), y.view(), None).unwrap().state;
    assert_close(
        "from init",
        from_init.tensors()[0][[1]] as f64,
        MOMENTUM * st.mean[1],
        1e-5,
        1e-6,
    );
}

#[test]
fn grad_vjp_matches_finite_differences_of_grad() {
    let b = common::open(NAME);
    let p = smooth_params(&b, 3);
    let (x, y) = batch(&b, BATCH, 4);
    let a = unit_direction(&b, 5);
    let out = b.grad_vjp(&p, x.view(), y.view(), None, &a).unwrap();
    let grad_at =
        |q: &Params, xx: &ndarray::Array4<f32>| b.grad(q, xx.view(), y.view(), None).unwrap().grad;
    let mut fd = grad_at(&shifted(&p, &a, EPS), &x);
    fd.axpy(-1.0, &grad_at(&shifted(&p, &a, -EPS), &x));
    fd.scale(1.0 / (2.0 * EPS));
    let mut diff = fd.clone();
    diff.axpy(-1.0, &out.hv);
    let rel = diff.norm() / fd.norm().max(1e-3);
    assert!(rel < 5e-2, "|H·a - fd| / |fd| = {rel:.3e}");
    let dx = unit_array4(x.dim(), 8);
    let fd_x = central(|e| grad_at(&p, &(&x + &(&dx * e))).dot(&a), EPS);
    assert_close("<J_xᵀa, dx>", dot4(&out.x_grad, &dx), fd_x, RTOL, 1e-3);
}

#[test]
fn features_vjp_and_loss_jvp_match_finite_differences_of_training_mode() {
    let b = common::open(NAME);
    let p = smooth_params(&b, 7);
    let (x, y) = batch(&b, BATCH, 8);
    let f = b.manifest().feature_dim;
    let mut r = rng(9);
    let c = Array2::from_shape_vec((BATCH, f), normal_vec(&mut r, BATCH * f)).unwrap();
    let x_grad = b.features_vjp(&p, x.view(), c.view()).unwrap();
    let dx = unit_array4(x.dim(), 10);
    let fd = central_richardson(
        |e| {
            let feats = tiny_bn::train_forward(&b, &p, &(&x + &(&dx * e))).features;
            feats
                .iter()
                .zip(&c)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum()
        },
        5e-2,
    );
    assert_close("<x_grad, dx>", dot4(&x_grad, &dx), fd, RTOL, 1e-3);
    let v = unit_direction(&b, 12);
    let dloss = b.loss_jvp(&p, &v, x.view(), y.view()).unwrap();
    for i in [0, BATCH - 1] {
        let ce = |e: f32| {
            common::cross_entropy(
                &tiny_bn::train_forward(&b, &shifted(&p, &v, e), &x).logits,
                &y,
            )[i]
        };
        assert_close("dloss", dloss[i] as f64, central(ce, EPS), RTOL, 1e-3);
    }
}

#[test]
fn forward_is_evaluation_mode_on_the_state() {
    let b = common::open(NAME);
    let p = smooth_params(&b, 17);
    let (x, y) = batch(&b, BATCH, 18);
    let s = tiny_bn::state(&b, &[0.3, -0.2, 0.1, 0.0], &[1.5, 0.7, 1.0, 2.0]);
    let out = b.forward_with_state(&p, &s, x.view()).unwrap();
    // Evaluation mode: no batch statistics, so a batch gives the rows of its examples.
    for i in [0, BATCH - 1] {
        let one = b
            .forward_with_state(&p, &s, x.slice(ndarray::s![i..i + 1, .., .., ..]))
            .unwrap();
        for (a, c) in one
            .logits
            .index_axis(Axis(0), 0)
            .iter()
            .zip(out.logits.index_axis(Axis(0), i))
        {
            assert!(
                (a - c).abs() <= 1e-4 * (1.0 + c.abs()),
                "batched logits differ from single"
            );
        }
    }
    // ... and it is the evaluation-mode network computed independently, on the given state.
    let want = tiny_bn::eval_logits(&b, &p, &s, &x);
    for (g, w) in out.logits.iter().zip(&want) {
        assert_close("eval logits", *g as f64, *w, 1e-4, 1e-4);
    }
    // The training-mode reference (this state = the batch's own statistics) gives `grad`'s loss.
    let st = tiny_bn::stats(&b, &p, &x);
    let batch_state = tiny_bn::state(&b, &st.mean, &st.var);
    let ce = common::cross_entropy(
        &tiny_bn::eval_logits(&b, &p, &batch_state, &x).mapv(|v| v as f32),
        &y,
    );
    let loss = b.grad(&p, x.view(), y.view(), None).unwrap().loss as f64;
    assert_close(
        "training-mode loss",
        loss,
        ce.iter().sum::<f64>() / BATCH as f64,
        1e-5,
        1e-4,
    );
    // Without a state the call is refused, naming the bundle and the reason.
    let err = b.forward(&p, x.view()).unwrap_err().to_string();
    assert!(
        err.contains(NAME) && err.contains("running statistics"),
        "{err}"
    );
}
