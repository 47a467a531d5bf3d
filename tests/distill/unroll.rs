//! The adjoint of unrolled SGD (src/distill/unroll.rs) against central finite differences of
//! the whole unrolled outer loss, on the tiny bundle.
//!
//! Every check starts from `smooth_params`, where each ReLU is clearly on or off for the
//! synthetic images: the adjoint differentiates the active linear piece, and a finite
//! difference whose step crosses a kink would pick up the jump instead. The inner learning
//! rates keep the run inside that smooth region. Steps of 1e-2 along unit directions with
//! Richardson extrapolation keep the truncation error O(ε⁴) while the float32 rounding of
//! θ_N stays far below the 3% tolerance.

use std::ops::Range;

use crate::common::*;
use ddlens::distill::{
    epoch_batches, trajectory_matching, BatchTransform, InnerLoop, InnerSgd, Unrolled,
};
use ddlens::train::{Sgd, SgdConfig};
use ddlens::{Bundle, Params, Result};
use ndarray::{Array1, Array4, ArrayView4, Axis};

const MODEL: &str = "tiny-1x8x8";
const RTOL: f64 = 3e-2;
const N_SYN: usize = 9;
/// Five steps of minibatches of 4 from the 9 synthetic images (some images in several steps).
const SCHEDULE: [[usize; 4]; 5] = [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 0, 2, 4],
    [1, 3, 5, 7],
    [6, 8, 0, 5],
];

fn schedule() -> Vec<Vec<usize>> {
    SCHEDULE.iter().map(|b| b.to_vec()).collect()
}

/// The outer loss at the end of training.
enum Outer {
    /// MTT: normalised distance to `target`, training started at `start`.
    Mtt { start: Params, target: Params },
    /// BPTT: mean cross-entropy of a real batch.
    Real { x: Array4<f32>, y: Array1<i64> },
}

impl Outer {
    /// A target like an expert checkpoint further along: twice the student's own travel
    /// (`θ_ref` is the student's end point on the unperturbed images), slightly off its path.
    /// The loss then depends on the images at O(1), as in MTT, instead of being swamped by a
    /// fixed distance that the images cannot change.
    fn mtt(b: &Bundle, theta0: &Params, theta_ref: &Params) -> Outer {
        let mut target = theta0.clone();
        target.scale(-1.0);
        target.axpy(2.0, theta_ref);
        let mut travel = theta_ref.clone();
        travel.axpy(-1.0, theta0);
        let target = shifted(&target, &unit_direction(b, 40), 0.3 * travel.norm() as f32);
        Outer::Mtt {
            start: theta0.clone(),
            target,
        }
    }

    fn real(b: &Bundle) -> Outer {
        let (x, y) = batch(b, 12, 41);
        Outer::Real { x, y }
    }

    /// Value (in f64, from the logits for the real-batch loss) and gradient at `theta`.
    fn eval(&self, b: &Bundle, theta: &Params) -> (f64, Params) {
        match self {
            Outer::Mtt { start, target } => {
                let l = trajectory_matching(theta, start, target).unwrap();
                (l.value, l.grad)
            }
            Outer::Real { x, y } => {
                let logits = b.forward(theta, x.view()).unwrap().logits;
                let ce = cross_entropy(&logits, y);
                let value = ce.iter().sum::<f64>() / ce.len() as f64;
                let l = ddlens::distill::real_batch_loss(b, theta, x.view(), y.view()).unwrap();
                assert_close("real_batch_loss value", l.value, value, 1e-5, 1e-3);
                (value, l.grad)
            }
        }
    }
}

/// One unrolled problem: model, synthetic set, schedule, optimiser, start and outer loss.
struct Setup {
    b: Bundle,
    theta0: Params,
    x: Array4<f32>,
    y: Array1<i64>,
    batches: Vec<Vec<usize>>,
    sgd: InnerSgd,
    outer: Outer,
}

