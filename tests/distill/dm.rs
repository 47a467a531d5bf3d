//! DM: the image gradient against central finite differences of the DM loss (fixed network
//! and fixed augmentations), and a few iterations lowering the loss.

use crate::common;

use ddlens::augment::{AugOp, Augmentation, Dsa};
use ddlens::distill::{run, Dm, DmConfig, RunConfig, Synthetic};
use ddlens::{Bundle, Dataset, Params};
use ndarray::{Array4, Axis};

fn synthetic(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

/// Every real image of each class, as DM's per-class real batches.
fn real_batches(real: &Dataset) -> Vec<Array4<f32>> {
    real.class_indices()
        .iter()
        .map(|idx| real.images().select(Axis(0), idx))
        .collect()
}

/// A sampled augmentation of family `op` (drawn until the strategy yields it).
fn aug_of(op: AugOp, seed: u64) -> Augmentation {
    let dsa = Dsa::new(Default::default(), vec![op]).unwrap();
    dsa.sample_shared(&mut common::rng(seed))
}

fn dm_loss(
    b: &Bundle,
    p: &Params,
    syn: &Synthetic,
    real: &[Array4<f32>],
    augs: &[Augmentation],
) -> f64 {
    Dm::loss_and_grad(b, p, syn, real, augs).unwrap().0 as f64
}

#[test]
fn image_gradient_matches_finite_differences() {
    let b = common::open("tiny-1x8x8");
    let p = common::smooth_params(&b, 3);
    let real = synthetic(30, 1);
    // Synthetic images far from the real ones, so the loss and its gradient are large.
    let mut syn = Synthetic::from_real(&synthetic(30, 9), 2, 4).unwrap();
    syn.images.mapv_inplace(|v| 0.5 * v);
    let batches = real_batches(&real);
    // Scale and rotate resample, colour mixes pixels through means: the VJPs that matter.
    let augs = [
        aug_of(AugOp::Rotate, 1),
        aug_of(AugOp::Color, 2),
        aug_of(AugOp::Scale, 3),
    ];
    let (loss, grad) = Dm::loss_and_grad(&b, &p, &syn, &batches, &augs).unwrap();
    assert!(
        loss > 1e-2,
        "the check needs a non-trivial loss, got {loss}"
    );
    for seed in [10, 11] {
        let v = common::unit_array4(syn.images.dim(), seed);
        let f = |eps: f32| {
            let mut moved = syn.clone();
            moved.images.scaled_add(eps, &v);
            dm_loss(&b, &p, &moved, &batches, &augs)
        };
        // At the smooth point a 5% move changes no ReLU mask (see tests/common), and
        // Richardson keeps the truncation error far below float32 rounding of the loss
        // (measured: ~1e-5 relative; dropping the augmentation VJP gives ~7e-2).
        let fd = common::central_richardson(f, 5e-2);
        let analytic = common::dot4(&grad, &v);
        common::assert_close("DM image gradient", analytic, fd, 2e-3, 1e-3);
    }
}

#[test]
fn class_gradient_only_touches_that_class() {
    let b = common::open("tiny-1x8x8");
    let p = common::smooth_params(&b, 3);
    let real = synthetic(30, 1);
    let syn = Synthetic::from_real(&synthetic(30, 9), 2, 4).unwrap();
    let mut batches = real_batches(&real);
    // Make class 1's real batch equal to its synthetic images: its loss and gradient vanish.
    let members = &syn.class_indices()[1];
    batches[1] = syn.images.select(Axis(0), members);
    let augs = vec![Augmentation::identity(); 3];
    let (_, grad) = Dm::loss_and_grad(&b, &p, &syn, &batches, &augs).unwrap();
    for &i in members {
        assert!(grad.index_axis(Axis(0), i).iter().all(|v| v.abs() < 1e-5));
    }
    let other = syn.class_indices()[0][0];
    assert!(grad
        .index_axis(Axis(0), other)
        .iter()
        .any(|v| v.abs() > 1e-5));
}

#[test]
fn a_few_iterations_lower_the_dm_loss() {
    let b = common::open("tiny-1x8x8");
    let real = synthetic(60, 1);
    // Start from noise, far from the real class means.
    let mut syn = Synthetic::from_real(&synthetic(60, 9), 2, 4).unwrap();
    syn.images = Array4::from_shape_vec(
        syn.images.dim(),
        common::normal_vec(&mut common::rng(5), syn.images.len()),
    )
    .unwrap();
    // The DM objective is an expectation over networks: measure it on fixed draws.
    let nets: Vec<Params> = (100..106).map(|s| b.init_params(s)).collect();
    let batches = real_batches(&real);
    let augs = vec![Augmentation::identity(); 3];
    let mean_loss = |syn: &Synthetic| {
        nets.iter()
            .map(|p| dm_loss(&b, p, syn, &batches, &augs))
            .sum::<f64>()
            / nets.len() as f64
    };
    let before = mean_loss(&syn);
    let mut dm = Dm::new(DmConfig {
        batch_real: 20,
        dsa: None,
        ..DmConfig::default()
    })
    .unwrap();
    let cfg = RunConfig {
        iterations: 20,
        seed: 1,
        ..RunConfig::default()
    };
    let log = run(
        &mut dm,
        &mut syn,
        &b,
        &real,
        &cfg,
        false,
        &mut ddlens::progress::Silent,
    )
    .unwrap();
    let after = mean_loss(&syn);
    assert_eq!(log.losses.len(), 20);
    assert!(
        after < 0.5 * before,
        "DM loss {before:.4} -> {after:.4}: expected at least halved"
    );
}
