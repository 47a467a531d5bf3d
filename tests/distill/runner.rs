//! The distillation runner: resuming from a checkpoint is bit-identical to an uninterrupted
//! run; a checkpoint written with other settings, or a damaged one, is refused with an error
//! naming the file.

use crate::common;

use ddlens::distill::{run, Checkpoint, Dm, DmConfig, IterContext, Method, RunConfig, Synthetic};
use ddlens::Dataset;
use ndarray::{Array4, ArrayD};
use serde_json::json;

fn synthetic(n: usize, seed: u64) -> Dataset {
    common::banded_dataset(n, seed)
}

fn dm() -> Dm {
    Dm::new(DmConfig {
        batch_real: 16,
        ..DmConfig::default()
    })
    .unwrap()
}

fn config(dir: &std::path::Path, iterations: usize, lr: f32) -> RunConfig {
    RunConfig {
        iterations,
        seed: 7,
        checkpoint_every: Some(2),
        checkpoint: Some(dir.join("dm.ckpt")),
        settings: json!({ "lr": lr }),
    }
}

/// Runs DM for `iterations` (resuming when asked) and returns the set and the losses.
fn run_dm(cfg: &RunConfig, resume: bool) -> ddlens::Result<(Synthetic, Vec<f32>)> {
    let b = common::open("tiny-1x8x8");
    let real = synthetic(60, 1);
    let mut syn = Synthetic::from_real(&real, 2, 3).unwrap();
    let log = run(
        &mut dm(),
        &mut syn,
        &b,
        &real,
        cfg,
        resume,
        &mut ddlens::progress::Silent,
    )?;
    Ok((syn, log.losses))
}

fn bits(a: &Array4<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn resume_is_bit_identical_to_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let straight = tempfile::tempdir().unwrap();
    let (full, full_losses) = run_dm(&config(straight.path(), 6, 1.0), false).unwrap();

    // Stop after 3 iterations (checkpoint at 2 and at the end, 3), then resume to 6.
    let (_, first) = run_dm(&config(dir.path(), 3, 1.0), false).unwrap();
    assert_eq!(first.len(), 3);
    let ckpt = Checkpoint::read(&dir.path().join("dm.ckpt")).unwrap();
    assert_eq!(ckpt.iteration, 3);
    assert!(
        ckpt.state.iter().any(|(n, _)| n == "velocity"),
        "DM's momentum buffer must be checkpointed"
    );
    let (resumed, losses) = run_dm(&config(dir.path(), 6, 1.0), true).unwrap();

    assert_eq!(
        bits(&resumed.images),
        bits(&full.images),
        "images differ after resume"
    );
    let lb = |l: &[f32]| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        lb(&losses),
        lb(&full_losses),
        "loss logs differ after resume"
    );
    // The run must actually have moved the images, or the comparison proves nothing.
    let real = synthetic(60, 1);
    let init = Synthetic::from_real(&real, 2, 3).unwrap();
    assert_ne!(bits(&init.images), bits(&full.images));
}

#[test]
fn resume_with_other_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_dm(&config(dir.path(), 2, 1.0), false).unwrap();
    let err = run_dm(&config(dir.path(), 4, 0.5), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dm.ckpt"), "{err}");
    assert!(err.contains("settings.lr"), "{err}");
    let mut other_seed = config(dir.path(), 4, 1.0);
    other_seed.seed = 8;
    let err = run_dm(&other_seed, true).unwrap_err().to_string();
    assert!(err.contains("seed"), "{err}");
}

#[test]
fn damaged_or_missing_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 2, 1.0);
    let err = run_dm(&cfg, true).unwrap_err().to_string();
    assert!(
        err.contains("no checkpoint at") && err.contains("dm.ckpt"),
        "{err}"
    );

    run_dm(&cfg, false).unwrap();
    let path = dir.path().join("dm.ckpt");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = run_dm(&config(dir.path(), 4, 1.0), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dm.ckpt") && err.contains("checkpoint"),
        "{err}"
    );

    std::fs::write(&path, b"not a checkpoint at all").unwrap();
    let err = run_dm(&config(dir.path(), 4, 1.0), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dm.ckpt"), "{err}");
}

/// A method whose loss turns to NaN at iteration 3, as a diverging run's does.
struct Diverges;

impl Method for Diverges {
    fn name(&self) -> &'static str {
        "diverges"
    }

    fn iterate(&mut self, ctx: &mut IterContext<'_>, _syn: &mut Synthetic) -> ddlens::Result<f32> {
        Ok(if ctx.iteration == 3 { f32::NAN } else { 1.0 })
    }

    fn state(&self) -> Vec<(String, ArrayD<f32>)> {
        Vec::new()
    }

    fn load_state(&mut self, _state: Vec<(String, ArrayD<f32>)>) -> ddlens::Result<()> {
        Ok(())
    }
}

#[test]
fn diverging_run_names_the_iteration_and_the_lr() {
    let b = common::open("tiny-1x8x8");
    let real = synthetic(30, 1);
    let mut syn = Synthetic::from_real(&real, 2, 3).unwrap();
    let cfg = RunConfig {
        iterations: 5,
        ..RunConfig::default()
    };
    let mut seen = 0;
    let err = run(
        &mut Diverges,
        &mut syn,
        &b,
        &real,
        &cfg,
        false,
        &mut |_: &str, it, _| {
            seen = it;
            Ok(())
        },
    )
    .unwrap_err()
    .to_string();
    assert_eq!(seen, 3, "iterations 0..=2 finish, iteration 3 fails");
    assert!(
        err.contains("iteration 3") && err.contains("smaller learning rate"),
        "{err}"
    );
}
