//! The synthetic set being learned: images in normalised space, fixed labels, and an optional
//! learnable learning rate (MTT, BPTT).

use ndarray::{Array1, Array4};

use crate::data::{self, Dataset, DistilledMeta, DistilledSet};
use crate::error::Result;

/// Synthetic images under optimisation. Labels never change; images (and `lr`) do.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// `N x C x H x W`, normalised space, grouped by class (`ipc` images of class 0 first...).
    pub images: Array4<f32>,
    /// One label per image.
    pub labels: Array1<i64>,
    /// Number of classes.
    pub num_classes: usize,
    /// Learned learning rate, for methods that learn one.
    pub lr: Option<f32>,
}

impl Synthetic {
    /// `ipc` real images per class, drawn with the seeded class-balanced sampler (the standard
    /// initialisation of DM, DC, DSA and MTT, and the whole of the `random` baseline).
    pub fn from_real(real: &Dataset, ipc: usize, seed: u64) -> Result<Synthetic> {
        let idx = data::class_balanced(real, ipc, seed)?;
        let subset = real.select(&idx)?;
        let num_classes = subset.num_classes();
        let (images, labels) = subset.into_parts();
        Ok(Synthetic {
            images,
            labels,
            num_classes,
            lr: None,
        })
    }

    /// Indices of the images of each class.
    pub fn class_indices(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.num_classes];
        for (i, &y) in self.labels.iter().enumerate() {
            out[y as usize].push(i);
        }
        out
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// As a validated dataset (fails on NaN/Inf pixels, naming the set).
    pub fn to_dataset(&self, name: &str) -> Result<Dataset> {
        Dataset::new(
            self.images.clone(),
            self.labels.clone(),
            self.num_classes,
            name,
        )
    }

    /// As a distilled-set file payload.
    pub fn to_distilled(&self, meta: DistilledMeta) -> Result<DistilledSet> {
        DistilledSet::new(self.to_dataset(&meta.method)?, self.lr, meta)
    }
}
