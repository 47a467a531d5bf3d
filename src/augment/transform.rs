//! One resolved transform for one image, and the dispatch to its forward and adjoint kernels.
//!
//! Every DSA transform is affine in the pixels (colour ops add a constant and mix pixels with
//! fixed weights; the geometric ops are fixed linear maps), so its Jacobian does not depend on
//! the image and the vector-Jacobian product needs only the transform itself.

use std::ops::Range;

use super::{affine, color, crop, cutout, flip};

/// The shape of one image, `C x H x W`, stored contiguously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    /// Pixels in one channel plane.
    pub fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Values in one image.
    pub fn len(&self) -> usize {
        self.c * self.plane()
    }
}

/// Buffers reused across the images of a batch, so the kernels never allocate per image.
#[derive(Default)]
pub(crate) struct Scratch {
    pub buf: Vec<f32>,
    pub taps: affine::TapCache,
}

/// One transform, with its parameters resolved for one image of a given size: what
/// [`Augmentation::transforms`](super::Augmentation::transforms) reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// `y = x + delta` on every value of the image.
    Brightness {
        /// The added constant, `(u - 0.5) * brightness`.
        delta: f32,
    },
    /// `y = (x - m) * factor + m`, `m` the mean over channels at each pixel.
    Saturation {
        /// The factor, `u * saturation`.
        factor: f32,
    },
    /// `y = (x - m) * factor + m`, `m` the mean over all values of the image.
    Contrast {
        /// The factor, `u + contrast`.
        factor: f32,
    },
    /// `y[r, c] = x[r + dy, c + dx]`, zero where that falls outside the image: the content
    /// moves by `(-dy, -dx)`.
    Translate {
        /// Row offset of the source pixel.
        dy: isize,
        /// Column offset of the source pixel.
        dx: isize,
    },
    /// Zeroes the rectangle `rows x cols` (already clipped to the image) in every channel.
    Cutout {
        /// Zeroed rows.
        rows: Range<usize>,
        /// Zeroed columns.
        cols: Range<usize>,
    },
    /// Mirrors the columns when `flipped`; identity otherwise.
    Flip {
        /// Whether this image is mirrored.
        flipped: bool,
    },
    /// Bilinear resampling through `affine_grid`/`grid_sample` (align_corners = true, zero
    /// padding): output pixel at normalised `(x, y)` reads the input at
    /// `(m[0] x + m[1] y, m[2] x + m[3] y)`.
    Affine {
        /// The row-major 2x2 matrix `[a, b, c, d]` of PyTorch's `theta[:, :, :2]`.
        matrix: [f64; 4],
    },
}

impl Transform {
    /// Applies the transform to one image in place.
    pub(crate) fn forward(&self, d: Dims, x: &mut [f32], scratch: &mut Scratch) {
        match self {
            Transform::Brightness { delta } => color::brightness(x, *delta),
            Transform::Saturation { factor } => color::saturation(x, d, *factor, &mut scratch.buf),
            Transform::Contrast { factor } => color::contrast(x, *factor),
            Transform::Translate { dy, dx } => {
                copy_to(&mut scratch.buf, x);
                crop::translate(&scratch.buf, x, d, *dy, *dx);
            }
            Transform::Cutout { rows, cols } => cutout::zero(x, d, rows.clone(), cols.clone()),
            Transform::Flip { flipped } => {
                if *flipped {
                    flip::flip_columns(x, d);
                }
            }
            Transform::Affine { matrix } => {
                copy_to(&mut scratch.buf, x);
                scratch.taps.get(*matrix, d).gather(&scratch.buf, x, d);
            }
        }
    }

    /// Replaces `g`, a gradient w.r.t. this transform's output, by the gradient w.r.t. its
    /// input: `J^T g`.
    pub(crate) fn backward(&self, d: Dims, g: &mut [f32], scratch: &mut Scratch) {
        match self {
            // Adding a constant has the identity Jacobian.
            Transform::Brightness { .. } => {}
            // `f I + (1 - f) P` with P an averaging projection: symmetric, so J^T g = J g,
            // which is the forward formula applied to g.
            Transform::Saturation { factor } => color::saturation(g, d, *factor, &mut scratch.buf),
            Transform::Contrast { factor } => color::contrast(g, *factor),
            // A zero-padded shift is a partial permutation; its transpose is the opposite shift.
            Transform::Translate { dy, dx } => {
                copy_to(&mut scratch.buf, g);
                crop::translate(&scratch.buf, g, d, -dy, -dx);
            }
            // Masks and mirrors are symmetric.
            Transform::Cutout { .. } | Transform::Flip { .. } => self.forward(d, g, scratch),
            Transform::Affine { matrix } => {
                copy_to(&mut scratch.buf, g);
                scratch.taps.get(*matrix, d).scatter(&scratch.buf, g, d);
            }
        }
    }
}

/// Copies `src` into the reusable buffer `dst`.
fn copy_to(dst: &mut Vec<f32>, src: &[f32]) {
    dst.clear();
    dst.extend_from_slice(src);
}
