//! The strengths of the DSA transforms, with the reference defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Strengths of the DSA transforms; the defaults are the reference `ParamDiffAug` values
/// (Zhao & Bilen 2021), which `protocols.md` fixes for every method that augments.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DsaParams {
    /// Brightness: each image gets `x + (u - 0.5) * brightness`, `u ~ U[0, 1)`.
    pub brightness: f32,
    /// Saturation: `(x - m) * (u * saturation) + m`, `m` the mean over channels at each pixel.
    pub saturation: f32,
    /// Contrast: `(x - m) * (u + contrast) + m`, `m` the mean over the whole image.
    pub contrast: f32,
    /// Crop/translate: integer shifts of up to `round(crop_ratio * size)` pixels, zero padded.
    pub crop_ratio: f32,
    /// Cutout: a zeroed square of side `round(cutout_ratio * size)` at a random centre.
    pub cutout_ratio: f32,
    /// Probability of a horizontal flip.
    pub flip_p: f32,
    /// Scale: independent factors in `[1 / scale, scale]` for each axis (`scale >= 1`).
    pub scale: f32,
    /// Rotate: an angle uniform in `[-rotate_deg, rotate_deg]` degrees.
    pub rotate_deg: f32,
}

impl Default for DsaParams {
    fn default() -> Self {
        DsaParams {
            brightness: 1.0,
            saturation: 2.0,
            contrast: 0.5,
            crop_ratio: 0.125,
            cutout_ratio: 0.5,
            flip_p: 0.5,
            scale: 1.2,
            rotate_deg: 15.0,
        }
    }
}

impl DsaParams {
    /// Checks every strength is finite and in its range, naming the first field at fault.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("brightness", self.brightness, 0.0, f32::INFINITY),
            ("saturation", self.saturation, 0.0, f32::INFINITY),
            ("contrast", self.contrast, 0.0, f32::INFINITY),
            ("crop_ratio", self.crop_ratio, 0.0, 1.0),
            ("cutout_ratio", self.cutout_ratio, 0.0, 1.0),
            ("flip_p", self.flip_p, 0.0, 1.0),
            // Below 1 the range [1/scale, scale] would be empty.
            ("scale", self.scale, 1.0, f32::INFINITY),
            ("rotate_deg", self.rotate_deg, 0.0, 180.0),
        ];
        for (name, value, lo, hi) in fields {
            if !(value.is_finite() && value >= lo && value <= hi) {
                return Err(Error::invalid(
                    format!("dsa.{name}"),
                    format!("{value} is outside [{lo}, {hi}]"),
                ));
            }
        }
        Ok(())
    }
}
