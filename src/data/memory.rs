//! Datasets copied from caller memory: the entry point of the C ABI and of callers that
//! decode images themselves.

use ndarray::{Array1, Array4};

use super::{Dataset, Normalizer};
use crate::error::{Error, Result};

/// A dataset copied from caller memory: `images` are `N x C x H x W` row-major `f32`, either
/// already normalised (`norm` `None`) or pixels in `[0, 1]` to normalise with `norm`.
pub fn from_memory_f32(
    images: &[f32],
    shape: [usize; 4],
    labels: &[i64],
    num_classes: usize,
    norm: Option<&Normalizer>,
    name: &str,
) -> Result<Dataset> {
    check_len(images.len(), shape)?;
    let mut array = Array4::from_shape_vec(shape, images.to_vec()).expect("length checked");
    if let Some(norm) = norm {
        check_channels(norm, shape)?;
        norm.normalize_in_place(&mut array);
    }
    Dataset::new(array, Array1::from(labels.to_vec()), num_classes, name)
}

/// A dataset copied from caller memory: `pixels` are `N x C x H x W` row-major bytes
/// (0..=255), normalised with `norm`.
pub fn from_memory_u8(
    pixels: &[u8],
    shape: [usize; 4],
    labels: &[i64],
    num_classes: usize,
    norm: &Normalizer,
    name: &str,
) -> Result<Dataset> {
    check_len(pixels.len(), shape)?;
    check_channels(norm, shape)?;
    let array = norm.normalize_u8(pixels, shape)?;
    Dataset::new(array, Array1::from(labels.to_vec()), num_classes, name)
}

fn check_len(len: usize, shape: [usize; 4]) -> Result<()> {
    if shape[0] == 0 {
        return Err(Error::invalid(
            "shape",
            "0 images; a dataset needs at least one",
        ));
    }
    let expected = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if expected == Some(len) {
        return Ok(());
    }
    Err(Error::invalid(
        "images",
        format!("{len} values do not fill shape {shape:?}"),
    ))
}

fn check_channels(norm: &Normalizer, shape: [usize; 4]) -> Result<()> {
    if shape[1] == norm.channels() {
        return Ok(());
    }
    Err(Error::invalid(
        "normalization",
        format!(
            "{} channels in the images, {} in normaliser `{}`",
            shape[1],
            norm.channels(),
            norm.dataset()
        ),
    ))
}
