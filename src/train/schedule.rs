//! Learning-rate schedules, expressed in optimisation steps.

use serde::{Deserialize, Serialize};

/// How the learning rate changes over training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The base learning rate throughout.
    Constant,
    /// Multiply by `gamma` at each milestone step (the standard evaluation halves its epochs:
    /// ×0.1 at E/2).
    Step {
        /// Steps (0-based, counted before the update) from which the next factor applies.
        milestones: Vec<usize>,
        /// Factor per milestone.
        gamma: f32,
    },
}

impl Schedule {
    /// Learning rate for the update at 0-based `step`.
    pub fn lr_at(&self, base: f32, step: usize) -> f32 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| step >= m).count();
                base * gamma.powi(passed as i32)
            }
        }
    }
}
