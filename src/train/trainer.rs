//! The training loop: minibatch or full-batch SGD over a dataset, with hooks.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

use super::config::TrainConfig;
use super::hooks::{Control, Hook, StepContext};
use super::optimizer::Sgd;
use super::resume::{self, Checkpointing, TrainCheckpoint};
use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// One logged update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLog {
    /// Update number (1-based).
    pub step: usize,
    /// Epoch (0-based) it belongs to.
    pub epoch: usize,
    /// Minibatch loss before the update.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
}

/// What a training run returns.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Final parameters.
    pub params: Params,
    /// Final state: BatchNorm running statistics updated by every step (empty for a bundle
    /// without state). Evaluate with [`super::evaluate_with_state`], save with
    /// [`super::save_model`].
    pub state: Params,
    /// Updates done.
    pub steps: usize,
    /// Per-update log.
    pub log: Vec<StepLog>,
    /// Whether a hook stopped training before the budget was spent.
    pub stopped_early: bool,
    /// Updates read from the checkpoint a resumed run continued from (0 otherwise).
    pub resumed_from: usize,
}

/// The ChaCha8 stream of [`TrainConfig::seed`] that augmentation draws come from; the
/// shuffling order uses stream 0, so augmenting leaves the order unchanged.
const AUGMENT_STREAM: u64 = 1;

/// Trains `init` on `data` with `config`, calling every hook at step 0 and after each update.
/// With [`TrainConfig::augment`] set, every minibatch gets a fresh per-image DSA draw before
/// its gradient. Same seed, same data and same parameters give the same result on the CPU
/// provider.
pub fn train(
    bundle: &Bundle,
    init: Params,
    data: &Dataset,
    config: &TrainConfig,
    hooks: &mut [&mut dyn Hook],
) -> Result<TrainOutcome> {
    train_checkpointed(bundle, init, data, config, hooks, None)
}

/// [`train`], writing a checkpoint at epoch ends as `checkpointing` says, or continuing from
/// one (`resume`): the resumed run ends with the same parameters and log, bit for bit, as a
/// run never interrupted. When resuming, the hooks hear the checkpoint's step first instead
/// of step 0. The checkpoint is left in place at the end (the caller removes it once its
/// results are written).
pub fn train_checkpointed(
    bundle: &Bundle,
    init: Params,
    data: &Dataset,
    config: &TrainConfig,
    hooks: &mut [&mut dyn Hook],
    checkpointing: Option<&Checkpointing>,
) -> Result<TrainOutcome> {
    config.validate()?;
    let dsa = config.dsa()?;
    data.check_against(bundle.manifest())?;
    if data.is_empty() {
        return Err(Error::invalid(
            "data",
            format!("dataset `{}` is empty", data.name()),
        ));
    }
    let total = config.total_steps(data.len());
    let batch_size = config.batch_size.unwrap_or(data.len());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut aug_rng = ChaCha8Rng::seed_from_u64(config.seed);
    aug_rng.set_stream(AUGMENT_STREAM);
    let mut sgd = Sgd::new(config.sgd);
    let fingerprint = checkpointing.map(|_| resume::fingerprint(bundle, &init, data, config));
    let mut params = init;
    let mut state = bundle.init_state();
    // `total` comes from the caller's settings (possibly absurd, e.g. 2^40 epochs through the C
    // ABI): reserve for a typical run only, never for what an allocation cannot hold.
    let mut log = Vec::with_capacity(total.min(1 << 16));
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut first_epoch = 0;
    if let (Some(c), Some(f)) = (checkpointing, &fingerprint) {
        if c.resume {
            let ckpt = resume::load_for_resume(&c.path, f, bundle, data.len())?;
            first_epoch = ckpt.epoch;
            params = ckpt.params;
            state = ckpt.state;
            sgd.set_velocity(ckpt.velocity);
            order = ckpt.order;
            rng.set_word_pos(ckpt.rng_pos);
            aug_rng.set_word_pos(ckpt.aug_rng_pos);
            log = ckpt.log;
        }
    }
    let resumed_from = log.len();
    let outcome = |params, state, log, stopped_early| TrainOutcome {
        resumed_from,
        ..outcome(params, state, log, stopped_early)
    };
    let loss0 = log.last().map_or(f32::NAN, |s: &StepLog| s.loss);
    let lr0 = log.last().map_or(config.lr, |s: &StepLog| s.lr);
    let at_start = Progress {
        step: log.len(),
        total,
        loss: loss0,
        lr: lr0,
    };
    if notify(hooks, bundle, &params, &state, at_start)? == Control::Stop {
        return Ok(outcome(params, state, log, true));
    }
    let mut last_write = Instant::now();
    for epoch in first_epoch..config.epochs {
        if log.len() == total {
            break;
        }
        if config.batch_size.is_some() {
            order.shuffle(&mut rng);
        }
        for mut batch in data.batches(&order, batch_size)? {
            let step = log.len();
            if step == total {
                return Ok(outcome(params, state, log, false));
            }
            if let Some(dsa) = &dsa {
                let aug = dsa.sample(batch.labels.len(), &mut aug_rng);
                batch.images = aug.apply(batch.images.view())?;
            }
            let g = bundle.grad_with_state(
                &params,
                &state,
                batch.images.view(),
                batch.labels.view(),
                None,
            )?;
            if !g.loss.is_finite() {
                return Err(Error::invalid(
                    "lr",
                    format!(
                        "training diverged at step {step} (loss {}); try a smaller learning rate",
                        g.loss
                    ),
                ));
            }
            let lr = config.schedule.lr_at(config.lr, step);
            sgd.step(&mut params, g.grad, lr);
            state = g.state;
            log.push(StepLog {
                step: step + 1,
                epoch,
                loss: g.loss,
                lr,
            });
            let now = Progress {
                step: step + 1,
                total,
                loss: g.loss,
                lr,
            };
            if notify(hooks, bundle, &params, &state, now)? == Control::Stop {
                return Ok(outcome(params, state, log, step + 1 < total));
            }
        }
        if let (Some(c), Some(f)) = (checkpointing, &fingerprint) {
            if last_write.elapsed().as_secs_f64() >= c.every_secs {
                TrainCheckpoint {
                    epoch: epoch + 1,
                    params: params.clone(),
                    state: state.clone(),
                    velocity: sgd.velocity().cloned(),
                    order: order.clone(),
                    rng_pos: rng.get_word_pos(),
                    aug_rng_pos: aug_rng.get_word_pos(),
                    log: log.clone(),
                    fingerprint: f.clone(),
                }
                .write(&c.path)?;
                last_write = Instant::now();
            }
        }
    }
    Ok(outcome(params, state, log, false))
}

/// Where a run stands when the hooks hear from it.
struct Progress {
    step: usize,
    total: usize,
    loss: f32,
    lr: f32,
}

fn notify(
    hooks: &mut [&mut dyn Hook],
    bundle: &Bundle,
    params: &Params,
    state: &Params,
    at: Progress,
) -> Result<Control> {
    let ctx = StepContext {
        step: at.step,
        total_steps: at.total,
        loss: at.loss,
        lr: at.lr,
        params,
        state,
        bundle,
    };
    let mut control = Control::Continue;
    for h in hooks.iter_mut() {
        if h.on_step(&ctx)? == Control::Stop {
            control = Control::Stop;
        }
    }
    Ok(control)
}

fn outcome(params: Params, state: Params, log: Vec<StepLog>, stopped_early: bool) -> TrainOutcome {
    TrainOutcome {
        resumed_from: 0,
        steps: log.len(),
        params,
        state,
        log,
        stopped_early,
    }
}
