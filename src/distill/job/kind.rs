//! The methods by name, and which settings each uses.

use std::fmt;
use std::str::FromStr;

use crate::distill::{BpttConfig, DmConfig, MttConfig};
use crate::error::{Error, Result};

/// A distillation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// Class-balanced random real images.
    Random,
    /// Greedy herding in the feature space of a real-trained model.
    Herding,
    /// Distribution matching.
    Dm,
    /// Gradient matching.
    Dc,
    /// Gradient matching with differentiable siamese augmentation.
    Dsa,
    /// Matching training trajectories.
    Mtt,
    /// Backpropagation through unrolled training (RaT-BPTT with a window).
    Bptt,
}

impl MethodKind {
    /// Every method, in the order the docs list them.
    pub const ALL: [MethodKind; 7] = [
        MethodKind::Random,
        MethodKind::Herding,
        MethodKind::Dm,
        MethodKind::Dc,
        MethodKind::Dsa,
        MethodKind::Mtt,
        MethodKind::Bptt,
    ];

    /// The methods that iterate (iterations, checkpoints, an image optimiser).
    pub const ITERATIVE: [MethodKind; 5] = [
        MethodKind::Dm,
        MethodKind::Dc,
        MethodKind::Dsa,
        MethodKind::Mtt,
        MethodKind::Bptt,
    ];

    /// The lowercase name (`dm`, `mtt`...).
    pub fn name(self) -> &'static str {
        match self {
            MethodKind::Random => "random",
            MethodKind::Herding => "herding",
            MethodKind::Dm => "dm",
            MethodKind::Dc => "dc",
            MethodKind::Dsa => "dsa",
            MethodKind::Mtt => "mtt",
            MethodKind::Bptt => "bptt",
        }
    }

    /// Whether the method iterates.
    pub fn is_iterative(self) -> bool {
        MethodKind::ITERATIVE.contains(&self)
    }

    /// Iterations when none are given: DM 1,000 (its full budget is 20,000, kept short for a
    /// first run), DC, DSA and BPTT 1,000, MTT 5,000; 0 for random and herding.
    pub fn default_iterations(self) -> usize {
        match self {
            MethodKind::Random | MethodKind::Herding => 0,
            MethodKind::Mtt => 5000,
            MethodKind::Dm | MethodKind::Dc | MethodKind::Dsa | MethodKind::Bptt => 1000,
        }
    }

    /// The image learning rate when none is given (protocols.md; BPTT: see [`BpttConfig`]).
    pub fn default_lr_img(self) -> f32 {
        match self {
            MethodKind::Dm => DmConfig::default().lr,
            MethodKind::Mtt => MttConfig::default().lr_img,
            MethodKind::Bptt => BpttConfig::default().lr_img,
            _ => 0.1,
        }
    }

    /// Inner steps when none are given: MTT's student steps, BPTT's unrolled steps.
    pub fn default_syn_steps(self) -> usize {
        match self {
            MethodKind::Mtt => MttConfig::default().syn_steps,
            _ => BpttConfig::default().steps,
        }
    }

    /// Every method's name, comma-separated (for error messages and help).
    pub fn names() -> String {
        MethodKind::ALL.map(MethodKind::name).join(", ")
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MethodKind {
    type Err = Error;

    /// Parses a method name, in any case; the error lists the known ones.
    fn from_str(s: &str) -> Result<MethodKind> {
        let lower = s.to_ascii_lowercase();
        MethodKind::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                Error::invalid(
                    "method",
                    format!("unknown method `{s}`; available: {}", MethodKind::names()),
                )
            })
    }
}

/// A setting of a [`DistillJob`], to check that it applies to the job's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `iterations`
    Iterations,
    /// `seed`
    Seed,
    /// `lr_img`
    LrImg,
    /// `momentum`
    Momentum,
    /// `batch_real`
    BatchReal,
    /// `dsa`
    Dsa,
    /// `syn_steps`
    SynSteps,
    /// `batch_syn`
    BatchSyn,
    /// `lr_lr`
    LrLr,
    /// `experts`
    Experts,
    /// `expert_epochs_ahead`
    ExpertEpochsAhead,
    /// `max_start_epoch`
    MaxStartEpoch,
    /// `window`
    Window,
    /// `learn_lr`
    LearnLr,
    /// `herding_params`
    HerdingParams,
    /// `checkpoint` (and how often it is written)
    Checkpoint,
    /// `resume`
    Resume,
}

impl Field {
    /// The setting's name in JSON, the C ABI and errors.
    pub fn name(self) -> &'static str {
        match self {
            Field::Iterations => "iterations",
            Field::Seed => "seed",
            Field::LrImg => "lr_img",
            Field::Momentum => "momentum",
            Field::BatchReal => "batch_real",
            Field::Dsa => "dsa",
            Field::SynSteps => "syn_steps",
            Field::BatchSyn => "batch_syn",
            Field::LrLr => "lr_lr",
            Field::Experts => "experts",
            Field::ExpertEpochsAhead => "expert_epochs_ahead",
            Field::MaxStartEpoch => "max_start_epoch",
            Field::Window => "window",
            Field::LearnLr => "learn_lr",
            Field::HerdingParams => "herding_params",
            Field::Checkpoint => "checkpoint",
            Field::Resume => "resume",
        }
    }

    /// The methods that use the setting.
    pub fn methods(self) -> &'static [MethodKind] {
        use MethodKind::*;
        match self {
            Field::Seed => &MethodKind::ALL,
            Field::Iterations
            | Field::LrImg
            | Field::Momentum
            | Field::Checkpoint
            | Field::Resume => &MethodKind::ITERATIVE,
            Field::BatchReal => &[Dm, Dc, Dsa, Bptt],
            Field::Dsa => &[Dm, Dsa, Mtt],
            Field::SynSteps | Field::BatchSyn | Field::LrLr => &[Mtt, Bptt],
            Field::Experts | Field::ExpertEpochsAhead | Field::MaxStartEpoch => &[Mtt],
            Field::Window | Field::LearnLr => &[Bptt],
            Field::HerdingParams => &[Herding],
        }
    }
}
