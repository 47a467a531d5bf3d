//! BPTT and RaT-BPTT (src/distill/bptt.rs) on the tiny bundle with a small learnable
//! in-memory dataset: a few iterations lower the real loss after training on the synthetic
//! set. (The exactness of the unrolled gradients is tests/distill_unroll.rs's job.)

use crate::common;

use crate::common::*;
use ddlens::distill::{Bptt, BpttConfig, InnerLoop, InnerSgd, IterContext, Method, Synthetic};
use ddlens::{Bundle, Dataset};
use ndarray::{Array1, Array4};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MODEL: &str = "tiny-1x8x8";

fn real_data(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

/// Noise images: nothing to learn from until BPTT puts it there.
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

fn config() -> BpttConfig {
    BpttConfig {
        steps: 10,
        lr_init: 0.05,
        lr_img: 1.0,
        batch_real: 32,
        ..BpttConfig::default()
    }
}

/// Mean real loss (the whole real set) after `steps` full-batch steps from fixed inits.
fn objective(b: &Bundle, real: &Dataset, syn: &Synthetic, cfg: &BpttConfig) -> f64 {
    let batches = vec![(0..syn.len()).collect::<Vec<_>>(); cfg.steps];
    let sgd = InnerSgd {
        lr: syn.lr.unwrap_or(cfg.lr_init),
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    let inner = InnerLoop::new(b, syn.images.view(), syn.labels.view(), &batches, sgd).unwrap();
    let seeds = 0..4u64;
    let n = 4.0;
    seeds
        .map(|s| {
            let run = inner.unroll(b.init_params(2000 + s)).unwrap();
            let g = b
                .grad(
                    run.final_params(),
                    real.images().view(),
                    real.labels().view(),
                    None,
                )
                .unwrap();
            g.loss as f64
        })
        .sum::<f64>()
        / n
}

fn run(m: &mut Bptt, b: &Bundle, real: &Dataset, syn: &mut Synthetic, its: usize) -> Vec<f32> {
    let by_class = real.class_indices();
    (0..its)
        .map(|it| {
            let mut ctx = IterContext {
                bundle: b,
                real,
                real_by_class: &by_class,
                iteration: it,
                rng: ChaCha8Rng::seed_from_u64(900 + it as u64),
            };
            if it == 0 {
                m.init(&mut ctx, syn).unwrap();
            }
            m.iterate(&mut ctx, syn).unwrap()
        })
        .collect()
}

fn check_lowers(cfg: BpttConfig, what: &str, ratio: f64) -> Synthetic {
    let b = open(MODEL);
    let real = real_data(90, 1);
    let mut syn = noise_synthetic(2, 2);
    let mut m = Bptt::new(cfg.clone()).unwrap();
    let before = objective(&b, &real, &syn, &cfg);
    let losses = run(&mut m, &b, &real, &mut syn, 10);
    let after = objective(&b, &real, &syn, &cfg);
    eprintln!("{what}: real loss after training {before:.4} -> {after:.4}; losses {losses:?}");
    assert!(after < ratio * before, "{what}: {before} -> {after}");
    syn
}

#[test]
fn iterations_lower_the_real_loss() {
    let syn = check_lowers(config(), "BPTT", 0.8);
    assert_eq!(syn.lr, None, "the lr is not learned unless asked");
}

#[test]
fn rat_bptt_window_and_learned_lr() {
    let cfg = BpttConfig {
        window: Some(4),
        learn_lr: true,
        lr_lr: 1e-3,
        ..config()
    };
    assert_eq!(Bptt::new(cfg.clone()).unwrap().name(), "rat-bptt");
    let syn = check_lowers(
        cfg.clone(),
        "RaT-BPTT (window 4 of up to 10, learned lr)",
        0.9,
    );
    let lr = syn.lr.expect("learned lr");
    assert!(lr != cfg.lr_init && lr > 0.0, "lr {lr}");
}

#[test]
fn resumes_exactly_and_rejects_bad_settings() {
    let b = open(MODEL);
    let real = real_data(30, 1);
    let cfg = BpttConfig {
        batch_syn: Some(4),
        learn_lr: true,
        ..config()
    };
    let mut syn = noise_synthetic(2, 2);
    let mut m = Bptt::new(cfg.clone()).unwrap();
    run(&mut m, &b, &real, &mut syn, 2);
    assert_eq!(m.state().len(), 2);
    let mut resumed = Bptt::new(cfg.clone()).unwrap();
    resumed.load_state(m.state()).unwrap();
    let mut syn2 = syn.clone();
    assert_eq!(
        run(&mut m, &b, &real, &mut syn, 1),
        run(&mut resumed, &b, &real, &mut syn2, 1)
    );
    assert_eq!(syn, syn2);

    let err = |c: BpttConfig| Bptt::new(c).unwrap_err().to_string();
    assert!(err(BpttConfig {
        window: Some(11),
        ..config()
    })
    .contains("window"));
    assert!(err(BpttConfig {
        momentum: 1.0,
        ..config()
    })
    .contains("momentum"));
}
