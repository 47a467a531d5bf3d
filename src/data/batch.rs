//! Minibatches gathered from a [`Dataset`] by index.

use std::slice::Chunks;

use ndarray::{Array1, Array4, Axis};

use super::{data_err, dataset_origin, Dataset};
use crate::error::Result;

/// Images and labels of some examples, copied out of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `B x C x H x W`, normalised.
    pub images: Array4<f32>,
    /// One label per image.
    pub labels: Array1<i64>,
}

/// Iterator over consecutive batches of an index order; see [`Dataset::batches`].
pub struct Batches<'a> {
    data: &'a Dataset,
    chunks: Chunks<'a, usize>,
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        // Indices were validated by `Dataset::batches`, so gathering cannot panic.
        self.chunks.next().map(|idx| gather(self.data, idx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl Dataset {
    /// The examples at `indices`, in that order, as one batch.
    pub fn batch(&self, indices: &[usize]) -> Result<Batch> {
        self.check_indices(indices)?;
        Ok(gather(self, indices))
    }

    /// Batches of `batch_size` examples following `order` (a permutation or any index list);
    /// the last batch is smaller when `order.len()` is not a multiple of `batch_size`.
    /// Indices are checked once here.
    pub fn batches<'a>(&'a self, order: &'a [usize], batch_size: usize) -> Result<Batches<'a>> {
        if batch_size == 0 {
            return Err(data_err(
                dataset_origin(self.name()),
                "batch size must be positive",
            ));
        }
        self.check_indices(order)?;
        Ok(Batches {
            data: self,
            chunks: order.chunks(batch_size),
        })
    }
}

fn gather(data: &Dataset, indices: &[usize]) -> Batch {
    Batch {
        images: data.images().select(Axis(0), indices),
        labels: data.labels().select(Axis(0), indices),
    }
}
