//! Per-channel pixel normalisation, `x_norm = (pixel / 255 - mean) / std`, with the standard
//! constants of the benchmarks ddlens knows.

use ndarray::{Array4, ArrayView4, Axis, Zip};

use super::data_err;
use crate::bundle::Normalization;
use crate::error::{Error, Result};

/// Per-channel mean and standard deviation of pixels scaled to `[0, 1]`.
///
/// The constructor checks one `std` per `mean` and every `std` positive and finite, so
/// normalising never divides by zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    dataset: String,
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalizer {
    /// Builds a normaliser; `dataset` records where the statistics come from.
    pub fn new(dataset: impl Into<String>, mean: Vec<f32>, std: Vec<f32>) -> Result<Normalizer> {
        let dataset = dataset.into();
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::invalid(
                "normalization",
                format!(
                    "`{dataset}`: need one mean and one std per channel, got {} and {}",
                    mean.len(),
                    std.len()
                ),
            ));
        }
        if std.iter().any(|s| !(*s > 0.0 && s.is_finite())) || mean.iter().any(|m| !m.is_finite()) {
            return Err(Error::invalid(
                "normalization",
                format!("`{dataset}`: std must be positive and finite, mean finite"),
            ));
        }
        Ok(Normalizer { dataset, mean, std })
    }

    /// Fashion-MNIST: mean 0.2861, std 0.3530.
    pub fn fashion_mnist() -> Normalizer {
        Self::known("fashion-mnist", &[0.2861], &[0.3530])
    }

    /// MNIST: mean 0.1307, std 0.3081.
    pub fn mnist() -> Normalizer {
        Self::known("mnist", &[0.1307], &[0.3081])
    }

    /// CIFAR-10: mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010).
    pub fn cifar10() -> Normalizer {
        Self::known(
            "cifar10",
            &[0.4914, 0.4822, 0.4465],
            &[0.2023, 0.1994, 0.2010],
        )
    }

    /// No normalisation (mean 0, std 1) for `channels` channels (at least one): images stay in
    /// `[0, 1]`.
    pub fn identity(channels: usize) -> Normalizer {
        Normalizer {
            dataset: "none".into(),
            mean: vec![0.0; channels.max(1)],
            std: vec![1.0; channels.max(1)],
        }
    }

    /// The standard constants for a dataset name (`fashion-mnist`, `mnist`, `cifar10`, with the
    /// spellings [`super::DatasetName`] accepts), or `None` for an unknown name.
    pub fn for_dataset(name: &str) -> Option<Normalizer> {
        name.parse::<super::DatasetName>()
            .ok()
            .map(|d| d.normalizer())
    }

    fn known(dataset: &str, mean: &[f32], std: &[f32]) -> Normalizer {
        Normalizer {
            dataset: dataset.into(),
            mean: mean.to_vec(),
            std: std.to_vec(),
        }
    }

    /// Where the statistics come from.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Per-channel mean.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Per-channel standard deviation.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Normalises `u8` pixels laid out `N x C x H x W` (row-major) into a new tensor.
    pub fn normalize_u8(&self, pixels: &[u8], shape: [usize; 4]) -> Result<Array4<f32>> {
        self.check_layout(pixels.len(), shape)?;
        // One 256-entry table per channel: exact same arithmetic as `normalize_in_place`, and
        // a single cheap pass over tens of millions of pixels even in debug builds.
        let tables: Vec<[f32; 256]> = (0..self.channels()).map(|c| self.table(c)).collect();
        let plane = shape[2] * shape[3];
        let mut values = Vec::with_capacity(pixels.len());
        for (k, chunk) in pixels.chunks(plane.max(1)).enumerate() {
            let table = &tables[k % shape[1]];
            values.extend(chunk.iter().map(|&p| table[usize::from(p)]));
        }
        Ok(Array4::from_shape_vec(shape, values).expect("length checked against shape"))
    }

    fn table(&self, channel: usize) -> [f32; 256] {
        let (m, s) = (self.mean[channel], self.std[channel]);
        std::array::from_fn(|p| (p as f32 / 255.0 - m) / s)
    }

    /// Normalises images with pixels in `[0, 1]`, `N x C x H x W`, in place.
    ///
    /// # Panics
    /// If the channel count differs from [`Self::channels`]; use [`Self::normalize_u8`] or
    /// check first when the data comes from outside.
    pub fn normalize_in_place(&self, images: &mut Array4<f32>) {
        self.map_channels(images, |x, m, s| (x - m) / s);
    }

    /// Maps normalised images back to pixel scale `[0, 1]` (not clamped: distilled images
    /// often leave the real range, which the pixel statistics analysis wants to see).
    ///
    /// # Panics
    /// If the channel count differs from [`Self::channels`].
    pub fn denormalize(&self, images: ArrayView4<f32>) -> Array4<f32> {
        let mut out = images.to_owned();
        self.map_channels(&mut out, |x, m, s| x * s + m);
        out
    }

    /// Maps normalised images to `u8` pixels (clamped to `[0, 255]`), for saving pictures.
    ///
    /// # Panics
    /// If the channel count differs from [`Self::channels`].
    pub fn to_u8(&self, images: ArrayView4<f32>) -> Array4<u8> {
        self.denormalize(images)
            .mapv(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8)
    }

    fn map_channels(&self, images: &mut Array4<f32>, f: impl Fn(f32, f32, f32) -> f32) {
        assert_eq!(
            images.dim().1,
            self.channels(),
            "normaliser `{}` has {} channels",
            self.dataset,
            self.channels()
        );
        for (c, mut plane) in images.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (self.mean[c], self.std[c]);
            Zip::from(&mut plane).for_each(|x| *x = f(*x, m, s));
        }
    }

    fn check_layout(&self, len: usize, shape: [usize; 4]) -> Result<()> {
        let expected = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if expected != Some(len) {
            return Err(data_err(
                "pixels",
                format!("{len} values do not fill shape {shape:?}"),
            ));
        }
        if shape[1] != self.channels() {
            return Err(data_err(
                "pixels",
                format!(
                    "{} channels, but normaliser `{}` has {}",
                    shape[1],
                    self.dataset,
                    self.channels()
                ),
            ));
        }
        Ok(())
    }
}

impl From<&Normalizer> for Normalization {
    fn from(n: &Normalizer) -> Normalization {
        Normalization {
            dataset: n.dataset.clone(),
            mean: n.mean.clone(),
            std: n.std.clone(),
        }
    }
}

impl From<Normalizer> for Normalization {
    fn from(n: Normalizer) -> Normalization {
        Normalization {
            dataset: n.dataset,
            mean: n.mean,
            std: n.std,
        }
    }
}

impl TryFrom<&Normalization> for Normalizer {
    type Error = Error;

    /// Validates a manifest's normalisation (one positive std per mean).
    fn try_from(n: &Normalization) -> Result<Normalizer> {
        Normalizer::new(n.dataset.clone(), n.mean.clone(), n.std.clone())
    }
}
