//! The training loop: minibatch or full-batch SGD over a dataset, with hooks.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::config::TrainConfig;
use super::hooks::{Control, Hook, StepContext};
use super::optimizer::Sgd;
use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// One logged update.
#[derive(Debug, Clone, Serialize)]
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
    /// Updates done.
    pub steps: usize,
    /// Per-update log.
    pub log: Vec<StepLog>,
    /// Whether a hook stopped training before the budget was spent.
    pub stopped_early: bool,
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
    let mut params = init;
    // `total` comes from the caller's settings (possibly absurd, e.g. 2^40 epochs through the C
    // ABI): reserve for a typical run only, never for what an allocation cannot hold.
    let mut log = Vec::with_capacity(total.min(1 << 16));
    let mut order: Vec<usize> = (0..data.len()).collect();
    if notify(hooks, bundle, &params, 0, total, f32::NAN, config.lr)? == Control::Stop {
        return Ok(outcome(params, log, true));
    }
    for epoch in 0..config.epochs {
        if config.batch_size.is_some() {
            order.shuffle(&mut rng);
        }
        for mut batch in data.batches(&order, batch_size)? {
            let step = log.len();
            if step == total {
                return Ok(outcome(params, log, false));
            }
            if let Some(dsa) = &dsa {
                let aug = dsa.sample(batch.labels.len(), &mut aug_rng);
                batch.images = aug.apply(batch.images.view())?;
            }
            let g = bundle.grad(&params, batch.images.view(), batch.labels.view(), None)?;
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
            log.push(StepLog {
                step: step + 1,
                epoch,
                loss: g.loss,
                lr,
            });
            if notify(hooks, bundle, &params, step + 1, total, g.loss, lr)? == Control::Stop {
                return Ok(outcome(params, log, step + 1 < total));
            }
        }
    }
    Ok(outcome(params, log, false))
}

fn notify(
    hooks: &mut [&mut dyn Hook],
    bundle: &Bundle,
    params: &Params,
    step: usize,
    total_steps: usize,
    loss: f32,
    lr: f32,
) -> Result<Control> {
    let ctx = StepContext {
        step,
        total_steps,
        loss,
        lr,
        params,
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

fn outcome(params: Params, log: Vec<StepLog>, stopped_early: bool) -> TrainOutcome {
    TrainOutcome {
        steps: log.len(),
        params,
        log,
        stopped_early,
    }
}
