//! [`Dataset`]: labelled images in normalised space, with the checks every loader runs.

use std::fmt;

use ndarray::{concatenate, Array1, Array4, Axis};

use super::{data_err, dataset_origin};
use crate::bundle::Manifest;
use crate::error::Result;

/// The most classes a dataset may have. Per-class tables ([`Dataset::class_counts`] and
/// the like) are allocated up front, so a class count taken from a hostile file (a distilled
/// set's `num_classes`, or its largest label + 1) must be bounded before they are.
pub(crate) const MAX_CLASSES: usize = 1 << 20;

/// Labelled images: `N x C x H x W` `f32` in normalised space, labels in `0..num_classes`.
///
/// The constructor checks that lengths agree, labels are in range and pixels are finite, so a
/// `Dataset` that exists is valid.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    images: Array4<f32>,
    labels: Array1<i64>,
    num_classes: usize,
    name: String,
}

impl Dataset {
    /// Builds a dataset, checking that there is one label per image, that every label is in
    /// `0..num_classes` and that every pixel is finite.
    pub fn new(
        images: Array4<f32>,
        labels: Array1<i64>,
        num_classes: usize,
        name: impl Into<String>,
    ) -> Result<Dataset> {
        let data = Dataset {
            images,
            labels,
            num_classes,
            name: name.into(),
        };
        data.check_lengths()?;
        data.check_labels()?;
        data.check_finite()?;
        Ok(data)
    }

    /// The images, `N x C x H x W`, normalised.
    pub fn images(&self) -> &Array4<f32> {
        &self.images
    }

    /// The labels, one per image.
    pub fn labels(&self) -> &Array1<i64> {
        &self.labels
    }

    /// Number of classes (labels lie in `0..num_classes`).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The name used in reports and error messages (`fashion-mnist-train`, a file stem...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same data under another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Dataset {
        self.name = name.into();
        self
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape `[C, H, W]` of one example (the bundle manifest's `input_shape`).
    pub fn input_shape(&self) -> [usize; 3] {
        let (_, c, h, w) = self.images.dim();
        [c, h, w]
    }

    /// Takes the images and labels out.
    pub fn into_parts(self) -> (Array4<f32>, Array1<i64>) {
        (self.images, self.labels)
    }

    /// The examples at `indices`, in that order (repeats allowed), under the same name.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        self.check_indices(indices)?;
        Ok(Dataset {
            images: self.images.select(Axis(0), indices),
            labels: self.labels.select(Axis(0), indices),
            num_classes: self.num_classes,
            name: self.name.clone(),
        })
    }

    /// This dataset followed by `other`, under this dataset's name. Both must have the same
    /// example shape and number of classes.
    pub fn concat(&self, other: &Dataset) -> Result<Dataset> {
        if self.input_shape() != other.input_shape() || self.num_classes != other.num_classes {
            return Err(data_err(
                dataset_origin(&self.name),
                format!(
                    "cannot concatenate with dataset `{}`: shapes {:?} vs {:?}, classes {} vs {}",
                    other.name,
                    self.input_shape(),
                    other.input_shape(),
                    self.num_classes,
                    other.num_classes
                ),
            ));
        }
        let images = concatenate(Axis(0), &[self.images.view(), other.images.view()])
            .expect("example shapes were checked equal");
        let labels = concatenate(Axis(0), &[self.labels.view(), other.labels.view()])
            .expect("labels are one-dimensional");
        Ok(Dataset {
            images,
            labels,
            num_classes: self.num_classes,
            name: self.name.clone(),
        })
    }

    /// Number of examples of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &label in &self.labels {
            // Labels were range-checked on construction.
            counts[label as usize] += 1;
        }
        counts
    }

    /// Indices of the examples of each class, indexed by label, in dataset order.
    pub fn class_indices(&self) -> Vec<Vec<usize>> {
        let mut by_class = vec![Vec::new(); self.num_classes];
        for (i, &label) in self.labels.iter().enumerate() {
            by_class[label as usize].push(i);
        }
        by_class
    }

    /// Fails on the first non-finite pixel, naming the dataset, the example and the value.
    pub fn check_finite(&self) -> Result<()> {
        for (i, image) in self.images.outer_iter().enumerate() {
            if let Some(v) = image.iter().find(|v| !v.is_finite()) {
                return Err(data_err(
                    dataset_origin(&self.name),
                    format!("image {i} contains a non-finite pixel ({v})"),
                ));
            }
        }
        Ok(())
    }

    /// Fails on the first label outside `0..num_classes`, naming its value and index.
    pub fn check_labels(&self) -> Result<()> {
        let n = self.num_classes;
        match self
            .labels
            .iter()
            .position(|&l| l < 0 || l as u64 >= n as u64)
        {
            None => Ok(()),
            Some(i) => Err(data_err(
                dataset_origin(&self.name),
                format!(
                    "label {} at index {i} is outside 0..{n} ({n} classes)",
                    self.labels[i]
                ),
            )),
        }
    }

    /// Fails unless the example shape and class count match the bundle's manifest, naming both
    /// shapes and the bundle.
    pub fn check_against(&self, manifest: &Manifest) -> Result<()> {
        let ours = self.input_shape();
        if ours != manifest.input_shape || self.num_classes != manifest.num_classes {
            return Err(data_err(
                dataset_origin(&self.name),
                format!(
                    "examples of shape {ours:?} with {} classes do not fit bundle `{}`, which \
                     takes input shape {:?} and predicts {} classes",
                    self.num_classes, manifest.name, manifest.input_shape, manifest.num_classes
                ),
            ));
        }
        Ok(())
    }

    /// Fails unless every index is below `len()`, naming the first bad one.
    pub(crate) fn check_indices(&self, indices: &[usize]) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            None => Ok(()),
            Some(i) => Err(data_err(
                dataset_origin(&self.name),
                format!("index {i} is out of range for {} examples", self.len()),
            )),
        }
    }

    fn check_lengths(&self) -> Result<()> {
        let (n, c, h, w) = self.images.dim();
        if n != self.labels.len() {
            return Err(data_err(
                dataset_origin(&self.name),
                format!("{n} images but {} labels", self.labels.len()),
            ));
        }
        if self.num_classes > MAX_CLASSES {
            return Err(data_err(
                dataset_origin(&self.name),
                format!(
                    "{} classes is more than the {MAX_CLASSES} ddlens supports (a class count \
                     read from a file, or one more than its largest label, is implausible)",
                    self.num_classes
                ),
            ));
        }
        if c * h * w == 0 || self.num_classes == 0 {
            return Err(data_err(
                dataset_origin(&self.name),
                format!(
                    "example shape {:?} and class count {} must be positive",
                    [c, h, w],
                    self.num_classes
                ),
            ));
        }
        Ok(())
    }
}

/// Prints the shape, not the pixels: datasets hold millions of values.
impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("input_shape", &self.input_shape())
            .field("num_classes", &self.num_classes)
            .finish()
    }
}
