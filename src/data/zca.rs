//! [`Zca`]: ZCA whitening, the preprocessing of MTT's CIFAR runs, as a dataset transform.
//!
//! The formula is kornia's `ZCAWhitening` (which MTT fits with `eps = 0.1` on the training
//! images as `ToTensor` gives them, pixels in `[0, 1]`, not mean/std normalised): flatten each
//! image to a row of `X` (`N x D`), `mean` = the column means, `C = (X - mean)ᵀ(X - mean) /
//! (N - 1)`, `C = U S Uᵀ` (kornia takes the SVD; for a symmetric matrix the singular values
//! are the absolute eigenvalues), `W = U diag(1 / sqrt(S + eps)) Uᵀ`, and an image `x`
//! becomes `(x - mean) W`. The covariance and its eigendecomposition are computed in `f64`.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{s, Array1, Array2, Array4, ArrayView4, Axis};

use super::{data_err, Dataset, Normalizer, Splits};
use crate::error::{Error, Result};

/// Rows of the data matrix taken at a time when accumulating the covariance and whitening.
const CHUNK: usize = 512;

/// A fitted ZCA whitening: the mean image and the whitening matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Zca {
    mean: Array1<f32>,
    matrix: Array2<f32>,
    shape: [usize; 3],
    eps: f64,
}

impl Zca {
    /// The regulariser MTT passes to kornia (`ZCAWhitening(eps=0.1)`).
    pub const MTT_EPS: f64 = 0.1;

    /// Fits the whitening on `images` (`N x C x H x W`, at least two). `eps` must be positive
    /// and finite.
    pub fn fit(images: ArrayView4<f32>, eps: f64) -> Result<Zca> {
        let (n, c, h, w) = images.dim();
        if n < 2 || c * h * w == 0 {
            return Err(Error::invalid(
                "zca",
                format!("fitting ZCA needs at least two non-empty images, got {n} of {c}x{h}x{w}"),
            ));
        }
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(Error::invalid(
                "zca",
                format!("eps must be positive and finite, got {eps}"),
            ));
        }
        let d = c * h * w;
        let flat = images
            .to_shape((n, d))
            .map_err(|e| Error::invalid("zca", e.to_string()))?;
        let mean64 = flat.mapv(f64::from).mean_axis(Axis(0)).expect("n >= 2");
        let mut cov = Array2::<f64>::zeros((d, d));
        for start in (0..n).step_by(CHUNK) {
            let rows = flat.slice(s![start..(start + CHUNK).min(n), ..]);
            let centred = rows.mapv(f64::from) - &mean64;
            cov += &centred.t().dot(&centred);
        }
        cov /= (n - 1) as f64;
        let matrix = whitening_matrix(cov, eps);
        Ok(Zca {
            mean: mean64.mapv(|v| v as f32),
            matrix,
            shape: [c, h, w],
            eps,
        })
    }

    /// The mean image, flattened.
    pub fn mean(&self) -> &Array1<f32> {
        &self.mean
    }

    /// The whitening matrix `W` (`D x D`, symmetric).
    pub fn matrix(&self) -> &Array2<f32> {
        &self.matrix
    }

    /// The `eps` it was fitted with.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Whitens images of the shape it was fitted on: `(x - mean) W` per image.
    pub fn apply(&self, images: ArrayView4<f32>) -> Result<Array4<f32>> {
        let (n, c, h, w) = images.dim();
        if [c, h, w] != self.shape {
            return Err(Error::invalid(
                "zca",
                format!(
                    "images of shape {:?}, but the whitening was fitted on {:?}",
                    [c, h, w],
                    self.shape
                ),
            ));
        }
        let d = c * h * w;
        let flat = images
            .to_shape((n, d))
            .map_err(|e| Error::invalid("zca", e.to_string()))?;
        let mut out = Array2::<f32>::zeros((n, d));
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            let centred = &flat.slice(s![start..end, ..]) - &self.mean;
            out.slice_mut(s![start..end, ..])
                .assign(&centred.dot(&self.matrix));
        }
        Ok(out
            .into_shape_with_order((n, c, h, w))
            .expect("same number of values"))
    }

    /// A dataset with whitened images, same labels and name.
    pub fn whiten(&self, data: &Dataset) -> Result<Dataset> {
        let images = self.apply(data.images().view())?;
        Dataset::new(
            images,
            data.labels().clone(),
            data.num_classes(),
            data.name(),
        )
    }

    /// MTT's preprocessing of a benchmark: both splits mapped back from `normalizer`'s space
    /// to pixels in `[0, 1]`, the whitening fitted on the training split and applied to both.
    pub fn whiten_splits(splits: &Splits, normalizer: &Normalizer, eps: f64) -> Result<Splits> {
        let channels = splits.train.input_shape()[0];
        if normalizer.channels() != channels {
            return Err(data_err(
                splits.train.name(),
                format!(
                    "{channels} channels, but normaliser `{}` has {}",
                    normalizer.dataset(),
                    normalizer.channels()
                ),
            ));
        }
        let pixels = |d: &Dataset| -> Result<Dataset> {
            Dataset::new(
                normalizer.denormalize(d.images().view()),
                d.labels().clone(),
                d.num_classes(),
                d.name(),
            )
        };
        let (train, test) = (pixels(&splits.train)?, pixels(&splits.test)?);
        let zca = Zca::fit(train.images().view(), eps)?;
        Ok(Splits {
            train: zca.whiten(&train)?,
            test: zca.whiten(&test)?,
        })
    }
}

/// `U diag(1 / sqrt(|λ| + eps)) Uᵀ` of a symmetric matrix.
fn whitening_matrix(cov: Array2<f64>, eps: f64) -> Array2<f32> {
    let d = cov.nrows();
    let (values, _) = cov.into_raw_vec_and_offset();
    let eigen = SymmetricEigen::new(DMatrix::from_row_slice(d, d, &values));
    let u = &eigen.eigenvectors;
    let scale = eigen.eigenvalues.map(|l| 1.0 / (l.abs() + eps).sqrt());
    let mut scaled = u.clone();
    for (j, mut col) in scaled.column_iter_mut().enumerate() {
        col *= scale[j];
    }
    let w = scaled * u.transpose();
    Array2::from_shape_fn((d, d), |(i, j)| w[(i, j)] as f32)
}
