//! Back-propagation through training (BPTT; Deng & Russakovsky 2022), with optional random
//! truncation (RaT-BPTT; Feng et al., ICLR 2024).
//!
//! Each iteration draws a fresh network (`bundle.init_params` with a seed from `ctx.rng`),
//! trains it on the synthetic set with momentum SGD for `steps` steps, evaluates the mean
//! cross-entropy of a random real batch at the end ([`real_batch_loss`]) and backpropagates
//! it exactly to the images (and optionally the lr) through
//! [`Unrolled::adjoint_window`](super::Unrolled::adjoint_window).
//!
//! The defaults train the inner network as the paper's evaluation protocol P_dist does
//! (full batch, lr 0.01, momentum 0.9, no weight decay), so the set is distilled for the
//! training it will be evaluated with.
//!
//! With `window = Some(M)`, RaT-BPTT: the unrolled length `L` is drawn uniformly from
//! `M..=steps`, the outer loss is taken at `θ_L` and only the last `M` steps are
//! differentiated (`[L − M, L)`, costing `M` `grad_vjp` calls instead of `L`).

use ndarray::{ArrayD, Axis};
use rand::Rng;

use super::dc::{load_velocities, step_images, velocity_state};
use super::method::{IterContext, Method};
use super::mtt::{step_lr, StepAugmentations};
use super::synthetic::Synthetic;
use super::unroll::{epoch_batches, real_batch_loss, InnerLoop, InnerSgd};
use super::TensorSgd;
use crate::augment::Dsa;
use crate::error::{Error, Result};

/// Settings of BPTT ([`BpttConfig::default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BpttConfig {
    /// Inner SGD steps on the synthetic set (the maximum unrolled length with a window).
    pub steps: usize,
    /// Inner minibatch; `None` trains full-batch (P_dist).
    pub batch_syn: Option<usize>,
    /// Inner momentum (P_dist: 0.9).
    pub momentum: f32,
    /// Inner weight decay.
    pub weight_decay: f32,
    /// Initial inner lr (P_dist: 0.01); used as is unless `learn_lr`.
    pub lr_init: f32,
    /// Whether the inner lr is learned too (stored in the distilled set).
    pub learn_lr: bool,
    /// Learning rate of the learnable lr.
    pub lr_lr: f32,
    /// Image learning rate (SGD on normalised pixels).
    pub lr_img: f32,
    /// Momentum of the outer optimisers.
    pub momentum_img: f32,
    /// Real images in the outer loss batch.
    pub batch_real: usize,
    /// RaT-BPTT truncation: differentiate only the last `M` steps of a randomly long unroll.
    pub window: Option<usize>,
    /// Per-image augmentation of every inner minibatch (differentiated exactly).
    pub dsa: Option<Dsa>,
}

impl Default for BpttConfig {
    fn default() -> Self {
        BpttConfig {
            steps: 100,
            batch_syn: None,
            momentum: 0.9,
            weight_decay: 0.0,
            lr_init: 0.01,
            learn_lr: false,
            lr_lr: 1e-5,
            // The image gradient of a loss after many small inner steps is tiny (scaled by the
            // inner lr at every step), as in MTT: with 0.1, 50 iterations at IPC 1 moved the
            // pixels by 0.008 RMS and the loss did not fall; 100 moves them ~0.6 and the loss
            // falls from 1.7 to ~0.7 (Fashion-MNIST, ConvNet-3, 30 inner steps).
            lr_img: 100.0,
            momentum_img: 0.5,
            batch_real: 256,
            window: None,
            dsa: None,
        }
    }
}

impl BpttConfig {
    /// The settings recorded in a run's log (`ddlens distill` JSON, `ddl_distill`), with the
    /// augmentation as its strategy name (`none` without).
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "steps": self.steps,
            "batch_syn": self.batch_syn,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "lr_init": self.lr_init,
            "learn_lr": self.learn_lr,
            "lr_lr": self.lr_lr,
            "lr_img": self.lr_img,
            "momentum_img": self.momentum_img,
            "batch_real": self.batch_real,
            "window": self.window,
            "dsa": self.dsa.as_ref().map_or_else(|| "none".to_string(), Dsa::strategy),
        })
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("steps", self.steps),
            ("batch_syn", self.batch_syn.unwrap_or(1)),
            ("batch_real", self.batch_real),
            ("window", self.window.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        if let Some(m) = self.window {
            if m > self.steps {
                return Err(Error::invalid(
                    "window",
                    format!("{m} is longer than the {} inner steps", self.steps),
                ));
            }
        }
        for (name, v) in [
            ("lr_init", self.lr_init),
            ("lr_lr", self.lr_lr),
            ("lr_img", self.lr_img),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, format!("must be positive, got {v}")));
            }
        }
        for (name, v) in [
            ("momentum", self.momentum),
            ("momentum_img", self.momentum_img),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::invalid(name, format!("must be in [0, 1), got {v}")));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid("weight_decay", "must be non-negative"));
        }
        Ok(())
    }
}

