//! SGD with momentum on the synthetic images (and, separately, on a learnable learning rate):
//! the outer optimiser of every gradient-based method (protocols.md: DM lr 1.0 momentum 0.5,
//! DC lr 0.1 momentum 0.5, MTT image lr 1000).

use ndarray::{ArrayD, ArrayViewD, Zip};

/// Momentum SGD on one tensor, PyTorch's rule (`v = μ v + g; x -= lr v`).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSgd {
    /// Step size.
    pub lr: f32,
    /// Momentum.
    pub momentum: f32,
    velocity: Option<ArrayD<f32>>,
}

impl TensorSgd {
    /// A fresh optimiser.
    pub fn new(lr: f32, momentum: f32) -> TensorSgd {
        TensorSgd {
            lr,
            momentum,
            velocity: None,
        }
    }

    /// One update of `x` with gradient `g` (same shape).
    pub fn step(&mut self, x: &mut ArrayD<f32>, g: ArrayViewD<f32>) {
        let v = match &mut self.velocity {
            Some(v) => {
                Zip::from(&mut *v)
                    .and(&g)
                    .for_each(|v, &g| *v = self.momentum * *v + g);
                v
            }
            // PyTorch starts the buffer at the first gradient.
            None => self.velocity.insert(g.to_owned()),
        };
        Zip::from(x).and(&*v).for_each(|x, &v| *x -= self.lr * v);
    }

    /// The momentum buffer (for checkpoints).
    pub fn velocity(&self) -> Option<&ArrayD<f32>> {
        self.velocity.as_ref()
    }

    /// Restores the momentum buffer (resuming from a checkpoint).
    pub fn set_velocity(&mut self, v: Option<ArrayD<f32>>) {
        self.velocity = v;
    }
}