impl Setup {
    fn new(sgd: InnerSgd, bptt: bool) -> Setup {
        let b = open(MODEL);
        let theta0 = smooth_params(&b, 30);
        let (x, y) = batch(&b, N_SYN, 31);
        let batches = schedule();
        let outer = if bptt {
            Outer::real(&b)
        } else {
            let inner = InnerLoop::new(&b, x.view(), y.view(), &batches, sgd).unwrap();
            let theta_ref = inner.unroll(theta0.clone()).unwrap().final_params().clone();
            Outer::mtt(&b, &theta0, &theta_ref)
        };
        Setup {
            b,
            theta0,
            x,
            y,
            batches,
            sgd,
            outer,
        }
    }

    fn inner<'a>(&'a self, x: &'a Array4<f32>, sgd: InnerSgd) -> InnerLoop<'a> {
        InnerLoop::new(&self.b, x.view(), self.y.view(), &self.batches, sgd).unwrap()
    }

    /// The outer loss after unrolling from `theta0` on images `x` with `sgd`.
    fn loss(&self, x: &Array4<f32>, sgd: InnerSgd, theta0: &Params) -> f64 {
        let run = self.inner(x, sgd).unroll(theta0.clone()).unwrap();
        self.outer.eval(&self.b, run.final_params()).0
    }

    fn loss_with(&self, inner: InnerLoop<'_>) -> f64 {
        let run = inner.unroll(self.theta0.clone()).unwrap();
        self.outer.eval(&self.b, run.final_params()).0
    }

    fn unroll(&self) -> Unrolled<'_> {
        self.inner(&self.x, self.sgd)
            .unroll(self.theta0.clone())
            .unwrap()
    }

    fn outer_grad(&self, run: &Unrolled) -> Params {
        self.outer.eval(&self.b, run.final_params()).1
    }
}

/// Central difference with Richardson extrapolation (truncation O(ε⁴)) along a unit
/// direction in parameters (or lr, scaled).
fn fd(f: impl Fn(f32) -> f64) -> f64 {
    central_richardson(f, 1e-2)
}

/// The same along a unit direction over all images, with a larger step: images reach θ_N
/// only through `lr·J_x` over a few steps, so the loss moves by ~1e-4 per unit step and a
/// step of 1e-2 drowns in the float32 rounding of θ_N (measured: 2-5% off, 30% at 1e-3,
/// 0.01% at 0.3). A 0.3 step over 576 pixels is 0.0125 per pixel, far from any ReLU kink at
/// the smooth point.
fn fd_images(f: impl Fn(f32) -> f64) -> f64 {
    central_richardson(f, 0.3)
}

fn check_images(s: &Setup, what: &str) {
    let run = s.unroll();
    let grads = run.adjoint(&s.outer_grad(&run)).unwrap();
    assert_eq!(grads.x.dim(), s.x.dim());
    for seed in [50, 51] {
        let d = unit_array4(s.x.dim(), seed);
        let want = fd_images(|e| s.loss(&(&s.x + &(&d * e)), s.sgd, &s.theta0));
        let got = dot4(&grads.x, &d);
        eprintln!("{what}: <dL/dx, d> = {got:.6e}, fd {want:.6e}");
        assert_close(&format!("{what}: <dL/dx, d>"), got, want, RTOL, 1e-6);
    }
}

fn check_lr(s: &Setup, what: &str) {
    let run = s.unroll();
    let grads = run.adjoint(&s.outer_grad(&run)).unwrap();
    let lr = s.sgd.lr;
    // A relative step on lr, with the same float32 considerations as the image steps.
    let h = lr * 1e-2;
    let want = central_richardson(
        |e| {
            let sgd = InnerSgd {
                lr: lr + e,
                ..s.sgd
            };
            s.loss(&s.x, sgd, &s.theta0)
        },
        h,
    );
    eprintln!("{what}: dL/dlr = {:.6e}, fd {want:.6e}", grads.lr);
    assert_close(&format!("{what}: dL/dlr"), grads.lr, want, RTOL, 1e-6);
}

