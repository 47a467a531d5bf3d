//! Dataset distillation. Each method lives in its own file and implements [`Method`]; the
//! runner drives iterations, seeding, checkpoints and resume. The shared machinery:
//!
//! * [`Synthetic`]: the images (and learnable lr) being learned; [`TensorSgd`] updates them.
//! * Unrolled training ([`InnerLoop`], [`Unrolled`]): exact gradients of an outer loss with
//!   respect to the synthetic images, the learning rate and the initial parameters, through
//!   N steps of SGD (momentum and weight decay included), the core of MTT and BPTT. Only the
//!   parameter iterates are kept: memory is `(N + 1)·|θ|·4` bytes plus a working set that
//!   does not grow with N (four parameter-sized buffers, one gradient of the synthetic set,
//!   one graph evaluation). Outer losses: [`trajectory_matching`] (MTT) and
//!   [`real_batch_loss`] (BPTT); per-step augmentation plugs in through [`BatchTransform`].

mod bptt;
mod checkpoint;
mod dc;
mod dm;
mod expert;
mod expert_store;
mod expert_units;
mod herding;
mod image_sgd;
mod job;
mod method;
mod mtt;
mod random;
mod runner;
mod synthetic;
mod unroll;

pub use bptt::{Bptt, BpttConfig};
pub use checkpoint::{Checkpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION};
pub use dc::{class_match, gradient_distance, ClassMatch, Dc, DcConfig, GradientDistance};
pub use dm::{class_loss_and_grad as dm_class_loss_and_grad, Dm, DmConfig};
pub use expert::{
    checkpoint_path as expert_checkpoint_path, generate_expert, generate_experts, save_expert,
    save_experts, write_expert_index, ExpertConfig, ExpertDir, ExpertIndex, ExpertSource,
    Trajectory, EXPERTS_FORMAT,
};
pub use expert_store::{generate_experts_into, EXPERT_STATE_FORMAT};
pub use expert_units::{experts_spec, gather_experts, run_expert_shard, EXPERTS_KIND};
pub use herding::{herd, herding_set};
pub use image_sgd::TensorSgd;
pub use job::{DistillJob, ExpertJob, Field, MethodKind, Outcome, Written};
pub use method::{IterContext, Method};
pub use mtt::{Mtt, MttConfig, StepAugmentations};
pub use random::random_set;
pub use runner::{iteration_rng, run, RunConfig, RunLog};
pub use synthetic::Synthetic;

pub use unroll::{
    epoch_batches, real_batch_loss, trajectory_matching, BatchTransform, Identity, InnerLoop,
    InnerSgd, OuterLoss, UnrollGrads, Unrolled,
};
