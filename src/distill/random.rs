//! The `random` baseline: class-balanced random real images, seeded (no optimisation).

use super::synthetic::Synthetic;
use crate::data::Dataset;
use crate::error::Result;

/// `ipc` random real images of every class, drawn with the seeded class-balanced sampler
/// ([`crate::data::class_balanced`]): the same seed gives the same set, and the same images
/// that initialise DM, DC and MTT with that seed.
pub fn random_set(real: &Dataset, ipc: usize, seed: u64) -> Result<Synthetic> {
    Synthetic::from_real(real, ipc, seed)
}