/// The BPTT method.
#[derive(Debug, Clone)]
pub struct Bptt {
    config: BpttConfig,
    image_opt: TensorSgd,
    lr_opt: TensorSgd,
}

impl Bptt {
    /// BPTT with `config` (checked here, naming the bad field).
    pub fn new(config: BpttConfig) -> Result<Bptt> {
        config.validate()?;
        Ok(Bptt {
            image_opt: TensorSgd::new(config.lr_img, config.momentum_img),
            lr_opt: TensorSgd::new(config.lr_lr, config.momentum_img),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &BpttConfig {
        &self.config
    }
}

impl Method for Bptt {
    fn name(&self) -> &'static str {
        if self.config.window.is_some() {
            "rat-bptt"
        } else {
            "bptt"
        }
    }

    fn init(&mut self, _ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<()> {
        if self.config.learn_lr {
            syn.lr.get_or_insert(self.config.lr_init);
        }
        Ok(())
    }

    fn iterate(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<f32> {
        let cfg = &self.config;
        let lr = if cfg.learn_lr {
            *syn.lr.get_or_insert(cfg.lr_init)
        } else {
            cfg.lr_init
        };
        let theta0 = ctx.bundle.init_params(ctx.rng.random());
        let len = match cfg.window {
            Some(m) => ctx.rng.random_range(m..=cfg.steps),
            None => cfg.steps,
        };
        let window = len - cfg.window.unwrap_or(len)..len;
        let batch = cfg.batch_syn.unwrap_or(syn.len());
        let batches = epoch_batches(syn.len(), batch, len, ctx.rng.random())?;
        let augs = cfg
            .dsa
            .as_ref()
            .map(|d| StepAugmentations::draw(d, &batches, &mut ctx.rng));
        let real_idx = rand::seq::index::sample(
            &mut ctx.rng,
            ctx.real.len(),
            cfg.batch_real.min(ctx.real.len()),
        )
        .into_vec();
        if real_idx.is_empty() {
            return Err(Error::invalid("real", "the real training set is empty"));
        }
        let x_real = ctx.real.images().select(Axis(0), &real_idx);
        let y_real = ctx.real.labels().select(Axis(0), &real_idx);
        let sgd = InnerSgd {
            lr,
            momentum: cfg.momentum,
            weight_decay: cfg.weight_decay,
        };
        let mut inner = InnerLoop::new(
            ctx.bundle,
            syn.images.view(),
            syn.labels.view(),
            &batches,
            sgd,
        )?;
        if let Some(a) = &augs {
            inner = inner.with_transform(a);
        }
        let run = inner.unroll(theta0)?;
        let outer = real_batch_loss(ctx.bundle, run.final_params(), x_real.view(), y_real.view())?;
        let grads = run.adjoint_window(&outer.grad, window)?;
        drop(run);
        step_images(&mut self.image_opt, &mut syn.images, grads.x)?;
        if self.config.learn_lr {
            syn.lr = Some(step_lr(&mut self.lr_opt, lr, grads.lr)?);
        }
        Ok(outer.value as f32)
    }

    fn state(&self) -> Vec<(String, ArrayD<f32>)> {
        let mut s = velocity_state("image_velocity", &self.image_opt);
        s.extend(velocity_state("lr_velocity", &self.lr_opt));
        s
    }

    fn load_state(&mut self, state: Vec<(String, ArrayD<f32>)>) -> Result<()> {
        load_velocities(
            state,
            &mut [
                ("image_velocity", &mut self.image_opt),
                ("lr_velocity", &mut self.lr_opt),
            ],
        )
    }
}
