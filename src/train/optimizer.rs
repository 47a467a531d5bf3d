//! SGD with momentum and weight decay, with PyTorch's exact update rule so that runs are
//! comparable with the published protocols:
//! `g += wd·θ;  v = μ·v + g;  θ -= lr·v` (dampening 0, no Nesterov).

use crate::bundle::Params;

/// Hyper-parameters of SGD.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdConfig {
    /// Momentum μ (0 disables it).
    pub momentum: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
}

/// SGD state: the velocity buffer (created on the first step, as in PyTorch).
#[derive(Debug, Clone)]
pub struct Sgd {
    config: SgdConfig,
    velocity: Option<Params>,
}

impl Sgd {
    /// A fresh optimiser.
    pub fn new(config: SgdConfig) -> Sgd {
        Sgd {
            config,
            velocity: None,
        }
    }

    /// Applies one update with learning rate `lr` and gradient `grad` (consumed as scratch).
    pub fn step(&mut self, params: &mut Params, mut grad: Params, lr: f32) {
        let SgdConfig {
            momentum,
            weight_decay,
        } = self.config;
        if weight_decay != 0.0 {
            grad.axpy(weight_decay, params);
        }
        let direction = if momentum != 0.0 {
            match &mut self.velocity {
                Some(v) => {
                    v.scale(momentum);
                    v.axpy(1.0, &grad);
                }
                // PyTorch initialises the buffer with the first gradient itself.
                None => self.velocity = Some(grad),
            }
            self.velocity.as_ref().expect("set above")
        } else {
            &grad
        };
        params.axpy(-lr, direction);
    }

    /// The velocity buffer, if a step has been taken.
    pub fn velocity(&self) -> Option<&Params> {
        self.velocity.as_ref()
    }

    /// Restores a velocity buffer (resuming from a checkpoint).
    pub fn set_velocity(&mut self, velocity: Option<Params>) {
        self.velocity = velocity;
    }
}
