//! Expert trajectories and MTT (src/distill/{expert,mtt}.rs) on the tiny bundle with a small
//! learnable in-memory dataset: generation is deterministic, storage is lossless, and a few
//! MTT iterations lower the trajectory-matching loss and move the learned lr. (The exactness
//! of the gradients themselves is tests/distill_unroll.rs's job.)

use crate::common;

use crate::common::*;
use ddlens::augment::Dsa;
use ddlens::distill::{
    generate_experts, generate_experts_into, save_experts, trajectory_matching, ExpertConfig,
    ExpertDir, ExpertSource, InnerLoop, InnerSgd, IterContext, Method, Mtt, MttConfig, Synthetic,
    Trajectory,
};
use ddlens::progress::Silent;
use ddlens::{Bundle, Dataset};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MODEL: &str = "tiny-1x8x8";

fn real_data(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

fn expert_config(dsa: bool) -> ExpertConfig {
    ExpertConfig {
        batch: 16,
        lr: 0.05,
        dsa: dsa.then(Dsa::default),
        ..ExpertConfig::new(4)
    }
}

fn experts(b: &Bundle, real: &Dataset) -> Vec<Trajectory> {
    generate_experts(b, real, 2, &expert_config(true), 9, &mut Silent).unwrap()
}

#[test]
fn experts_are_deterministic_and_stored_losslessly() {
    let b = open(MODEL);
    let real = real_data(60, 1);
    let mut calls = Vec::new();
    let a = generate_experts(
        &b,
        &real,
        2,
        &expert_config(true),
        9,
        &mut |_: &str, done, total| {
            calls.push((done, total));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(
        calls,
        (0..=8).map(|d| (d, 8)).collect::<Vec<_>>(),
        "one count over every expert's epochs, from 0"
    );
    let again = experts(&b, &real);
    assert_eq!(a, again, "same seed, same trajectories");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].epochs(), 4);
    assert_ne!(
        a[0].checkpoints[0], a[1].checkpoints[0],
        "experts start apart"
    );
    assert_ne!(
        a[0].checkpoints[3], a[0].checkpoints[4],
        "an epoch moves the expert"
    );
    // Expert i does not depend on how many are generated.
    let one = generate_experts(&b, &real, 1, &expert_config(true), 9, &mut Silent).unwrap();
    assert_eq!(one[0], a[0]);
    let other = generate_experts(&b, &real, 1, &expert_config(true), 10, &mut Silent).unwrap();
    assert_ne!(other[0], a[0]);
    // Training lowers the loss on the real data.
    let loss = |p| {
        b.grad(p, real.images().view(), real.labels().view(), None)
            .unwrap()
            .loss
    };
    assert!(loss(&a[0].checkpoints[4]) < 0.7 * loss(&a[0].checkpoints[0]));

    let dir = tempfile::tempdir().unwrap();
    let index = save_experts(dir.path(), b.manifest(), &a, &expert_config(true), 9).unwrap();
    assert_eq!((index.experts, index.epochs), (2, 4));
    let stored = ExpertDir::open(dir.path(), b.manifest()).unwrap();
    assert_eq!(stored.index(), &index);
    assert_eq!(stored.load_all().unwrap(), a, "bit-exact round trip");
    assert_eq!(stored.checkpoint(1, 3).unwrap(), a[1].checkpoints[3]);
    assert!(stored
        .checkpoint(2, 0)
        .unwrap_err()
        .to_string()
        .contains("expert"));

    // Damage is reported with the file's path.
    std::fs::remove_file(ddlens::distill::expert_checkpoint_path(dir.path(), 1, 2)).unwrap();
    let err = ExpertDir::open(dir.path(), b.manifest())
        .unwrap_err()
        .to_string();
    assert!(err.contains("epoch-0002"), "{err}");
    let other = open("tiny-maxpool-1x8x8");
    let err = ExpertDir::open(dir.path(), other.manifest())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tiny-1x8x8"), "{err}");
}

#[test]
fn interrupted_expert_generation_resumes_to_the_same_files() {
    let b = open(MODEL);
    let real = real_data(60, 1);
    // Momentum, so that the optimiser's velocity is part of the state to resume.
    let config = ExpertConfig {
        momentum: 0.5,
        ..expert_config(true)
    };
    let whole = tempfile::tempdir().unwrap();
    let index = generate_experts_into(whole.path(), &b, &real, 2, &config, 9, &mut Silent).unwrap();
    let in_memory = generate_experts(&b, &real, 2, &config, 9, &mut Silent).unwrap();
    let stored = ExpertDir::open(whole.path(), b.manifest()).unwrap();
    assert_eq!(
        stored.load_all().unwrap(),
        in_memory,
        "same as generate_experts"
    );

    // Stop in the middle of expert 1 (after its second epoch), then call again.
    let part = tempfile::tempdir().unwrap();
    let err = generate_experts_into(
        part.path(),
        &b,
        &real,
        2,
        &config,
        9,
        &mut |_: &str, done, _| {
            // Expert 1 after its second epoch: 4 + 2 epochs done.
            if done == 6 {
                Err(ddlens::Error::Cancelled("test".into()))
            } else {
                Ok(())
            }
        },
    )
    .unwrap_err();
    assert!(matches!(err, ddlens::Error::Cancelled(_)), "{err}");
    assert!(
        ExpertDir::open(part.path(), b.manifest()).is_err(),
        "no index beside an unfinished generation"
    );
    let mut calls = Vec::new();
    let resumed = generate_experts_into(
        part.path(),
        &b,
        &real,
        2,
        &config,
        9,
        &mut |_: &str, done, total| {
            calls.push((done, total));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(resumed, index);
    assert_eq!(calls, [(6, 8), (7, 8), (8, 8)], "only the rest is trained");
    for e in 0..2 {
        for ep in 0..=4 {
            let path = |d: &std::path::Path| ddlens::distill::expert_checkpoint_path(d, e, ep);
            assert_eq!(
                std::fs::read(path(whole.path())).unwrap(),
                std::fs::read(path(part.path())).unwrap(),
                "expert {e} epoch {ep} differs after resuming"
            );
        }
    }

    // Other settings on the same folder: refused before anything is touched.
    let other = ExpertConfig {
        lr: 0.01,
        ..config.clone()
    };
    let err = generate_experts_into(part.path(), &b, &real, 2, &other, 9, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("state.json") && err.contains("other settings"),
        "{err}"
    );
    assert!(
        ExpertDir::open(part.path(), b.manifest()).is_ok(),
        "index kept"
    );
}

fn synthetic_from_real(real: &Dataset, ipc: usize) -> Synthetic {
    Synthetic::from_real(real, ipc, 3).unwrap()
}

fn config() -> MttConfig {
    MttConfig {
        syn_steps: 6,
        expert_epochs: 2,
        max_start_epoch: 3,
        lr_img: 100.0,
        lr_lr: 1e-4,
        lr_init: 0.05,
        dsa: None,
        ..MttConfig::default()
    }
}

/// The mean matching loss over every (expert, start epoch) pair with full-batch student steps
/// and no augmentation: deterministic, unlike one iteration's random draw.
fn objective(b: &Bundle, experts: &[Trajectory], syn: &Synthetic, cfg: &MttConfig) -> f64 {
    let batches = vec![(0..syn.len()).collect::<Vec<_>>(); cfg.syn_steps];
    let inner = InnerLoop::new(
        b,
        syn.images.view(),
        syn.labels.view(),
        &batches,
        InnerSgd::plain(syn.lr.unwrap()),
    )
    .unwrap();
    let mut total = 0.0;
    let mut n = 0;
    for e in experts {
        for t in 0..cfg.max_start_epoch {
            let start = &e.checkpoints[t];
            let run = inner.unroll(start.clone()).unwrap();
            let target = &e.checkpoints[t + cfg.expert_epochs];
            total += trajectory_matching(run.final_params(), start, target)
                .unwrap()
                .value;
            n += 1;
        }
    }
    total / n as f64
}

fn iterate(m: &mut Mtt, b: &Bundle, real: &Dataset, syn: &mut Synthetic, it: usize) -> f32 {
    let by_class = real.class_indices();
    let mut ctx = IterContext {
        bundle: b,
        real,
        real_by_class: &by_class,
        iteration: it,
        rng: ChaCha8Rng::seed_from_u64(500 + it as u64),
    };
    if it == 0 {
        m.init(&mut ctx, syn).unwrap();
    }
    m.iterate(&mut ctx, syn).unwrap()
}

#[test]
fn iterations_lower_the_matching_loss_and_learn_the_lr() {
    let b = open(MODEL);
    let real = real_data(60, 1);
    let trajectories = experts(&b, &real);
    let cfg = config();
    let mut syn = synthetic_from_real(&real, 2);
    let mut mtt = Mtt::new(cfg.clone(), Box::new(trajectories.clone())).unwrap();
    assert_eq!(mtt.name(), "mtt");
    assert_eq!(mtt.start_epochs(), 3);
    let mut s0 = syn.clone();
    s0.lr = Some(cfg.lr_init);
    let before = objective(&b, &trajectories, &s0, &cfg);
    let losses: Vec<f32> = (0..12)
        .map(|it| iterate(&mut mtt, &b, &real, &mut syn, it))
        .collect();
    let after = objective(&b, &trajectories, &syn, &cfg);
    eprintln!(
        "MTT: objective {before:.4} -> {after:.4}, lr {} -> {:?}; losses {losses:?}",
        cfg.lr_init, syn.lr
    );
    assert!(after < 0.9 * before, "objective {before} -> {after}");
    let lr = syn.lr.unwrap();
    assert!(lr != cfg.lr_init && lr > 0.0, "lr {lr}");
    assert_eq!(mtt.state().len(), 2);

    // Resume from the state: identical continuation.
    let mut resumed = Mtt::new(cfg.clone(), Box::new(trajectories.clone())).unwrap();
    resumed.load_state(mtt.state()).unwrap();
    let mut syn2 = syn.clone();
    assert_eq!(
        iterate(&mut mtt, &b, &real, &mut syn, 12),
        iterate(&mut resumed, &b, &real, &mut syn2, 12)
    );
    assert_eq!(syn, syn2);
}

#[test]
fn iterations_with_dsa_and_minibatches_run_from_disk() {
    let b = open(MODEL);
    let real = real_data(60, 1);
    let trajectories = experts(&b, &real);
    let dir = tempfile::tempdir().unwrap();
    save_experts(
        dir.path(),
        b.manifest(),
        &trajectories,
        &expert_config(true),
        9,
    )
    .unwrap();
    let source = ExpertDir::open(dir.path(), b.manifest()).unwrap();
    let cfg = MttConfig {
        batch_syn: Some(4),
        dsa: Some(Dsa::default()),
        ..config()
    };
    let mut syn = synthetic_from_real(&real, 2);
    let start = syn.images.clone();
    let mut mtt = Mtt::new(cfg, Box::new(source)).unwrap();
    for it in 0..3 {
        let l = iterate(&mut mtt, &b, &real, &mut syn, it);
        assert!(l.is_finite() && l > 0.0, "loss {l}");
    }
    assert_ne!(syn.images, start);
}

#[test]
fn bad_settings_name_the_argument() {
    let b = open(MODEL);
    let real = real_data(30, 1);
    let t = generate_experts(
        &b,
        &real,
        1,
        &ExpertConfig {
            dsa: None,
            ..expert_config(false)
        },
        1,
        &mut Silent,
    )
    .unwrap();
    let err = |cfg: MttConfig| {
        Mtt::new(cfg, Box::new(t.clone()))
            .err()
            .expect("should fail")
            .to_string()
    };
    assert!(err(MttConfig {
        expert_epochs: 5,
        ..config()
    })
    .contains("expert_epochs"));
    assert!(err(MttConfig {
        syn_steps: 0,
        ..config()
    })
    .contains("syn_steps"));
    assert!(Mtt::new(config(), Box::new(Vec::<Trajectory>::new()))
        .err()
        .unwrap()
        .to_string()
        .contains("experts"));
    let bad = ExpertConfig {
        epochs: 0,
        ..expert_config(false)
    };
    assert!(generate_experts(&b, &real, 1, &bad, 1, &mut Silent)
        .unwrap_err()
        .to_string()
        .contains("epochs"));
}
