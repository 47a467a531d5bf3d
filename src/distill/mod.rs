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

mod image_sgd;
mod method;
mod synthetic;
mod unroll;

pub use image_sgd::TensorSgd;
pub use method::{IterContext, Method};
pub use synthetic::Synthetic;

pub use unroll::{
    epoch_batches, real_batch_loss, trajectory_matching, BatchTransform, Identity, InnerLoop,
    InnerSgd, OuterLoss, UnrollGrads, Unrolled,
};
