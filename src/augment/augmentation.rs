//! A sampled augmentation: all random draws of one step, applied identically to any batch, and
//! its exact vector-Jacobian product.

use ndarray::{Array4, ArrayView4};

use super::stage::Stage;
use super::strategy::AugOp;
use super::transform::{Dims, Scratch, Transform};
use crate::error::{Error, Result};

/// How an [`Augmentation`]'s draws map to the images of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One draw per image: image `i` gets draw `i` (batches of at most `draws` images).
    PerImage,
    /// One draw for every image of any batch (the reference's Siamese mode).
    Batch,
}

/// One sampled DSA augmentation (from [`Dsa::sample`](super::Dsa::sample) or
/// [`Dsa::sample_shared`](super::Dsa::sample_shared)): a transform family and every random
/// draw, so that applying it twice, to the real and to the synthetic batch, transforms both
/// the same way.
///
/// Every DSA transform is affine in the pixels, so [`vjp`](Augmentation::vjp) needs only the
/// upstream gradient, not the images it was applied to.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    op: Option<AugOp>,
    stages: Vec<Stage>,
    draws: usize,
    sharing: Sharing,
}

/// Which way [`Augmentation::run`] goes.
#[derive(Clone, Copy)]
enum Pass {
    Forward,
    Adjoint,
}

impl Augmentation {
    /// The augmentation that changes nothing (what an empty strategy samples).
    pub fn identity() -> Augmentation {
        Augmentation {
            op: None,
            stages: Vec::new(),
            draws: 1,
            sharing: Sharing::Batch,
        }
    }

    /// Built by the sampler; every stage holds `draws` draws.
    pub(crate) fn new(op: AugOp, stages: Vec<Stage>, draws: usize, sharing: Sharing) -> Self {
        debug_assert!(stages.iter().all(|s| s.draws() == draws));
        Augmentation {
            op: Some(op),
            stages,
            draws,
            sharing,
        }
    }

    /// The family drawn, `None` for the identity.
    pub fn op(&self) -> Option<AugOp> {
        self.op
    }

    /// Whether this augmentation changes nothing by construction.
    pub fn is_identity(&self) -> bool {
        self.stages.is_empty()
    }

    /// How draws map to images.
    pub fn sharing(&self) -> Sharing {
        self.sharing
    }

    /// Number of independent draws (1 when shared).
    pub fn draws(&self) -> usize {
        self.draws
    }

    /// The transforms, in application order, that image `index` of a batch of `h x w` images
    /// receives, with shifts and cutout positions resolved in pixels.
    pub fn transforms(&self, index: usize, h: usize, w: usize) -> Result<Vec<Transform>> {
        self.check_batch(index + 1, "index")?;
        let d = Dims { c: 1, h, w };
        let k = self.draw_of(index);
        Ok(self.stages.iter().map(|s| s.resolve(k, d)).collect())
    }

    /// Applies the augmentation to a batch `N x C x H x W` (any memory layout); the result is
    /// in standard layout.
    pub fn apply(&self, x: ArrayView4<f32>) -> Result<Array4<f32>> {
        self.run(x, "x", Pass::Forward)
    }

    /// The exact vector-Jacobian product: given `grad_out`, the gradient of a loss w.r.t.
    /// `apply(x)`, returns the gradient w.r.t. `x`. The same for every `x`, since every
    /// transform is affine in the pixels (colour ops included: their means are linear in `x`,
    /// and that dependence is part of the product).
    pub fn vjp(&self, grad_out: ArrayView4<f32>) -> Result<Array4<f32>> {
        self.run(grad_out, "grad_out", Pass::Adjoint)
    }

    fn draw_of(&self, index: usize) -> usize {
        match self.sharing {
            Sharing::PerImage => index,
            Sharing::Batch => 0,
        }
    }

    fn check_batch(&self, n: usize, name: &str) -> Result<()> {
        if self.sharing == Sharing::PerImage && !self.is_identity() && n > self.draws {
            return Err(Error::invalid(
                name,
                format!(
                    "batch of {n} images, but the augmentation was sampled for {}; sample it \
                     for the larger batch (smaller batches reuse the first draws) or use \
                     Dsa::sample_shared",
                    self.draws
                ),
            ));
        }
        Ok(())
    }

    /// Copies `x` into a standard-layout array and runs every image through the stages,
    /// forwards or transposed in reverse order, reusing one scratch space for the batch.
    fn run(&self, x: ArrayView4<f32>, name: &str, pass: Pass) -> Result<Array4<f32>> {
        let (n, c, h, w) = x.dim();
        self.check_batch(n, name)?;
        let mut data = match x.as_slice() {
            Some(s) => s.to_vec(),
            None => x.iter().copied().collect(),
        };
        let d = Dims { c, h, w };
        if !self.is_identity() && d.len() > 0 {
            let mut scratch = Scratch::default();
            for (i, img) in data.chunks_exact_mut(d.len()).enumerate() {
                let k = self.draw_of(i);
                match pass {
                    Pass::Forward => {
                        for s in &self.stages {
                            s.resolve(k, d).forward(d, img, &mut scratch);
                        }
                    }
                    Pass::Adjoint => {
                        for s in self.stages.iter().rev() {
                            s.resolve(k, d).backward(d, img, &mut scratch);
                        }
                    }
                }
            }
        }
        Array4::from_shape_vec((n, c, h, w), data)
            .map_err(|e| Error::invalid(name, format!("cannot rebuild the batch: {e}")))
    }
}
