//! Gradient matching (src/distill/dc.rs) on the tiny bundle: the distance's gradient with
//! respect to the synthetic images against central finite differences, its zero on identical
//! batches, the closed-form derivative of the cosine distance, and the method lowering the
//! matching distance over a few iterations.
//!
//! Checks run at `smooth_params`, where every ReLU is clearly on or off for the test images:
//! the analytic gradient differentiates the active piece, and a finite difference whose step
//! crossed a kink would measure the jump instead.

use crate::common;

use crate::common::*;
use ddlens::augment::Dsa;
use ddlens::distill::{
    class_match, gradient_distance, Dc, DcConfig, IterContext, Method, Synthetic,
};
use ddlens::{Bundle, Dataset, Params};
use ndarray::{Array1, Array4, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MODEL: &str = "tiny-1x8x8";

fn real_data(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

/// Images and labels.
type Labelled = (Array4<f32>, Array1<i64>);

/// A class-0 real batch of 12 and 3 synthetic class-0 images.
fn class_batches(b: &Bundle) -> (Labelled, Labelled) {
    let (xr, _) = batch(b, 12, 71);
    let (xs, _) = batch(b, 3, 72);
    ((xr, Array1::zeros(12)), (xs, Array1::zeros(3)))
}

fn distance(b: &Bundle, p: &Params, real: &Labelled, xs: &Array4<f32>) -> f64 {
    let gr = b.grad(p, real.0.view(), real.1.view(), None).unwrap().grad;
    let gs = b
        .grad(p, xs.view(), Array1::zeros(xs.len_of(Axis(0))).view(), None)
        .unwrap()
        .grad;
    gradient_distance(&gs, &gr).unwrap().value
}

#[test]
fn cosine_distance_derivative_matches_finite_differences() {
    // Pure Rust: ∂dist/∂g_syn against f64 differences on random gradients of the tiny shapes.
    let b = open(MODEL);
    let gs = b.init_params(1);
    let gr = b.init_params(2);
    let d = gradient_distance(&gs, &gr).unwrap();
    // Rank-1 tensors are ignored, so their derivative is exactly zero.
    for (spec, t) in b.manifest().params.iter().zip(d.d_syn.tensors()) {
        if spec.shape.len() < 2 {
            assert!(
                t.iter().all(|&v| v == 0.0),
                "`{}` should be ignored",
                spec.name
            );
        } else {
            assert!(
                t.iter().any(|&v| v != 0.0),
                "`{}` has no gradient",
                spec.name
            );
        }
    }
    for seed in [3, 4, 5] {
        let dir = unit_direction(&b, seed);
        let want = central_richardson(
            |e| {
                gradient_distance(&shifted(&gs, &dir, e), &gr)
                    .unwrap()
                    .value
            },
            1e-2,
        );
        let got = d.d_syn.dot(&dir);
        eprintln!("d dist / d g_syn along a direction: {got:.6e}, fd {want:.6e}");
        assert_close("<∂dist/∂g_syn, d>", got, want, 1e-4, 1e-6);
    }
}

/// What the reference distance gives between a gradient and itself:
/// `Σ_rows 1 − |g_r|² / (|g_r|² + 1e-6) = Σ_rows 1e-6 / (|g_r|² + 1e-6)` over tensors of rank
/// ≥ 2 (essentially zero, except 1 for each all-zero row), and the number of all-zero rows.
fn self_distance(g: &Params) -> (f64, usize) {
    let mut value = 0.0;
    let mut zero_rows = 0;
    for t in g.tensors().iter().filter(|t| t.ndim() >= 2) {
        let rows = t.shape()[0];
        let t = t.as_standard_layout();
        let flat = t.as_slice().unwrap();
        let cols = flat.len() / rows;
        for r in 0..rows {
            let n2: f64 = flat[r * cols..(r + 1) * cols]
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum();
            value += 1e-6 / (n2 + 1e-6);
            zero_rows += usize::from(n2 == 0.0);
        }
    }
    (value, zero_rows)
}

#[test]
fn distance_is_zero_for_identical_batches() {
    let b = open(MODEL);
    // A generic initialisation: every channel has a non-zero gradient row.
    let p = b.init_params(10);
    let (_, (xs, ys)) = class_batches(&b);
    let g = b.grad(&p, xs.view(), ys.view(), None).unwrap().grad;
    let (want, zero_rows) = self_distance(&g);
    assert_eq!(zero_rows, 0);
    let m = class_match(&b, &p, (xs.clone(), ys.clone()), (&xs, &ys), None).unwrap();
    eprintln!(
        "identical batches: distance {:.3e} (the 1e-6 epsilon's share: {want:.3e})",
        m.distance
    );
    assert!(m.distance.abs() < 1e-3, "distance {}", m.distance);
    assert!(
        (m.distance - want).abs() < 1e-6,
        "distance {} != {want}",
        m.distance
    );
    // A different batch is far from zero (the check above is not vacuous).
    let (real, _) = class_batches(&b);
    let far = class_match(&b, &p, real, (&xs, &ys), None).unwrap();
    assert!(far.distance > 0.1, "distance {}", far.distance);

    // As in the reference, an all-zero gradient row (a dead channel: smooth_params switches
    // half the conv channels off with a -8 norm bias) counts as 1 even between identical
    // batches, since its cosine is 0 / (0 + 1e-6).
    let p = smooth_params(&b, 10);
    let g = b.grad(&p, xs.view(), ys.view(), None).unwrap().grad;
    let (want, zero_rows) = self_distance(&g);
    assert!(
        zero_rows > 0,
        "smooth_params should switch some channels off"
    );
    let m = class_match(&b, &p, (xs.clone(), ys.clone()), (&xs, &ys), None).unwrap();
    assert!(
        (m.distance - want).abs() < 1e-6,
        "distance {} with {zero_rows} dead rows, expected {want}",
        m.distance
    );
}

fn check_image_gradient(aug: Option<ddlens::augment::Augmentation>, what: &str) {
    let b = open(MODEL);
    let p = smooth_params(&b, 10);
    let (real, (xs, ys)) = class_batches(&b);
    let m = class_match(&b, &p, real.clone(), (&xs, &ys), aug.as_ref()).unwrap();
    assert_eq!(m.x_grad.dim(), xs.dim());
    let real_t = match &aug {
        Some(a) => (a.apply(real.0.view()).unwrap(), real.1.clone()),
        None => real.clone(),
    };
    let f = |x: &Array4<f32>| {
        let x = match &aug {
            Some(a) => a.apply(x.view()).unwrap(),
            None => x.clone(),
        };
        distance(&b, &p, &real_t, &x)
    };
    assert!(
        (f(&xs) - m.distance).abs() < 1e-9,
        "{what}: class_match's distance differs from the reference computation"
    );
    for seed in [80, 81, 82] {
        let d = unit_array4(xs.dim(), seed);
        let want = central_richardson(|e| f(&(&xs + &(&d * e))), 1e-2);
        let got = dot4(&m.x_grad, &d);
        let rel = (got - want).abs() / want.abs().max(1e-6);
        eprintln!(
            "{what}: <∂dist/∂x_syn, d> = {got:.6e}, fd {want:.6e} (relative error {rel:.2e})"
        );
        assert_close(&format!("{what}: <∂dist/∂x_syn, d>"), got, want, 1e-2, 1e-4);
    }
}

#[test]
fn image_gradient_matches_finite_differences() {
    check_image_gradient(None, "DC");
}

#[test]
fn image_gradient_through_dsa_matches_finite_differences() {
    // Every DSA family is affine in the pixels; scale and rotate resample bilinearly, so they
    // exercise the transposed scatter. Draw until the sample is one of those.
    let dsa = Dsa::default();
    let mut r = ChaCha8Rng::seed_from_u64(5);
    let aug = loop {
        let a = dsa.sample_shared(&mut r);
        if matches!(a.op().map(|o| o.name()), Some("scale" | "rotate")) {
            break a;
        }
    };
    check_image_gradient(Some(aug), "DSA");
}

/// The mean gradient-matching distance over fixed networks and fixed real class batches: a
/// deterministic stand-in for the method's (random) objective.
fn objective(b: &Bundle, real: &Dataset, syn: &Synthetic) -> f64 {
    let by_class = real.class_indices();
    let mut total = 0.0;
    for seed in 0..4 {
        let p = b.init_params(1000 + seed);
        for (c, idx) in syn.class_indices().iter().enumerate() {
            let ri = &by_class[c][..16];
            let xr = real.images().select(Axis(0), ri);
            let yr = real.labels().select(Axis(0), ri);
            let xs = syn.images.select(Axis(0), idx);
            let ys = syn.labels.select(Axis(0), idx);
            total += class_match(b, &p, (xr, yr), (&xs, &ys), None)
                .unwrap()
                .distance;
        }
    }
    total / 4.0
}

fn noise_synthetic(ipc: usize, seed: u64) -> Synthetic {
    let n = 3 * ipc;
    let mut r = rng(seed);
    Synthetic {
        images: Array4::from_shape_vec((n, 1, 8, 8), normal_vec(&mut r, n * 64)).unwrap(),
        labels: Array1::from_shape_fn(n, |i| (i / ipc) as i64),
        num_classes: 3,
        lr: None,
    }
}

fn run(
    method: &mut Dc,
    b: &Bundle,
    real: &Dataset,
    syn: &mut Synthetic,
    iters: std::ops::Range<usize>,
) -> Vec<f32> {
    let by_class = real.class_indices();
    iters
        .map(|it| {
            let mut ctx = IterContext {
                bundle: b,
                real,
                real_by_class: &by_class,
                iteration: it,
                rng: ChaCha8Rng::seed_from_u64(77 + it as u64),
            };
            method.iterate(&mut ctx, syn).unwrap()
        })
        .collect()
}

#[test]
fn iterations_lower_the_matching_distance_and_resume_exactly() {
    let b = open(MODEL);
    let real = real_data(90, 3);
    let mut syn = noise_synthetic(2, 4);
    let config = DcConfig {
        outer_loop: 3,
        inner_loop: 2,
        lr_img: 1.0,
        batch_real: 16,
        ..DcConfig::for_ipc(2).unwrap()
    };
    let mut dc = Dc::new(config.clone()).unwrap();
    assert_eq!(dc.name(), "dc");
    let before = objective(&b, &real, &syn);
    let losses = run(&mut dc, &b, &real, &mut syn, 0..8);
    let after = objective(&b, &real, &syn);
    eprintln!("DC: objective {before:.4} -> {after:.4}; iteration losses {losses:?}");
    assert!(after < 0.8 * before, "objective {before} -> {after}");

    // Resume: a fresh method with the saved state continues exactly like the original.
    let state = dc.state();
    assert_eq!(state.len(), 1);
    let mut resumed = Dc::new(config).unwrap();
    resumed.load_state(state).unwrap();
    let mut syn2 = syn.clone();
    let a = run(&mut dc, &b, &real, &mut syn, 8..10);
    let r = run(&mut resumed, &b, &real, &mut syn2, 8..10);
    assert_eq!(a, r);
    assert_eq!(syn, syn2);
    assert!(resumed
        .load_state(vec![("bogus".into(), ndarray::ArrayD::zeros(vec![1]))])
        .unwrap_err()
        .to_string()
        .contains("bogus"));
}

#[test]
fn loops_follow_the_reference_table() {
    for (ipc, want) in [(1, (1, 1)), (10, (10, 50)), (50, (50, 10))] {
        let c = DcConfig::for_ipc(ipc).unwrap();
        assert_eq!((c.outer_loop, c.inner_loop), want, "ipc {ipc}");
    }
    assert!(DcConfig::for_ipc(0)
        .unwrap_err()
        .to_string()
        .contains("ipc"));
    let bad = DcConfig {
        lr_img: -1.0,
        ..DcConfig::for_ipc(1).unwrap()
    };
    assert!(Dc::new(bad).unwrap_err().to_string().contains("lr_img"));
}
