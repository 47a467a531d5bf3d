//! The contract between a distillation method and the runner that drives it (iterations,
//! seeding, checkpoints, resume, progress, logs).

use ndarray::ArrayD;
use rand_chacha::ChaCha8Rng;

use super::synthetic::Synthetic;
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::Result;

/// What a method sees at one outer iteration.
pub struct IterContext<'a> {
    /// The model bundle the set is distilled for.
    pub bundle: &'a Bundle,
    /// The real training set.
    pub real: &'a Dataset,
    /// Indices of the real images of each class.
    pub real_by_class: &'a [Vec<usize>],
    /// 0-based iteration number.
    pub iteration: usize,
    /// Randomness of this iteration only, seeded from (run seed, iteration), so that a resumed
    /// run draws exactly what an uninterrupted one would.
    pub rng: ChaCha8Rng,
}

/// A distillation method. Implementations keep their own optimiser state and expose it for
/// checkpoints; everything random must come from `ctx.rng`.
pub trait Method {
    /// Short name written into the distilled set's metadata (`dm`, `dc`, `mtt`...).
    fn name(&self) -> &'static str;

    /// Prepares the synthetic set before the first iteration (e.g. random init, or nothing).
    fn init(&mut self, _ctx: &mut IterContext<'_>, _syn: &mut Synthetic) -> Result<()> {
        Ok(())
    }

    /// One outer iteration: updates `syn` in place and returns the iteration's loss.
    fn iterate(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<f32>;

    /// Optimiser and other state to checkpoint besides the synthetic set, as named tensors.
    fn state(&self) -> Vec<(String, ArrayD<f32>)>;

    /// Restores what [`Method::state`] returned.
    fn load_state(&mut self, state: Vec<(String, ArrayD<f32>)>) -> Result<()>;
}
