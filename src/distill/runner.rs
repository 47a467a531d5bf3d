//! The runner: drives a [`Method`] for a number of iterations with per-iteration seeding,
//! periodic atomic checkpoints, exact resume and a loss log.
//!
//! Iteration `i` draws from its own ChaCha8 stream (run seed, stream `i`), never from a
//! generator carried across iterations, so a run resumed from a checkpoint after iteration
//! `k` draws exactly what an uninterrupted run draws at `k + 1, k + 2, ...`: together with
//! the bit-exact checkpoint, resuming gives bit-identical results on the CPU provider.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Value};

use super::checkpoint::Checkpoint;
use super::method::{IterContext, Method};
use super::synthetic::Synthetic;
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::checkpoint::{require_checkpoint, require_same_settings};
use crate::progress::Progress;

/// How to run a method.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunConfig {
    /// Total number of iterations (a resumed run counts the ones already done).
    pub iterations: usize,
    /// Seed of every iteration's random stream.
    pub seed: u64,
    /// Write a checkpoint after every this many iterations (and after the last one).
    pub checkpoint_every: Option<usize>,
    /// Checkpoint file (needed by `checkpoint_every` and by resuming).
    pub checkpoint: Option<PathBuf>,
    /// The method's hyperparameters and anything else that must not change between a run and
    /// its resumption (learning rate, augmentation...): stored in the checkpoint and compared
    /// on resume. `iterations` is deliberately not compared, so a finished run can be extended.
    pub settings: Value,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunLog {
    /// Loss of every iteration, those before a resume included.
    pub losses: Vec<f32>,
    /// Iteration the run started from (0, or the checkpoint's count when resumed).
    pub resumed_from: usize,
    /// Wall time of this invocation, in seconds.
    pub seconds: f64,
}

/// The random stream of iteration `iteration` (the stream number keeps iterations
/// independent; `u64::MAX` is reserved for [`Method::init`]).
pub fn iteration_rng(seed: u64, iteration: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(iteration);
    rng
}

/// Runs `method` on `syn` until `config.iterations` iterations are done. `progress` hears
/// (method name, iterations done, total) once before the first iteration (the checkpoint's
/// count when resuming) and after each one (after its checkpoint, if one was due), with the
/// loss as a note; an error it returns stops the run with that error.
///
/// With `resume`, the checkpoint in `config.checkpoint` is loaded first (its settings must
/// match this run's, its synthetic set replaces `syn`) and the run continues from it;
/// otherwise `method.init` is called and the run starts at iteration 0. A non-finite loss
/// stops the run with an error naming the iteration.
pub fn run(
    method: &mut dyn Method,
    syn: &mut Synthetic,
    bundle: &Bundle,
    real: &Dataset,
    config: &RunConfig,
    resume: bool,
    progress: &mut dyn Progress,
) -> Result<RunLog> {
    let start = Instant::now();
    check_config(config)?;
    let fingerprint = fingerprint(method, syn, bundle, real, config);
    let real_by_class = real.class_indices();
    let ctx = |iteration: usize, rng| IterContext {
        bundle,
        real,
        real_by_class: &real_by_class,
        iteration,
        rng,
    };
    let mut losses = Vec::new();
    let first = if resume {
        let path = checkpoint_path(config, "resume")?;
        let ckpt = load_for_resume(path, &fingerprint, syn, config.iterations)?;
        method.load_state(ckpt.state).map_err(|e| Error::Data {
            origin: path.display().to_string(),
            message: format!("method state does not fit `{}`: {e}", method.name()),
        })?;
        *syn = ckpt.synthetic;
        losses = ckpt.losses;
        ckpt.iteration
    } else {
        method.init(&mut ctx(0, iteration_rng(config.seed, u64::MAX)), syn)?;
        0
    };
    progress.report(method.name(), first, config.iterations)?;
    for it in first..config.iterations {
        let mut c = ctx(it, iteration_rng(config.seed, it as u64));
        let loss = method.iterate(&mut c, syn)?;
        check_finite(method.name(), it, loss, syn)?;
        losses.push(loss);
        let done = it + 1;
        if wants_checkpoint(config, done) {
            save(method, syn, &losses, done, &fingerprint, config)?;
        }
        progress.note(&format!("loss {loss:.4}"));
        progress.report(method.name(), done, config.iterations)?;
    }
    Ok(RunLog {
        losses,
        resumed_from: first,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn check_config(config: &RunConfig) -> Result<()> {
    if config.checkpoint_every == Some(0) {
        return Err(Error::invalid("checkpoint_every", "must be at least 1"));
    }
    if config.checkpoint_every.is_some() {
        checkpoint_path(config, "checkpoint_every")?;
    }
    Ok(())
}

fn checkpoint_path<'c>(config: &'c RunConfig, why: &str) -> Result<&'c Path> {
    config
        .checkpoint
        .as_deref()
        .ok_or_else(|| Error::invalid("checkpoint", format!("`{why}` needs a checkpoint file")))
}

/// Checkpoints after every `checkpoint_every` iterations and after the last one.
fn wants_checkpoint(config: &RunConfig, done: usize) -> bool {
    match config.checkpoint_every {
        Some(every) => done.is_multiple_of(every) || done == config.iterations,
        None => false,
    }
}

/// Everything that must agree between a run and its resumption.
fn fingerprint(
    method: &dyn Method,
    syn: &Synthetic,
    bundle: &Bundle,
    real: &Dataset,
    config: &RunConfig,
) -> Value {
    json!({
        "method": method.name(),
        "seed": config.seed,
        "model": bundle.name(),
        "dataset": real.name(),
        "real_images": real.len(),
        "synthetic_shape": syn.images.shape(),
        "num_classes": syn.num_classes,
        "settings": config.settings,
    })
}

fn load_for_resume(
    path: &Path,
    fingerprint: &Value,
    syn: &Synthetic,
    iterations: usize,
) -> Result<Checkpoint> {
    require_checkpoint(path)?;
    let ckpt = Checkpoint::read(path)?;
    require_same_settings(path, &ckpt.fingerprint, fingerprint)?;
    let origin = || path.display().to_string();
    if ckpt.synthetic.labels != syn.labels {
        return Err(Error::Data {
            origin: origin(),
            message: "its synthetic labels differ from this run's".into(),
        });
    }
    if ckpt.iteration > iterations {
        return Err(Error::Data {
            origin: origin(),
            message: format!(
                "is at iteration {}, past the {iterations} iterations asked for",
                ckpt.iteration
            ),
        });
    }
    Ok(ckpt)
}

fn check_finite(method: &str, it: usize, loss: f32, syn: &Synthetic) -> Result<()> {
    if !loss.is_finite() {
        return Err(Error::invalid(
            "lr",
            format!(
                "{method}: the loss of iteration {it} is {loss}; the run diverged, try a \
                 smaller learning rate"
            ),
        ));
    }
    if syn.images.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "lr",
            format!(
                "{method}: iteration {it} made synthetic pixels non-finite; the run \
                 diverged, try a smaller learning rate"
            ),
        ));
    }
    Ok(())
}

fn save(
    method: &dyn Method,
    syn: &Synthetic,
    losses: &[f32],
    done: usize,
    fingerprint: &Value,
    config: &RunConfig,
) -> Result<()> {
    let path = checkpoint_path(config, "checkpoint_every")?;
    Checkpoint {
        iteration: done,
        synthetic: syn.clone(),
        state: method.state(),
        losses: losses.to_vec(),
        fingerprint: fingerprint.clone(),
    }
    .write(path)
}
