//! Training configurations, with the protocols of protocols.md as named presets.

use serde::{Deserialize, Serialize};

use super::optimizer::SgdConfig;
use super::schedule::Schedule;
use crate::augment::Dsa;
use crate::error::{Error, Result};

/// Everything that defines a training run except the data and the initial parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Number of passes over the data.
    pub epochs: usize,
    /// Stop after this many steps even if epochs remain (e.g. 300 steps of P_real).
    pub max_steps: Option<usize>,
    /// Minibatch size; `None` trains full-batch (one step per epoch on the whole set).
    pub batch_size: Option<usize>,
    /// Base learning rate.
    pub lr: f32,
    /// Momentum and weight decay.
    pub sgd: SgdConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the shuffling order (and, on a separate stream, of the augmentation draws).
    pub seed: u64,
    /// DSA augmentation of every minibatch: a strategy string such as
    /// `color_crop_cutout_flip_scale_rotate` ([`crate::augment::STANDARD_STRATEGY`]), read by
    /// [`Dsa::from_strategy`]; each step applies a fresh draw per image, as the reference does
    /// when it trains with augmentation. `None` (or `none`) trains on the plain images.
    #[serde(default)]
    pub augment: Option<String>,
}

impl TrainConfig {
    /// The standard evaluation of a distilled set: SGD lr 0.01 (or a learned lr), momentum 0.9,
    /// weight decay 5e-4, batch 256, `epochs` epochs with lr ×0.1 at epochs/2.
    pub fn standard_eval(epochs: usize, lr: f32, data_len: usize, seed: u64) -> TrainConfig {
        let per_epoch = data_len.div_ceil(256).max(1);
        TrainConfig {
            epochs,
            max_steps: None,
            batch_size: Some(256),
            lr,
            sgd: SgdConfig {
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            schedule: Schedule::Step {
                milestones: vec![epochs / 2 * per_epoch],
                gamma: 0.1,
            },
            seed,
            augment: None,
        }
    }

    /// P_dist of the paper: full-batch on the small set, `steps` steps (300), SGD lr 0.01,
    /// momentum 0.9, no weight decay.
    pub fn p_dist(steps: usize, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: steps,
            max_steps: None,
            batch_size: None,
            lr: 0.01,
            sgd: SgdConfig {
                momentum: 0.9,
                weight_decay: 0.0,
            },
            schedule: Schedule::Constant,
            seed,
            augment: None,
        }
    }

    /// P_real of the paper: minibatch 256, SGD lr 0.01, momentum 0.9, no weight decay.
    pub fn p_real(epochs: usize, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs,
            max_steps: None,
            batch_size: Some(256),
            lr: 0.01,
            sgd: SgdConfig {
                momentum: 0.9,
                weight_decay: 0.0,
            },
            schedule: Schedule::Constant,
            seed,
            augment: None,
        }
    }

    /// The same configuration with `dsa` augmenting every minibatch (`None`: no augmentation).
    pub fn with_augment(self, dsa: Option<&Dsa>) -> TrainConfig {
        TrainConfig {
            augment: dsa.map(Dsa::strategy),
            ..self
        }
    }

    /// The augmentation [`TrainConfig::augment`] asks for, parsed; `None` when it is unset or
    /// names no transform. A bad strategy is an error naming `augment`.
    pub fn dsa(&self) -> Result<Option<Dsa>> {
        let Some(strategy) = &self.augment else {
            return Ok(None);
        };
        let dsa = Dsa::from_strategy(strategy).map_err(|e| {
            let why = match e {
                Error::InvalidArgument { message, .. } => message,
                other => other.to_string(),
            };
            Error::invalid("augment", format!("bad DSA strategy `{strategy}`: {why}"))
        })?;
        Ok((!dsa.ops().is_empty()).then_some(dsa))
    }

    /// Steps per epoch on a dataset of `n` examples.
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        match self.batch_size {
            Some(b) => n.div_ceil(b),
            None => 1,
        }
    }

    /// Total number of updates on a dataset of `n` examples.
    pub fn total_steps(&self, n: usize) -> usize {
        // Saturating: epochs come from the caller, and a run that long never ends anyway.
        let all = self.epochs.saturating_mul(self.steps_per_epoch(n));
        self.max_steps.map_or(all, |m| m.min(all))
    }

    /// Rejects nonsensical settings, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        if self.batch_size == Some(0) {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.sgd.momentum) {
            return Err(Error::invalid("momentum", "must be in [0, 1)"));
        }
        if !(self.sgd.weight_decay >= 0.0 && self.sgd.weight_decay.is_finite()) {
            return Err(Error::invalid("weight_decay", "must be non-negative"));
        }
        self.dsa()?;
        Ok(())
    }
}