fn check_theta0(s: &Setup, what: &str) {
    let run = s.unroll();
    let a_n = s.outer_grad(&run);
    let grads = run.adjoint(&a_n).unwrap();
    for seed in [60, 61] {
        let d = unit_direction(&s.b, seed);
        let want = fd(|e| s.loss(&s.x, s.sgd, &shifted(&s.theta0, &d, e)));
        let got = grads.theta.dot(&d);
        eprintln!(
            "{what}: <dL/dθ0, d> = {got:.6e}, fd {want:.6e} (without the Hessian terms: {:.6e})",
            a_n.dot(&d)
        );
        assert_close(&format!("{what}: <dL/dθ0, d>"), got, want, RTOL, 1e-6);
    }
    // The check must exercise the H·a chain: dropping it (dL/dθ0 ≈ dL/dθ_N) is far off.
    let mut chain = grads.theta.clone();
    chain.axpy(-1.0, &a_n);
    assert!(
        chain.norm() > 0.1 * grads.theta.norm(),
        "{what}: the Hessian terms barely change dL/dθ0 ({:.3e} of {:.3e}); the test is too weak",
        chain.norm(),
        grads.theta.norm()
    );
}

fn mtt_sgd() -> InnerSgd {
    InnerSgd::plain(2e-3)
}

fn bptt_sgd() -> InnerSgd {
    InnerSgd {
        lr: 1e-3,
        momentum: 0.9,
        weight_decay: 5e-3,
    }
}

#[test]
fn mtt_image_gradient_matches_finite_differences() {
    check_images(&Setup::new(mtt_sgd(), false), "MTT, plain SGD");
}

#[test]
fn mtt_lr_gradient_matches_finite_differences() {
    check_lr(&Setup::new(mtt_sgd(), false), "MTT, plain SGD");
}

#[test]
fn mtt_theta0_gradient_matches_finite_differences() {
    check_theta0(&Setup::new(mtt_sgd(), false), "MTT, plain SGD");
}

#[test]
fn bptt_momentum_gradients_match_finite_differences() {
    let s = Setup::new(bptt_sgd(), true);
    let what = "BPTT, momentum 0.9, weight decay 5e-3";
    check_images(&s, what);
    check_lr(&s, what);
    check_theta0(&s, what);
}

/// Weight decay shrinks θ by `lr·λ` per step; at realistic λ that is invisible over five
/// steps, so a large λ makes its adjoint term (`λ·w`) carry ~10% of `dL/dθ0`.
#[test]
fn weight_decay_enters_the_adjoint() {
    let sgd = InnerSgd {
        lr: 1e-3,
        momentum: 0.9,
        weight_decay: 20.0,
    };
    let s = Setup::new(sgd, true);
    let what = "BPTT, momentum 0.9, weight decay 20";
    check_theta0(&s, what);
    check_lr(&s, what);
}

/// The unroll is the crate's own SGD (PyTorch's rule), and keeps exactly N + 1 iterates.
#[test]
fn unroll_matches_the_trainer_optimizer_and_stores_only_iterates() {
    let s = Setup::new(bptt_sgd(), true);
    let run = s.unroll();
    assert_eq!(run.iterates().len(), SCHEDULE.len() + 1);
    assert_eq!(run.steps(), SCHEDULE.len());
    assert_eq!(run.iterates()[0], s.theta0);
    assert_eq!(
        run.iterate_bytes(),
        (SCHEDULE.len() + 1) * s.theta0.numel() * 4
    );
    let mut sgd = Sgd::new(SgdConfig {
        momentum: s.sgd.momentum,
        weight_decay: s.sgd.weight_decay,
    });
    let mut theta = s.theta0.clone();
    for (k, idx) in s.batches.iter().enumerate() {
        let xb = s.x.select(Axis(0), idx);
        let yb = s.y.select(Axis(0), idx);
        let g = s.b.grad(&theta, xb.view(), yb.view(), None).unwrap().grad;
        sgd.step(&mut theta, g, s.sgd.lr);
        assert_eq!(run.iterates()[k + 1], theta, "iterate {}", k + 1);
    }
}

