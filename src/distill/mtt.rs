//! Matching training trajectories (MTT, Cazenavette et al., CVPR 2022).
//!
//! Each iteration picks an expert `e` and a start epoch `t < max_start_epoch` (the reference
//! draws `np.random.randint(0, max_start_epoch)`), starts a student at `expert_e(t)`, trains it
//! for `syn_steps` plain-SGD steps on minibatches of the synthetic set with the learnable lr,
//! and minimises `|θ_N − expert_e(t+M)|² / |expert_e(t) − expert_e(t+M)|²` with respect to the
//! images and the lr. The gradients are exact, through [`InnerLoop::unroll`] and
//! [`Unrolled::adjoint`](super::Unrolled::adjoint), without storing activations.

use ndarray::{Array4, ArrayD, ArrayView4};
use rand::Rng;

use super::dc::{load_velocities, step_images, velocity_state};
use super::expert::ExpertSource;
use super::method::{IterContext, Method};
use super::synthetic::Synthetic;
use super::unroll::{epoch_batches, trajectory_matching, BatchTransform, InnerLoop, InnerSgd};
use super::TensorSgd;
use crate::augment::{Augmentation, Dsa};
use crate::error::{Error, Result};

/// Settings of MTT ([`MttConfig::default`] = the reference defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct MttConfig {
    /// Student steps N per iteration (reference `syn_steps` 20).
    pub syn_steps: usize,
    /// Expert epochs M between the start and the target (reference `expert_epochs` 2).
    pub expert_epochs: usize,
    /// Start epochs are drawn from `0..max_start_epoch` (reference 20).
    pub max_start_epoch: usize,
    /// Student minibatch; `None` = the whole synthetic set (reference `batch_syn` default).
    pub batch_syn: Option<usize>,
    /// Image learning rate (reference `lr_img` 1000, normalised pixels).
    pub lr_img: f32,
    /// Learning rate of the learnable lr (reference `lr_lr` 1e-5).
    pub lr_lr: f32,
    /// Initial student lr (reference `lr_teacher` 0.01).
    pub lr_init: f32,
    /// Momentum of both outer optimisers (reference 0.5).
    pub momentum: f32,
    /// Per-image augmentation of every student minibatch (reference: DSA on, unseeded).
    pub dsa: Option<Dsa>,
}

impl Default for MttConfig {
    fn default() -> Self {
        MttConfig {
            syn_steps: 20,
            expert_epochs: 2,
            max_start_epoch: 20,
            batch_syn: None,
            lr_img: 1000.0,
            lr_lr: 1e-5,
            lr_init: 0.01,
            momentum: 0.5,
            dsa: Some(Dsa::default()),
        }
    }
}

impl MttConfig {
    /// The settings recorded in a run's log (`ddlens distill` JSON, `ddl_distill`), with the
    /// augmentation as its strategy name (`none` without); callers add the experts' index.
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "syn_steps": self.syn_steps,
            "expert_epochs": self.expert_epochs,
            "max_start_epoch": self.max_start_epoch,
            "batch_syn": self.batch_syn,
            "lr_img": self.lr_img,
            "lr_lr": self.lr_lr,
            "lr_init": self.lr_init,
            "momentum": self.momentum,
            "dsa": self.dsa.as_ref().map_or_else(|| "none".to_string(), Dsa::strategy),
        })
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("syn_steps", self.syn_steps),
            ("expert_epochs", self.expert_epochs),
            ("max_start_epoch", self.max_start_epoch),
            ("batch_syn", self.batch_syn.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        for (name, v) in [
            ("lr_img", self.lr_img),
            ("lr_lr", self.lr_lr),
            ("lr_init", self.lr_init),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, format!("must be positive, got {v}")));
            }
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", "must be in [0, 1)"));
        }
        Ok(())
    }
}

/// Pre-drawn augmentations, one per inner step: a [`BatchTransform`] that is a deterministic
/// function of the step, as the adjoint pass requires (it re-applies step `k`'s transform).
#[derive(Debug, Clone)]
pub struct StepAugmentations {
    augs: Vec<Augmentation>,
}

impl StepAugmentations {
    /// Draws, for each of the `batches`, one augmentation per image of that batch (the
    /// reference's unseeded `DiffAugment` in the student loop).
    pub fn draw<R: Rng + ?Sized>(dsa: &Dsa, batches: &[Vec<usize>], rng: &mut R) -> Self {
        StepAugmentations {
            augs: batches.iter().map(|b| dsa.sample(b.len(), rng)).collect(),
        }
    }

    fn get(&self, step: usize) -> Result<&Augmentation> {
        self.augs.get(step).ok_or_else(|| {
            Error::invalid(
                "step",
                format!("{step} has no augmentation ({} drawn)", self.augs.len()),
            )
        })
    }
}

