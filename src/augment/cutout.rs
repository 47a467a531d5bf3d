//! Cutout kernel: zero one rectangle in every channel.

use std::ops::Range;

use super::transform::Dims;

/// Zeroes `rows x cols` (both within the image) in every channel of `x`.
pub(crate) fn zero(x: &mut [f32], d: Dims, rows: Range<usize>, cols: Range<usize>) {
    for plane in x.chunks_exact_mut(d.plane()) {
        for row in plane.chunks_exact_mut(d.w).take(rows.end).skip(rows.start) {
            row[cols.clone()].fill(0.0);
        }
    }
}