/// A window covering every step reproduces the full adjoint, an empty one gives nothing.
#[test]
fn full_and_empty_windows() {
    let s = Setup::new(bptt_sgd(), true);
    let run = s.unroll();
    let a_n = s.outer_grad(&run);
    let full = run.adjoint(&a_n).unwrap();
    let window = run.adjoint_window(&a_n, 0..run.steps()).unwrap();
    assert_eq!(window.x, full.x);
    assert_eq!(window.lr, full.lr);
    assert_eq!(window.theta, full.theta);
    for k in [0, 2, run.steps()] {
        let empty = run.adjoint_window(&a_n, k..k).unwrap();
        assert!(empty.x.iter().all(|&v| v == 0.0), "window {k}..{k}");
        assert_eq!(empty.lr, 0.0);
    }
    let at_end = run.adjoint_window(&a_n, run.steps()..run.steps()).unwrap();
    assert_eq!(at_end.theta, a_n, "dL/dθ_N is the outer gradient itself");
    assert!(full.x.iter().any(|&v| v != 0.0));
}

/// Adds `eps·d` to the images of the steps inside `window` only: the finite difference of
/// the loss along it is exactly what a truncated adjoint differentiates (images of the window
/// steps, everything before the window held fixed).
struct ShiftInWindow<'a> {
    d: &'a Array4<f32>,
    batches: &'a [Vec<usize>],
    window: Range<usize>,
    eps: f32,
}

impl BatchTransform for ShiftInWindow<'_> {
    fn forward(&self, step: usize, x: ArrayView4<f32>) -> Result<Array4<f32>> {
        if !self.window.contains(&step) {
            return Ok(x.to_owned());
        }
        let shift = self.d.select(Axis(0), &self.batches[step]);
        Ok(&x + &(&shift * self.eps))
    }

    fn vjp(&self, _: usize, _: ArrayView4<f32>, grad_out: Array4<f32>) -> Result<Array4<f32>> {
        Ok(grad_out)
    }
}

#[test]
fn truncated_window_matches_finite_differences() {
    for (bptt, sgd) in [(false, mtt_sgd()), (true, bptt_sgd())] {
        let s = Setup::new(sgd, bptt);
        let run = s.unroll();
        let a_n = s.outer_grad(&run);
        for window in [1..3, 2..5] {
            let grads = run.adjoint_window(&a_n, window.clone()).unwrap();
            // Along the windowed gradient itself: a random direction can catch the window's
            // contributions cancelling out (measured: 1e-5, near the rounding floor).
            let norm = dot4(&grads.x, &grads.x).sqrt();
            assert!(norm > 0.0, "window {window:?} gives no image gradient");
            let d = grads.x.mapv(|v| v / norm as f32);
            let want = fd_images(|eps| {
                let shift = ShiftInWindow {
                    d: &d,
                    batches: &s.batches,
                    window: window.clone(),
                    eps,
                };
                s.loss_with(s.inner(&s.x, s.sgd).with_transform(&shift))
            });
            let got = dot4(&grads.x, &d);
            eprintln!(
                "window {window:?} (momentum {}): {got:.6e}, fd {want:.6e}",
                sgd.momentum
            );
            assert_close(
                &format!("window {window:?}, momentum {}", sgd.momentum),
                got,
                want,
                RTOL,
                1e-6,
            );
        }
    }
}

/// A per-step affine image map `x ↦ s_k x + t_k`, standing in for augmentation: the image
/// gradient must be pulled back through its VJP.
struct Affine;

impl Affine {
    fn coeffs(step: usize) -> (f32, f32) {
        (0.5 + 0.25 * step as f32, 0.1 * step as f32 - 0.2)
    }
}