impl BatchTransform for StepAugmentations {
    fn forward(&self, step: usize, x: ArrayView4<f32>) -> Result<Array4<f32>> {
        self.get(step)?.apply(x)
    }

    fn vjp(&self, step: usize, _x: ArrayView4<f32>, grad_out: Array4<f32>) -> Result<Array4<f32>> {
        self.get(step)?.vjp(grad_out.view())
    }
}

/// The MTT method over a set of expert trajectories.
pub struct Mtt {
    config: MttConfig,
    experts: Box<dyn ExpertSource>,
    image_opt: TensorSgd,
    lr_opt: TensorSgd,
}

impl Mtt {
    /// MTT with `config` over `experts` (in memory: `Vec<Trajectory>`, or an
    /// [`ExpertDir`](super::ExpertDir)); fails when the trajectories are too short for
    /// `expert_epochs` or when there are none.
    pub fn new(config: MttConfig, experts: Box<dyn ExpertSource>) -> Result<Mtt> {
        config.validate()?;
        if experts.experts() == 0 {
            return Err(Error::invalid("experts", "no expert trajectories"));
        }
        if experts.epochs() < config.expert_epochs {
            return Err(Error::invalid(
                "expert_epochs",
                format!(
                    "{} exceeds the {} epochs of the expert trajectories",
                    config.expert_epochs,
                    experts.epochs()
                ),
            ));
        }
        Ok(Mtt {
            image_opt: TensorSgd::new(config.lr_img, config.momentum),
            lr_opt: TensorSgd::new(config.lr_lr, config.momentum),
            config,
            experts,
        })
    }

    /// The settings.
    pub fn config(&self) -> &MttConfig {
        &self.config
    }

    /// Start epochs are drawn from `0..self.start_epochs()`: `max_start_epoch`, clamped so
    /// that the target `t + M` exists.
    pub fn start_epochs(&self) -> usize {
        let last = self.experts.epochs() - self.config.expert_epochs;
        self.config.max_start_epoch.min(last + 1)
    }
}

impl Method for Mtt {
    fn name(&self) -> &'static str {
        "mtt"
    }

    fn init(&mut self, _ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<()> {
        // The reference initialises the learnable lr at the expert lr (`lr_teacher`).
        syn.lr.get_or_insert(self.config.lr_init);
        Ok(())
    }

    fn iterate(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<f32> {
        let lr = *syn.lr.get_or_insert(self.config.lr_init);
        let expert = ctx.rng.random_range(0..self.experts.experts());
        let start_epoch = ctx.rng.random_range(0..self.start_epochs());
        let start = self.experts.checkpoint(expert, start_epoch)?;
        let target = self
            .experts
            .checkpoint(expert, start_epoch + self.config.expert_epochs)?;
        let batch = self.config.batch_syn.unwrap_or(syn.len());
        let batches = epoch_batches(syn.len(), batch, self.config.syn_steps, ctx.rng.random())?;
        let augs = self
            .config
            .dsa
            .as_ref()
            .map(|d| StepAugmentations::draw(d, &batches, &mut ctx.rng));
        let mut inner = InnerLoop::new(
            ctx.bundle,
            syn.images.view(),
            syn.labels.view(),
            &batches,
            InnerSgd::plain(lr),
        )?;
        if let Some(a) = &augs {
            inner = inner.with_transform(a);
        }
        let run = inner.unroll(start.clone())?;
        let outer = trajectory_matching(run.final_params(), &start, &target)?;
        let grads = run.adjoint(&outer.grad)?;
        drop(run);
        step_images(&mut self.image_opt, &mut syn.images, grads.x)?;
        syn.lr = Some(step_lr(&mut self.lr_opt, lr, grads.lr)?);
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

/// One optimiser step on a learnable lr with gradient `grad`; the result must stay positive
/// and finite (the unrolled SGD divides by it, and a negative lr trains backwards).
pub(crate) fn step_lr(opt: &mut TensorSgd, lr: f32, grad: f64) -> Result<f32> {
    if !grad.is_finite() {
        return Err(Error::invalid("lr", "its gradient is not finite"));
    }
    if opt.velocity().is_some_and(|v| v.shape() != [1]) {
        return Err(Error::invalid(
            "state",
            "lr momentum buffer is not a scalar",
        ));
    }
    let mut x = ArrayD::from_elem(ndarray::IxDyn(&[1]), lr);
    let g = ArrayD::from_elem(ndarray::IxDyn(&[1]), grad as f32);
    opt.step(&mut x, g.view());
    let new = x[[0]];
    if !(new.is_finite() && new > 0.0) {
        return Err(Error::invalid(
            "lr_lr",
            format!("the learned lr left the positive range ({lr} -> {new}); lower lr_lr"),
        ));
    }
    Ok(new)
}
