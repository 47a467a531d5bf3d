//! Flip kernel: mirror the columns (a horizontal flip, PyTorch's `x.flip(3)`).

use super::transform::Dims;

/// Reverses every row of every channel of `x`, in place.
pub(crate) fn flip_columns(x: &mut [f32], d: Dims) {
    for row in x.chunks_exact_mut(d.w) {
        row.reverse();
    }
}