impl BatchTransform for Affine {
    fn forward(&self, step: usize, x: ArrayView4<f32>) -> Result<Array4<f32>> {
        let (s, t) = Affine::coeffs(step);
        Ok(x.mapv(|v| s * v + t))
    }

    fn vjp(&self, step: usize, _: ArrayView4<f32>, grad_out: Array4<f32>) -> Result<Array4<f32>> {
        Ok(grad_out * Affine::coeffs(step).0)
    }
}

#[test]
fn transform_vjp_is_pulled_back() {
    let s = Setup::new(mtt_sgd(), false);
    let inner = s.inner(&s.x, s.sgd).with_transform(&Affine);
    let run = inner.unroll(s.theta0.clone()).unwrap();
    let grads = run.adjoint(&s.outer_grad(&run)).unwrap();
    let d = unit_array4(s.x.dim(), 80);
    let want = fd_images(|e| {
        let x = &s.x + &(&d * e);
        s.loss_with(s.inner(&x, s.sgd).with_transform(&Affine))
    });
    let got = dot4(&grads.x, &d);
    eprintln!("affine transform: {got:.6e}, fd {want:.6e}");
    assert_close("with a transform", got, want, RTOL, 1e-6);
}

#[test]
fn bad_arguments_are_named() {
    let s = Setup::new(mtt_sgd(), false);
    let err = |r: ddlens::Result<InnerLoop>| r.err().expect("should fail").to_string();
    let bad_index = vec![vec![0, 9]];
    let e = err(InnerLoop::new(
        &s.b,
        s.x.view(),
        s.y.view(),
        &bad_index,
        s.sgd,
    ));
    assert!(e.contains("batches") && e.contains("image 9"), "{e}");
    let empty = vec![vec![]];
    let e = err(InnerLoop::new(&s.b, s.x.view(), s.y.view(), &empty, s.sgd));
    assert!(e.contains("step 0 is empty"), "{e}");
    let e = err(InnerLoop::new(
        &s.b,
        s.x.view(),
        s.y.view(),
        &s.batches,
        InnerSgd::plain(0.0),
    ));
    assert!(e.contains("`lr`"), "{e}");
    let short_y = s.y.slice(ndarray::s![..4]);
    let e = err(InnerLoop::new(&s.b, s.x.view(), short_y, &s.batches, s.sgd));
    assert!(e.contains("y_syn"), "{e}");
    let wrong = Array4::<f32>::zeros((N_SYN, 1, 8, 7));
    let e = err(InnerLoop::new(
        &s.b,
        wrong.view(),
        s.y.view(),
        &s.batches,
        s.sgd,
    ));
    assert!(e.contains("x_syn") && e.contains("tiny-1x8x8"), "{e}");
    let run = s.unroll();
    let a_n = s.outer_grad(&run);
    let e = run.adjoint_window(&a_n, 2..7).unwrap_err().to_string();
    assert!(e.contains("window"), "{e}");
    let e = trajectory_matching(&s.theta0, &s.theta0, &s.theta0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("target"), "{e}");
    let other = Params::from_tensors(&[], vec![]).unwrap();
    let e = run.adjoint(&other).unwrap_err().to_string();
    assert!(e.contains("outer_grad"), "{e}");
    let e = trajectory_matching(&s.theta0, &other, &s.theta0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`start`"), "{e}");
}

#[test]
fn epoch_batches_cover_the_set_once_per_epoch() {
    let b = epoch_batches(9, 4, 7, 3).unwrap();
    let sizes: Vec<usize> = b.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 4, 1, 4, 4, 1, 4]);
    for epoch in [&b[0..3], &b[3..6]] {
        let mut seen: Vec<usize> = epoch.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<_>>());
    }
    assert_eq!(b, epoch_batches(9, 4, 7, 3).unwrap(), "seeded");
    assert_ne!(b, epoch_batches(9, 4, 7, 4).unwrap());
    assert!(epoch_batches(0, 4, 1, 0).is_err());
}
