//! DSA strategies: which transform families may be drawn, and the sampling of one augmentation.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use super::augmentation::{Augmentation, Sharing};
use super::params::DsaParams;
use super::stage;
use crate::error::{Error, Result};

/// The reference strategy, every family: `color_crop_cutout_flip_scale_rotate`.
pub const STANDARD_STRATEGY: &str = "color_crop_cutout_flip_scale_rotate";

/// A transform family of a DSA strategy (one `_`-separated word of the strategy string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AugOp {
    /// Brightness, then saturation, then contrast (`color`).
    Color,
    /// Integer translation with zero padding (`crop`).
    Crop,
    /// A zeroed square (`cutout`).
    Cutout,
    /// Horizontal flip (`flip`); leave it out for digits, whose mirror images are not digits.
    Flip,
    /// Independent per-axis scaling with bilinear resampling (`scale`).
    Scale,
    /// Rotation with bilinear resampling (`rotate`).
    Rotate,
}

impl AugOp {
    /// Every family, in the order of [`STANDARD_STRATEGY`].
    pub const ALL: [AugOp; 6] = [
        AugOp::Color,
        AugOp::Crop,
        AugOp::Cutout,
        AugOp::Flip,
        AugOp::Scale,
        AugOp::Rotate,
    ];

    /// The family's word in a strategy string.
    pub fn name(self) -> &'static str {
        match self {
            AugOp::Color => "color",
            AugOp::Crop => "crop",
            AugOp::Cutout => "cutout",
            AugOp::Flip => "flip",
            AugOp::Scale => "scale",
            AugOp::Rotate => "rotate",
        }
    }
}

impl fmt::Display for AugOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AugOp {
    type Err = Error;

    fn from_str(s: &str) -> Result<AugOp> {
        AugOp::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "dsa strategy",
                    format!("unknown transform `{s}`; expected one of color, crop, cutout, flip, scale, rotate"),
                )
            })
    }
}

/// A DSA strategy: the transform families to draw from and their strengths.
///
/// Each [`sample`](Dsa::sample) picks ONE family uniformly at random and draws its parameters,
/// as the reference `DiffAugment` in its default single-transform mode (`aug_mode = 'S'`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dsa {
    params: DsaParams,
    ops: Vec<AugOp>,
}

impl Default for Dsa {
    /// The reference strategy with the reference strengths.
    fn default() -> Self {
        Dsa {
            params: DsaParams::default(),
            ops: AugOp::ALL.to_vec(),
        }
    }
}

impl Dsa {
    /// A strategy over `ops` with strengths `params`; an empty `ops` never augments. A family
    /// listed twice is drawn twice as often, as in the reference.
    pub fn new(params: DsaParams, ops: Vec<AugOp>) -> Result<Dsa> {
        params.validate()?;
        Ok(Dsa { params, ops })
    }

    /// Parses a reference strategy string such as `color_crop_cutout_flip_scale_rotate`, with
    /// the default strengths; `""` and `none` mean no augmentation.
    pub fn from_strategy(strategy: &str) -> Result<Dsa> {
        let s = strategy.trim();
        let ops = if s.is_empty() || s.eq_ignore_ascii_case("none") {
            Vec::new()
        } else {
            s.split('_').map(AugOp::from_str).collect::<Result<_>>()?
        };
        Dsa::new(DsaParams::default(), ops)
    }

    /// The same strategy with other strengths.
    pub fn with_params(self, params: DsaParams) -> Result<Dsa> {
        Dsa::new(params, self.ops)
    }

    /// The standard strategy for training on `dataset`: every family, without flips on MNIST
    /// (mirrored digits are not digits). The one place that rule lives: distillation,
    /// experts and evaluation all take their augmentation from here.
    pub fn standard_for(dataset: Option<crate::data::DatasetName>) -> Dsa {
        match dataset {
            Some(crate::data::DatasetName::Mnist) => Dsa::default().without(AugOp::Flip),
            _ => Dsa::default(),
        }
    }

    /// The same strategy without `op` (e.g. `without(AugOp::Flip)` for digits).
    pub fn without(mut self, op: AugOp) -> Dsa {
        self.ops.retain(|o| *o != op);
        self
    }

    /// The strengths.
    pub fn params(&self) -> &DsaParams {
        &self.params
    }

    /// The families drawn from, in strategy order.
    pub fn ops(&self) -> &[AugOp] {
        &self.ops
    }

    /// The strategy string (`none` when empty), as [`Dsa::from_strategy`] reads it.
    pub fn strategy(&self) -> String {
        if self.ops.is_empty() {
            return "none".to_string();
        }
        let words: Vec<&str> = self.ops.iter().map(|op| op.name()).collect();
        words.join("_")
    }

    /// Draws one augmentation with independent parameters for each of `n` images (the
    /// reference's non-Siamese mode, used when training a model with augmentation). It applies
    /// to any batch of at most `n` images, image `i` always getting draw `i`: to pair a real
    /// and a synthetic batch image by image, sample for the larger one.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Augmentation {
        self.draw(n, Sharing::PerImage, rng)
    }

    /// Draws one augmentation whose single set of parameters applies to every image of any
    /// batch: the reference's Siamese mode (`theta[:] = theta[0]`), which DSA, DM, DC and MTT
    /// use to transform the real and the synthetic batch identically whatever their sizes.
    pub fn sample_shared<R: Rng + ?Sized>(&self, rng: &mut R) -> Augmentation {
        self.draw(1, Sharing::Batch, rng)
    }

    fn draw<R: Rng + ?Sized>(&self, n: usize, sharing: Sharing, rng: &mut R) -> Augmentation {
        if self.ops.is_empty() {
            return Augmentation::identity();
        }
        let op = self.ops[rng.random_range(0..self.ops.len())];
        let stages = stage::sample(op, &self.params, n, rng);
        Augmentation::new(op, stages, n, sharing)
    }
}
